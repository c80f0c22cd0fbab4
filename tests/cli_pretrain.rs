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

/// Runs the binary with `args`; paths are passed as arguments too.
fn eegadapt(args: &[&dyn AsRef<std::ffi::OsStr>]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_eegadapt"))
        .args(args.iter().map(|a| a.as_ref()))
        .output()
        .expect("run")
}

/// `eegadapt(args)`, which must succeed; its stderr is shown when it does not.
fn succeeds(args: &[&dyn AsRef<std::ffi::OsStr>]) -> std::process::Output {
    let run = eegadapt(args);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    run
}

fn json_file(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json")
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
    let (enc, model) = (out.path().join("enc"), out.path().join("S001"));
    let pretrain = |channels: &str, to: &std::path::Path| {
        eegadapt(&[
            &"pretrain",
            &"--channels",
            &channels,
            &"--task",
            &"eegmmidb-lr",
            &"--ssl-passes",
            &"0",
            &"--max-passes",
            &"1",
            &"--jobs",
            &"2",
            &"--data",
            &data.path(),
            &"--out",
            &to,
        ])
    };
    let calibrate = |recording: &std::path::Path, to: &std::path::Path| {
        eegadapt(&[
            &"calibrate",
            &"--encoder",
            &enc,
            &"--task",
            &"eegmmidb-lr",
            &"--subject",
            &"S001",
            &"--calibration",
            &recording,
            &"--out",
            &to,
        ])
    };
    let run = pretrain("c4,C3,Cz,FC3,FC4,CP3,CP4", &enc);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // The recording's order (FC before C before CP), whatever the order and case asked for.
    let seven = serde_json::json!(["FC3", "FC4", "C3", "Cz", "C4", "CP3", "CP4"]);
    assert_eq!(
        json_file(&enc.join("encoder.json"))["channel_vocabulary"],
        seven
    );

    // A 64-channel recording calibrates on the seven; the other 57 are reported as ignored.
    let r04 = common::data_file("eegmmidb/S001/S001R04.edf");
    let run = calibrate(&r04, &model);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("channels ignored") && stderr.contains("Fp1"),
        "{stderr}"
    );
    assert_eq!(json_file(&model.join("subject.json"))["channels"], seven);
    let r08 = common::data_file("eegmmidb/S001/S001R08.edf");
    let run = succeeds(&[&"predict", &"--json", &"--model", &model, &r08]);
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).expect("json");
    assert_eq!(report["n_epochs"], 15);

    // A recording with none of the encoder's channels is refused, naming the file.
    let mut occipital = eegadapt::edf::read_recording(&r04).expect("read");
    (occipital.channels, occipital.data) = occipital
        .channels
        .into_iter()
        .zip(occipital.data)
        .filter(|(c, _)| c.label.starts_with('O'))
        .unzip();
    assert_eq!(occipital.channels.len(), 3, "O1, Oz, O2");
    let partial = out.path().join("S001R04-occipital.edf");
    eegadapt::edf::write_edf(&partial, &occipital, &Default::default()).expect("write");
    let run = calibrate(&partial, &out.path().join("occipital"));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("S001R04-occipital.edf") && stderr.contains("none of its channels"),
        "{stderr}"
    );

    // A channel no recording has is refused, naming it and the file.
    let refused = out.path().join("refused");
    let run = pretrain("C3,Xx9", &refused);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(stderr.contains("Xx9") && stderr.contains("S00"), "{stderr}");
    assert!(!refused.join("encoder.json").exists());
}
