//! Behaviour of the preprocessing stage on synthetic signals and on copies of a real recording.

use crate::common;

use std::f64::consts::PI;

use eegadapt::edf::{self, ChannelKind, Recording, Segment};
use eegadapt::preprocess::{
    butter_sos, detect_bad_channels, filtfilt, iirnotch, pick_channels, resample_poly, resample_to,
    sosfiltfilt, BadChannelConfig, BadReason, FilterBand, Picks, PreprocessError,
};

fn sine(freq: f64, fs: f64, n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| (2.0 * PI * freq * i as f64 / fs).sin())
        .collect()
}

/// Amplitude (peak of a sine, from its RMS) over the middle half, away from edge effects.
fn amplitude(x: &[f64]) -> f64 {
    let mid = &x[x.len() / 4..3 * x.len() / 4];
    (2.0 * mid.iter().map(|v| v * v).sum::<f64>() / mid.len() as f64).sqrt()
}

fn s001r04() -> Recording {
    edf::read_recording(common::data_file("eegmmidb/S001/S001R04.edf")).expect("read S001R04")
}

#[test]
fn bandpass_keeps_the_passband_and_stops_50_hz() {
    let fs = 160.0;
    let sos = butter_sos(4, FilterBand::Bandpass(8.0, 30.0), fs).expect("design");
    let pass = amplitude(&sosfiltfilt(&sos, &sine(15.0, fs, 1600)).expect("filter"));
    assert!((pass - 1.0).abs() < 0.01, "15 Hz amplitude {pass}");
    // 10 Hz sits near the lower edge: forward-backward gives the squared Butterworth magnitude
    // 1 / (1 + (W / B)^(2n)) with the prewarped low-pass equivalent W.
    let warp = |f: f64| (PI * f / fs).tan();
    let (wl, wh, w) = (warp(8.0), warp(30.0), warp(10.0));
    let expected = 1.0 / (1.0 + ((w * w - wl * wh) / w / (wh - wl)).powi(8));
    let ten = amplitude(&sosfiltfilt(&sos, &sine(10.0, fs, 1600)).expect("filter"));
    assert!(
        (ten / expected - 1.0).abs() < 0.01,
        "10 Hz: {ten} vs {expected}"
    );
    let stop = amplitude(&sosfiltfilt(&sos, &sine(50.0, fs, 1600)).expect("filter"));
    assert!(20.0 * stop.log10() < -40.0, "50 Hz amplitude {stop}");
}

#[test]
fn lowpass_and_highpass_split_the_spectrum() {
    let fs = 250.0;
    let low = butter_sos(5, FilterBand::Lowpass(20.0), fs).expect("lowpass");
    let high = butter_sos(5, FilterBand::Highpass(20.0), fs).expect("highpass");
    let slow = sine(3.0, fs, 2500);
    let fast = sine(60.0, fs, 2500);
    assert!((amplitude(&sosfiltfilt(&low, &slow).expect("ok")) - 1.0).abs() < 0.01);
    assert!(amplitude(&sosfiltfilt(&low, &fast).expect("ok")) < 1e-3);
    assert!((amplitude(&sosfiltfilt(&high, &fast).expect("ok")) - 1.0).abs() < 0.01);
    assert!(amplitude(&sosfiltfilt(&high, &slow).expect("ok")) < 1e-3);
}

#[test]
fn notch_removes_its_frequency_only() {
    let fs = 160.0;
    let (b, a) = iirnotch(60.0, 30.0, fs).expect("design");
    let hum = amplitude(&filtfilt(&b, &a, &sine(60.0, fs, 3200)).expect("filter"));
    assert!(hum < 0.01, "60 Hz left: {hum}");
    let alpha = amplitude(&filtfilt(&b, &a, &sine(10.0, fs, 3200)).expect("filter"));
    assert!((alpha - 1.0).abs() < 0.01, "10 Hz amplitude {alpha}");
}

#[test]
fn resampling_keeps_a_sine() {
    let y = resample_poly(&sine(5.0, 160.0, 1600), 4, 5).expect("resample");
    assert_eq!(y.len(), 1280);
    let want = sine(5.0, 128.0, 1280);
    let err = y[100..1180]
        .iter()
        .zip(&want[100..1180])
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(err < 5e-3, "5 Hz sine after 160 -> 128 Hz: error {err}");
    for from in [128.0, 160.0, 250.0, 256.0, 512.0] {
        for to in [128.0, 250.0] {
            let n = (4.0 * from) as usize;
            let y = resample_to(&sine(7.0, from, n), from, to).expect("resample_to");
            let expected_len = (n as f64 * to / from).ceil() as usize;
            assert_eq!(y.len(), expected_len, "{from} -> {to}");
            let want = sine(7.0, to, y.len());
            let (lo, hi) = (y.len() / 4, 3 * y.len() / 4);
            let err = y[lo..hi]
                .iter()
                .zip(&want[lo..hi])
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(err < 5e-3, "{from} -> {to}: error {err}");
        }
    }
}

