//! Bad input never panics: each case takes a real file, corrupts it in one specific way, and
//! checks the outcome of both `edf::open` and `edf::read_recording`: an `EdfError` of the
//! expected variant whose one-line message names the file (and, for header fields, the field
//! and the offending value), or a successful read with the expected warning.
//!
//! A proptest at the end writes arbitrary bytes into the header fields of a small real file.

use crate::common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use eegadapt::edf::{self, EdfError, EdfFile};
use proptest::prelude::*;
use proptest::test_runner::Config;

/// PhysioNet EEGMMIDB S001R04: EDF+C, 64 EEG signals of 160 samples per 1 s record plus one
/// annotation signal of 80 samples, 125 records.
const S001R04: &str = "eegmmidb/S001/S001R04.edf";
const NS: usize = 65;
const HEADER_BYTES: usize = 256 * (NS + 1);
const RECORD_BYTES: usize = 64 * 160 * 2 + 80 * 2;
const RECORDS: usize = 125;
/// Offset and length of the annotation signal inside a data record.
const ANNOTATION: (usize, usize) = (64 * 160 * 2, 160);

/// A small EDF+C file (4 signals, 5 records of 1 s, 16 830 bytes) for the quick cases.
const SMALL: &str = "peer/mne-testing-data/EDF__subsecond_starttime.edf";

