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

/// S001's `run` as a clinic would record it: 19 10-20 channels (less `drop`), `A1`, `ECG` and
/// `Photic`, resampled to 256 Hz, written as EDF+ to `dir`.
fn clinic_file(dir: &Path, run: u32, drop: Option<&str>) -> PathBuf {
    let source = project(&format!("data/eegmmidb/S001/S001R{run:02}.edf"));
    let mut rec = edf::read_recording(&source).expect("read");
    let mut keep: Vec<usize> = Vec::new();
    for (i, c) in rec.channels.iter().enumerate() {
        let Some(name) = labels::electrode_name(&c.label) else {
            continue;
        };
        if TEN_TWENTY_19.contains(&name) && Some(name) != drop {
            keep.push(i);
        }
    }
    let mut channels = Vec::new();
    let mut data = Vec::new();
    for &i in &keep {
        let mut c = rec.channels[i].clone();
        let name = labels::electrode_name(&c.label).expect("named");
        c.label = clinic_label(name);
        channels.push(c);
        data.push(rec.data[i].clone());
    }
    for (label, kind) in [
        ("EEG A1-REF", ChannelKind::Eeg),
        ("ECG", ChannelKind::Ecg),
        ("Photic", ChannelKind::Other),
    ] {
        let mut c = rec.channels[keep[0]].clone();
        c.label = label.to_string();
        c.name = None;
        c.kind = kind;
        channels.push(c);
        data.push(rec.data[keep[0]].iter().map(|v| v * 0.5).collect());
    }
    rec.channels = channels;
    rec.data = data;
    rec.resample(256.0).expect("resample");
    let path = dir.join(format!("clinic_R{run:02}.edf"));
    write_edf(&path, &rec, &WriteOptions::default()).expect("write");
    path
}

#[test]
fn a_clinic_montage_at_256_hz_calibrates_and_predicts_with_the_shipped_encoder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r04 = clinic_file(dir.path(), 4, None);
    let r08 = clinic_file(dir.path(), 8, None);

    // inspect names every channel's standard position, or null where it has none.
    let json: serde_json::Value = serde_json::from_str(&success(&run_eegadapt(&[
        "inspect".as_ref(),
        "--json".as_ref(),
        r04.as_os_str(),
    ])))
    .expect("inspect json");
    let signals = json["signals"].as_array().expect("signals");
    assert_eq!(signals.len(), 22);
    for s in signals {
        let label = s["label"].as_str().expect("label");
        let placed = !s["position_m"].is_null();
        let expected = label.starts_with("EEG ");
        assert_eq!(placed, expected, "{label}: {}", s["position_m"]);
        assert!(s["sampling_rate_hz"].as_f64() == Some(256.0), "{label}");
    }

    let model = dir.path().join("model");
    let encoder = project("data/encoder");
    let run = run_eegadapt(&[
        "calibrate".as_ref(),
        "--encoder".as_ref(),
        encoder.as_os_str(),
        "--task".as_ref(),
        "eegmmidb-lr".as_ref(),
        "--subject".as_ref(),
        "P1".as_ref(),
        "--calibration".as_ref(),
        r04.as_os_str(),
        "--out".as_ref(),
        model.as_os_str(),
    ]);
    success(&run);
    let stderr = String::from_utf8_lossy(&run.stderr);
    let warning = stderr
        .lines()
        .find(|l| l.contains("channels ignored"))
        .unwrap_or_else(|| panic!("no warning: {stderr}"));
    for name in ["A1", "ECG", "Photic"] {
        assert!(warning.contains(name), "{warning}");
    }
    assert!(!warning.contains("C3"), "{warning}");
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(model.join("subject.json")).expect("subject.json"),
    )
    .expect("json");
    let channels: Vec<&str> = manifest["channels"]
        .as_array()
        .expect("channels")
        .iter()
        .filter_map(|c| c.as_str())
        .collect();
    for name in ["ECG", "Photic"] {
        assert!(
            !channels.iter().any(|c| c.contains(name)),
            "{name} calibrated: {channels:?}"
        );
    }

    let predicted: serde_json::Value = serde_json::from_str(&success(&run_eegadapt(&[
        "predict".as_ref(),
        "--json".as_ref(),
        "--model".as_ref(),
        model.as_os_str(),
        r08.as_os_str(),
    ])))
    .expect("predict json");
    let epochs = predicted["epochs"].as_array().expect("epochs");
    assert_eq!(epochs.len(), 15);
    for e in epochs {
        let class = e["predicted"].as_str().expect("predicted");
        assert!(class == "left" || class == "right", "{class}");
    }

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
    let source = project(&format!("data/eegmmidb/S001/S001R{run:02}.edf"));
    let mut rec = edf::read_recording(&source).expect("read");
    let mut channels = Vec::new();
    let mut data = Vec::new();
    for name in BIOSEMI_32 {
        let i = rec
            .channels
            .iter()
            .position(|c| labels::electrode_name(&c.label) == Some(name))
            .unwrap_or_else(|| panic!("{name} not in S001"));
        let mut c = rec.channels[i].clone();
        c.label = name.to_string();
        channels.push(c);
        data.push(rec.data[i].clone());
    }
    for (label, kind) in [("EXG1", ChannelKind::Other), ("Status", ChannelKind::Stim)] {
        let mut c = channels[0].clone();
        c.label = label.to_string();
        c.name = None;
        c.kind = kind;
        channels.push(c);
        data.push(data[0].iter().map(|v| v * 0.5).collect());
    }
    rec.channels = channels;
    rec.data = data;
    rec.resample(512.0).expect("resample");
    let path = dir.join(format!("biosemi_R{run:02}.bdf"));
    let bdf = WriteOptions {
        bdf: true,
        ..WriteOptions::default()
    };
    write_edf(&path, &rec, &bdf).expect("write");
    path
}

