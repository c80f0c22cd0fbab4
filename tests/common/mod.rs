//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// The shared data and reference folder: `$EEGADAPT_SHARED`, else `../shared` beside the crate.
pub fn shared_dir() -> PathBuf {
    std::env::var_os("EEGADAPT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"))
}

/// A file under the shared data folder; panics (failing the test) when it is missing.
pub fn data_file(relative: &str) -> PathBuf {
    let path = shared_dir().join("data").join(relative);
    assert!(path.is_file(), "test data missing: {}", path.display());
    path
}

/// Every reference JSON under `reference/<sub>` (recursively), sorted.
pub fn reference_jsons(sub: &str) -> Vec<PathBuf> {
    fn walk(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
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
    walk(&shared_dir().join("reference").join(sub), &mut out);
    out.sort();
    out
}
