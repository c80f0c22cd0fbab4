//! Helpers shared by the integration tests.
//!
//! Test data comes from the full shared corpus (`$EEGADAPT_SHARED`, else `../shared` beside the
//! crate) when it is there, else from the small corpus in the repository: `tests/data/` (peer
//! edge-case files and their reference values) and `data/eegmmidb/S001` (the demo's recordings).
//! Suites that need the full corpus carry
//! `#[cfg_attr(not(shared_corpus), ignore = "needs the shared corpus")]`, so a fresh clone lists
//! them as ignored by name (see build.rs).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The crate's root folder.
fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The full shared corpus, when it is present.
pub fn shared_corpus() -> Option<PathBuf> {
    let dir = match std::env::var_os("EEGADAPT_SHARED") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => manifest_dir().join("../shared"),
    };
    dir.join("data").is_dir().then_some(dir)
}

/// The shared folder: the full corpus when present; panics (failing the test) otherwise, so only
/// tests marked as needing the full corpus may call it.
pub fn shared_dir() -> PathBuf {
    shared_corpus().unwrap_or_else(|| {
        panic!("this test needs the shared corpus (../shared or $EEGADAPT_SHARED) and should be marked ignored without it")
    })
}

/// The folder of reference values: the shared corpus's, else the repository's small one.
pub fn reference_dir() -> PathBuf {
    match shared_corpus() {
        Some(dir) => dir.join("reference"),
        None => manifest_dir().join("tests/data/reference"),
    }
}

/// A file under the reference folder; panics (failing the test) when it is missing.
pub fn reference_file(relative: &str) -> PathBuf {
    let path = reference_dir().join(relative);
    assert!(path.is_file(), "reference missing: {}", path.display());
    path
}

/// A data file (path relative to the corpus's `data/`); panics (failing the test) when missing.
pub fn data_file(relative: &str) -> PathBuf {
    let path = match shared_corpus() {
        Some(dir) => dir.join("data").join(relative),
        None if relative.starts_with("eegmmidb/") => manifest_dir().join("data").join(relative),
        None => manifest_dir().join("tests/data").join(relative),
    };
    assert!(path.is_file(), "test data missing: {}", path.display());
    path
}

/// Every reference JSON under `reference/<sub>` (recursively), sorted.
pub fn reference_jsons(sub: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "json") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&reference_dir().join(sub), &mut out);
    out.sort();
    out
}

/// Runs the `eegadapt` binary with `args`.
pub fn run_eegadapt(args: &[&std::ffi::OsStr]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_eegadapt"))
        .args(args)
        .output()
        .expect("run eegadapt")
}

/// The stdout of a run that must have succeeded (its stderr in the failure message otherwise).
pub fn success(run: &std::process::Output) -> String {
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    String::from_utf8_lossy(&run.stdout).into_owned()
}

/// `summary.json` of a batch's output folder, its wall times blanked (they differ between runs).
pub fn batch_summary(out: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(out.join("summary.json")).expect("summary.json");
    let mut rows: Vec<serde_json::Value> = serde_json::from_str(&text).expect("summary json");
    for row in &mut rows {
        row["seconds"] = serde_json::Value::Null;
    }
    rows
}

/// `eegadapt batch --manifest MANIFEST --encoder data/encoder --out OUT` plus `extra`.
pub fn run_batch(manifest: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_eegadapt"))
        .arg("batch")
        .arg("--manifest")
        .arg(manifest)
        .arg("--encoder")
        .arg(manifest_dir().join("data/encoder"))
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .expect("run eegadapt")
}
