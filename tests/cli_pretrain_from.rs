//! `pretrain --from`: a task added to the shipped encoder without retraining it. The child keeps
//! the parent's encoder and head weights bit for bit, lists both tasks and its lineage, and
//! calibrates either task; a subject model calibrated on the parent is refused by the child.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::common::{self, run_eegadapt, success};

fn shipped_encoder() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/encoder")
}

fn run_file(subject: &str, run: u32) -> PathBuf {
    common::data_file(&format!("eegmmidb/{subject}/{subject}R{run:02}.edf"))
}

/// `pretrain --from` the shipped encoder, adding `eegmmidb-ff` from S042's fists/feet runs.
fn add_fists_feet(child: &Path, extra: &[&str]) -> String {
    let runs: Vec<PathBuf> = [6, 10, 14].iter().map(|&r| run_file("S042", r)).collect();
    let parent = shipped_encoder();
    let mut args: Vec<&OsStr> = vec![
        "pretrain".as_ref(),
        "--from".as_ref(),
        parent.as_os_str(),
        "--task".as_ref(),
        "eegmmidb-ff".as_ref(),
        "--out".as_ref(),
        child.as_os_str(),
        "--max-passes".as_ref(),
        "20".as_ref(),
        "--jobs".as_ref(),
        "2".as_ref(),
        "--data".as_ref(),
    ];
    args.extend(runs.iter().map(|p| p.as_os_str()));
    args.extend(extra.iter().map(OsStr::new));
    let run = run_eegadapt(&args);
    success(&run);
    String::from_utf8_lossy(&run.stderr).into_owned()
}

fn calibrate(encoder: &Path, task: &str, calibration: &Path, out: &Path) -> serde_json::Value {
    let args: Vec<&OsStr> = vec![
        "calibrate".as_ref(),
        "--task".as_ref(),
        task.as_ref(),
        "--subject".as_ref(),
        "S001".as_ref(),
        "--encoder".as_ref(),
        encoder.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
        "--calibration".as_ref(),
        calibration.as_os_str(),
    ];
    success(&run_eegadapt(&args));
    let text = std::fs::read_to_string(out.join("subject.json")).expect("subject.json");
    serde_json::from_str(&text).expect("subject json")
}

fn predict(model: &Path, encoder: Option<&Path>, test: &[PathBuf]) -> std::process::Output {
    let mut args: Vec<&OsStr> = vec!["predict".as_ref(), "--json".as_ref()];
    args.extend(["--model".as_ref(), model.as_os_str()]);
    if let Some(e) = encoder {
        args.extend(["--encoder".as_ref(), e.as_os_str()]);
    }
    args.extend(test.iter().map(|p| p.as_os_str()));
    run_eegadapt(&args)
}

/// Weights whose name starts with `prefix`, by name.
fn weights(dir: &Path, prefix: &str) -> Vec<(String, Vec<f32>)> {
    let (model, _) = eegadapt::pretrain::load(dir, None).expect("load encoder");
    model
        .named_vars()
        .expect("vars")
        .into_iter()
        .filter(|(n, _)| n.starts_with(prefix))
        .map(|(n, v)| {
            let values = v
                .as_tensor()
                .flatten_all()
                .and_then(|t| t.to_vec1::<f32>())
                .expect("values");
            (n, values)
        })
        .collect()
}

#[cfg_attr(not(shared_corpus), ignore = "needs the shared corpus")]
#[test]
fn a_task_added_to_the_shipped_encoder_keeps_its_weights_and_calibrates_both_tasks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let child = dir.path().join("child");
    let log = add_fists_feet(&child, &[]);
    assert!(log.contains("added eegmmidb-ff"), "{log}");

    let parent_manifest = eegadapt::pretrain::read_manifest(&shipped_encoder()).expect("parent");
    let manifest = eegadapt::pretrain::read_manifest(&child).expect("child manifest");
    let tasks: Vec<&str> = manifest.tasks.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(tasks, ["eegmmidb-lr", "eegmmidb-ff"]);
    let lineage = manifest.lineage.as_ref().expect("lineage");
    assert_eq!(
        lineage.parent_weights_sha256,
        parent_manifest.weights_sha256
    );
    assert_eq!(lineage.added_tasks, ["eegmmidb-ff"]);
    assert_eq!(lineage.continued_ssl_passes, 0);
    assert_ne!(manifest.weights_sha256, parent_manifest.weights_sha256);
    for prefix in ["encoder.", "heads.eegmmidb-lr.", "reconstruction."] {
        let (before, after) = (weights(&shipped_encoder(), prefix), weights(&child, prefix));
        assert!(!before.is_empty(), "{prefix}");
        assert_eq!(before, after, "{prefix} weights changed");
    }

    // The new task: a population head now exists, so calibration pools with its reference.
    let ff = dir.path().join("S001-ff");
    let subject = calibrate(&child, "eegmmidb-ff", &run_file("S001", 6), &ff);
    assert_eq!(subject["new_head"], false);
    let test = [run_file("S001", 10), run_file("S001", 14)];
    let json: serde_json::Value =
        serde_json::from_str(&success(&predict(&ff, None, &test))).expect("predict json");
    let epochs = json["epochs"].as_array().expect("epochs");
    assert!(epochs.len() >= 20, "{} epochs", epochs.len());
    for e in epochs {
        let class = e["predicted"].as_str().expect("predicted");
        assert!(["fists", "feet"].contains(&class), "{class}");
    }

    // The parent's task still calibrates on the child.
    let lr = dir.path().join("S001-lr");
    calibrate(&child, "eegmmidb-lr", &run_file("S001", 4), &lr);
    success(&predict(&lr, None, &[run_file("S001", 8)]));

    // A model calibrated on the parent is refused by the child: the weights differ.
    let on_parent = dir.path().join("S001-parent");
    calibrate(
        &shipped_encoder(),
        "eegmmidb-lr",
        &run_file("S001", 4),
        &on_parent,
    );
    let refused = predict(&on_parent, Some(&child), &[run_file("S001", 8)]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("calibrated on the encoder with weights"),
        "{stderr}"
    );
}

#[cfg_attr(not(shared_corpus), ignore = "needs the shared corpus")]
#[test]
fn continued_self_supervision_moves_the_encoder_and_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let child = dir.path().join("child");
    let log = add_fists_feet(&child, &["--ssl-passes", "1"]);
    assert!(
        log.contains("trained 1 more self-supervised passes"),
        "{log}"
    );
    let manifest = eegadapt::pretrain::read_manifest(&child).expect("child manifest");
    assert_eq!(manifest.lineage.expect("lineage").continued_ssl_passes, 1);
    assert_ne!(
        weights(&shipped_encoder(), "encoder."),
        weights(&child, "encoder.")
    );
}

#[test]
fn adding_a_task_the_encoder_has_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let parent = shipped_encoder();
    let run4 = run_file("S001", 4);
    let child = dir.path().join("child");
    let args: Vec<&OsStr> = vec![
        "pretrain".as_ref(),
        "--from".as_ref(),
        parent.as_os_str(),
        "--task".as_ref(),
        "eegmmidb-lr".as_ref(),
        "--out".as_ref(),
        child.as_os_str(),
        "--data".as_ref(),
        run4.as_os_str(),
    ];
    let run = run_eegadapt(&args);
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("already has a head for eegmmidb-lr"),
        "{stderr}"
    );
    assert!(!child.join("encoder.json").exists());
}
