//! `eegadapt report` through the real binary: the page states the held-out scores that `predict`
//! measures, withholds identity when asked, and refuses inputs that would make it dishonest
//! (a calibration recording passed as held-out, weights changed after calibration).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

fn project(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn eegadapt(args: &[&dyn AsRef<OsStr>]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eegadapt"))
        .args(args.iter().map(|a| a.as_ref()))
        .output()
        .expect("run eegadapt")
}

fn stderr(run: &Output) -> String {
    String::from_utf8_lossy(&run.stderr).into_owned()
}

/// One calibrated model of S001 (run 4, shipped encoder), shared by the tests; a test that
/// changes files works on a copy.
fn model() -> &'static Path {
    static MODEL: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = MODEL.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let model = dir.path().join("S001");
        let run = Command::new(env!("CARGO_BIN_EXE_eegadapt"))
            .args(["calibrate", "--task", "eegmmidb-lr", "--subject", "S001"])
            .arg("--encoder")
            .arg(project("data/encoder"))
            .arg("--calibration")
            .arg(project("data/eegmmidb/S001/S001R04.edf"))
            .arg("--out")
            .arg(&model)
            .args(["--jobs", "2"])
            .output()
            .expect("run calibrate");
        assert!(run.status.success(), "{}", stderr(&run));
        (dir, model)
    });
    path
}

