//! Round trips through `edf::writer::write_edf`: what is written reads back the same, within
//! one digital step of the written file.

use crate::common;

use std::path::{Path, PathBuf};

use eegadapt::edf::writer::{write_edf, WriteOptions};
use eegadapt::edf::{
    self, Annotation, Channel, ChannelKind, EdfError, Format, Identity, Recording, Segment,
    StartTime,
};

fn write_and_read(recording: &Recording, options: &WriteOptions) -> (tempfile::TempDir, Recording) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("out.edf");
    write_edf(&path, recording, options).expect("write");
    let back = edf::read_recording(&path).expect("read back");
    (dir, back)
}

/// Everything but the identity and the format must survive; samples within one step of the
/// written file's gain (values outside the physical range come back clamped to it).
fn assert_same(original: &Recording, back: &Recording) {
    let name = original.source.display().to_string();
    let unexpected: Vec<_> = back
        .warnings
        .iter()
        .filter(|w| !w.contains("start after the end of the data"))
        .collect();
    assert!(unexpected.is_empty(), "{name}: {unexpected:?}");
    assert_eq!(original.channels.len(), back.channels.len(), "{name}");
    for (i, (a, b)) in original.channels.iter().zip(&back.channels).enumerate() {
        assert_eq!(a.label, b.label, "{name} channel {i}");
        assert!(
            (a.sampling_rate_hz - b.sampling_rate_hz).abs() < 1e-9,
            "{name} {i}"
        );
        assert_eq!(a.samples, b.samples, "{name} channel {i}");
        let (gain, _) = b.scaling();
        let (lo, hi) = (
            b.physical_min.min(b.physical_max),
            b.physical_min.max(b.physical_max),
        );
        let x = &original.data[i];
        let y = &back.data[i];
        assert_eq!(x.len(), y.len());
        let worst = x
            .iter()
            .zip(y)
            .map(|(&x, &y)| (f64::from(x).clamp(lo, hi) - f64::from(y)).abs())
            .fold(0.0, f64::max);
        assert!(
            worst <= gain.abs(),
            "{name} channel {i} ({}): off by {worst}, step {gain}",
            a.label
        );
    }
    assert_eq!(original.segments.len(), back.segments.len(), "{name}");
    for (a, b) in original.segments.iter().zip(&back.segments) {
        assert!((a.onset_s - b.onset_s).abs() < 1e-6, "{name}: {a:?} {b:?}");
        assert!(
            (a.duration_s - b.duration_s).abs() < 1e-6,
            "{name}: {a:?} {b:?}"
        );
    }
    assert_same_annotations(&name, &original.annotations, &back.annotations);
    match (original.start, back.start) {
        (Some(a), Some(b)) => {
            assert_eq!(a.to_string(), b.to_string(), "{name}");
            assert!((a.subsecond - b.subsecond).abs() < 1e-6, "{name}");
        }
        (a, b) => assert_eq!(a, b, "{name}"),
    }
}

fn assert_same_annotations(name: &str, a: &[Annotation], b: &[Annotation]) {
    let sorted = |list: &[Annotation]| {
        let mut v: Vec<Annotation> = list.to_vec();
        v.sort_by(|x, y| x.onset_s.total_cmp(&y.onset_s).then(x.text.cmp(&y.text)));
        v
    };
    let (a, b) = (sorted(a), sorted(b));
    assert_eq!(a.len(), b.len(), "{name}: annotation count");
    for (x, y) in a.iter().zip(&b) {
        assert!((x.onset_s - y.onset_s).abs() < 1e-6, "{name}: {x:?} {y:?}");
        assert_eq!(x.text, y.text, "{name}");
        match (x.duration_s, y.duration_s) {
            (Some(p), Some(q)) => assert!((p - q).abs() < 1e-6, "{name}: {x:?} {y:?}"),
            (p, q) => assert_eq!(p, q, "{name}: {x:?} {y:?}"),
        }
    }
}

#[test]
fn eegmmidb_run_round_trips() {
    let original = edf::read_recording(common::data_file("eegmmidb/S001/S001R04.edf")).unwrap();
    assert_eq!(original.annotations.len(), 30);
    let (_dir, back) = write_and_read(&original, &WriteOptions::default());
    assert_eq!(back.format, Format::EdfPlusC);
    assert_eq!(back.channels.len(), 64);
    assert_eq!(back.identity, original.identity);
    assert_same(&original, &back);
}

