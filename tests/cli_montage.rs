//! Montages and rates as clinics have them, through the real binary, on files the project's own
//! EDF writer makes from S001's recordings: the 19 channels of the 10-20 system at 256 Hz,
//! labelled `EEG FP1-REF`, `EEG T3-REF` ..., with channels the encoder does not know (`A1`,
//! `ECG`, `Photic`) beside them. The shipped encoder calibrates and predicts them; a prediction
//! montage that lacks a calibrated channel is refused, naming it. And a 32-channel BioSemi-style
//! BDF at 512 Hz with its external and status channels.

use std::path::{Path, PathBuf};

use crate::common::{run_eegadapt, success};
use eegadapt::edf::{self, labels, write_edf, ChannelKind, WriteOptions};
use eegadapt::montage::{OLD_NAMES, TEN_TWENTY_19};

fn project(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// The clinic's spelling of a 10-20 name: upper case, old names for T7/T8/P7/P8.
fn clinic_label(name: &str) -> String {
    let old = OLD_NAMES
        .iter()
        .find(|(_, new)| *new == name)
        .map_or(name, |(old, _)| *old);
    format!("EEG {}-REF", old.to_uppercase())
}

/// S001's `run` rebuilt with `picks` (source channel index, new label), then `extras` (label,
/// kind; half the first pick's signal), resampled to `rate` and written to `path` (24-bit BDF+
/// when `bdf`).
fn rebuild(
    run: u32,
    picks: &[(usize, String)],
    extras: &[(&str, ChannelKind)],
    rate: f64,
    path: PathBuf,
    bdf: bool,
) -> PathBuf {
    let source = project(&format!("data/eegmmidb/S001/S001R{run:02}.edf"));
    let mut rec = edf::read_recording(&source).expect("read");
    let (first, _) = picks.first().expect("a channel");
    let mut channels = Vec::new();
    let mut data = Vec::new();
    for (i, label) in picks {
        let mut c = rec.channels[*i].clone();
        c.label = label.clone();
        channels.push(c);
        data.push(rec.data[*i].clone());
    }
    for (label, kind) in extras {
        let mut c = rec.channels[*first].clone();
        c.label = label.to_string();
        c.name = None;
        c.kind = *kind;
        channels.push(c);
        data.push(rec.data[*first].iter().map(|v| v * 0.5).collect());
    }
    rec.channels = channels;
    rec.data = data;
    rec.resample(rate).expect("resample");
    let options = WriteOptions {
        bdf,
        ..WriteOptions::default()
    };
    write_edf(&path, &rec, &options).expect("write");
    path
}

/// Index of each S001 channel whose standard name passes `keep`, with that name.
fn s001_channels(keep: impl Fn(&str) -> bool) -> Vec<(usize, &'static str)> {
    let source = project("data/eegmmidb/S001/S001R04.edf");
    let file = edf::open(&source).expect("open");
    file.channels()
        .iter()
        .enumerate()
        .filter_map(|(i, c)| Some((i, labels::electrode_name(&c.label)?)))
        .filter(|(_, name)| keep(name))
        .collect()
}

/// S001's `run` as a clinic would record it: 19 10-20 channels (less `drop`), `A1`, `ECG` and
/// `Photic`, resampled to 256 Hz, written as EDF+ to `dir`.
fn clinic_file(dir: &Path, run: u32, drop: Option<&str>) -> PathBuf {
    let picks: Vec<(usize, String)> =
        s001_channels(|n| TEN_TWENTY_19.contains(&n) && Some(n) != drop)
            .into_iter()
            .map(|(i, name)| (i, clinic_label(name)))
            .collect();
    let extras = [
        ("EEG A1-REF", ChannelKind::Eeg),
        ("ECG", ChannelKind::Ecg),
        ("Photic", ChannelKind::Other),
    ];
    let path = dir.join(format!("clinic_R{run:02}.edf"));
    rebuild(run, &picks, &extras, 256.0, path, false)
}

/// `inspect --json`'s signals of `path`, each checked: sampled at `rate`, with a position exactly
/// when `placed(label)`.
fn inspect_signals(path: &Path, rate: f64, placed: impl Fn(&str) -> bool) -> serde_json::Value {
    let json: serde_json::Value = serde_json::from_str(&success(&run_eegadapt(&[
        "inspect".as_ref(),
        "--json".as_ref(),
        path.as_os_str(),
    ])))
    .expect("inspect json");
    for s in json["signals"].as_array().expect("signals") {
        let label = s["label"].as_str().expect("label");
        assert_eq!(
            !s["position_m"].is_null(),
            placed(label),
            "{label}: {}",
            s["position_m"]
        );
        assert_eq!(s["sampling_rate_hz"].as_f64(), Some(rate), "{label}");
    }
    json
}

/// Calibrates `subject` on `calibration` with the shipped encoder into `model`; returns the
/// warning line naming the ignored channels and the calibrated channels.
fn calibrate(subject: &str, calibration: &Path, model: &Path) -> (String, Vec<String>) {
    let encoder = project("data/encoder");
    let run = run_eegadapt(&[
        "calibrate".as_ref(),
        "--encoder".as_ref(),
        encoder.as_os_str(),
        "--task".as_ref(),
        "eegmmidb-lr".as_ref(),
        "--subject".as_ref(),
        subject.as_ref(),
        "--calibration".as_ref(),
        calibration.as_os_str(),
        "--out".as_ref(),
        model.as_os_str(),
    ]);
    success(&run);
    let stderr = String::from_utf8_lossy(&run.stderr);
    let warning = stderr
        .lines()
        .find(|l| l.contains("channels ignored"))
        .unwrap_or_else(|| panic!("no warning: {stderr}"))
        .to_string();
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(model.join("subject.json")).expect("subject.json"),
    )
    .expect("json");
    let channels = manifest["channels"]
        .as_array()
        .expect("channels")
        .iter()
        .filter_map(|c| c.as_str().map(str::to_string))
        .collect();
    (warning, channels)
}

