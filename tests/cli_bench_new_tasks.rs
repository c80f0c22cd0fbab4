//! The benchmark of tasks the encoder never saw, through the binary on three subjects
//! (`bench eegmmidb-ff`: its fists vs feet row): each subject with runs 6, 10 and 14 gets an
//! encoder that never saw it, pretrained on the others' left/right runs, and is scored on runs 10
//! and 14 for the new head, each candidate, the ablation, k = 2 and 4, and the classical
//! subject-only pipelines.

use std::path::Path;

use crate::common::{self, run_eegadapt, success};

#[cfg_attr(not(shared_corpus), ignore = "needs the shared corpus")]
#[test]
fn each_fists_feet_subject_gets_an_encoder_without_it_and_every_column_scored() {
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
    let tasks = report["tasks"].as_array().expect("tasks");
    assert_eq!(tasks.len(), 1, "{report}");
    assert_eq!(tasks[0]["task"], "eegmmidb-ff");
    let rows = tasks[0]["subjects"].as_array().expect("subjects");
    let subjects: Vec<&str> = rows.iter().filter_map(|r| r["subject"].as_str()).collect();
    assert_eq!(subjects, ["S001", "S042"], "S002 has no fists/feet runs");
    for row in rows {
        assert_eq!(row["n_test"], 30, "{row}");
        let columns = row["columns"].as_object().expect("columns");
        for name in [
            "new head",
            "new head + embedding",
            "subject views only",
            "new head k=2",
            "new head k=4",
            "classical subject-only",
            "MDM",
        ] {
            let c = &columns[name];
            assert!(
                c["balanced_accuracy"]
                    .as_f64()
                    .is_some_and(|a| (0.0..=1.0).contains(&a)),
                "{name}: {row}"
            );
            assert!(
                c["log_loss"]
                    .as_f64()
                    .is_some_and(|l| l.is_finite() && l > 0.0),
                "{name}: {row}"
            );
        }
        let candidates = columns
            .keys()
            .filter(|k| k.starts_with("candidate: "))
            .count();
        assert_eq!(candidates, 3, "{row}");
        assert!(
            [0.01, 0.1, 1.0, 10.0].contains(&row["classical_c"].as_f64().expect("C")),
            "{row}"
        );
        let subject = row["subject"].as_str().expect("subject");
        let encoder =
            eegadapt::pretrain::read_manifest(&out.join(format!("fold-{subject}")).join("encoder"))
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
    let summary = &tasks[0]["summary"]["new head"];
    assert_eq!(summary["n"], 2, "{summary}");
    assert!(Path::new(&out.join("bench_new_tasks.json")).exists());
    assert!(Path::new(&out.join("eegmmidb-ff_new_head_vs_classical.svg")).exists());
}