fn copy_model(to: &Path) -> PathBuf {
    let copy = to.join("S001");
    std::fs::create_dir_all(copy.join("plots")).expect("mkdir");
    for entry in walk(model()) {
        let relative = entry.strip_prefix(model()).expect("inside");
        std::fs::copy(&entry, copy.join(relative)).expect("copy");
    }
    copy
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn report_states_the_held_out_scores_that_predict_measures() {
    let dir = tempfile::tempdir().expect("tempdir");
    let page = dir.path().join("report.html");
    let r08 = project("data/eegmmidb/S001/S001R08.edf");
    let r12 = project("data/eegmmidb/S001/S001R12.edf");
    let run = eegadapt(&[
        &"report",
        &"--model",
        &model(),
        &"--out",
        &page,
        &"--test",
        &r08,
        &r12,
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let html = std::fs::read_to_string(&page).expect("report written");

    let predicted = eegadapt(&[&"predict", &"--json", &"--model", &model(), &r08, &r12]);
    assert!(predicted.status.success(), "{}", stderr(&predicted));
    let json: serde_json::Value = serde_json::from_slice(&predicted.stdout).expect("json");
    let accuracy = json["accuracy"].as_f64().expect("accuracy");
    let kappa = json["kappa"].as_f64().expect("kappa");
    let n = json["n_epochs"].as_u64().expect("n_epochs");
    assert!(
        html.contains(&format!("On {n} labelled epochs")),
        "epoch count missing"
    );
    assert!(
        html.contains(&format!("{:.1}%", 100.0 * accuracy)),
        "accuracy missing"
    );
    assert!(html.contains(&format!("{kappa:.3}")), "kappa missing");
    assert!(html.contains("95% confidence interval"));

    // Who and what: subject, every recording by name and hash, the encoder's hash, the data credit.
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(model().join("subject.json")).expect("subject.json"),
    )
    .expect("manifest");
    assert!(html.contains("subject S001"));
    for name in ["S001R04.edf", "S001R08.edf", "S001R12.edf"] {
        assert!(html.contains(name), "{name} missing");
    }
    let encoder_sha = manifest["encoder"]["weights_sha256"].as_str().expect("sha");
    assert!(html.contains(encoder_sha));
    assert!(html.contains("Schalk"));
    // Self-contained: the six plots inline, nothing to fetch, nothing to run.
    assert_eq!(html.matches("<svg").count(), 6);
    assert!(!html.contains("<script") && !html.contains("src=\"http"));
}

#[test]
fn deidentified_report_names_no_subject_file_or_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let page = dir.path().join("page.html");
    let r08 = project("data/eegmmidb/S001/S001R08.edf");
    let run = eegadapt(&[
        &"report",
        &"--deidentify",
        &"--model",
        &model(),
        &"--out",
        &page,
        &"--test",
        &r08,
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let html = std::fs::read_to_string(&page).expect("report written");
    assert!(
        !html.contains("S001"),
        "subject or file name left in the page"
    );
    assert!(!html.contains(&project("data").display().to_string()));
    // Hashes stay, so whoever holds the files can still match them.
    let r08_sha = eegadapt::store::sha256_file(&r08).expect("sha");
    assert!(html.contains(&r08_sha));
}

#[test]
fn report_without_test_recordings_goes_beside_the_model_and_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = copy_model(dir.path());
    let run = eegadapt(&[&"report", &"--model", &copy]);
    assert!(run.status.success(), "{}", stderr(&run));
    let html = std::fs::read_to_string(copy.join("report.html")).expect("report beside the model");
    assert!(html.contains("No held-out recordings were scored"));
    // Missing plots are said, not silently dropped.
    std::fs::remove_file(copy.join("plots/spectrum.svg")).expect("remove");
    let run = eegadapt(&[&"report", &"--model", &copy]);
    assert!(run.status.success(), "{}", stderr(&run));
    let html = std::fs::read_to_string(copy.join("report.html")).expect("report");
    assert_eq!(html.matches("<svg").count(), 5);
    assert!(html.contains("Plot not available"));
}

/// The scalp maps (mu, beta, model pattern) place every calibrated channel that has a standard
/// position, once per map, and the report shows them.
#[test]
fn scalp_maps_cover_every_calibrated_channel_and_reach_the_report() {
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(model().join("subject.json")).expect("subject.json"),
    )
    .expect("manifest");
    let channels: Vec<&str> = manifest["channels"]
        .as_array()
        .expect("channels")
        .iter()
        .filter_map(|c| c.as_str())
        .collect();
    let placed: Vec<&str> = channels
        .iter()
        .filter_map(|c| eegadapt::edf::labels::electrode_name(c))
        .filter(|name| eegadapt::montage::position(name).is_some())
        .collect();
    assert_eq!(
        placed.len(),
        channels.len(),
        "every EEGMMIDB channel has a position"
    );
    let svg = std::fs::read_to_string(model().join("plots/scalp_maps.svg")).expect("scalp maps");
    // One electrode dot per placed channel in each of the three maps.
    assert_eq!(svg.matches("<circle").count(), 3 * placed.len());
    for title in ["mu 8-13 Hz", "beta 13-30 Hz", "model: right vs left"] {
        assert!(svg.contains(title), "{title} missing");
    }
    let text = svg.replace('\n', "");
    for name in ["C3", "Cz", "C4"] {
        assert!(text.contains(&format!(">{name}<")), "{name} not labelled");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let page = dir.path().join("report.html");
    let run = eegadapt(&[&"report", &"--model", &model(), &"--out", &page]);
    assert!(run.status.success(), "{}", stderr(&run));
    let html = std::fs::read_to_string(&page).expect("report");
    assert!(html.contains("mu (8-13 Hz)") && html.contains("beta 13-30 Hz"));
}

#[test]
fn a_calibration_recording_is_refused_as_held_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let page = dir.path().join("page.html");
    // The same bytes under another name are still the calibration recording.
    let renamed = dir.path().join("other_name.edf");
    std::fs::copy(project("data/eegmmidb/S001/S001R04.edf"), &renamed).expect("copy");
    let run = eegadapt(&[
        &"report",
        &"--model",
        &model(),
        &"--out",
        &page,
        &"--test",
        &renamed,
    ]);
    assert!(!run.status.success());
    let err = stderr(&run);
    assert!(
        err.contains("other_name.edf") && err.contains("not be held out"),
        "{err}"
    );
    assert!(!page.exists(), "a refused report must not be written");
}

#[test]
fn changed_weights_and_broken_manifests_are_refused_with_the_file_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = copy_model(dir.path());
    let weights = copy.join("model.safetensors");
    let mut bytes = std::fs::read(&weights).expect("weights");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&weights, &bytes).expect("write");
    let run = eegadapt(&[&"report", &"--model", &copy]);
    assert!(!run.status.success());
    let err = stderr(&run);
    assert!(
        err.contains("model.safetensors") && err.contains("changed after calibration"),
        "{err}"
    );

    std::fs::write(copy.join("subject.json"), b"{\"format_version\": 1").expect("write");
    let run = eegadapt(&[&"report", &"--model", &copy]);
    assert!(!run.status.success());
    let err = stderr(&run);
    assert!(err.contains("subject.json"), "{err}");
    assert!(!copy.join("report.html").exists());
}
