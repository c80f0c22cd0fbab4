//! `eegadapt batch` through the real binary: every subject of a manifest gets its model, report
//! and predictions; a subject with a bad or missing file fails alone and is named; a rerun skips
//! finished subjects without touching their outputs and redoes a subject whose inputs changed.

use std::path::{Path, PathBuf};
use std::process::Output;

fn project(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn batch(manifest: &Path, out: &Path) -> Output {
    crate::common::run_batch(manifest, out, &["--jobs", "2"])
}

fn summary(out: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(out.join("summary.json")).expect("summary.json");
    serde_json::from_str(&text).expect("summary json")
}

fn status(rows: &[serde_json::Value], subject: &str) -> String {
    rows.iter()
        .find(|r| r["subject"] == subject)
        .map(|r| r["status"].as_str().unwrap_or("").to_string())
        .unwrap_or_else(|| panic!("{subject} missing from the summary"))
}

#[test]
fn bad_subjects_fail_alone_and_reruns_skip_finished_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let junk = dir.path().join("junk.edf");
    std::fs::write(&junk, vec![0x5a_u8; 4096]).expect("write");
    let s001 = |run: &str| project(&format!("data/eegmmidb/S001/S001R{run}.edf"));
    let manifest = dir.path().join("clinic.csv");
    let write_manifest = |extra: &str| {
        let text = format!(
            "subject,role,path\nS001,calibration,{}\nS001,test,{}\nS001,predict,junk.edf\n\
             BAD,calibration,junk.edf\nGHOST,calibration,no_such_file.edf\n{extra}",
            s001("04").display(),
            s001("08").display(),
        );
        std::fs::write(&manifest, text).expect("manifest");
    };
    write_manifest("");
    let out = dir.path().join("results");

    let run = batch(&manifest, &out);
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("subject BAD: ") && stderr.contains("junk.edf"),
        "{stderr}"
    );
    assert!(
        stderr.contains("subject GHOST: ") && stderr.contains("no_such_file.edf"),
        "{stderr}"
    );
    let rows = summary(&out);
    assert_eq!(status(&rows, "S001"), "done");
    assert_eq!(status(&rows, "BAD"), "failed");
    assert_eq!(status(&rows, "GHOST"), "failed");
    let s001_row = rows.iter().find(|r| r["subject"] == "S001").expect("S001");
    assert_eq!(s001_row["outcome"]["calibration_epochs"], 15);
    assert_eq!(s001_row["outcome"]["test_epochs"], 15);
    // The unreadable predict file is listed; the subject's other outputs are all there.
    let failed = s001_row["outcome"]["failed_recordings"].to_string();
    assert!(failed.contains("junk.edf"), "{failed}");
    let subject = out.join("subjects/S001");
    for file in [
        "model.safetensors",
        "subject.json",
        "report.html",
        "predictions.json",
        "batch.json",
    ] {
        assert!(subject.join(file).is_file(), "{file} missing");
    }
    assert!(!out.join("subjects/BAD/batch.json").exists());
    let csv = std::fs::read_to_string(out.join("summary.csv")).expect("summary.csv");
    assert_eq!(csv.lines().count(), 4);

    // Rerun: S001 is skipped and its outputs are left exactly as they were.
    let before = std::fs::read(subject.join("report.html")).expect("report");
    let modified = |p: &Path| {
        std::fs::metadata(p)
            .and_then(|m| m.modified())
            .expect("mtime")
    };
    let model_time = modified(&subject.join("model.safetensors"));
    let run = batch(&manifest, &out);
    assert_eq!(run.status.code(), Some(1));
    assert_eq!(status(&summary(&out), "S001"), "up_to_date");
    assert_eq!(modified(&subject.join("model.safetensors")), model_time);
    assert_eq!(
        std::fs::read(subject.join("report.html")).expect("report"),
        before
    );

    // A new input for S001 makes it stale: it is done again, with the new file scored.
    write_manifest(&format!("S001,test,{}\n", s001("12").display()));
    let run = batch(&manifest, &out);
    assert_eq!(run.status.code(), Some(1));
    let rows = summary(&out);
    assert_eq!(status(&rows, "S001"), "done");
    let s001_row = rows.iter().find(|r| r["subject"] == "S001").expect("S001");
    assert_eq!(s001_row["outcome"]["test_epochs"], 30);
}

#[test]
fn a_malformed_manifest_is_refused_with_its_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = dir.path().join("m.csv");
    std::fs::write(&manifest, "subject,role,path\nS001,training,a.edf\n").expect("write");
    let run = batch(&manifest, &dir.path().join("out"));
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("m.csv: line 2: role `training`"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("out").exists(),
        "nothing written for a refused manifest"
    );
}
