//! Preprocessing against scipy/numpy reference values (../shared/reference/preprocess_S001R04.json).
//!
//! Numbers come from the JSON at run time; none are copied here. Signals are compared to within
//! 1e-6 of the reference output's range (max - min).

use crate::common;

use eegadapt::edf::{self, ChannelKind};
use eegadapt::preprocess::{
    butter_sos, common_average_reference, filtfilt, iirnotch, resample_poly, sosfiltfilt,
    FilterBand,
};
use serde_json::Value;

fn reference() -> Value {
    let path = common::reference_file("preprocess_S001R04.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("reference JSON")
}

fn numbers(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array, got {v}"))
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

fn matrix(v: &Value) -> Vec<Vec<f64>> {
    v.as_array()
        .expect("array of rows")
        .iter()
        .map(numbers)
        .collect()
}

/// Largest |ours - theirs| relative to the range of `theirs`; asserts it is within 1e-6.
fn assert_close(what: &str, ours: &[f64], theirs: &[f64]) -> f64 {
    assert_eq!(ours.len(), theirs.len(), "{what}: length");
    let lo = theirs.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = theirs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let range = (hi - lo).max(f64::MIN_POSITIVE);
    let dev = ours
        .iter()
        .zip(theirs)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    eprintln!(
        "{what}: max |deviation| {dev:.3e} ({:.3e} of range {range:.3})",
        dev / range
    );
    assert!(
        dev <= 1e-6 * range,
        "{what}: deviation {dev} > 1e-6 x range {range}"
    );
    dev / range
}

fn eeg_first(rec: &edf::Recording, n: usize) -> Vec<Vec<f64>> {
    rec.channels
        .iter()
        .zip(&rec.data)
        .filter(|(c, _)| c.kind == ChannelKind::Eeg)
        .map(|(_, x)| x.iter().take(n).map(|&v| f64::from(v)).collect())
        .collect()
}

#[test]
fn butterworth_bandpass_sos_and_sosfiltfilt() {
    let r = reference();
    let entry = &r["bandpass_8_30_butter4_sosfiltfilt"];
    let fs = r["sfreq"].as_f64().expect("sfreq");
    let sos = butter_sos(4, FilterBand::Bandpass(8.0, 30.0), fs).expect("design");
    let want = matrix(&entry["sos"]);
    assert_eq!(sos.len(), want.len(), "number of sections");
    let mut worst = 0.0_f64;
    for (ours, theirs) in sos.iter().zip(&want) {
        for (a, b) in ours.iter().zip(theirs) {
            worst = worst.max((a - b).abs());
        }
    }
    eprintln!("sos: max |deviation| {worst:.3e}");
    assert!(worst <= 1e-10, "sos deviates by {worst}: {sos:?}");
    let x = numbers(&entry["C3_input_first_1600"]);
    let y = sosfiltfilt(&sos, &x).expect("long enough");
    assert_close("sosfiltfilt C3", &y, &numbers(&entry["C3_output"]));
}

#[test]
fn notch_coefficients_and_filtfilt() {
    let r = reference();
    let entry = &r["notch_60_q30_filtfilt"];
    let fs = r["sfreq"].as_f64().expect("sfreq");
    let (b, a) = iirnotch(60.0, 30.0, fs).expect("design");
    let (wb, wa) = (numbers(&entry["b"]), numbers(&entry["a"]));
    let worst = b
        .iter()
        .chain(&a)
        .zip(wb.iter().chain(&wa))
        .map(|(ours, theirs)| (ours - theirs).abs())
        .fold(0.0, f64::max);
    eprintln!("notch b, a: max |deviation| {worst:.3e}");
    assert!(worst <= 1e-12, "b {b:?} a {a:?}");
    let x = numbers(&r["bandpass_8_30_butter4_sosfiltfilt"]["C3_input_first_1600"]);
    let y = filtfilt(&b, &a, &x).expect("long enough");
    assert_close("notch filtfilt C3", &y, &numbers(&entry["C3_output"]));
}

#[test]
fn resample_poly_160_to_128() {
    let r = reference();
    let x = numbers(&r["bandpass_8_30_butter4_sosfiltfilt"]["C3_input_first_1600"]);
    let y = resample_poly(&x, 4, 5).expect("resample");
    assert_close(
        "resample_poly C3",
        &y,
        &numbers(&r["resample_poly_160_to_128"]["C3_output"]),
    );
}

#[test]
fn common_average_reference_of_the_edf() {
    let r = reference();
    let entry = &r["common_average_reference"];
    let rec = edf::read_recording(common::data_file("eegmmidb/S001/S001R04.edf")).expect("read");
    let mut eeg = eeg_first(&rec, 1600);
    assert_eq!(eeg.len(), 64);
    common_average_reference(&mut eeg).expect("equal lengths");
    let eeg_names: Vec<&edf::Channel> = rec
        .channels
        .iter()
        .filter(|c| c.kind == ChannelKind::Eeg)
        .collect();
    for (name, key) in [("C3", "C3_output_first_100"), ("Fz", "Fz_output_first_100")] {
        let row = eeg_names
            .iter()
            .position(|c| c.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("{name} not found"));
        let want = numbers(&entry[key]);
        assert_close(&format!("CAR {name}"), &eeg[row][..want.len()], &want);
    }
}

#[test]
fn whole_run_bandpass_reproduces_the_epoch_covariance() {
    let r = reference();
    let entry = &r["covariance_first_T1T2_epoch"];
    let fs = r["sfreq"].as_f64().expect("sfreq");
    let mut rec =
        edf::read_recording(common::data_file("eegmmidb/S001/S001R04.edf")).expect("read");
    // The pure function on the whole C3 channel: finite everywhere.
    let sos = butter_sos(4, FilterBand::Bandpass(8.0, 30.0), fs).expect("design");
    let c3 = rec.channel_index("C3").expect("C3");
    let x: Vec<f64> = rec.data[c3].iter().map(|&v| f64::from(v)).collect();
    let y = sosfiltfilt(&sos, &x).expect("whole run");
    assert_eq!(y.len(), x.len());
    assert!(y.iter().all(|v| v.is_finite()));
    // The Recording method, then the sample covariance of the first T1/T2 epoch.
    rec.filter(FilterBand::Bandpass(8.0, 30.0), 4)
        .expect("filter");
    let method_c3: Vec<f64> = rec.data[c3].iter().map(|&v| f64::from(v)).collect();
    let f32_err = method_c3
        .iter()
        .zip(&y)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(f32_err < 1e-3, "method vs function on C3: {f32_err}");
    let onset = entry["onset_sample"].as_u64().expect("onset") as usize;
    let window = onset + 80..onset + 560;
    let epoch: Vec<Vec<f64>> = eeg_first(&rec, rec.data[0].len())
        .into_iter()
        .map(|x| x[window.clone()].to_vec())
        .collect();
    let n = window.len() as f64;
    let centered: Vec<Vec<f64>> = epoch
        .iter()
        .map(|x| {
            let m = x.iter().sum::<f64>() / n;
            x.iter().map(|v| v - m).collect()
        })
        .collect();
    let mut ours = Vec::new();
    for a in &centered {
        for b in &centered {
            ours.push(a.iter().zip(b).map(|(p, q)| p * q).sum::<f64>() / n);
        }
    }
    let theirs: Vec<f64> = matrix(&entry["cov"]["scm"]).into_iter().flatten().collect();
    assert_close(
        "epoch covariance (scm) after whole-run band-pass",
        &ours,
        &theirs,
    );
}