fn bytes_of(relative: &'static str) -> &'static [u8] {
    static S001: OnceLock<Vec<u8>> = OnceLock::new();
    static SMALL_FILE: OnceLock<Vec<u8>> = OnceLock::new();
    let cell = match relative {
        S001R04 => &S001,
        SMALL => &SMALL_FILE,
        _ => panic!("unexpected base file {relative}"),
    };
    cell.get_or_init(|| std::fs::read(common::data_file(relative)).expect("read base file"))
}

/// Fixed header fields as (offset, width).
const VERSION: (usize, usize) = (0, 8);
const START_DATE: (usize, usize) = (168, 8);
const HEADER_BYTES_FIELD: (usize, usize) = (184, 8);
const N_RECORDS: (usize, usize) = (236, 8);
const DURATION: (usize, usize) = (244, 8);
const NS_FIELD: (usize, usize) = (252, 4);

/// Per-signal columns (index into the widths below).
const LABEL: usize = 0;
const PHYSICAL_MIN: usize = 3;
const PHYSICAL_MAX: usize = 4;
const DIGITAL_MIN: usize = 5;
const DIGITAL_MAX: usize = 6;
const SAMPLES_PER_RECORD: usize = 8;
const SIGNAL_WIDTHS: [usize; 10] = [16, 80, 8, 8, 8, 8, 8, 80, 8, 32];

/// Offset and width of column `column` of signal `signal` in a header of `ns` signals.
fn signal_field(ns: usize, signal: usize, column: usize) -> (usize, usize) {
    let before: usize = SIGNAL_WIDTHS[..column].iter().sum();
    (
        256 + ns * before + signal * SIGNAL_WIDTHS[column],
        SIGNAL_WIDTHS[column],
    )
}

/// Writes `value` left-aligned and space-padded into a field (cut to the field's width).
fn set(bytes: &mut [u8], (offset, width): (usize, usize), value: &[u8]) {
    for (i, b) in bytes[offset..offset + width].iter_mut().enumerate() {
        *b = value.get(i).copied().unwrap_or(b' ');
    }
}

/// Writes `tal` at the start of record `record`'s annotation signal, NUL-padded.
fn set_tal(bytes: &mut [u8], record: usize, tal: &[u8]) {
    let start = HEADER_BYTES + record * RECORD_BYTES + ANNOTATION.0;
    let region = &mut bytes[start..start + ANNOTATION.1];
    for (i, b) in region.iter_mut().enumerate() {
        *b = tal.get(i).copied().unwrap_or(0);
    }
}

/// Which error is expected.
#[derive(Debug, Clone, Copy)]
enum Kind {
    NotEdf,
    Truncated,
    Annotation,
    /// A header field error naming this field (substring of `field`).
    Field(&'static str),
}

/// What one corrupted file must give.
enum Expect {
    /// An error of this kind whose message names the file and holds every given text.
    Err(Kind, &'static [&'static str]),
    /// A successful read with a warning holding the given text, plus a check of the result.
    Ok(&'static str, fn(&EdfFile)),
}

struct Case {
    name: &'static str,
    base: &'static str,
    corrupt: fn(&mut Vec<u8>),
    expect: Expect,
}

fn kind_matches(kind: Kind, error: &EdfError) -> bool {
    match (kind, error) {
        (Kind::NotEdf, EdfError::NotEdf { .. }) => true,
        (Kind::Truncated, EdfError::Truncated { .. }) => true,
        (Kind::Annotation, EdfError::Annotation { .. }) => true,
        (Kind::Field(name), EdfError::Field { field, .. }) => field.contains(name),
        _ => false,
    }
}

fn records_all_read(file: &EdfFile) {
    assert_eq!(file.records(), RECORDS);
}

fn cases() -> Vec<Case> {
    use Expect::{Err, Ok};
    use Kind::*;
    vec![
        Case {
            name: "empty file",
            base: SMALL,
            corrupt: |b| b.clear(),
            expect: Err(Truncated, &["empty"]),
        },
        Case {
            name: "100-byte file",
            base: SMALL,
            corrupt: |b| b.truncate(100),
            expect: Err(Truncated, &["100 bytes", "256-byte fixed header"]),
        },
        Case {
            name: "a PNG image",
            base: SMALL,
            corrupt: |b| {
                *b = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
                b.resize(600, 0x42);
            },
            expect: Err(NotEdf, &["version field", "\\u{89}PNG"]),
        },
        Case {
            name: "a text file",
            base: SMALL,
            corrupt: |b| *b = "Subject 1, eyes open.\n".repeat(40).into_bytes(),
            expect: Err(NotEdf, &["version field", "Subject"]),
        },
        Case {
            name: "version field garbage",
            base: S001R04,
            corrupt: |b| set(b, VERSION, b"XYZ"),
            expect: Err(NotEdf, &["version field", "XYZ"]),
        },
        Case {
            name: "ns = 0",
            base: S001R04,
            corrupt: |b| set(b, NS_FIELD, b"0"),
            expect: Err(Field("ns"), &["`ns`", "\"0   \"", "at least one signal"]),
        },
        Case {
            name: "ns = -3",
            base: S001R04,
            corrupt: |b| set(b, NS_FIELD, b"-3"),
            expect: Err(Field("ns"), &["`ns`", "-3"]),
        },
        Case {
            name: "ns = abc",
            base: S001R04,
            corrupt: |b| set(b, NS_FIELD, b"abc"),
            expect: Err(Field("ns"), &["`ns`", "abc", "not an integer"]),
        },
        Case {
            // 9999 signal headers would fit in S001R04's 2.6 MB, so the disagreement shows in
            // header_bytes; the message names both.
            name: "ns = 9999 in a large file",
            base: S001R04,
            corrupt: |b| set(b, NS_FIELD, b"9999"),
            expect: Err(Field("header_bytes"), &["16896", "ns = 9999"]),
        },
        Case {
            name: "ns = 9999 in a small file",
            base: SMALL,
            corrupt: |b| set(b, NS_FIELD, b"9999"),
            expect: Err(Field("ns"), &["`ns`", "9999", "16830"]),
        },
        Case {
            name: "header_bytes disagrees with ns",
            base: S001R04,
            corrupt: |b| set(b, HEADER_BYTES_FIELD, b"16640"),
            expect: Err(Field("header_bytes"), &["`header_bytes`", "16640", "16896"]),
        },
        Case {
            name: "header_bytes not a number",
            base: S001R04,
            corrupt: |b| set(b, HEADER_BYTES_FIELD, b"lots"),
            expect: Err(Field("header_bytes"), &["lots", "not an integer"]),
        },
        Case {
            name: "n_records = -5",
            base: S001R04,
            corrupt: |b| set(b, N_RECORDS, b"-5"),
            expect: Err(Field("n_records"), &["`n_records`", "-5", "negative"]),
        },
        Case {
            name: "n_records = abc",
            base: S001R04,
            corrupt: |b| set(b, N_RECORDS, b"abc"),
            expect: Err(Field("n_records"), &["`n_records`", "abc"]),
        },
        Case {
            name: "n_records = -1 (unknown): counted from the file size",
            base: S001R04,
            corrupt: |b| set(b, N_RECORDS, b"-1"),
            expect: Ok("-1 data records", records_all_read),
        },
        Case {
            name: "n_records = -1 with a partial record",
            base: S001R04,
            corrupt: |b| {
                set(b, N_RECORDS, b"-1");
                b.truncate(HEADER_BYTES + 100 * RECORD_BYTES + 999);
            },
            expect: Ok("999 bytes of a partial data record", |f| {
                assert_eq!(f.records(), 100)
            }),
        },
        Case {
            name: "data cut in the middle of record 101: complete records read",
            base: S001R04,
            corrupt: |b| b.truncate(HEADER_BYTES + 100 * RECORD_BYTES + RECORD_BYTES / 2),
            expect: Ok(
                "100 complete records and 10320 bytes of a partial one",
                |f| {
                    assert_eq!(f.records(), 100);
                    assert_eq!(f.channels()[0].samples, 100 * 160);
                    assert_eq!(f.segments().iter().map(|s| s.records).sum::<usize>(), 100);
                },
            ),
        },
        Case {
            name: "n_records one more than the file holds",
            base: S001R04,
            corrupt: |b| set(b, N_RECORDS, b"126"),
            expect: Ok("file truncated: header announces 126", records_all_read),
        },
        Case {
            name: "n_records much larger than the file holds",
            base: S001R04,
            corrupt: |b| set(b, N_RECORDS, b"99999999"),
            expect: Ok("header announces 99999999 data records", records_all_read),
        },
        Case {
            name: "n_records announced, not even one record in the file",
            base: S001R04,
            corrupt: |b| b.truncate(HEADER_BYTES + RECORD_BYTES / 3),
            expect: Err(Truncated, &["`n_records`", "125", "none complete"]),
        },
        Case {
            name: "file cut in the middle of the signal headers",
            base: S001R04,
            corrupt: |b| b.truncate(256 + NS * 100),
            expect: Err(Field("ns"), &["`ns`", "65", "6756"]),
        },
        Case {
            name: "samples_per_record = 0",
            base: S001R04,
            corrupt: |b| set(b, signal_field(NS, 3, SAMPLES_PER_RECORD), b"0"),
            expect: Err(
                Field("samples_per_record"),
                &["signal 3 (Fcz.) samples_per_record", "\"0       \""],
            ),
        },
        Case {
            name: "samples_per_record negative",
            base: S001R04,
            corrupt: |b| set(b, signal_field(NS, 3, SAMPLES_PER_RECORD), b"-160"),
            expect: Err(Field("samples_per_record"), &["signal 3", "-160"]),
        },
        Case {
            name: "samples_per_record not a number",
            base: S001R04,
            corrupt: |b| set(b, signal_field(NS, 3, SAMPLES_PER_RECORD), b"1x0"),
            expect: Err(Field("samples_per_record"), &["signal 3", "1x0"]),
        },
        Case {
            name: "samples_per_record absurd",
            base: S001R04,
            corrupt: |b| set(b, signal_field(NS, 3, SAMPLES_PER_RECORD), b"99999999"),
            expect: Err(
                Field("signal 3 (Fcz.) samples_per_record"),
                &["99999999", "199999998 bytes"],
            ),
        },
        Case {
            name: "samples_per_record summing past the file size",
            base: SMALL,
            corrupt: |b| {
                for i in 0..4 {
                    set(b, signal_field(4, i, SAMPLES_PER_RECORD), b"4000");
                }
            },
            expect: Err(Field("sum over signals"), &["4000,4000,4000,4000"]),
        },
        Case {
            name: "physical_min not a number",
            base: S001R04,
            corrupt: |b| set(b, signal_field(NS, 3, PHYSICAL_MIN), b"-8092,5"),
            expect: Err(
                Field("physical_min"),
                &[
                    "signal 3 (Fcz.) physical_min",
                    "-8092,5",
                    "not a finite number",
                ],
            ),
        },
        Case {
            name: "physical_max NaN",
            base: S001R04,
            corrupt: |b| set(b, signal_field(NS, 3, PHYSICAL_MAX), b"NaN"),
            expect: Err(Field("physical_max"), &["NaN", "not a finite number"]),
        },
        Case {
            name: "physical range that overflows the scaling",
            base: S001R04,
            corrupt: |b| {
                set(b, signal_field(NS, 3, PHYSICAL_MIN), b"-8e307");
                set(b, signal_field(NS, 3, PHYSICAL_MAX), b"8e307");
                set(b, signal_field(NS, 3, DIGITAL_MIN), b"-32768");
                set(b, signal_field(NS, 3, DIGITAL_MAX), b"-32767");
            },
            expect: Err(Field("physical_max"), &["8e307", "cannot be scaled"]),
        },
        Case {
            name: "digital_min outside the 16-bit range",
            base: S001R04,
            corrupt: |b| set(b, signal_field(NS, 3, DIGITAL_MIN), b"-40000"),
            expect: Err(
                Field("digital_min"),
                &["signal 3 (Fcz.) digital_min", "-40000", "16-bit"],
            ),
        },
        Case {
            name: "record duration negative",
            base: S001R04,
            corrupt: |b| set(b, DURATION, b"-1"),
            expect: Err(
                Field("record_duration"),
                &["`record_duration`", "-1", "negative"],
            ),
        },
        Case {
            name: "record duration not a number",
            base: S001R04,
            corrupt: |b| set(b, DURATION, b"one"),
            expect: Err(Field("record_duration"), &["one"]),
        },
        Case {
            name: "record duration 0 with data signals",
            base: S001R04,
            corrupt: |b| set(b, DURATION, b"0.0"),
            expect: Err(
                Field("record_duration"),
                &["\"0.0     \"", "annotation-only"],
            ),
        },
        Case {
            name: "record duration so small the rate is infinite",
            base: S001R04,
            corrupt: |b| set(b, DURATION, b"1e-320"),
            expect: Err(
                Field("record_duration"),
                &["1e-320", "infinite sampling rate"],
            ),
        },
        Case {
            name: "record duration so large the time axis overflows",
            base: S001R04,
            corrupt: |b| set(b, DURATION, b"1e307"),
            expect: Err(Field("record_duration"), &["overflow"]),
        },
        Case {
            name: "TAL onset without sign",
            base: S001R04,
            corrupt: |b| set_tal(b, 7, b"7\x14\x14\0"),
            expect: Err(
                Annotation,
                &[
                    "annotation signal 64, data record 7",
                    "does not start with '+'",
                ],
            ),
        },
        Case {
            name: "TAL without its 0x14 terminator",
            base: S001R04,
            corrupt: |b| set_tal(b, 2, b"+2\x14\x14\0+2.5\x154.2\x14T1"),
            expect: Err(Annotation, &["data record 2", "0x14"]),
        },
        Case {
            name: "TAL duration not a number",
            base: S001R04,
            corrupt: |b| set_tal(b, 3, b"+3\x14\x14\0+3\x15four\x14T2\x14\0"),
            expect: Err(Annotation, &["data record 3", "four"]),
        },
        Case {
            name: "label with a newline (found by fuzzing) stays on one line",
            base: S001R04,
            corrupt: |b| {
                set(b, signal_field(NS, 3, LABEL), b"Fc\nz.");
                set(b, signal_field(NS, 3, SAMPLES_PER_RECORD), b"0");
            },
            expect: Err(Field("samples_per_record"), &["signal 3 (Fc\\nz.)"]),
        },
        Case {
            name: "numeric fields with leading spaces",
            base: S001R04,
            corrupt: |b| {
                set(b, N_RECORDS, b"  125");
                set(b, signal_field(NS, 3, SAMPLES_PER_RECORD), b" 160");
            },
            expect: Ok("leading spaces", |f| {
                records_all_read(f);
                assert_eq!(f.channels()[3].samples_per_record, 160);
            }),
        },
        Case {
            name: "start date 42.00.00",
            base: S001R04,
            corrupt: |b| set(b, START_DATE, b"42.00.00"),
            expect: Ok("out of range; start time unknown", |f| {
                assert!(f.start().is_none());
                records_all_read(f);
            }),
        },
        Case {
            name: "one trailing byte",
            base: S001R04,
            corrupt: |b| b.push(0),
            expect: Ok("1 bytes after the 125 data records", records_all_read),
        },
        Case {
            name: "degenerate digital range",
            base: S001R04,
            corrupt: |b| set(b, signal_field(NS, 3, DIGITAL_MAX), b"-8092"),
            expect: Ok("degenerate range", records_all_read),
        },
    ]
}

/// Checks one error: kind, file path, the expected texts, one line.
fn check_error(case: &str, path: &Path, kind: Kind, texts: &[&str], error: &EdfError) {
    let message = error.to_string();
    assert!(
        kind_matches(kind, error),
        "{case}: expected {kind:?}, got {error:?}"
    );
    assert!(
        message.contains(&path.display().to_string()),
        "{case}: message does not name the file: {message}"
    );
    assert!(
        !message.contains('\n'),
        "{case}: message spans lines: {message:?}"
    );
    for text in texts {
        assert!(
            message.contains(text),
            "{case}: {text:?} missing from: {message}"
        );
    }
    if let EdfError::Field { field, value, .. } = error {
        assert!(message.contains(&format!("`{field}`")), "{case}: {message}");
        assert!(
            !value.is_empty() || message.contains("\"\""),
            "{case}: {message}"
        );
    }
}

fn check_ok(case: &str, warning: &str, warnings: &[String]) {
    assert!(
        warnings.iter().any(|w| w.contains(warning)),
        "{case}: no warning containing {warning:?} in {warnings:#?}"
    );
}

#[test]
fn corrupted_files_give_the_expected_outcome() {
    let dir = tempfile::TempDir::new().expect("temp dir");
    for (i, case) in cases().into_iter().enumerate() {
        let mut bytes = bytes_of(case.base).to_vec();
        (case.corrupt)(&mut bytes);
        let path: PathBuf = dir.path().join(format!("case{i:02}.edf"));
        std::fs::write(&path, &bytes).expect("write case");
        let opened = edf::open(&path);
        let read = edf::read_recording(&path);
        match (&case.expect, opened, read) {
            (Expect::Err(kind, texts), Err(e), Err(r)) => {
                check_error(case.name, &path, *kind, texts, &e);
                check_error(case.name, &path, *kind, texts, &r);
            }
            (Expect::Ok(warning, check), Ok(file), Ok(recording)) => {
                check_ok(case.name, warning, file.warnings());
                check_ok(case.name, warning, &recording.warnings);
                check(&file);
                assert_eq!(recording.records, file.records(), "{}", case.name);
                for (data, channel) in recording.data.iter().zip(&recording.channels) {
                    assert_eq!(data.len(), channel.samples, "{}", case.name);
                }
            }
            (_, opened, read) => panic!(
                "{}: unexpected outcome: open {:?}, read_recording {:?}",
                case.name,
                opened.map(|f| f.warnings().to_vec()),
                read.map(|r| r.warnings)
            ),
        }
    }
}

/// The published file with one byte too many and date "42.00.00" (EDF.jl's test data) reads
/// with both warnings.
#[test]
fn peer_file_with_trailing_byte_and_bad_date() {
    let path = common::data_file("peer/EDF.jl/test__data__test_uneven_samp__plus1byte.edf");
    let file = edf::open(&path).expect("open");
    assert!(file.start().is_none());
    check_ok("plus1byte", "1 bytes after", file.warnings());
    check_ok("plus1byte", "out of range", file.warnings());
    assert_eq!(file.records(), 11);
}

/// Every numeric or text header field of the small file, as (offset, width).
fn small_fields() -> Vec<(usize, usize)> {
    let mut fields = vec![
        VERSION,
        START_DATE,
        (176, 8),
        HEADER_BYTES_FIELD,
        (192, 44),
        N_RECORDS,
        DURATION,
        NS_FIELD,
    ];
    for signal in 0..4 {
        for column in [
            LABEL,
            PHYSICAL_MIN,
            PHYSICAL_MAX,
            DIGITAL_MIN,
            DIGITAL_MAX,
            SAMPLES_PER_RECORD,
        ] {
            fields.push(signal_field(4, signal, column));
        }
    }
    fields
}

/// Bytes for a field: arbitrary, or drawn from the characters numbers are made of.
fn field_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..=16),
        prop::collection::vec(
            prop::sample::select(b"0123456789+-. eE\0\x14naifN".to_vec()),
            0..=10
        ),
    ]
}

