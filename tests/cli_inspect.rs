//! `eegadapt inspect` driven through the real binary.

use crate::common;

use std::process::{Command, Output};

use serde_json::Value;

fn eegadapt(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eegadapt"))
        .args(args)
        .output()
        .expect("run eegadapt")
}

fn json_lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

fn reference(relative_json: &str) -> Value {
    let path = common::reference_file(relative_json);
    serde_json::from_str(&std::fs::read_to_string(path).expect("reference")).expect("json")
}

#[test]
fn eegmmidb_run_is_edf_plus_c_with_64_eeg_signals_and_its_annotations() {
    let file = common::data_file("eegmmidb/S001/S001R04.edf");
    let out = eegadapt(&["inspect", "--json", file.to_str().expect("utf8 path")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reports = json_lines(&out);
    assert_eq!(reports.len(), 1);
    let r = &reports[0];
    let expected = reference("eegmmidb/S001/S001R04.edf.json");
    assert_eq!(r["format"], "EDF+C");
    let signals = r["signals"].as_array().expect("signals");
    assert_eq!(signals.len(), 64);
    assert!(signals
        .iter()
        .all(|s| s["kind"] == "eeg" && s["sampling_rate_hz"] == 160.0));
    assert_eq!(signals[8]["label"], "C3..");
    assert_eq!(signals[8]["name"], "C3");
    let annotations = r["annotations"].as_array().expect("annotations");
    assert_eq!(annotations.len(), 30);
    assert_eq!(
        annotations.len(),
        expected["mne"]["annotations"]
            .as_array()
            .expect("mne")
            .len()
    );
    assert_eq!(r["duration_s"], expected["pyedflib"]["file_duration_s"]);
    assert_eq!(r["segments"].as_array().expect("segments").len(), 1);
    for key in [
        "file",
        "format",
        "duration_s",
        "segments",
        "signals",
        "annotations",
        "warnings",
    ] {
        assert!(r.get(key).is_some(), "missing key {key}");
    }
}

#[test]
fn discontinuous_files_report_segments_and_gaps() {
    let nk = common::data_file("peer/mne-testing-data/NihonKohden__MB0400FU.EDF");
    let merged = common::data_file("peer/EDF.jl/test__data__test_merged.edf");
    let out = eegadapt(&[
        "inspect",
        "--json",
        nk.to_str().expect("utf8"),
        merged.to_str().expect("utf8"),
    ]);
    assert!(out.status.success());
    let reports = json_lines(&out);
    assert_eq!(reports[0]["format"], "EDF+D");
    // MB0400FU is EDF+D but its 29 records are contiguous: one segment, no gap.
    assert_eq!(
        reports[0]["segments"].as_array().expect("segments").len(),
        1
    );
    assert_eq!(reports[0]["gaps"].as_array().expect("gaps").len(), 0);
    assert_eq!(reports[1]["format"], "EDF+D");
    let segments = reports[1]["segments"].as_array().expect("segments");
    assert_eq!(segments.len(), 2);
    let gaps = reports[1]["gaps"].as_array().expect("gaps");
    assert_eq!(gaps.len(), 1);
    let gap_end = gaps[0]["onset_s"].as_f64().expect("onset")
        + gaps[0]["duration_s"].as_f64().expect("duration");
    assert_eq!(gap_end, segments[1]["onset_s"].as_f64().expect("onset"));
}

#[test]
fn identity_is_withheld_unless_asked_for() {
    let nk = common::data_file("peer/mne-testing-data/NihonKohden__MB0400FU.EDF");
    let path = nk.to_str().expect("utf8");
    let header = std::fs::read(&nk).expect("read");
    let patient = String::from_utf8_lossy(&header[8..88]).trim().to_string();
    let name = patient
        .split(' ')
        .nth(3)
        .expect("EDF+ patient name subfield")
        .to_string();
    let birth = patient
        .split(' ')
        .nth(2)
        .expect("EDF+ birth date subfield")
        .to_string();
    for args in [vec!["inspect", path], vec!["inspect", "--json", path]] {
        let out = eegadapt(&args);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            !text.contains(&name) && !text.contains(&birth),
            "identity leaked with {args:?}"
        );
    }
    let out = eegadapt(&["inspect", "--json", "--show-identity", path]);
    let r = &json_lines(&out)[0];
    assert_eq!(r["identity"]["birth_date"], birth.as_str());
    assert_eq!(
        r["identity"]["patient_name"],
        name.replace('_', " ").as_str()
    );
}

#[test]
fn a_bad_file_gets_one_line_and_the_others_are_still_inspected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("not_eeg.edf");
    std::fs::write(&bad, b"this is a text file, not a recording\n").expect("write");
    let good = common::data_file("eegmmidb/S001/S001R04.edf");
    let missing = dir.path().join("missing.edf");
    let out = eegadapt(&[
        "inspect",
        "--json",
        bad.to_str().expect("utf8"),
        good.to_str().expect("utf8"),
        missing.to_str().expect("utf8"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "one line per bad file: {stderr}");
    assert!(lines[0].contains("not_eeg.edf"));
    assert!(lines[1].contains("missing.edf"));
    assert_eq!(json_lines(&out).len(), 1);
}

#[test]
fn text_output_names_format_channels_and_annotation_counts() {
    let file = common::data_file("eegmmidb/S001/S001R04.edf");
    let out = eegadapt(&["inspect", file.to_str().expect("utf8")]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("EDF+C"));
    assert!(text.contains("64 (64 eeg)"));
    assert!(text.contains("annotations 30 (3 distinct texts)"), "{text}");
}

/// Corruptions of every kind the reader refuses give exit code 1 and exactly one stderr line
/// per file, naming it; no panic, no abort.
#[test]
fn corrupted_files_exit_1_with_one_line_each() {
    let dir = tempfile::tempdir().expect("tempdir");
    let original = std::fs::read(common::data_file("eegmmidb/S001/S001R04.edf")).expect("read");
    let with = |start: usize, value: &[u8]| {
        let mut bytes = original.clone();
        bytes[start..start + value.len()].copy_from_slice(value);
        bytes
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("header_cut", original[..100].to_vec()),
        ("signal_headers_cut", original[..3000].to_vec()),
        ("ns_zero", with(252, b"0   ")),
        ("ns_text", with(252, b"abc ")),
        ("ns_negative", with(252, b"-3  ")),
        ("records_negative", with(236, b"-5      ")),
        ("header_bytes_wrong", with(184, b"12345   ")),
        ("duration_text", with(244, b"one     ")),
        ("spr_absurd", with(256 + 65 * 216, b"99999999")),
        ("not_edf", b"<html>not a recording</html>".repeat(20)),
    ];
    let mut paths = Vec::new();
    for (name, bytes) in &cases {
        let path = dir.path().join(format!("{name}.edf"));
        std::fs::write(&path, bytes).expect("write");
        paths.push(path);
    }
    let regressions =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    let mut args: Vec<String> = vec!["inspect".into()];
    args.extend(paths.iter().map(|p| p.to_string_lossy().into_owned()));
    let out = eegadapt(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), cases.len(), "{stderr}");
    for ((name, _), line) in cases.iter().zip(&lines) {
        assert!(line.contains(&format!("{name}.edf")), "{name}: {line}");
    }
    // The fuzzer's regression inputs: whatever their outcome, the process exits normally.
    for entry in std::fs::read_dir(regressions).expect("regressions") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "edf") {
            let out = eegadapt(&["inspect", "--json", path.to_str().expect("utf8")]);
            assert!(
                matches!(out.status.code(), Some(0 | 1)),
                "{}: {:?}",
                path.display(),
                out.status
            );
        }
    }
}
