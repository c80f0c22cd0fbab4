//! Differential test against `edfplus` 0.1.0, an independent EDF+C decoder.
//!
//! Every EDF+C file of the shared data (first byte not 0xFF, bytes 192..197 `EDF+C`) is decoded
//! by both readers: all samples of every channel (`EdfFile::read_physical` against
//! `read_physical_samples`), the start date, time and sub-second start, and the annotations.
//!
//! What was found (43 eegmmidb and 36 peer files; edfplus opened all of them):
//! - Samples agree to 3e-16 of the physical range (the two scale formulas round differently),
//!   except where a file stores digital values outside its own digital range: edfplus clamps
//!   them to `digital_min..=digital_max` (as EDFlib does), we decode them as stored (as MNE and
//!   pyedflib do; see tests/conformance.rs). mne-python's test.edf (173,595 such samples) and
//!   mne-testing-data's test_reduced.edf (158,176) declare digital 0..100 but hold wider values.
//!   There, edfplus's value is checked against ours with the digital value clamped.
//! - Annotations: same count, texts, onsets within 1e-6 s, durations within 100 ns, on every
//!   file. edfplus truncates times to 100 ns (`(seconds * 1e7) as i64`), so 0.77126 s becomes
//!   0.7712599 s (sample_ecog.edf's sub-second start).
//! - Time-keeping offset: edfplus subtracts only the fractional part of the first record's
//!   time-keeping onset from annotation onsets (`starttime_subsecond = onset % 1 s`); we
//!   subtract the whole onset, so that onsets count from the first data record. The two differ
//!   by `floor(first onset)` seconds. The EDF+ specification keeps that onset below one second
//!   (the header start is the first record's start, truncated to the second), so no file here
//!   shows it; `time_keeping_offset_beyond_one_second` builds one and checks the difference.
//! - Not exercised by these files, read from edfplus's source: it drops the rest of a record's
//!   annotations after a TAL with several texts, after a time-keeping TAL that carries a text,
//!   or after a negative onset; it drops a record's annotations unless the annotation signal's
//!   last byte is NUL, and all of a file's annotations when record onsets are not contiguous.
//!   We read all of these.
//!
//! `edfplus_reads_what_we_write` checks the writer the other way round.

use crate::common;

use std::path::{Path, PathBuf};

use eegadapt::edf::writer::{write_edf, WriteOptions};
use eegadapt::edf::{self, EdfFile};

/// edfplus keeps times as i64 in units of 100 ns (its types.rs, `EDFLIB_TIME_DIMENSION`).
const UNITS_PER_S: f64 = 1e7;