#[test]
fn invalid_inputs_are_errors() {
    assert!(matches!(
        butter_sos(4, FilterBand::Bandpass(8.0, 90.0), 160.0),
        Err(PreprocessError::FrequencyOutOfRange { .. })
    ));
    assert!(matches!(
        butter_sos(4, FilterBand::Highpass(0.0), 160.0),
        Err(PreprocessError::FrequencyOutOfRange { .. })
    ));
    let sos = butter_sos(4, FilterBand::Bandpass(8.0, 30.0), 160.0).expect("design");
    // 4 sections: padlen = 3 * (2 * 4 + 1) = 27.
    assert!(matches!(
        sosfiltfilt(&sos, &[0.0; 27]),
        Err(PreprocessError::SignalTooShort {
            len: 27,
            padlen: 27
        })
    ));
    assert!(sosfiltfilt(&sos, &[0.0; 28]).is_ok());
    assert!(sosfiltfilt(&sos, &[]).is_err());
    let (b, a) = iirnotch(50.0, 30.0, 250.0).expect("design");
    assert!(matches!(
        filtfilt(&b, &a, &[1.0; 9]),
        Err(PreprocessError::SignalTooShort { len: 9, padlen: 9 })
    ));
    assert!(iirnotch(130.0, 30.0, 250.0).is_err());
    assert!(resample_to(&[1.0; 10], 160.0, 127.9999).is_err());
}

#[test]
fn bad_channels_flat_and_huge_and_nothing_else() {
    let mut rec = s001r04();
    let clean = detect_bad_channels(&rec, &BadChannelConfig::default()).expect("detect");
    assert!(clean.is_empty(), "{clean:?}");
    let flat = rec.channel_index("Cz").expect("Cz");
    let huge = rec.channel_index("P4").expect("P4");
    let clipped = rec.channel_index("T8").expect("T8");
    let level = rec.data[flat][0];
    rec.data[flat].iter_mut().for_each(|v| *v = level);
    rec.data[huge].iter_mut().for_each(|v| *v *= 20.0);
    // Saturated for 6 s (the default limit is 5 s of identical samples).
    rec.data[clipped][1000..1960]
        .iter_mut()
        .for_each(|v| *v = 8092.0);
    let found = rec
        .mark_bad_channels(&BadChannelConfig::default())
        .expect("detect");
    let indices: Vec<usize> = found.iter().map(|b| b.index).collect();
    let mut expected = vec![flat, huge, clipped];
    expected.sort_unstable();
    assert_eq!(indices, expected, "{found:?}");
    let by_index = |i: usize| &found.iter().find(|b| b.index == i).expect("found").reason;
    assert!(matches!(by_index(flat), BadReason::Flat { .. }));
    assert!(matches!(by_index(huge), BadReason::HighAmplitude { .. }));
    assert!(matches!(by_index(clipped), BadReason::Constant { seconds } if *seconds == 6.0));
    assert_eq!(rec.bads.len(), 3);
    assert!(rec.bads.contains(&rec.channels[flat].label));
    assert_eq!(rec.channels.len(), 64, "marked, not dropped");
    // A channel merely 4x louder is an outlier by its robust z-score, not by amplitude.
    let mut rec = s001r04();
    let loud = rec.channel_index("Oz").expect("Oz");
    let scale = 4.0;
    rec.data[loud].iter_mut().for_each(|v| *v *= scale);
    let config = BadChannelConfig {
        max_peak_to_peak: 1e6,
        ..BadChannelConfig::default()
    };
    let found = detect_bad_channels(&rec, &config).expect("detect");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].index, loud);
    assert!(matches!(found[0].reason, BadReason::Outlier { z } if z > 5.0));
}

#[test]
fn average_reference_skips_bad_channels_in_the_mean() {
    let mut rec = s001r04();
    let bad = rec.channel_index("Fp1").expect("Fp1");
    rec.data[bad].iter_mut().for_each(|v| *v += 1000.0);
    rec.bads.push(rec.channels[bad].label.clone());
    rec.set_average_reference().expect("reference");
    let good_sum: f64 = (0..rec.channels.len())
        .filter(|&i| i != bad)
        .map(|i| f64::from(rec.data[i][100]))
        .sum();
    assert!(
        good_sum.abs() < 1e-2,
        "good channels sum to {good_sum} after CAR"
    );
    let mut rec = s001r04();
    rec.set_reference_channel("Cz").expect("Cz exists");
    let cz = rec.channel_index("Cz").expect("Cz");
    let raw = s001r04();
    let c3 = rec.channel_index("C3").expect("C3");
    assert_eq!(rec.data[c3][7], raw.data[c3][7] - raw.data[cz][7]);
    assert_eq!(rec.data[cz], raw.data[cz]);
    assert!(rec.set_reference_channel("Nope").is_err());
}

