//! Welch spectra, band powers and epochs against ../shared/reference/features_S001R04.json
//! (scipy.signal.welch). Numbers are read from the JSON at run time.

use crate::common;

use eegadapt::edf;
use eegadapt::epochs::{make_epochs, Reject};
use eegadapt::features::{band_power, welch, Band, WelchConfig};
use eegadapt::task::{EventClass, RecordingId, Task};
use serde_json::Value;

fn reference() -> Value {
    let path = common::reference_file("features_S001R04.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("reference")).expect("json")
}

fn nums(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

fn source() -> edf::EdfFile {
    let r = reference();
    edf::open(common::data_file(r["file"].as_str().expect("file"))).expect("open")
}

/// The reference's parameters, parsed from its own description where they are only given as text.
fn welch_config(r: &Value) -> WelchConfig {
    let text = r["welch"].as_str().expect("welch");
    let param = |key: &str| -> usize {
        let start = text.find(key).expect("parameter named") + key.len();
        text[start..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .expect("integer")
    };
    WelchConfig {
        nperseg: param("nperseg="),
        noverlap: param("noverlap="),
    }
}

/// Welch PSD of the reference's `channel` over samples `[start, end)`, with its parameters.
fn psd(
    r: &Value,
    file: &edf::EdfFile,
    channel: usize,
    start: usize,
    end: usize,
) -> (Vec<f64>, Vec<f64>) {
    let label = r["channels"][channel].as_str().expect("label");
    let index = file
        .channels()
        .iter()
        .position(|ch| ch.label == label)
        .expect("channel");
    let x = file.read_physical(index, start..end).expect("samples");
    welch(&x, r["fs"].as_f64().expect("fs"), welch_config(r)).expect("welch")
}

fn sample_range(epoch: &Value) -> (usize, usize) {
    let start = epoch["start_sample"].as_u64().expect("start") as usize;
    (
        start,
        epoch["end_sample_exclusive"].as_u64().expect("end") as usize,
    )
}

#[test]
fn welch_matches_scipy_on_the_first_epochs() {
    let r = reference();
    let file = source();
    let epochs = r["epochs"].as_array().expect("epochs");
    let mut worst: f64 = 0.0;
    for e in r["psd_first3_epochs"].as_array().expect("psd epochs") {
        let (start, end) = sample_range(&epochs[e["epoch_number"].as_u64().expect("n") as usize]);
        for (c, expected) in e["psd"].as_array().expect("psd").iter().enumerate() {
            let (freqs, ours) = psd(&r, &file, c, start, end);
            assert_eq!(freqs, nums(&r["freqs"]));
            for (o, t) in ours.iter().zip(nums(expected)) {
                worst = worst.max((o - t).abs() / t.abs().max(1e-300));
            }
        }
    }
    assert!(worst < 1e-9, "worst relative deviation {worst:e}");
}

#[test]
fn log_band_powers_match_every_epoch() {
    let r = reference();
    let file = source();
    let epochs = r["epochs"].as_array().expect("epochs");
    assert!(!epochs.is_empty());
    for e in epochs {
        let (start, end) = sample_range(e);
        for (band_name, expected) in e["log10_band_power"].as_object().expect("bands") {
            let (lo, hi) = band_name.split_once('-').expect("lo-hi");
            let band = Band::new(band_name, lo.parse().expect("lo"), hi.parse().expect("hi"));
            for (c, theirs) in nums(expected).iter().enumerate() {
                let (freqs, p) = psd(&r, &file, c, start, end);
                let ours = band_power(&freqs, &p, &band).log10();
                assert!(
                    (ours - theirs).abs() < 1e-9,
                    "{band_name} channel {c}: {ours} vs {theirs}"
                );
            }
        }
    }
}

/// The reference epochs (T1/T2, 0-4 s, start = round(onset * fs)) come out of `make_epochs`
/// with the same labels, onsets and samples.
#[test]
fn epochs_match_reference_events() {
    let r = reference();
    let path = common::data_file(r["file"].as_str().expect("file"));
    let recording = edf::read_recording(&path).expect("read");
    let definition = r["epoch_definition"].as_str().expect("definition");
    assert!(
        definition.contains("0 to 4 s"),
        "reference window changed: {definition}"
    );
    let task = Task {
        name: "reference".into(),
        classes: vec!["T1".into(), "T2".into()],
        events: ["T1", "T2"]
            .iter()
            .map(|t| EventClass {
                text: t.to_string(),
                class: t.to_string(),
            })
            .collect(),
        tmin: 0.0,
        tmax: 4.0,
        runs: None,
        fixed: None,
        head: None,
    };
    let picks: Vec<usize> = (0..recording.channels.len()).collect();
    let id = RecordingId::from_path(&path);
    let epochs = make_epochs(&recording, &id, &task, &picks, &Reject::default()).expect("epochs");
    let expected = r["epochs"].as_array().expect("epochs");
    assert_eq!(epochs.len(), expected.len());
    assert!(epochs.drop_log.is_empty());
    for (k, e) in expected.iter().enumerate() {
        assert_eq!(
            epochs.classes[epochs.labels[k].expect("labelled")],
            e["label"].as_str().expect("label")
        );
        assert!((epochs.sources[k].onset_s - e["onset_s"].as_f64().expect("onset")).abs() < 1e-9);
        let start = e["start_sample"].as_u64().expect("start") as usize;
        assert_eq!(
            epochs.channel(k, 8),
            &recording.data[8][start..start + epochs.n_samples]
        );
    }
}

#[test]
fn builtin_lr_task_gives_fifteen_labelled_epochs_and_logs_drops() {
    let path = common::data_file("eegmmidb/S001/S001R04.edf");
    let mut recording = edf::read_recording(&path).expect("read");
    let task = Task::resolve("eegmmidb-lr").expect("task");
    let picks: Vec<usize> = (0..recording.channels.len()).collect();
    let id = RecordingId::from_path(&path);
    let epochs = make_epochs(&recording, &id, &task, &picks, &Reject::default()).expect("epochs");
    assert_eq!(epochs.len(), 15);
    assert!(epochs.labels.iter().all(Option::is_some));
    assert_eq!(epochs.n_samples, 480);
    // An absurdly strict amplitude limit drops every epoch, each with its reason.
    let strict = Reject {
        max_ptp: Some(1.0),
        min_ptp: None,
    };
    let none = make_epochs(&recording, &id, &task, &picks, &strict).expect("epochs");
    assert!(none.is_empty());
    assert_eq!(none.drop_log.len(), 15);
    // Cut the recording short: the last events no longer fit and are logged as too short.
    let keep = 100 * 160;
    for d in &mut recording.data {
        d.truncate(keep);
    }
    recording.records = 100;
    recording.segments[0].records = 100;
    recording.segments[0].duration_s = 100.0;
    let short = make_epochs(&recording, &id, &task, &picks, &Reject::default()).expect("epochs");
    assert!(short.len() < 15);
    assert_eq!(short.len() + short.drop_log.len(), 15);
    assert!(short
        .drop_log
        .iter()
        .all(|d| d.reason == eegadapt::epochs::DropReason::TooShort));
}
