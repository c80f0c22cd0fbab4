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

/// Runs the binary with `args`, then `paths`.
fn eegadapt(args: &[&str], paths: &[&std::path::Path]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_eegadapt"))
        .args(args)
        .args(paths)
        .output()
        .expect("run")
}

#[cfg_attr(not(shared_corpus), ignore = "needs the shared corpus")]
#[test]
fn pretrain_on_chosen_channels_and_calibrate_and_predict_read_only_them() {
    let data = tempfile::tempdir().expect("tempdir");
    for s in ["S002", "S003", "S004"] {
        let src = common::data_file(&format!("eegmmidb/{s}/{s}R04.edf"));
        std::fs::copy(&src, data.path().join(format!("{s}R04.edf"))).expect("copy");
    }
    let out = tempfile::tempdir().expect("tempdir");
    let enc = out.path().join("enc");
    let strip = "c4,C3,Cz,FC3,FC4,CP3,CP4";
    let common_args = [
        "--task",
        "eegmmidb-lr",
        "--ssl-passes",
        "0",
        "--max-passes",
        "1",
    ];
    let mut args = vec!["pretrain", "--channels", strip, "--jobs", "2"];
    args.extend(common_args);
    let run = Command::new(env!("CARGO_BIN_EXE_eegadapt"))
        .args(&args)
        .arg("--data")
        .arg(data.path())
        .arg("--out")
        .arg(&enc)
        .output()
        .expect("run");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(enc.join("encoder.json")).expect("manifest"))
            .expect("json");
    // The recording's order (FC before C before CP), whatever the order and case asked for.
    let seven = serde_json::json!(["FC3", "FC4", "C3", "Cz", "C4", "CP3", "CP4"]);
    assert_eq!(manifest["channel_vocabulary"], seven);

    // A 64-channel recording calibrates on the seven; the other 57 are reported as ignored.
    let model = out.path().join("S001");
    let run = Command::new(env!("CARGO_BIN_EXE_eegadapt"))
        .args(["calibrate", "--encoder"])
        .arg(&enc)
        .args([
            "--task",
            "eegmmidb-lr",
            "--subject",
            "S001",
            "--calibration",
        ])
        .arg(common::data_file("eegmmidb/S001/S001R04.edf"))
        .arg("--out")
        .arg(&model)
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(
        stderr.contains("channels ignored") && stderr.contains("Fp1"),
        "{stderr}"
    );
    let subject: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("subject.json")).expect("json"))
            .expect("json");
    assert_eq!(subject["channels"], seven);
    let r08 = common::data_file("eegmmidb/S001/S001R08.edf");
    let run = eegadapt(&["predict", "--json", "--model"], &[&model, &r08]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).expect("json");
    assert_eq!(report["n_epochs"], 15);

    // A channel no recording has is refused, naming it and the file.
    let run = Command::new(env!("CARGO_BIN_EXE_eegadapt"))
        .args(["pretrain", "--channels", "C3,Xx9", "--jobs", "2"])
        .args(common_args)
        .arg("--data")
        .arg(data.path())
        .arg("--out")
        .arg(out.path().join("refused"))
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(stderr.contains("Xx9") && stderr.contains("S00"), "{stderr}");
    assert!(!out.path().join("refused/encoder.json").exists());
}
