//! Band-limited covariances (sample, Ledoit-Wolf, OAS) against pyriemann's, as recorded in
//! ../shared/reference/preprocess_S001R04.json (`covariance_first_T1T2_epoch`).

use crate::common;

use eegadapt::edf;
use eegadapt::features::{covariance, extract, Band, Estimator, FeatureConfig};
use eegadapt::preprocess::{butter_sos, sosfiltfilt, FilterBand};
use eegadapt::task::{RecordingId, Task};
use serde_json::Value;

fn reference() -> Value {
    let path = common::reference_file("preprocess_S001R04.json");
    let all: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("reference")).expect("json");
    all["covariance_first_T1T2_epoch"].clone()
}

fn matrix(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("rows")
        .iter()
        .flat_map(|row| {
            row.as_array()
                .expect("row")
                .iter()
                .map(|x| x.as_f64().expect("number"))
        })
        .collect()
}

fn worst_relative(ours: &[f64], theirs: &[f64]) -> f64 {
    let scale = theirs.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    ours.iter()
        .zip(theirs)
        .map(|(a, b)| (a - b).abs() / scale)
        .fold(0.0, f64::max)
}

/// The reference's recipe in f64: band-pass the whole run, cut [onset + 0.5 s, onset + 3.5 s).
#[test]
fn estimators_match_pyriemann_in_f64() {
    let r = reference();
    let how = r["how"].as_str().expect("how");
    assert!(
        how.contains("8-30 Hz") && how.contains("[onset+80, onset+560)"),
        "recipe changed: {how}"
    );
    let file = edf::open(common::data_file("eegmmidb/S001/S001R04.edf")).expect("open");
    let fs = file.channels()[0].sampling_rate_hz;
    let sos = butter_sos(4, FilterBand::Bandpass(8.0, 30.0), fs).expect("design");
    let onset = r["onset_sample"].as_u64().expect("onset") as usize;
    let x: Vec<Vec<f64>> = (0..file.channels().len())
        .map(|c| {
            let whole = file
                .read_physical(c, 0..file.channels()[c].samples)
                .expect("samples");
            sosfiltfilt(&sos, &whole).expect("filter")[onset + 80..onset + 560].to_vec()
        })
        .collect();
    assert_eq!(x.len() * x.len(), matrix(&r["cov"]["scm"]).len());
    for (name, estimator) in [
        ("scm", Estimator::Scm),
        ("lwf", Estimator::Lwf),
        ("oas", Estimator::Oas),
    ] {
        let worst = worst_relative(&covariance(&x, estimator), &matrix(&r["cov"][name]));
        assert!(
            worst < 1e-9,
            "{name}: worst deviation {worst:e} of the largest entry"
        );
    }
}

/// The feature pipeline (f32 samples in the recording) gives the same OAS covariance for the
/// first T1/T2 epoch of the left/right task cut at the reference's window (0.5-3.5 s, 8-30 Hz).
#[test]
fn pipeline_covariance_matches_within_f32_precision() {
    let r = reference();
    let path = common::data_file("eegmmidb/S001/S001R04.edf");
    let recording = edf::read_recording(&path).expect("read");
    // The reference's window (the built-in task now cuts 0-3 s).
    let task = Task {
        tmin: 0.5,
        tmax: 3.5,
        ..Task::resolve("eegmmidb-lr").expect("task")
    };
    let config = FeatureConfig {
        covariance_bands: vec![Band::new("mu_beta", 8.0, 30.0)],
        covariance_estimator: Estimator::Oas,
        ..FeatureConfig::default()
    };
    let set =
        extract(&recording, &RecordingId::from_path(&path), &task, &config).expect("features");
    let first = &set.rows[0];
    let fs = set.meta.sfreq;
    assert_eq!(
        (first.onset_s * fs).round() as u64,
        r["onset_sample"].as_u64().expect("onset")
    );
    let worst = worst_relative(&first.covariances[0], &matrix(&r["cov"]["oas"]));
    assert!(
        worst < 1e-6,
        "worst deviation {worst:e} of the largest entry"
    );
}