/// Every EDF+C file (16-bit: first byte not 0xFF) under the shared data folder.
fn edf_plus_c_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("data folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                let mut head = [0_u8; 256];
                let ok = std::fs::File::open(&path)
                    .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
                    .is_ok();
                if ok && head[0] != 0xFF && &head[192..197] == b"EDF+C" {
                    out.push(path);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(&common::shared_dir().join("data"), &mut out);
    out.sort();
    out
}

/// Onset of the first TAL of record 0 in the first annotation signal (the time-keeping TAL).
fn first_time_keeping(file: &EdfFile) -> f64 {
    let header = file.header();
    let Some(&signal) = header.annotation_signals().first() else {
        return 0.0;
    };
    let bytes = std::fs::read(file.path()).expect("read");
    let offset = header.header_bytes
        + header.signals[..signal]
            .iter()
            .map(|s| s.samples_per_record * 2)
            .sum::<usize>();
    let len = header.signals[signal].samples_per_record * 2;
    let tals = edf::tal::parse_record(&bytes[offset..offset + len]).expect("TAL");
    tals.tals.first().map_or(0.0, |t| t.onset)
}

/// Compares one file; returns the number of samples edfplus clamped.
fn compare(path: &Path, theirs: &mut edfplus::EdfReader) -> usize {
    let name = path.display();
    let ours = edf::open(path).unwrap_or_else(|e| panic!("{e}"));
    let (start, subsecond, records) = {
        let h = theirs.header();
        (
            format!("{}T{}", h.start_date, h.start_time),
            h.starttime_subsecond,
            h.datarecords_in_file,
        )
    };
    assert_eq!(ours.records() as i64, records, "{name}");
    let our_start = ours.start().expect("start");
    let mut whole = our_start;
    whole.subsecond = 0.0;
    assert_eq!(whole.to_string(), start, "{name}");
    // edfplus truncates the sub-second start to 100 ns.
    let expected = (our_start.subsecond * UNITS_PER_S + 1e-6).floor() as i64;
    assert!((expected - subsecond).abs() <= 1, "{name}: {subsecond}");

    let channels = ours.channels();
    assert_eq!(channels.len(), theirs.header().signals.len(), "{name}");
    let mut clamped = 0;
    for (i, c) in channels.iter().enumerate() {
        let (label, count) = {
            let s = &theirs.header().signals[i];
            (s.label.clone(), s.samples_in_file)
        };
        assert_eq!(c.label.trim(), label, "{name}");
        assert_eq!(c.samples as i64, count, "{name} {label}");
        let x = ours.read_physical(i, 0..c.samples).unwrap();
        let y = theirs.read_physical_samples(i, c.samples).unwrap();
        assert_eq!(x.len(), y.len(), "{name} {label}");
        let digital = ours.read_digital(i, 0..c.samples).unwrap();
        let (gain, offset) = c.scaling();
        let (lo, hi) = (
            c.digital_min.min(c.digital_max),
            c.digital_min.max(c.digital_max),
        );
        let tolerance = 1e-9 * (c.physical_max - c.physical_min).abs();
        for (k, ((&a, &b), &d)) in x.iter().zip(&y).zip(&digital).enumerate() {
            let a = if (lo..=hi).contains(&d) {
                a
            } else {
                clamped += 1;
                gain * f64::from(d.clamp(lo, hi)) + offset
            };
            assert!(
                (a - b).abs() <= tolerance,
                "{name} {label} sample {k}: {a} vs {b}"
            );
        }
    }

    // Our onsets count from the first record; edfplus's from the header start plus the
    // fractional part of the first record's onset.
    let shift = first_time_keeping(&ours).floor();
    let key =
        |a: &(f64, i64, String), b: &(f64, i64, String)| a.0.total_cmp(&b.0).then(a.2.cmp(&b.2));
    let mut o: Vec<(f64, i64, String)> = ours
        .annotations()
        .iter()
        .map(|a| {
            let duration = a
                .duration_s
                .map_or(-1, |d| (d * UNITS_PER_S).round() as i64);
            (a.onset_s + shift, duration, a.text.clone())
        })
        .collect();
    let mut t: Vec<(f64, i64, String)> = theirs
        .annotations()
        .iter()
        .map(|a| {
            (
                a.onset as f64 / UNITS_PER_S,
                a.duration,
                a.description.clone(),
            )
        })
        .collect();
    o.sort_by(key);
    t.sort_by(key);
    assert_eq!(o.len(), t.len(), "{name}: annotation count");
    for (a, b) in o.iter().zip(&t) {
        assert!((a.0 - b.0).abs() < 1e-6, "{name}: {a:?} vs {b:?}");
        assert!((a.1 - b.1).abs() <= 1, "{name}: {a:?} vs {b:?}");
        assert_eq!(a.2, b.2, "{name}");
    }
    clamped
}

#[cfg_attr(not(shared_corpus), ignore = "needs the shared corpus")]
#[test]
fn agrees_with_edfplus_on_edf_plus_c_files() {
    let files = edf_plus_c_files();
    let data = common::shared_dir().join("data");
    let (mut eegmmidb, mut peer, mut skipped) = (0, 0, Vec::new());
    let mut clamped = Vec::new();
    for path in &files {
        let mut theirs = match edfplus::EdfReader::open(path) {
            Ok(r) => r,
            Err(e) => {
                skipped.push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        let n = compare(path, &mut theirs);
        let relative = path.strip_prefix(&data).unwrap_or(path);
        if n > 0 {
            clamped.push((relative.display().to_string(), n));
        }
        if relative.starts_with("eegmmidb") {
            eegmmidb += 1;
        } else {
            peer += 1;
        }
    }
    eprintln!("compared {eegmmidb} eegmmidb and {peer} peer files; edfplus refused {skipped:?}");
    eprintln!("samples edfplus clamped to the digital range: {clamped:?}");
    let eegmmidb_files = files
        .iter()
        .filter(|p| {
            p.strip_prefix(&data)
                .is_ok_and(|r| r.starts_with("eegmmidb"))
        })
        .count();
    assert!(eegmmidb_files >= 36, "{eegmmidb_files}");
    assert_eq!(eegmmidb, eegmmidb_files, "every eegmmidb file compared");
    assert!(peer >= 10, "{peer} peer files compared");
}

/// A file whose first record starts 3.5 s after the header time (outside the specification's
/// sub-second range): we count onsets from the first record, edfplus from the header start
/// plus 0.5 s, so its onsets are 3 s later.
#[cfg_attr(not(shared_corpus), ignore = "needs the shared corpus")]
#[test]
fn time_keeping_offset_beyond_one_second() {
    let mut recording =
        edf::read_recording(common::data_file("eegmmidb/S001/S001R01.edf")).unwrap();
    recording.start.as_mut().expect("start").subsecond = 0.5;
    recording.annotations.truncate(1);
    recording.annotations[0].onset_s = 2.25;
    // Keep 6 records so that every time-keeping onset stays one digit after the shift.
    for x in &mut recording.data {
        x.truncate(6 * 160);
    }
    recording.segments.truncate(1);
    recording.segments[0].records = 6;
    recording.segments[0].duration_s = 6.0;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shifted.edf");
    write_edf(&path, &recording, &WriteOptions::default()).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let file = edf::open(&path).unwrap();
    let header = file.header();
    let record_bytes: usize = header
        .signals
        .iter()
        .map(|s| s.samples_per_record * 2)
        .sum();
    let tal_offset = record_bytes - header.signals[64].samples_per_record * 2;
    for r in 0..6 {
        let at = header.header_bytes + r * record_bytes + tal_offset;
        assert_eq!(&bytes[at..at + 5], format!("+{r}.5\x14").as_bytes());
        bytes[at + 1] += 3;
    }
    std::fs::write(&path, &bytes).unwrap();
    let ours = edf::open(&path).unwrap();
    assert_eq!(first_time_keeping(&ours), 3.5);
    assert_eq!(ours.start().unwrap().subsecond, 0.0);
    assert!((ours.annotations()[0].onset_s - (2.75 - 3.5)).abs() < 1e-9);
    let theirs = edfplus::EdfReader::open(&path).unwrap();
    assert_eq!(theirs.header().starttime_subsecond, 5_000_000);
    assert_eq!(theirs.annotations()[0].onset, 22_500_000);
}

/// Our writer's output, read by edfplus: the same digital samples, annotations and start.
#[test]
fn edfplus_reads_what_we_write() {
    let source = common::data_file("eegmmidb/S001/S001R04.edf");
    let mut recording = edf::read_recording(&source).unwrap();
    recording.start.as_mut().expect("start").subsecond = 0.125;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("written.edf");
    write_edf(&path, &recording, &WriteOptions::default()).unwrap();
    let original = edf::open(&source).unwrap();
    let mut theirs = edfplus::EdfReader::open(&path).unwrap();
    assert_eq!(theirs.header().starttime_subsecond, 1_250_000);
    assert_eq!(theirs.header().signals.len(), 64);
    for (i, c) in original.channels().iter().enumerate() {
        let ours = original.read_digital(i, 0..c.samples).unwrap();
        let written = theirs.read_digital_samples(i, c.samples).unwrap();
        assert_eq!(ours, written, "{}", c.label);
    }
    let annotations = theirs.annotations();
    assert_eq!(annotations.len(), recording.annotations.len());
    for (a, b) in recording.annotations.iter().zip(annotations) {
        assert!((a.onset_s - b.onset as f64 / UNITS_PER_S).abs() < 1e-6);
        assert_eq!(a.text, b.description);
    }
}

/// Ranges that start and end inside data records, across channels of different rates: ours
/// against edfplus's `seek` + `read_physical_samples`.
#[cfg_attr(not(shared_corpus), ignore = "needs the shared corpus")]
#[test]
fn partial_ranges_agree_with_edfplus() {
    for relative in [
        "eegmmidb/S001/S001R04.edf",
        "peer/mne-testing-data/EDF__test_generator_2.edf",
        "peer/mne-misc-data/ecog__sample_ecog.edf",
    ] {
        let path = common::data_file(relative);
        let ours = edf::open(&path).unwrap();
        let mut theirs = edfplus::EdfReader::open(&path).unwrap();
        for (i, c) in ours.channels().iter().enumerate() {
            let n = c.samples;
            let spr = c.samples_per_record;
            for (start, len) in [
                (0, 1),
                (1, spr),
                (spr - 1, 2),
                (spr / 2, 3 * spr + 7),
                (n - spr - 3, spr + 3),
                (n / 3, n / 3),
            ] {
                let x = ours.read_physical(i, start..start + len).unwrap();
                let mut y = vec![0_f32; len];
                ours.read_physical_f32_into(i, start..start + len, &mut y)
                    .unwrap();
                theirs.seek(i, start as i64).unwrap();
                let z = theirs.read_physical_samples(i, len).unwrap();
                assert_eq!(x.len(), z.len(), "{relative} {i} {start}+{len}");
                let range = (c.physical_max - c.physical_min).abs();
                for k in 0..len {
                    assert!(
                        (x[k] - z[k]).abs() <= 1e-9 * range,
                        "{relative} {i} {start}+{k}"
                    );
                    assert!(
                        (f64::from(y[k]) - x[k]).abs() <= 1e-6 * range,
                        "{relative} {i} {start}+{k}"
                    );
                }
            }
        }
    }
}
