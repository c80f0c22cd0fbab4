//! `batch --bids` through the binary on an EEG-BIDS tree built from S001's recordings: roles from
//! entity filters, `_events.tsv` taking precedence over the EDF annotations, a `bad` channel in
//! `_channels.tsv` left out, sessions kept apart, outputs as BIDS-Derivatives; and the malformed
//! cases (an events file without `trial_type`, a subject with no calibration match, an unknown
//! entity), each failing its subject with an error naming the file while the others go on.

use std::path::{Path, PathBuf};
use std::process::Command;

fn project(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn s001(run: &str) -> PathBuf {
    project(&format!("data/eegmmidb/S001/S001R{run}.edf"))
}

/// Copies `source` to `dir/name` (creating `dir`).
fn place(dir: &Path, name: &str, source: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).expect("mkdir");
    let path = dir.join(name);
    std::fs::copy(source, &path).expect("copy");
    path
}

/// An `_events.tsv` from the recording's first `keep` annotations.
fn events_tsv(source: &Path, keep: usize) -> String {
    let rec = eegadapt::edf::read_recording(source).expect("read");
    let mut text = String::from("onset\tduration\ttrial_type\n");
    for a in rec.annotations.iter().take(keep) {
        let duration = a.duration_s.map_or("n/a".to_string(), |d| d.to_string());
        text.push_str(&format!("{}\t{duration}\t{}\n", a.onset_s, a.text));
    }
    text
}

#[test]
fn a_bids_dataset_is_calibrated_by_entity_filters_and_bad_files_fail_alone() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("ds");
    std::fs::create_dir_all(&root).expect("mkdir");
    std::fs::write(
        root.join("dataset_description.json"),
        r#"{"Name": "S001 as BIDS", "BIDSVersion": "1.9.0"}"#,
    )
    .expect("description");
    std::fs::write(
        root.join("participants.tsv"),
        "participant_id\tage\nsub-01\tn/a\nsub-02\tn/a\nsub-03\tn/a\nsub-04\tn/a\nsub-05\tn/a\n",
    )
    .expect("participants");

    // sub-01: events.tsv keeps the first 20 annotations (10 cues instead of 15); C3 is bad.
    let eeg = root.join("sub-01/eeg");
    place(&eeg, "sub-01_task-motor_run-1_eeg.edf", &s001("04"));
    std::fs::write(
        eeg.join("sub-01_task-motor_run-1_events.tsv"),
        events_tsv(&s001("04"), 20),
    )
    .expect("events");
    place(&eeg, "sub-01_task-motor_run-2_eeg.edf", &s001("08"));
    place(&eeg, "sub-01_task-rest_eeg.edf", &s001("12"));
    let labels = eegadapt::edf::read_recording(s001("04"))
        .expect("read")
        .channels;
    let mut channels = String::from("name\ttype\tunits\tstatus\n");
    for c in &labels {
        let status = if c.label.starts_with("C3") {
            "bad"
        } else {
            "good"
        };
        channels.push_str(&format!("{}\tEEG\tuV\t{status}\n", c.label));
    }
    for run in ["run-1", "run-2"] {
        std::fs::write(
            eeg.join(format!("sub-01_task-motor_{run}_channels.tsv")),
            &channels,
        )
        .expect("channels");
    }
    // sub-02, one session, no sidecars: the EDF annotations label the epochs.
    let eeg = root.join("sub-02/ses-1/eeg");
    place(&eeg, "sub-02_ses-1_task-motor_run-1_eeg.edf", &s001("04"));
    place(&eeg, "sub-02_ses-1_task-motor_run-2_eeg.edf", &s001("08"));
    // sub-03: an events file without trial_type.
    let eeg = root.join("sub-03/eeg");
    place(&eeg, "sub-03_task-motor_run-1_eeg.edf", &s001("04"));
    std::fs::write(
        eeg.join("sub-03_task-motor_run-1_events.tsv"),
        "onset\tduration\n4.2\t4.1\n",
    )
    .expect("events");
    // sub-04: nothing matches the calibration filter.
    place(
        &root.join("sub-04/eeg"),
        "sub-04_task-motor_run-2_eeg.edf",
        &s001("08"),
    );
    // sub-05: an entity BIDS does not define.
    place(
        &root.join("sub-05/eeg"),
        "sub-05_task-motor_foo-1_run-1_eeg.edf",
        &s001("04"),
    );

    let run = Command::new(env!("CARGO_BIN_EXE_eegadapt"))
        .args(["batch", "--bids"])
        .arg(&root)
        .arg("--encoder")
        .arg(project("data/encoder"))
        .args([
            "--calibration",
            "task-motor_run-1",
            "--test",
            "task-motor_run-2",
        ])
        .args(["--predict", "task-rest", "--jobs", "2"])
        .output()
        .expect("run eegadapt");
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    let line = |subject: &str| {
        stderr
            .lines()
            .find(|l| l.contains(&format!("subject {subject}:")))
            .unwrap_or_else(|| panic!("no error for {subject}: {stderr}"))
            .to_string()
    };
    let sub03 = line("sub-03");
    assert!(
        sub03.contains("sub-03_task-motor_run-1_events.tsv") && sub03.contains("trial_type"),
        "{sub03}"
    );
    assert!(line("sub-04").contains("calibration filter"), "{stderr}");
    let sub05 = line("sub-05");
    assert!(
        sub05.contains("sub-05_task-motor_foo-1_run-1_eeg.edf") && sub05.contains("\"foo\""),
        "{sub05}"
    );

    let out = root.join("derivatives/eegadapt");
    let description: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("dataset_description.json")).expect("description"),
    )
    .expect("json");
    assert_eq!(description["DatasetType"], "derivative");
    let summary: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).expect("summary"))
            .expect("summary json");
    let row = |subject: &str| {
        summary
            .iter()
            .find(|r| r["subject"] == subject)
            .unwrap_or_else(|| panic!("{subject} not in the summary"))
            .clone()
    };
    let sub01 = row("sub-01");
    assert_eq!(sub01["status"], "done", "{sub01}");
    assert_eq!(
        sub01["outcome"]["calibration_epochs"], 10,
        "events.tsv, not the EDF"
    );
    assert_eq!(sub01["outcome"]["test_epochs"], 15);
    assert_eq!(sub01["outcome"]["predicted_epochs"], 15);
    let model: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("sub-01/subject.json")).expect("subject.json"),
    )
    .expect("subject json");
    let calibrated = model["channels"].as_array().expect("channels");
    assert_eq!(calibrated.len(), labels.len() - 1);
    assert!(!calibrated
        .iter()
        .any(|c| c.as_str().is_some_and(|c| c.starts_with("C3"))));
    assert_eq!(row("sub-02_ses-1")["status"], "done");
    assert!(out.join("sub-02/ses-1/report.html").is_file());
    for failed in ["sub-03", "sub-04", "sub-05"] {
        assert_eq!(row(failed)["status"], "failed");
    }
}
