//! Where the established readers disagree or fail, the decision we took and why.

use crate::common;

use eegadapt::edf::{self, Format};
use serde_json::Value;

fn reference(relative_json: &str) -> Value {
    let path = common::reference_file(relative_json);
    serde_json::from_str(&std::fs::read_to_string(path).expect("reference")).expect("json")
}

/// EDF+ 2.2.4: the first record's time-keeping TAL is the sub-second part of the start time.
/// pyedflib prints this file's start as `...:56.039453` (it formats 0.3945312 s as 39453 us);
/// MNE drops the fraction. Both give onsets relative to the first record, as we do.
#[test]
fn subsecond_start_is_first_record_offset() {
    let file = edf::open(common::data_file(
        "peer/mne-testing-data/EDF__subsecond_starttime.edf",
    ))
    .expect("open");
    let start = file.start().expect("start");
    assert!(
        (start.subsecond - 0.3945312).abs() < 1e-9,
        "{}",
        start.subsecond
    );
    assert_eq!(start.to_string(), "2020-01-24T04:05:56.3945312");
}

/// Annotations after the end of the data: MNE drops them, pyedflib keeps them. The annotation
/// exists in the file, so we keep it and flag it `past_end`.
#[test]
fn annotations_past_the_end_are_kept_and_flagged() {
    let r = reference("peer/EDF.jl/test__data__evt.bdf.json");
    let file = edf::open(common::data_file("peer/EDF.jl/test__data__evt.bdf")).expect("open");
    let all = r["pyedflib"]["annotations"]
        .as_array()
        .expect("pyedflib")
        .len();
    let within = r["mne"]["annotations"].as_array().expect("mne").len();
    assert_eq!(file.annotations().len(), all);
    let flagged: Vec<_> = file.annotations().iter().filter(|a| a.past_end).collect();
    assert_eq!(flagged.len(), all - within);
    assert!(flagged.iter().all(|a| a.onset_s > file.duration_s()));
    assert!(file.warnings().iter().any(|w| w.contains("past_end")));
}

/// A plain EDF file carrying an "EDF Annotations" signal: pyedflib decodes it as data, MNE as
/// annotations. The label is reserved by EDF+, so we read the TALs (with a warning) and keep the
/// format reported as plain EDF.
#[test]
fn plain_edf_with_annotation_signal_reads_annotations() {
    let r = reference("peer/pyedflib/pyedflib__tests__data__test_legacy.edf.json");
    let file = edf::open(common::data_file(
        "peer/pyedflib/pyedflib__tests__data__test_legacy.edf",
    ))
    .expect("open");
    assert_eq!(file.format(), Format::Edf);
    assert_eq!(
        file.annotations().len(),
        r["mne"]["annotations"].as_array().expect("mne").len()
    );
    assert_eq!(
        file.channels().len(),
        r["mne"]["n_channels"].as_u64().expect("n") as usize
    );
    assert!(file
        .warnings()
        .iter()
        .any(|w| w.contains("annotation signal")));
}

/// Nihon Kohden omits the NUL between the time-keeping TAL and the next one; the annotation
/// belongs to the onset written before it (1.14 s), not to the record onset MNE reports (1.0 s).
#[test]
fn nihon_kohden_missing_tal_separator_is_recovered() {
    let file = edf::open(common::data_file(
        "peer/mne-testing-data/NihonKohden__MB0400FU.EDF",
    ))
    .expect("open");
    let texts: Vec<(f64, &str)> = file
        .annotations()
        .iter()
        .map(|a| (a.onset_s, a.text.as_str()))
        .collect();
    assert_eq!(
        texts,
        vec![(0.0, "Segment: REC START ALLE EEG"), (1.14, "A1+A2 OFF")]
    );
    assert!(file.warnings().iter().any(|w| w.contains("NUL separator")));
}

/// The non-standard headers MNE tolerates are read with a warning: one trailing byte and an
/// impossible date ("42.00.00") in this file.
#[test]
fn tolerated_header_deviations_warn() {
    let file = edf::open(common::data_file(
        "peer/EDF.jl/test__data__test_uneven_samp__plus1byte.edf",
    ))
    .expect("open");
    assert!(file.start().is_none());
    let warnings = file.warnings().join("\n");
    assert!(warnings.contains("1 bytes after"), "{warnings}");
    assert!(
        warnings.contains("out of range") || warnings.contains("cannot be parsed"),
        "{warnings}"
    );
}

/// BioSemi's reserved field "24BIT" and a record count with leading spaces (MNE's test.bdf).
#[test]
fn biosemi_header_quirks_are_tolerated() {
    let file = edf::open(common::data_file(
        "peer/mne-python/mne__io__edf__tests__data__test.bdf",
    ))
    .expect("open");
    assert_eq!(file.format(), Format::Bdf);
    assert!(
        file.warnings().iter().any(|w| w.contains("leading spaces")),
        "{:?}",
        file.warnings()
    );
}

/// An annotation-only file (record duration 0, no data signals) is valid EDF+.
#[test]
fn annotation_only_file_has_no_channels() {
    let r = reference("peer/mne-testing-data/EDF__SC4001EC-Hypnogram.edf.json");
    let file = edf::open(common::data_file(
        "peer/mne-testing-data/EDF__SC4001EC-Hypnogram.edf",
    ))
    .expect("open");
    assert!(file.channels().is_empty());
    assert_eq!(
        file.annotations().len(),
        r["pyedflib"]["annotations"].as_array().expect("a").len()
    );
    assert!(file.annotations().iter().any(|a| a.duration_s.is_some()));
}

/// One channel or one window is decoded without decoding the rest, and agrees with the full decode.
#[cfg_attr(not(shared_corpus), ignore = "needs the shared corpus")]
#[test]
fn channel_and_window_reads_agree_with_full_decode() {
    let path = common::data_file("peer/mne-misc-data/ecog__sample_ecog.edf");
    let file = edf::open(&path).expect("open");
    let recording = file.to_recording().expect("decode");
    let c = 5;
    let n = file.channels()[c].samples;
    let mut one = vec![0_f32; n - 100];
    file.read_physical_f32_into(c, 100..n, &mut one)
        .expect("channel");
    assert_eq!(one.as_slice(), &recording.data[c][100..]);
    let window = file.read_window(1.0, 3.5).expect("window");
    let rate = file.channels()[c].sampling_rate_hz;
    let first = (1.0 * rate).round() as usize;
    assert_eq!(
        window[c].as_slice(),
        &recording.data[c][first..first + window[c].len()]
    );
    assert_eq!(
        window[c].len(),
        ((3.5 * rate).round() - (1.0 * rate).round()) as usize
    );
    assert!(file.read_physical(c, n..n + 1).is_err());
}
