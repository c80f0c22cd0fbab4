//! `bench eegmmidb-ff`, the cross-task row, through the binary on three subjects: each subject
//! with runs 6, 10 and 14 gets an encoder that never saw it, pretrained on the others' left/right
//! runs, and is scored on runs 10 and 14 for the chosen approach and each new-head candidate.

use std::path::Path;

use crate::common::{self, run_eegadapt, success};

#[cfg_attr(not(shared_corpus), ignore = "needs the shared corpus")]
#[test]
fn each_fists_feet_subject_gets_an_encoder_without_it_and_a_scored_new_head() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    for subject in ["S001", "S002", "S042"] {
        let source = common::shared_dir().join("data/eegmmidb").join(subject);
        let target = data.join(subject);
        std::fs::create_dir_all(&target).expect("mkdir");
        for entry in std::fs::read_dir(&source).expect("list") {
            let path = entry.expect("entry").path();
            let name = path.file_name().expect("name");
            std::fs::copy(&path, target.join(name)).expect("copy");
        }
    }
    let out = dir.path().join("bench");
    let stdout = success(&run_eegadapt(&[
        "bench".as_ref(),
        "eegmmidb-ff".as_ref(),
        "--data".as_ref(),
        data.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
        "--ssl-passes".as_ref(),
        "0".as_ref(),
        "--max-passes".as_ref(),
        "2".as_ref(),
        "--json".as_ref(),
    ]));
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    let rows = report["subjects"].as_array().expect("subjects");
    let subjects: Vec<&str> = rows.iter().filter_map(|r| r["subject"].as_str()).collect();
    assert_eq!(subjects, ["S001", "S042"], "S002 has no fists/feet runs");
    for row in rows {
        assert_eq!(row["n_test"], 30, "{row}");
        let accuracy = row["accuracy"].as_object().expect("accuracy");
        assert_eq!(accuracy.len(), 4, "{row}");
        assert!(accuracy.contains_key("subject-only"), "{row}");
        for a in accuracy.values() {
            assert!(
                a.as_f64().is_some_and(|a| (0.0..=1.0).contains(&a)),
                "{row}"
            );
        }
        let subject = row["subject"].as_str().expect("subject");
        let encoder = eegadapt::pretrain::read_manifest(&out.join(subject).join("encoder"))
            .expect("encoder manifest");
        let seen: Vec<&String> = encoder
            .training_subjects
            .iter()
            .chain(&encoder.validation_subjects)
            .collect();
        assert!(!seen.iter().any(|s| *s == subject), "{subject} in {seen:?}");
        let tasks: Vec<&str> = encoder.tasks.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(tasks, ["eegmmidb-lr"]);
    }
    assert!(Path::new(&out.join("bench_cross_task.json")).exists());
}
