//! Every input in `tests/fuzz_regressions/` (crashers found by `examples/fuzz_edf.rs`, and
//! hand-made inputs of the same kinds) is opened and checked with the fuzzer's invariants: no
//! panic; an error names the file on one line; a file that opens decodes completely, with finite
//! record and annotation onsets and no NaN sample.

use std::path::{Path, PathBuf};

use eegadapt::edf;

fn regression_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e.eq_ignore_ascii_case("edf") || e.eq_ignore_ascii_case("bdf"))
        })
        .collect();
    files.sort();
    files
}

/// The checks of `examples/fuzz_edf.rs`, for one file.
fn check(path: &Path) {
    let shown = path.display().to_string();
    let file = match edf::open(path) {
        Ok(file) => file,
        Err(e) => {
            let message = e.to_string();
            assert!(
                message.contains(&shown),
                "error does not name the file: {message}"
            );
            assert!(!message.contains('\n'), "error spans lines: {message:?}");
            return;
        }
    };
    let records = file.records();
    for w in file.warnings() {
        assert!(!w.contains('\n'), "{shown}: warning spans lines: {w:?}");
    }
    assert_eq!(file.record_onsets().len(), records);
    assert!(
        file.record_onsets().iter().all(|o| o.is_finite()),
        "{shown}: non-finite record onset"
    );
    let mut next = 0;
    for s in file.segments() {
        assert_eq!(
            s.first_record, next,
            "{shown}: segments must tile the records"
        );
        next += s.records;
    }
    assert_eq!(next, records, "{shown}: segments must cover every record");
    for a in file.annotations() {
        assert!(a.onset_s.is_finite(), "{shown}: non-finite onset {a:?}");
    }
    for (i, c) in file.channels().iter().enumerate() {
        assert_eq!(c.samples, c.samples_per_record * records);
        let physical = file.read_physical(i, 0..c.samples).expect("read_physical");
        assert!(physical.iter().all(|v| !v.is_nan()), "{shown}: NaN sample");
    }
    let recording = file.to_recording().expect("to_recording");
    for (data, c) in recording.data.iter().zip(&recording.channels) {
        assert_eq!(data.len(), c.samples);
    }
}

#[test]
fn fuzz_regressions_never_panic() {
    let files = regression_files();
    assert!(!files.is_empty(), "tests/fuzz_regressions/ holds no inputs");
    for path in &files {
        let size = std::fs::metadata(path).expect("metadata").len();
        assert!(
            size < 64 * 1024,
            "{}: regression inputs stay under 64 KB",
            path.display()
        );
        if let Err(panic) = std::panic::catch_unwind(|| check(path)) {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{}: {message}", path.display());
        }
    }
}

/// The hand-made inputs fail for the reason they were written for.
#[test]
fn hand_made_inputs_give_their_errors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    let cases = [
        ("hand_tal_onset_overflow.edf", "out of range"),
        ("hand_scaling_overflow.edf", "cannot be scaled"),
        (
            "hand_label_control_chars.edf",
            "signal 2 (T3\\n\\0\\u{1b}[31m)",
        ),
        (
            "hand_subnormal_record_duration.edf",
            "infinite sampling rate",
        ),
    ];
    for (name, text) in cases {
        let error = edf::open(dir.join(name)).expect_err(name).to_string();
        assert!(
            error.contains(text),
            "{name}: {text:?} missing from {error}"
        );
        assert!(error.contains(name), "{name}: {error}");
    }
}
