//! `eegadapt pretrain` through the real binary, on a few real subjects with few passes.

use crate::common;

use std::process::Command;

#[cfg_attr(not(shared_corpus), ignore = "needs the shared corpus")]
#[test]
fn pretrain_writes_weights_manifest_log_and_plots_and_scores_holdout() {
    let data = tempfile::tempdir().expect("tempdir");
    // Four subjects' left/right runs, linked into one folder.
    for s in ["S001", "S002", "S003", "S004"] {
        for r in ["R04", "R08"] {
            let src = common::data_file(&format!("eegmmidb/{s}/{s}{r}.edf"));
            std::fs::copy(&src, data.path().join(format!("{s}{r}.edf"))).expect("copy");
        }
    }
    let out = tempfile::tempdir().expect("tempdir");
    let enc = out.path().join("enc");
    let run = Command::new(env!("CARGO_BIN_EXE_eegadapt"))
        .args(["pretrain", "--data"])
        .arg(data.path())
        .args(["--task", "eegmmidb-lr", "--out"])
        .arg(&enc)
        .args([
            "--subjects-holdout",
            "S004",
            "--ssl-passes",
            "1",
            "--max-passes",
            "2",
            "--jobs",
            "2",
        ])
        .output()
        .expect("run");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        stdout.contains("S004") && stdout.contains("10-20 only"),
        "{stdout}"
    );
    for file in [
        "model.safetensors",
        "encoder.json",
        "training_log.csv",
        "plots/loss_supervised.svg",
        "plots/loss_supervised.png",
        "plots/loss_ssl.png",
    ] {
        assert!(enc.join(file).is_file(), "missing {file}");
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(enc.join("encoder.json")).expect("manifest"))
            .expect("json");
    assert_eq!(
        manifest["tasks"][0]["classes"],
        serde_json::json!(["left", "right"])
    );
    assert_eq!(
        manifest["training_recordings"]
            .as_array()
            .expect("recordings")
            .len(),
        8
    );
    assert_eq!(manifest["metrics"]["holdout"][0]["subject"], "S004");
    let subjects: Vec<&str> = manifest["training_subjects"]
        .as_array()
        .expect("s")
        .iter()
        .chain(manifest["validation_subjects"].as_array().expect("v"))
        .map(|v| v.as_str().expect("str"))
        .collect();
    assert!(!subjects.contains(&"S004"), "held-out subject trained on");
    let csv = std::fs::read_to_string(enc.join("training_log.csv")).expect("csv");
    assert_eq!(csv.lines().count(), 1 + 1 + 2);
    if let Some(python) = std::env::var_os("EEGADAPT_PYTHON") {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/python/check_safetensors.py");
        let check = Command::new(python)
            .arg(script)
            .arg(&enc)
            .output()
            .expect("python");
        assert!(
            check.status.success(),
            "{}",
            String::from_utf8_lossy(&check.stderr)
        );
    }
}
