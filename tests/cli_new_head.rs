//! A task the shipped encoder has no head for, through the real binary: `calibrate` trains a new
//! head on the subject's data, and `predict` and `report` work on the result and say the head is
//! new. Built-in (imagined fists vs feet) and a clinic's own TOML task (eyes open vs closed).

use std::path::{Path, PathBuf};

use crate::common::{self, run_eegadapt, success};

/// Calibrates S001 on `task` from `calibration`, predicts `test`, reports on `test`, and checks
/// each step says the head is new and predicts only the task's classes.
fn new_head_end_to_end(task: &str, classes: &[String], calibration: &[PathBuf], test: &[PathBuf]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = dir.path().join("S001");
    let encoder = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/encoder");
    let mut args: Vec<&std::ffi::OsStr> = ["calibrate", "--task", task, "--subject", "S001"]
        .into_iter()
        .map(std::ffi::OsStr::new)
        .collect();
    args.extend([
        "--encoder".as_ref(),
        encoder.as_os_str(),
        "--out".as_ref(),
        model.as_os_str(),
        "--calibration".as_ref(),
    ]);
    args.extend(calibration.iter().map(|p| p.as_os_str()));
    let stdout = success(&run_eegadapt(&args));
    assert!(stdout.contains("a new head"), "{stdout}");
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(model.join("subject.json")).expect("subject.json"),
    )
    .expect("json");
    assert_eq!(manifest["new_head"], true);
    assert!(
        manifest["inner_cv"]
            .as_array()
            .is_some_and(|c| c.len() == 3),
        "three candidates: {}",
        manifest["inner_cv"]
    );

    let mut args: Vec<&std::ffi::OsStr> = vec!["predict".as_ref(), "--json".as_ref()];
    args.extend(["--model".as_ref(), model.as_os_str()]);
    args.extend(test.iter().map(|p| p.as_os_str()));
    let json: serde_json::Value =
        serde_json::from_str(&success(&run_eegadapt(&args))).expect("predict json");
    assert_eq!(json["new_head"], true);
    let epochs = json["epochs"].as_array().expect("epochs");
    assert!(epochs.len() >= 10, "{} epochs", epochs.len());
    for e in epochs {
        let predicted = e["predicted"].as_str().expect("predicted");
        assert!(classes.iter().any(|c| c == predicted), "{predicted}");
    }
    assert!(json["accuracy"]
        .as_f64()
        .is_some_and(|a| (0.0..=1.0).contains(&a)));

    let page = dir.path().join("report.html");
    let mut args: Vec<&std::ffi::OsStr> = vec!["report".as_ref(), "--model".as_ref()];
    args.extend([model.as_os_str(), "--out".as_ref(), page.as_os_str()]);
    success(&run_eegadapt(&args));
    let html = std::fs::read_to_string(&page).expect("report");
    assert!(html.contains("New head"));
}

#[cfg_attr(not(shared_corpus), ignore = "needs the shared corpus")]
#[test]
fn a_built_in_task_without_a_head_gets_a_new_one() {
    let task = eegadapt::task::Task::resolve("eegmmidb-ff").expect("task");
    let run = |n: u32| common::data_file(&format!("eegmmidb/S001/S001R{n:02}.edf"));
    new_head_end_to_end("eegmmidb-ff", &task.classes, &[run(6)], &[run(10), run(14)]);
}

#[cfg_attr(not(shared_corpus), ignore = "needs the shared corpus")]
#[test]
fn a_clinic_toml_task_gets_a_new_head() {
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = dir.path().join("my-clinic.toml");
    std::fs::write(
        &toml,
        "name = \"my-clinic-eyes\"\nclasses = [\"open\", \"closed\"]\nruns = [1, 2]\n\
         [fixed]\nlength_s = 3.0\nstep_s = 3.0\nclass_by_run = { \"1\" = \"open\", \"2\" = \"closed\" }\n",
    )
    .expect("write task");
    let classes = vec!["open".to_string(), "closed".to_string()];
    let run = |n: u32| common::data_file(&format!("eegmmidb/S001/S001R{n:02}.edf"));
    new_head_end_to_end(
        toml.to_str().expect("utf8"),
        &classes,
        &[run(1), run(2)],
        &[run(1), run(2)],
    );
}