#[test]
fn picking_channels() {
    let mut rec = s001r04();
    rec.bads = vec!["C3..".into(), "Cz..".into()];
    let picked = pick_channels(&rec, &Picks::names(["cz", "C3..", "fc5"])).expect("pick");
    let labels: Vec<&str> = picked.channels.iter().map(|c| c.label.as_str()).collect();
    assert_eq!(labels, ["Fc5.", "C3..", "Cz.."]);
    assert_eq!(picked.data.len(), 3);
    assert_eq!(
        picked.data[1],
        rec.data[rec.channel_index("C3").expect("C3")]
    );
    assert_eq!(picked.bads, rec.bads);
    match pick_channels(&rec, &Picks::names(["C3", "Xx1", "Yy2"])) {
        Err(PreprocessError::MissingChannels(m)) => assert_eq!(m, ["Xx1", "Yy2"]),
        other => panic!("expected missing channels, got {other:?}"),
    }
    let eeg = pick_channels(&rec, &Picks::kinds([ChannelKind::Eeg])).expect("pick");
    assert_eq!(eeg.channels.len(), 64);
    let none = pick_channels(&rec, &Picks::kinds([ChannelKind::Stim])).expect("pick");
    assert!(none.channels.is_empty() && none.data.is_empty() && none.bads.is_empty());
}

#[test]
fn filtering_respects_edf_plus_d_gaps() {
    let mut rec = pick_channels(&s001r04(), &Picks::names(["C3", "C4"])).expect("pick");
    let split = 60;
    let spr = rec.channels[0].samples_per_record;
    let first = rec.segments[0];
    rec.segments = vec![
        Segment {
            records: split,
            duration_s: split as f64,
            ..first
        },
        Segment {
            onset_s: 100.0,
            duration_s: (first.records - split) as f64,
            first_record: split,
            records: first.records - split,
        },
    ];
    let raw: Vec<f64> = rec.data[0].iter().map(|&v| f64::from(v)).collect();
    rec.filter(FilterBand::Bandpass(8.0, 30.0), 4)
        .expect("filter");
    let sos = butter_sos(4, FilterBand::Bandpass(8.0, 30.0), 160.0).expect("design");
    let cut = split * spr;
    let mut want = sosfiltfilt(&sos, &raw[..cut]).expect("first");
    want.extend(sosfiltfilt(&sos, &raw[cut..]).expect("second"));
    let err = rec.data[0]
        .iter()
        .zip(&want)
        .map(|(a, b)| (f64::from(*a) - b).abs())
        .fold(0.0, f64::max);
    assert!(err < 1e-3, "per-segment filtering: {err}");
    // Notch follows the same path. Segments that do not cover the samples are an error, as is
    // a segment shorter than the padding; either way the recording is left unchanged.
    rec.notch(60.0, 30.0).expect("notch");
    let before = rec.data.clone();
    rec.segments[1].records = 0;
    assert!(matches!(
        rec.filter(FilterBand::Lowpass(30.0), 4),
        Err(PreprocessError::LengthMismatch { .. })
    ));
    assert_eq!(rec.data, before);
    rec.segments[1].records = first.records - split;
    rec.segments[1].duration_s = 0.05;
    let mut short = pick_channels(&rec, &Picks::names(["C3"])).expect("pick");
    short.data[0].truncate(cut + 8);
    short.channels[0].samples_per_record = 8;
    short.channels[0].sampling_rate_hz = 160.0;
    short.segments = vec![
        Segment {
            records: cut / 8,
            ..rec.segments[0]
        },
        Segment {
            first_record: cut / 8,
            records: 1,
            ..rec.segments[1]
        },
    ];
    let before = short.data.clone();
    assert!(matches!(
        short.filter(FilterBand::Lowpass(30.0), 4),
        Err(PreprocessError::SignalTooShort { len: 8, padlen: 15 })
    ));
    assert_eq!(short.data, before);
}

#[test]
fn resampling_a_recording_updates_its_layout() {
    let mut rec = s001r04();
    rec.resample(128.0).expect("resample");
    assert!(rec
        .channels
        .iter()
        .all(|c| c.sampling_rate_hz == 128.0 && c.samples_per_record == 128 && c.samples == 16000));
    assert!(rec.data.iter().all(|x| x.len() == 16000));
    assert_eq!(rec.records, 125);
    // Records of 0.1 s (16 samples at 160 Hz) would hold 12.8 samples at 128 Hz: they are
    // regrouped five at a time.
    let mut rec = pick_channels(&s001r04(), &Picks::names(["C3"])).expect("pick");
    rec.record_duration_s = 0.1;
    rec.records = 1250;
    rec.channels[0].samples_per_record = 16;
    rec.segments[0].records = 1250;
    rec.resample(128.0).expect("regrouped");
    assert_eq!(
        (
            rec.records,
            rec.record_duration_s,
            rec.channels[0].samples_per_record
        ),
        (250, 0.5, 64)
    );
    assert_eq!(rec.segments[0].records, 250);
    assert_eq!(rec.data[0].len(), 16000);
    // Mixed rates cannot be resampled together.
    let mut rec = pick_channels(&s001r04(), &Picks::names(["C3", "C4"])).expect("pick");
    rec.channels[1].sampling_rate_hz = 80.0;
    assert!(matches!(
        rec.resample(128.0),
        Err(PreprocessError::MixedSamplingRates(_))
    ));
}
