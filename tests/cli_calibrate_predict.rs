//! The everyday job through the real binary, with the encoder shipped in `data/`: calibrate
//! subject S001 on run 4, predict runs 8 and 12, and refuse a recording the model cannot read.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn project(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn eegadapt(args: &[&str], paths: &[&Path]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_eegadapt"));
    cmd.args(args).args(paths);
    cmd.output().expect("run eegadapt")
}

fn calibrate(out: &Path) {
    let run = Command::new(env!("CARGO_BIN_EXE_eegadapt"))
        .args(["calibrate", "--encoder"])
        .arg(project("data/encoder"))
        .args([
            "--task",
            "eegmmidb-lr",
            "--subject",
            "S001",
            "--calibration",
        ])
        .arg(project("data/eegmmidb/S001/S001R04.edf"))
        .arg("--out")
        .arg(out)
        .args(["--jobs", "2"])
        .output()
        .expect("run");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

#[test]
fn calibrate_then_predict_scores_the_test_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = dir.path().join("S001");
    calibrate(&model);
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(model.join("subject.json")).expect("subject.json"),
    )
    .expect("json");
    assert_eq!(manifest["task"]["name"], "eegmmidb-lr");
    assert_eq!(
        manifest["calibration"]["per_class"],
        serde_json::json!([8, 7])
    );
    assert!(manifest["inner_cv"]
        .as_array()
        .is_some_and(|a| a.len() >= 2));
    assert_eq!(
        manifest["encoder"]["weights_sha256"].as_str().map(str::len),
        Some(64)
    );
    for plot in [
        "learning_curve",
        "confusion_inner_cv",
        "population_vs_personalized",
        "spectrum",
        "embedding_pca",
    ] {
        for ext in ["svg", "png"] {
            let path = model.join("plots").join(format!("{plot}.{ext}"));
            assert!(path.is_file(), "missing {}", path.display());
        }
    }

    let r08 = project("data/eegmmidb/S001/S001R08.edf");
    let r12 = project("data/eegmmidb/S001/S001R12.edf");
    let run = eegadapt(&["predict", "--json", "--model"], &[&model, &r08, &r12]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).expect("json");
    let epochs = report["epochs"].as_array().expect("epochs");
    assert_eq!(epochs.len(), 30, "runs 8 and 12 hold 15 trials each");
    assert_eq!(report["n_epochs"], 30);
    let correct = epochs
        .iter()
        .filter(|e| e["predicted"] == e["label"])
        .count();
    let accuracy = report["accuracy"].as_f64().expect("accuracy");
    assert!((accuracy - correct as f64 / 30.0).abs() < 1e-12);
    assert!(report["balanced_accuracy"].as_f64().is_some());
    for e in epochs {
        let p: Vec<f64> = e["probabilities"]
            .as_array()
            .expect("probabilities")
            .iter()
            .filter_map(serde_json::Value::as_f64)
            .collect();
        assert_eq!(p.len(), 2);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-5);
        assert!(e["file"] == "S001R08.edf" || e["file"] == "S001R12.edf");
    }

    // A recording without most of the calibrated channels is refused, saying which.
    let mut recording = eegadapt::edf::read_recording(&r08).expect("read");
    recording.channels.truncate(10);
    recording.data.truncate(10);
    let partial = dir.path().join("S001R08.edf");
    eegadapt::edf::write_edf(&partial, &recording, &Default::default()).expect("write");
    let run = eegadapt(&["predict", "--model"], &[&model, &partial]);
    assert_eq!(run.status.code(), Some(2), "an error exits with 2");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("lacks channel(s)"), "{stderr}");
    assert!(stderr.contains("S001R08.edf"), "{stderr}");

    // Among good recordings, the bad one is reported and the others are still scored.
    let run = eegadapt(&["predict", "--json", "--model"], &[&model, &partial, &r12]);
    assert_eq!(run.status.code(), Some(1), "some files failed");
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).expect("json");
    assert_eq!(report["n_epochs"], 15);
    assert!(String::from_utf8_lossy(&run.stderr).contains("lacks channel(s)"));
}

#[test]
fn a_model_refuses_an_encoder_it_was_not_calibrated_with() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = dir.path().join("S001");
    calibrate(&model);
    // Same manifest, other weights: the subject model must not be applied through it.
    let other = dir.path().join("encoder");
    std::fs::create_dir_all(&other).expect("mkdir");
    let weights = std::fs::read(project("data/encoder/model.safetensors")).expect("weights");
    std::fs::write(other.join("model.safetensors"), &weights).expect("copy");
    let mut manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(project("data/encoder/encoder.json")).expect("manifest"),
    )
    .expect("json");
    manifest["weights_sha256"] = serde_json::json!("0".repeat(64));
    std::fs::write(other.join("encoder.json"), manifest.to_string()).expect("write");
    let r08 = project("data/eegmmidb/S001/S001R08.edf");
    let run = eegadapt(
        &["predict", "--model"],
        &[&model, Path::new("--encoder"), &other, &r08],
    );
    assert_eq!(run.status.code(), Some(2), "an error exits with 2");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("refused"), "{stderr}");
}