proptest! {
    #![proptest_config(Config { cases: 256, failure_persistence: None, ..Config::default() })]

    /// Arbitrary bytes in up to four header fields, and maybe a cut: never a panic; errors name
    /// the file on one line; a file that opens decodes completely.
    #[test]
    fn arbitrary_header_fields_never_panic(
        edits in prop::collection::vec((any::<prop::sample::Index>(), field_bytes()), 1..=4),
        cut in prop::option::weighted(0.2, any::<prop::sample::Index>()),
    ) {
        let fields = small_fields();
        let mut bytes = bytes_of(SMALL).to_vec();
        for (field, value) in &edits {
            set(&mut bytes, *field.get(&fields), value);
        }
        if let Some(cut) = cut {
            let at = cut.index(bytes.len());
            bytes.truncate(at);
        }
        let dir = tempfile::TempDir::new().expect("temp dir");
        let path = dir.path().join("mutated.edf");
        std::fs::write(&path, &bytes).expect("write");
        match edf::read_recording(&path) {
            Err(e) => {
                let message = e.to_string();
                prop_assert!(message.contains(&path.display().to_string()), "{}", message);
                prop_assert!(!message.contains('\n'), "{:?}", message);
            }
            Ok(recording) => {
                for (data, channel) in recording.data.iter().zip(&recording.channels) {
                    prop_assert_eq!(data.len(), channel.samples_per_record * recording.records);
                    prop_assert!(data.iter().all(|v| !v.is_nan()));
                }
                let segment_records: usize = recording.segments.iter().map(|s| s.records).sum();
                prop_assert_eq!(segment_records, recording.records);
            }
        }
    }
}