/// Predicts `recording` with `model`; checks there are 15 epochs, each left or right.
fn predict_left_right(model: &Path, recording: &Path) {
    let predicted: serde_json::Value = serde_json::from_str(&success(&run_eegadapt(&[
        "predict".as_ref(),
        "--json".as_ref(),
        "--model".as_ref(),
        model.as_os_str(),
        recording.as_os_str(),
    ])))
    .expect("predict json");
    let epochs = predicted["epochs"].as_array().expect("epochs");
    assert_eq!(epochs.len(), 15);
    for e in epochs {
        let class = e["predicted"].as_str().expect("predicted");
        assert!(class == "left" || class == "right", "{class}");
    }
}

#[test]
fn a_clinic_montage_at_256_hz_calibrates_and_predicts_with_the_shipped_encoder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r04 = clinic_file(dir.path(), 4, None);
    let r08 = clinic_file(dir.path(), 8, None);

    // inspect names every channel's standard position, or null where it has none.
    let json = inspect_signals(&r04, 256.0, |label| label.starts_with("EEG "));
    assert_eq!(json["signals"].as_array().map(Vec::len), Some(22));

    let model = dir.path().join("model");
    let (warning, channels) = calibrate("P1", &r04, &model);
    for name in ["A1", "ECG", "Photic"] {
        assert!(warning.contains(name), "{warning}");
    }
    assert!(!warning.contains("C3"), "{warning}");
    for name in ["ECG", "Photic"] {
        assert!(
            !channels.iter().any(|c| c.contains(name)),
            "{name} calibrated: {channels:?}"
        );
    }
    predict_left_right(&model, &r08);

    // A prediction montage without C3 is refused, naming it.
    let no_c3 = tempfile::tempdir().expect("tempdir");
    let r12 = clinic_file(no_c3.path(), 12, Some("C3"));
    let run = run_eegadapt(&[
        "predict".as_ref(),
        "--model".as_ref(),
        model.as_os_str(),
        r12.as_os_str(),
    ]);
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("C3"), "{stderr}");
}

/// The 32 electrodes of BioSemi's 32-channel 10-20 cap, as its files label them.
const BIOSEMI_32: [&str; 32] = [
    "Fp1", "AF3", "F7", "F3", "FC1", "FC5", "T7", "C3", "CP1", "CP5", "P7", "P3", "Pz", "PO3",
    "O1", "Oz", "O2", "PO4", "P4", "P8", "CP6", "CP2", "C4", "T8", "FC6", "FC2", "F4", "F8", "AF4",
    "Fp2", "Fz", "Cz",
];

/// S001's `run` as a BioSemi 32-channel recording: the 32 cap electrodes, an external electrode
/// `EXG1` and the `Status` trigger channel, at 512 Hz, written as 24-bit BDF+ to `dir`.
fn biosemi_file(dir: &Path, run: u32) -> PathBuf {
    let found = s001_channels(|n| BIOSEMI_32.contains(&n));
    let picks: Vec<(usize, String)> = BIOSEMI_32
        .iter()
        .map(|name| {
            let (i, _) = found
                .iter()
                .find(|(_, n)| n == name)
                .unwrap_or_else(|| panic!("{name} not in S001"));
            (*i, name.to_string())
        })
        .collect();
    let extras = [("EXG1", ChannelKind::Other), ("Status", ChannelKind::Stim)];
    let path = dir.join(format!("biosemi_R{run:02}.bdf"));
    rebuild(run, &picks, &extras, 512.0, path, true)
}

#[test]
fn a_32_channel_bdf_at_512_hz_calibrates_and_predicts_with_the_shipped_encoder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r04 = biosemi_file(dir.path(), 4);
    let r08 = biosemi_file(dir.path(), 8);

    let json = inspect_signals(&r04, 512.0, |label| BIOSEMI_32.contains(&label));
    assert_eq!(json["format"], "BDF+C", "{}", json["format"]);
    assert_eq!(json["signals"].as_array().map(Vec::len), Some(34));

    let model = dir.path().join("model");
    let (warning, calibrated) = calibrate("P2", &r04, &model);
    assert_eq!(calibrated.len(), 32, "{calibrated:?}");
    assert!(warning.ends_with("EXG1, Status"), "{warning}");
    predict_left_right(&model, &r08);
}