#[test]
fn a_32_channel_bdf_at_512_hz_calibrates_and_predicts_with_the_shipped_encoder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r04 = biosemi_file(dir.path(), 4);
    let r08 = biosemi_file(dir.path(), 8);

    let json: serde_json::Value = serde_json::from_str(&success(&run_eegadapt(&[
        "inspect".as_ref(),
        "--json".as_ref(),
        r04.as_os_str(),
    ])))
    .expect("inspect json");
    assert_eq!(json["format"], "BDF+C", "{}", json["format"]);
    let signals = json["signals"].as_array().expect("signals");
    assert_eq!(signals.len(), 34);
    for s in signals {
        let label = s["label"].as_str().expect("label");
        let placed = !s["position_m"].is_null();
        assert_eq!(placed, BIOSEMI_32.contains(&label), "{label}");
        assert_eq!(s["sampling_rate_hz"].as_f64(), Some(512.0), "{label}");
    }

    let model = dir.path().join("model");
    let encoder = project("data/encoder");
    let run = run_eegadapt(&[
        "calibrate".as_ref(),
        "--encoder".as_ref(),
        encoder.as_os_str(),
        "--task".as_ref(),
        "eegmmidb-lr".as_ref(),
        "--subject".as_ref(),
        "P2".as_ref(),
        "--calibration".as_ref(),
        r04.as_os_str(),
        "--out".as_ref(),
        model.as_os_str(),
    ]);
    success(&run);
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(model.join("subject.json")).expect("subject.json"),
    )
    .expect("json");
    let calibrated = manifest["channels"].as_array().expect("channels");
    assert_eq!(calibrated.len(), 32, "{calibrated:?}");
    let stderr = String::from_utf8_lossy(&run.stderr);
    let warning = stderr
        .lines()
        .find(|l| l.contains("channels ignored"))
        .unwrap_or_else(|| panic!("no warning: {stderr}"));
    assert!(warning.ends_with("EXG1, Status"), "{warning}");

    let predicted: serde_json::Value = serde_json::from_str(&success(&run_eegadapt(&[
        "predict".as_ref(),
        "--json".as_ref(),
        "--model".as_ref(),
        model.as_os_str(),
        r08.as_os_str(),
    ])))
    .expect("predict json");
    let epochs = predicted["epochs"].as_array().expect("epochs");
    assert_eq!(epochs.len(), 15);
    for e in epochs {
        let class = e["predicted"].as_str().expect("predicted");
        assert!(class == "left" || class == "right", "{class}");
    }
}
