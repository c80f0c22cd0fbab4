//! Tasks whose epoch window differs from the shipped encoder's (3 s), through the real binary:
//! `calibrate` gives them a new head and says why, the model records their evoked length, and
//! `predict` scores another run with it.

use std::path::Path;

use crate::common::{self, run_eegadapt, success};

/// Left/right fist imagery of S001 with the window `tmin..tmax`, as a clinic's TOML task;
/// `head`: the encoder's head its labels would train.
fn lr_task(dir: &Path, name: &str, tmin: f64, tmax: f64, head: Option<&str>) -> std::path::PathBuf {
    let toml = dir.join(format!("{name}.toml"));
    let head = head.map_or(String::new(), |h| format!("head = \"{h}\"\n"));
    std::fs::write(
        &toml,
        format!(
            "name = \"{name}\"\nclasses = [\"left\", \"right\"]\ntmin = {tmin:?}\ntmax = {tmax:?}\n\
             runs = [4, 8, 12]\n{head}\
             [[events]]\ntext = \"T1\"\nclass = \"left\"\n\
             [[events]]\ntext = \"T2\"\nclass = \"right\"\n"
        ),
    )
    .expect("write task");
    toml
}

/// Cues T1/T2 of `file` whose window `tmin..tmax` lies within the recording.
fn cues_within(file: &Path, tmin: f64, tmax: f64) -> usize {
    let edf = eegadapt::edf::open(file).expect("open");
    let end = edf.duration_s();
    edf.annotations()
        .iter()
        .filter(|a| matches!(a.text.trim(), "T1" | "T2"))
        .filter(|a| a.onset_s + tmin >= 0.0 && a.onset_s + tmax <= end)
        .count()
}

/// Runs `calibrate` of S001 with the shipped encoder on `calibration`; returns its stdout.
fn calibrate_s001(task: &Path, model: &Path, calibration: &[&Path]) -> String {
    let encoder = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/encoder");
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "calibrate".as_ref(),
        "--task".as_ref(),
        task.as_os_str(),
        "--subject".as_ref(),
        "S001".as_ref(),
        "--encoder".as_ref(),
        encoder.as_os_str(),
        "--out".as_ref(),
        model.as_os_str(),
        "--calibration".as_ref(),
    ];
    args.extend(calibration.iter().map(|c| c.as_os_str()));
    success(&run_eegadapt(&args))
}

/// The subject model's `subject.json`.
fn manifest_of(model: &Path) -> serde_json::Value {
    serde_json::from_str(
        &std::fs::read_to_string(model.join("subject.json")).expect("subject.json"),
    )
    .expect("json")
}