#[test]
fn deidentified_output_holds_no_identifying_text() {
    let mut original = edf::read_recording(common::data_file("eegmmidb/S001/S001R04.edf")).unwrap();
    original.identity = Identity {
        patient: "MCH-0234567 F 02-MAY-1951 Haagse_Harry".into(),
        recording: "Startdate 12-AUG-2009 EMG561 BK/JOP Sony. MNC R Median Nerve.".into(),
    };
    if let Some(s) = original.start.as_mut() {
        s.subsecond = 0.375;
    }
    let options = WriteOptions {
        deidentify: true,
        ..WriteOptions::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("anon.edf");
    write_edf(&path, &original, &options).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let header = &bytes[..256];
    for secret in [
        "MCH-0234567",
        "Haagse",
        "1951",
        "EMG561",
        "BK/JOP",
        "Sony",
        "Median",
        "12-AUG-2009",
        "12.08.09",
        "16.15.00",
    ] {
        let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
        assert!(!found, "{secret:?} found in the de-identified file");
    }
    assert_eq!(&header[8..15], b"X X X X");
    assert_eq!(&header[88..105], b"Startdate X X X X");
    assert_eq!(&header[168..184], b"01.01.8500.00.00");
    let back = edf::read_recording(&path).unwrap();
    let start = back.start.unwrap();
    assert_eq!(start.to_string(), "1985-01-01T00:00:00");
    assert_eq!(back.identity.patient_name(), None);
    assert_eq!(back.identity.birth_date(), None);
    // The signals and annotations are untouched.
    original.start = back.start;
    original.identity = back.identity.clone();
    assert_same(&original, &back);
}

fn synthetic(segments: &[(f64, usize)]) -> Recording {
    let records: usize = segments.iter().map(|s| s.1).sum();
    let channel = |label: &str, spr: usize, range: f64| Channel {
        label: label.into(),
        name: edf::labels::electrode_name(label).map(str::to_string),
        kind: ChannelKind::Eeg,
        unit: "uV".into(),
        transducer: "AgAgCl electrode".into(),
        prefilter: "HP:0.1Hz LP:75Hz".into(),
        sampling_rate_hz: spr as f64 / 0.5,
        samples_per_record: spr,
        samples: spr * records,
        physical_min: -range,
        physical_max: range,
        digital_min: -32768,
        digital_max: 32767,
    };
    let channels = vec![channel("C3", 64, 500.0), channel("Cz", 25, 3276.7)];
    let data = channels
        .iter()
        .map(|c| {
            (0..c.samples)
                .map(|k| (c.physical_max * 0.9 * (k as f64 * 0.37).sin()) as f32)
                .collect()
        })
        .collect();
    let mut first = 0;
    let segments = segments
        .iter()
        .map(|&(onset_s, n)| {
            first += n;
            Segment {
                onset_s,
                duration_s: n as f64 * 0.5,
                first_record: first - n,
                records: n,
            }
        })
        .collect();
    let annotation = |onset_s: f64, duration_s: Option<f64>, text: &str| Annotation {
        onset_s,
        duration_s,
        text: text.into(),
        past_end: false,
    };
    Recording {
        source: PathBuf::from("synthetic"),
        format: Format::EdfPlusD,
        start: Some(StartTime {
            year: 2091,
            month: 2,
            day: 28,
            hour: 23,
            minute: 59,
            second: 58,
            subsecond: 0.125,
        }),
        identity: Identity::default(),
        record_duration_s: 0.5,
        records,
        channels,
        data,
        bads: Vec::new(),
        annotations: vec![
            annotation(0.0, None, "start"),
            annotation(0.75, Some(0.5), "Spike"),
            annotation(0.75, None, "仰卧 (UTF-8)"),
            annotation(10.25, Some(1.0), "after the gap"),
        ],
        segments,
        warnings: Vec::new(),
    }
}

#[test]
fn gaps_round_trip_as_edf_plus_d() {
    let original = synthetic(&[(0.0, 3), (10.0, 4), (20.5, 1)]);
    let (_dir, back) = write_and_read(&original, &WriteOptions::default());
    assert_eq!(back.format, Format::EdfPlusD);
    assert_eq!(back.segments.len(), 3);
    for (a, b) in original.segments.iter().zip(&back.segments) {
        assert_eq!((a.first_record, a.records), (b.first_record, b.records));
    }
    assert_eq!(back.start.unwrap().year, 2091);
    assert_same(&original, &back);
}

#[test]
fn many_annotations_are_spread_over_records() {
    let mut original = synthetic(&[(0.0, 40)]);
    original.annotations = (0..200)
        .map(|k| Annotation {
            onset_s: 1.0 + k as f64 * 1e-3,
            duration_s: Some(0.001),
            text: format!("event {k}"),
            past_end: false,
        })
        .collect();
    let (dir, back) = write_and_read(&original, &WriteOptions::default());
    assert_same(&original, &back);
    let file = edf::open(dir.path().join("out.edf")).unwrap();
    let annotation_spr = file.header().signals.last().unwrap().samples_per_record;
    // All 200 in one record would need about 4 kB per record; spread, far less.
    assert!(annotation_spr * 2 < 1000, "{annotation_spr}");
}

#[test]
fn record_duration_can_change() {
    let original = edf::read_recording(common::data_file("eegmmidb/S001/S001R04.edf")).unwrap();
    let options = WriteOptions {
        record_duration_s: Some(0.5),
        ..WriteOptions::default()
    };
    let (_dir, back) = write_and_read(&original, &options);
    assert_eq!(back.records, original.records * 2);
    assert_eq!(back.record_duration_s, 0.5);
    assert_same(&original, &back);

    let dir = tempfile::tempdir().unwrap();
    let options = WriteOptions {
        record_duration_s: Some(0.3),
        ..WriteOptions::default()
    };
    let error = write_edf(dir.path().join("x.edf"), &original, &options).unwrap_err();
    assert!(matches!(error, EdfError::Write { .. }), "{error}");
}

#[test]
fn bdf_is_scaled_into_16_bits() {
    let original = edf::read_recording(common::data_file(
        "peer/pyedflib/pyedflib__tests__data__test_generator.bdf",
    ))
    .unwrap();
    let (_dir, back) = write_and_read(&original, &WriteOptions::default());
    assert_eq!(back.format, Format::EdfPlusC);
    for c in &back.channels {
        assert_eq!(
            (c.digital_min, c.digital_max),
            (-32768, 32767),
            "{}",
            c.label
        );
    }
    for (a, b) in original.channels.iter().zip(&back.channels) {
        assert_eq!(
            (a.physical_min, a.physical_max),
            (b.physical_min, b.physical_max)
        );
    }
    assert_same(&original, &back);
}

#[test]
fn bdf_output_keeps_24_bits_and_round_trips() {
    let original = edf::read_recording(common::data_file(
        "peer/pyedflib/pyedflib__tests__data__test_generator.bdf",
    ))
    .unwrap();
    let bdf = WriteOptions {
        bdf: true,
        ..WriteOptions::default()
    };
    let (dir, back) = write_and_read(&original, &bdf);
    assert_eq!(back.format, Format::BdfPlusC);
    for (a, b) in original.channels.iter().zip(&back.channels) {
        assert_eq!(
            (a.digital_min, a.digital_max),
            (b.digital_min, b.digital_max)
        );
    }
    assert_same(&original, &back);
    let bytes = std::fs::read(dir.path().join("out.edf")).unwrap();
    assert_eq!(&bytes[..8], b"\xffBIOSEMI");
}

#[test]
fn an_edf_run_written_as_bdf_reads_back_with_its_events() {
    let original = edf::read_recording(common::data_file("eegmmidb/S001/S001R04.edf")).unwrap();
    let bdf = WriteOptions {
        bdf: true,
        ..WriteOptions::default()
    };
    let (_dir, back) = write_and_read(&original, &bdf);
    assert_eq!(back.format, Format::BdfPlusC);
    assert_eq!(back.annotations.len(), 30);
    assert_same(&original, &back);
}

/// Every readable file of the shared data with data records, written and read back.
#[cfg_attr(not(shared_corpus), ignore = "needs the shared corpus")]
#[test]
fn every_shared_file_round_trips() {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("edf") || e.eq_ignore_ascii_case("bdf"))
            {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&common::shared_dir().join("data/peer"), &mut files);
    files.sort();
    let mut written = 0;
    for path in &files {
        let Ok(original) = edf::read_recording(path) else {
            continue;
        };
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.edf");
        write_edf(&out, &original, &WriteOptions::default())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let back = edf::read_recording(&out).unwrap();
        let mut expected = original.clone();
        if expected.start.is_none() {
            // No valid start date: written as the EDF+ unknown date, 01.01.85 00.00.00.
            assert_eq!(
                back.start.map(|s| s.to_string()).as_deref(),
                Some("1985-01-01T00:00:00")
            );
            expected.start = back.start;
        }
        assert_same(&expected, &back);
        written += 1;
    }
    assert!(written >= 30, "{written}");
}

