//! `eegadapt features` driven through the real binary.

use crate::common;

use std::path::Path;
use std::process::{Command, Output};

use eegadapt::store;

fn eegadapt(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eegadapt"))
        .args(args)
        .output()
        .expect("run eegadapt")
}

fn parquet_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    files.sort();
    files
}

#[test]
fn one_run_gives_fifteen_labelled_epochs_and_a_rerun_skips_it() {
    let out_dir = tempfile::tempdir().expect("tempdir");
    let out = out_dir.path().to_str().expect("utf8");
    let file = common::data_file("eegmmidb/S001/S001R04.edf");
    let file = file.to_str().expect("utf8");
    let first = eegadapt(&["features", file, "--task", "eegmmidb-lr", "--out", out]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let tables = parquet_files(out_dir.path());
    assert_eq!(tables.len(), 1);
    let set = store::read_feature_set(&tables[0]).expect("read back");
    assert_eq!(set.rows.len(), 15);
    let classes = &set.meta.task.classes;
    assert!(set.rows.iter().all(|r| r
        .label
        .is_some_and(|l| classes[l] == "left" || classes[l] == "right")));
    assert_eq!(
        set.meta.sources[0].sha256,
        store::sha256_file(Path::new(file)).expect("sha")
    );
    let modified = std::fs::metadata(&tables[0])
        .expect("meta")
        .modified()
        .expect("mtime");
    let second = eegadapt(&["features", file, "--task", "eegmmidb-lr", "--out", out]);
    assert!(second.status.success());
    assert!(String::from_utf8_lossy(&second.stderr).contains("1 up to date"));
    assert_eq!(
        std::fs::metadata(&tables[0])
            .expect("meta")
            .modified()
            .expect("mtime"),
        modified
    );
    // Other settings are another table: the rerun recomputes.
    let third = eegadapt(&[
        "features",
        file,
        "--task",
        "eegmmidb-lr",
        "--out",
        out,
        "--car",
    ]);
    assert!(String::from_utf8_lossy(&third.stderr).contains("1 written"));
    if let Some(python) = std::env::var_os("EEGADAPT_PYTHON") {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/check_parquet.py");
        let check = Command::new(python)
            .arg(script)
            .arg(out)
            .arg("15")
            .output()
            .expect("python");
        assert!(
            check.status.success(),
            "{}",
            String::from_utf8_lossy(&check.stderr)
        );
    }
}

/// The whole shared EEGMMIDB folder plus one corrupted recording: the rest is finished, the bad
/// one gets one line, the exit code is 1, and runs outside the task are counted, not failed.
#[cfg_attr(not(shared_corpus), ignore = "needs the shared corpus")]
#[test]
fn a_corrupted_file_does_not_stop_the_others() {
    let data = common::shared_dir().join("data/eegmmidb");
    let bad_dir = tempfile::tempdir().expect("tempdir");
    let bad = bad_dir.path().join("S099R04.edf");
    let mut bytes = std::fs::read(common::data_file("eegmmidb/S001/S001R04.edf")).expect("read");
    bytes[252..256].copy_from_slice(b"xx  ");
    std::fs::write(&bad, bytes).expect("write");
    let out_dir = tempfile::tempdir().expect("tempdir");
    let out = eegadapt(&[
        "features",
        data.to_str().expect("utf8"),
        bad.to_str().expect("utf8"),
        "--task",
        "eegmmidb-lr",
        "--out",
        out_dir.path().to_str().expect("utf8"),
        "--jobs",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("eegadapt:"))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains("S099R04.edf") && errors[0].contains("ns"),
        "{}",
        errors[0]
    );
    let mut in_task = 0;
    let mut all = 0;
    for subject in std::fs::read_dir(&data).expect("subjects") {
        for file in std::fs::read_dir(subject.expect("entry").path()).expect("files") {
            let name = file
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned();
            all += 1;
            if ["R04.edf", "R08.edf", "R12.edf"]
                .iter()
                .any(|r| name.ends_with(r))
            {
                in_task += 1;
            }
        }
    }
    assert_eq!(parquet_files(out_dir.path()).len(), in_task);
    assert!(
        stderr.contains(&format!("{} not in task", all - in_task)),
        "{stderr}"
    );
    assert!(stderr.contains("1 failed"));
}

#[cfg_attr(not(shared_corpus), ignore = "needs the shared corpus")]
#[test]
fn deidentified_run_names_files_by_pseudonym() {
    let out_dir = tempfile::tempdir().expect("tempdir");
    let file = common::data_file("eegmmidb/S002/S002R04.edf");
    let out = eegadapt(&[
        "features",
        file.to_str().expect("utf8"),
        "--task",
        "eegmmidb-lr",
        "--out",
        out_dir.path().to_str().expect("utf8"),
        "--deidentify",
    ]);
    assert!(out.status.success());
    let tables = parquet_files(out_dir.path());
    assert_eq!(tables.len(), 1);
    let name = tables[0]
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    assert!(name.starts_with("rec-") && !name.contains("S002"), "{name}");
    let set = store::read_feature_set(&tables[0]).expect("read");
    assert!(set.meta.deidentified && set.rows.iter().all(|r| !r.subject.contains("S002")));
}

#[test]
fn unknown_task_is_a_clear_error() {
    let out_dir = tempfile::tempdir().expect("tempdir");
    let file = common::data_file("eegmmidb/S001/S001R04.edf");
    let out = eegadapt(&[
        "features",
        file.to_str().expect("utf8"),
        "--task",
        "nope",
        "--out",
        out_dir.path().to_str().expect("utf8"),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown task \"nope\""));
}

#[test]
fn a_table_that_cannot_be_put_in_place_is_a_failure_and_the_others_are_written() {
    let out_dir = tempfile::tempdir().expect("tempdir");
    // A folder where S001R04's table should go: its rename fails after it was computed.
    let blocked = out_dir.path().join("S001R04.parquet");
    std::fs::create_dir(&blocked).expect("folder");
    std::fs::write(blocked.join("keep"), "x").expect("content");
    let files =
        ["S001R04", "S001R08"].map(|r| common::data_file(&format!("eegmmidb/S001/{r}.edf")));
    let out = eegadapt(&[
        "features",
        files[0].to_str().expect("utf8"),
        files[1].to_str().expect("utf8"),
        "--task",
        "eegmmidb-lr",
        "--out",
        out_dir.path().to_str().expect("utf8"),
        "--jobs",
        "1",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("1 written") && stderr.contains("1 failed"),
        "{stderr}"
    );
    assert!(
        stderr.contains("S001R04.parquet") && stderr.contains("cannot rename"),
        "{stderr}"
    );
    assert!(blocked.join("keep").is_file());
    let written = out_dir.path().join("S001R08.parquet");
    assert_eq!(
        store::read_feature_set(&written).expect("read").rows.len(),
        15
    );
    // No temporary file is left, and no sidecar claims the blocked table.
    let names: Vec<String> = std::fs::read_dir(out_dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
    assert!(!names.contains(&"S001R04.json".to_string()), "{names:?}");
}