/// Calibrates S001 on run 4 with the window `tmin..tmax` (the shipped encoder's is 0-3 s) and
/// predicts run 8; checks the head is new because of the window, and the predictions. `head`:
/// the encoder's head the task names (its population head cannot read the window).
fn calibrate_and_predict(tmin: f64, tmax: f64, head: Option<&str>, window: &str, evoked: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let name = format!("lr-{window}s");
    let task = lr_task(dir.path(), &name, tmin, tmax, head);
    let model = dir.path().join("S001");
    let r04 = common::data_file("eegmmidb/S001/S001R04.edf");
    let r08 = common::data_file("eegmmidb/S001/S001R08.edf");
    let stdout = calibrate_s001(&task, &model, &[&r04]);
    let reason = format!("window {window} s differs from the encoder's 3 s");
    assert!(
        stdout.contains(&reason) && stdout.contains("a new head"),
        "{stdout}"
    );

    let manifest = manifest_of(&model);
    assert_eq!(manifest["new_head"], true);
    let recorded = manifest["new_head_reason"].as_str().unwrap_or_default();
    assert!(recorded.contains(&reason), "{recorded}");
    // With a head of its own in the encoder, the window is the only reason.
    assert_eq!(head.is_none(), recorded.contains("no head"), "{recorded}");
    // 8 evoked samples a second over the task's own window, never warped to the encoder's.
    assert_eq!(manifest["layout"]["evoked"], evoked);
    assert_eq!(manifest["task"]["tmin"].as_f64(), Some(tmin));
    assert_eq!(manifest["task"]["tmax"].as_f64(), Some(tmax));

    let run = run_eegadapt(&[
        "predict".as_ref(),
        "--json".as_ref(),
        "--model".as_ref(),
        model.as_os_str(),
        r08.as_os_str(),
    ]);
    assert_eq!(run.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_str(&success(&run)).expect("predict json");
    assert_eq!(json["new_head"], true);
    assert!(json["failed"].as_array().is_some_and(Vec::is_empty));
    let epochs = json["epochs"].as_array().expect("epochs");
    assert_eq!(epochs.len(), cues_within(&r08, tmin, tmax));
    assert!(epochs.len() >= 10, "{} epochs", epochs.len());
    for e in epochs {
        let p: Vec<f64> = e["probabilities"]
            .as_array()
            .expect("probabilities")
            .iter()
            .map(|v| v.as_f64().expect("number"))
            .collect();
        assert_eq!(p.len(), 2);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-4, "{p:?}");
        let predicted = e["predicted"].as_str().expect("predicted");
        assert!(["left", "right"].contains(&predicted), "{predicted}");
    }
    assert_eq!(json["n_epochs"].as_u64(), Some(epochs.len() as u64));
    assert!(json["accuracy"]
        .as_f64()
        .is_some_and(|a| (0.0..=1.0).contains(&a)));
}

#[test]
fn a_2_s_window_of_a_task_with_a_population_head_gets_a_new_head_and_predicts() {
    calibrate_and_predict(0.0, 2.0, Some("eegmmidb-lr"), "2", 16);
}

#[test]
fn a_4_s_window_of_a_new_task_calibrates_and_predicts() {
    calibrate_and_predict(0.0, 4.0, None, "4", 32);
}

#[test]
fn a_window_offset_from_the_cue_calibrates_and_predicts() {
    calibrate_and_predict(0.5, 4.5, None, "4", 32);
}

/// Fixed 4-s windows (eyes open vs closed, runs 1 and 2): the task `cli_new_head` once saw
/// refused now calibrates, the windows' evoked length recorded.
#[cfg_attr(not(shared_corpus), ignore = "needs the shared corpus")]
#[test]
fn fixed_4_s_windows_calibrate_and_predict() {
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = dir.path().join("eyes4.toml");
    std::fs::write(
        &toml,
        "name = \"eyes4\"\nruns = [1, 2]\n\
         [fixed]\nlength_s = 4.0\nstep_s = 4.0\nclass_by_run = { \"1\" = \"open\", \"2\" = \"closed\" }\n",
    )
    .expect("write task");
    let model = dir.path().join("model");
    let r01 = common::data_file("eegmmidb/S001/S001R01.edf");
    let r02 = common::data_file("eegmmidb/S001/S001R02.edf");
    let stdout = calibrate_s001(&toml, &model, &[&r01, &r02]);
    assert!(
        stdout.contains("window 4 s differs from the encoder's 3 s"),
        "{stdout}"
    );
    let manifest = manifest_of(&model);
    assert_eq!(manifest["layout"]["evoked"], 32);
    let run = run_eegadapt(&[
        "predict".as_ref(),
        "--json".as_ref(),
        "--model".as_ref(),
        model.as_os_str(),
        r01.as_os_str(),
    ]);
    let json: serde_json::Value = serde_json::from_str(&success(&run)).expect("predict json");
    let epochs = json["epochs"].as_array().expect("epochs");
    // A minute of eyes open in 4-s steps.
    assert!((14..=15).contains(&epochs.len()), "{} epochs", epochs.len());
    assert!(epochs
        .iter()
        .all(|e| e["predicted"] == "open" || e["predicted"] == "closed"));
}
