//! Feature tables on disk: exact round trip, refusal of a foreign configuration, rerun checks,
//! de-identification.

use crate::common;

use eegadapt::features::{config_hash, features_from_file, FeatureConfig};
use eegadapt::store::{self, StoreError};
use eegadapt::task::Task;

fn features() -> eegadapt::features::FeatureSet {
    let path = common::data_file("eegmmidb/S001/S001R04.edf");
    let sha = store::sha256_file(&path).expect("sha");
    features_from_file(
        &path,
        &sha,
        &Task::resolve("eegmmidb-lr").expect("task"),
        &FeatureConfig::default(),
    )
    .expect("features")
}

#[test]
fn written_table_reads_back_identical() {
    let dir = tempfile::tempdir().expect("tempdir");
    let set = features();
    assert_eq!(set.rows.len(), 15);
    let parquet = dir.path().join("S001R04.parquet");
    store::write_feature_set(&parquet, &set).expect("write");
    let back = store::read_feature_set(&parquet).expect("read");
    assert_eq!(back, set);
    // Only the table and its sidecar: the temporary files were renamed away.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, vec!["S001R04.json", "S001R04.parquet"]);
}

#[test]
fn a_table_built_with_other_settings_is_refused_with_both_hashes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let set = features();
    let parquet = dir.path().join("t.parquet");
    store::write_feature_set(&parquet, &set).expect("write");
    let task = Task::resolve("eegmmidb-lr").expect("task");
    let other = FeatureConfig {
        fmax: 40.0,
        ..FeatureConfig::default()
    };
    let expected = config_hash(&other, &task);
    let err = store::read_feature_set_expecting(&parquet, &expected).expect_err("mismatch");
    assert!(matches!(err, StoreError::ConfigMismatch { .. }));
    let message = err.to_string();
    assert!(
        message.contains(&expected)
            && message.contains(&set.meta.config_hash)
            && message.contains("t.json"),
        "{message}"
    );
    assert!(store::read_feature_set_expecting(&parquet, &set.meta.config_hash).is_ok());
}

#[test]
fn up_to_date_needs_same_hash_and_source() {
    let dir = tempfile::tempdir().expect("tempdir");
    let set = features();
    let parquet = dir.path().join("t.parquet");
    let sha = set.meta.sources[0].sha256.clone();
    assert!(!store::is_up_to_date(&parquet, &set.meta.config_hash, &sha));
    store::write_feature_set(&parquet, &set).expect("write");
    assert!(store::is_up_to_date(&parquet, &set.meta.config_hash, &sha));
    assert!(!store::is_up_to_date(&parquet, "another-hash", &sha));
    assert!(!store::is_up_to_date(
        &parquet,
        &set.meta.config_hash,
        "another-source"
    ));
    // A table whose sidecar is missing (a crash between the two renames) is not finished.
    std::fs::remove_file(store::sidecar_path(&parquet)).expect("remove");
    assert!(!store::is_up_to_date(&parquet, &set.meta.config_hash, &sha));
}

#[test]
fn deidentified_tables_hold_no_subject_or_file_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut set = features();
    store::deidentify(&mut set);
    let parquet = dir.path().join("t.parquet");
    store::write_feature_set(&parquet, &set).expect("write");
    let bytes = [
        std::fs::read(&parquet).expect("table"),
        std::fs::read(store::sidecar_path(&parquet)).expect("sidecar"),
    ]
    .concat();
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        !text.contains("S001"),
        "subject or file name left in the output"
    );
    assert!(set.meta.deidentified && set.rows.iter().all(|r| r.subject.starts_with("sub-")));
    // Pseudonyms are stable, so a subject's recordings still group together.
    assert!(set.rows.iter().all(|r| r.subject == set.rows[0].subject));
}