#[test]
fn replaces_atomically_and_leaves_nothing_behind_on_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.edf");
    std::fs::write(&path, b"old contents").unwrap();
    let mut bad = synthetic(&[(0.0, 2)]);
    bad.data[1][7] = f32::NAN;
    let error = write_edf(&path, &bad, &WriteOptions::default()).unwrap_err();
    assert!(error.to_string().contains("NaN"), "{error}");
    assert_eq!(std::fs::read(&path).unwrap(), b"old contents");
    let good = synthetic(&[(0.0, 2)]);
    write_edf(&path, &good, &WriteOptions::default()).unwrap();
    assert!(edf::open(&path).is_ok());
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("run.edf")]);
}

#[test]
fn unwritable_recordings_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.edf");
    let mut long_label = synthetic(&[(0.0, 1)]);
    long_label.channels[0].label = "a label longer than sixteen".into();
    let mut huge_range = synthetic(&[(0.0, 1)]);
    huge_range.channels[0].physical_max = 1e12;
    let mut short_data = synthetic(&[(0.0, 1)]);
    short_data.data[0].pop();
    let mut overlapping = synthetic(&[(0.0, 2), (0.5, 1)]);
    overlapping.annotations.clear();
    let mut bad_text = synthetic(&[(0.0, 1)]);
    bad_text.annotations[0].text = "a\u{14}b".into();
    for bad in [long_label, huge_range, short_data, overlapping, bad_text] {
        let error = write_edf(&path, &bad, &WriteOptions::default()).unwrap_err();
        assert!(matches!(error, EdfError::Write { .. }), "{error}");
    }
    assert!(!path.exists());
}
