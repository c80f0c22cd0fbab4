//! Long recordings are read in pieces (bounded memory): on a 12.5-minute EDF+ that the project's
//! writer makes from S001's runs 4, 8 and 12 played twice, the features computed piece by piece
//! equal the whole-file ones, row for row, and so does the Parquet table `eegadapt features`
//! writes piece by piece (within 1e-6 of each value's scale: single precision).

use eegadapt::edf::{self, write_edf, Recording, WriteOptions};
use eegadapt::features::pieces::{extract_in_pieces, piecewise_possible, Pieces, LONG_RECORDING_S};
use eegadapt::features::{extract, FeatureConfig, FeatureRow};
use eegadapt::task::{RecordingId, Task};

use crate::common;

fn close(what: &str, a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len(), "{what}");
    let scale = a.iter().fold(1e-12_f64, |m, v| m.max(v.abs()));
    let worst = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    assert!(
        worst <= 1e-6 * scale,
        "{what}: off by {worst} (scale {scale})"
    );
}

fn same_rows(whole: &[FeatureRow], pieces: &[FeatureRow]) {
    assert_eq!(whole.len(), pieces.len());
    for (a, b) in whole.iter().zip(pieces) {
        let at = format!("epoch at {} s", a.onset_s);
        assert_eq!(
            (a.onset_s, a.label, a.epoch),
            (b.onset_s, b.label, b.epoch),
            "{at}"
        );
        close(&format!("{at} log_psd"), &a.log_psd, &b.log_psd);
        close(
            &format!("{at} band power"),
            &a.log_band_power,
            &b.log_band_power,
        );
        for (x, y) in a.covariances.iter().zip(&b.covariances) {
            close(&format!("{at} covariance"), x, y);
        }
        close(&format!("{at} evoked"), &a.evoked, &b.evoked);
    }
}

#[test]
fn a_long_recording_read_in_pieces_gives_the_whole_files_features() {
    let runs: Vec<Recording> = ["04", "08", "12", "04", "08", "12"]
        .iter()
        .map(|r| edf::read_recording(common::data_file(&format!("eegmmidb/S001/S001R{r}.edf"))))
        .collect::<Result<_, _>>()
        .expect("read runs");
    let long = Recording::concatenate(&runs).expect("same layout");
    assert!(long.duration_s() > LONG_RECORDING_S);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("S001R04.edf");
    write_edf(&path, &long, &WriteOptions::default()).expect("write");

    let task = Task::resolve("eegmmidb-lr").expect("task");
    let config = FeatureConfig::default();
    let id = RecordingId::from_path(&path);
    let file = edf::open(&path).expect("open");
    let outline = file.outline();
    assert!(piecewise_possible(&outline, &config));
    let whole = extract(&file.to_recording().expect("read"), &id, &task, &config).expect("whole");
    assert_eq!(whole.rows.len(), 90);
    // One-minute pieces: many boundaries, each epoch cut from a different piece's data.
    let pieces = Pieces::new(file, outline, id, &task, &config, 60.0);
    let pieces = extract_in_pieces(pieces).expect("pieces");
    same_rows(&whole.rows, &pieces.rows);
    assert_eq!(whole.meta.channels, pieces.meta.channels);
    assert_eq!(whole.meta.drop_log.len(), pieces.meta.drop_log.len());

    // features_from_file takes the piecewise path for a recording this long.
    let sha = eegadapt::store::sha256_file(&path).expect("sha");
    let from_file =
        eegadapt::features::features_from_file(&path, &sha, &task, &config).expect("features");
    same_rows(&whole.rows, &from_file.rows);

    // `eegadapt features` writes it to Parquet piece by piece; it reads back the same.
    let out = dir.path().join("features");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_eegadapt"))
        .arg("features")
        .arg(&path)
        .args(["--task", "eegmmidb-lr", "--out"])
        .arg(&out)
        .output()
        .expect("run eegadapt");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let table = eegadapt::store::read_feature_set(&out.join("S001R04.parquet")).expect("table");
    same_rows(&whole.rows, &table.rows);
    assert_eq!(table.meta.drop_log.len(), whole.meta.drop_log.len());
}

/// A recording in two contiguous segments takes the filtered-copy path (each segment filtered
/// on its own); one segment takes the windows cut straight from the filter. Away from the
/// segment boundary, where the filters have settled, both give the same rows.
#[test]
fn two_segments_and_one_give_the_same_rows_away_from_the_boundary() {
    let path = common::data_file("eegmmidb/S001/S001R04.edf");
    let one = edf::read_recording(&path).expect("read");
    let mut two = one.clone();
    let split = two.records / 2;
    let record_s = two.record_duration_s;
    two.segments = vec![
        edf::Segment {
            onset_s: 0.0,
            duration_s: split as f64 * record_s,
            first_record: 0,
            records: split,
        },
        edf::Segment {
            onset_s: split as f64 * record_s,
            duration_s: (two.records - split) as f64 * record_s,
            first_record: split,
            records: two.records - split,
        },
    ];
    let id = RecordingId::from_path(&path);
    let task = Task::resolve("eegmmidb-lr").expect("task");
    let config = FeatureConfig::default();
    let a = extract(&one, &id, &task, &config).expect("one segment");
    let b = extract(&two, &id, &task, &config).expect("two segments");
    let boundary = split as f64 * record_s;
    let settled =
        |r: &&FeatureRow| r.onset_s + 4.0 + 20.0 < boundary || r.onset_s > boundary + 20.0;
    let far_a: Vec<FeatureRow> = a.rows.iter().filter(settled).cloned().collect();
    let far_b: Vec<FeatureRow> = b.rows.iter().filter(settled).cloned().collect();
    assert!(
        far_a.len() >= 4,
        "{} rows away from the boundary",
        far_a.len()
    );
    same_rows(&far_a, &far_b);
}
