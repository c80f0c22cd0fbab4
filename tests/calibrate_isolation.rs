//! Calibration on real recordings: reproducible, and blind to the test runs. The benchmark's
//! per-subject path gets all of a subject's runs; changing what the test runs contain must leave
//! the calibrated model's bytes exactly as they were.

use crate::common;

use eegadapt::bench::{personalize, Protocol};
use eegadapt::calibrate::{
    self, CalibrateOptions, Calibrated, EncoderReference, Provenance, Strategy, SubjectManifest,
};
use eegadapt::features::{features_from_file, FeatureConfig, FeatureRow};
use eegadapt::pretrain::{self, group, Grouped, PopulationModel, PretrainConfig, TaskInfo};
use eegadapt::store;
use eegadapt::task::Task;

fn feature_sets() -> Vec<(usize, eegadapt::features::FeatureSet)> {
    let task = Task::resolve("eegmmidb-lr").expect("task");
    [
        "S001/S001R04.edf",
        "S001/S001R08.edf",
        "S001/S001R12.edf",
        "S002/S002R04.edf",
        "S003/S003R04.edf",
    ]
    .iter()
    .map(|f| {
        let path = common::data_file(&format!("eegmmidb/{f}"));
        let sha = store::sha256_file(&path).expect("sha");
        let set = features_from_file(&path, &sha, &task, &FeatureConfig::default());
        (0, set.expect("features"))
    })
    .collect()
}

fn population(grouped: &Grouped) -> PopulationModel {
    let mut config = PretrainConfig::for_layout(grouped.layout);
    config.ssl_passes = 1;
    config.supervised_passes = 2;
    config.encoder.d_model = 16;
    config.encoder.d_ff = 32;
    config.encoder.n_layers = 1;
    let trained = pretrain::train_subjects(
        grouped,
        &["S002".into()],
        &["S003".into()],
        &config,
        &mut |_| {},
    )
    .expect("pretrain");
    trained.model
}

/// Everything a saved subject model holds that data could influence, as bytes.
fn saved_bytes(calibrated: &Calibrated) -> (Vec<u8>, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let task = Task::resolve("eegmmidb-lr").expect("task");
    let mut manifest = SubjectManifest::new(
        calibrated,
        Provenance {
            subject: "S001".into(),
            task,
            encoder: EncoderReference {
                dir: String::new(),
                weights_sha256: String::new(),
            },
            feature_config: FeatureConfig::default(),
            sfreq: 160.0,
            recordings: Vec::new(),
            unlabeled_recordings: Vec::new(),
        },
    );
    calibrate::save(dir.path(), calibrated, &mut manifest).expect("save");
    let weights = std::fs::read(dir.path().join(calibrate::WEIGHTS)).expect("weights");
    let json = std::fs::read_to_string(dir.path().join(calibrate::MANIFEST)).expect("manifest");
    (weights, json)
}

fn calibrate_subject(
    model: &PopulationModel,
    grouped: &Grouped,
    rows: &[&FeatureRow],
    options: &CalibrateOptions,
) -> Calibrated {
    let protocol = Protocol::named("eegmmidb-lr").expect("protocol");
    let runs = protocol.split(rows).expect("runs 4, 8 and 12");
    assert!(runs.calibration.iter().all(|r| r.run == Some(4)));
    assert!(!runs.test.is_empty() && runs.test.iter().all(|r| r.run != Some(4)));
    personalize(
        model,
        0,
        &grouped.channels,
        grouped.layout,
        &runs.calibration,
        &[],
        None,
        options,
    )
    .expect("calibrate")
}

#[cfg_attr(not(shared_corpus), ignore = "needs the shared corpus")]
#[test]
fn test_runs_never_change_the_calibrated_model() {
    let sets = feature_sets();
    let tasks = vec![TaskInfo {
        name: "eegmmidb-lr".into(),
        classes: vec!["left".into(), "right".into()],
    }];
    let grouped = group(&sets, tasks).expect("group");
    let model = population(&grouped);
    let rows: Vec<&FeatureRow> = grouped.subjects["S001"].iter().map(|(_, r)| *r).collect();
    // Cheap candidates keep the test fast; the encoder-tuning ones go through the same path.
    let options = CalibrateOptions {
        candidates: vec![
            Strategy::Population,
            Strategy::Head { penalty: 1.0 },
            Strategy::HeadLastBlock { penalty: 1.0 },
        ],
        ..CalibrateOptions::default().with_encoder()
    };
    let first = calibrate_subject(&model, &grouped, &rows, &options);
    let reference = saved_bytes(&first);
    assert_eq!(first.inner_cv.len(), 3, "every candidate is scored");
    assert!(first.per_class.iter().all(|&n| n >= 3));

    // Same inputs: the same bytes.
    let again = calibrate_subject(&model, &grouped, &rows, &options);
    assert!(
        saved_bytes(&again) == reference,
        "calibration is not reproducible"
    );

    // Test runs with other content: flipped labels, shifted spectra, scaled covariances.
    let altered: Vec<FeatureRow> = rows
        .iter()
        .map(|r| {
            let mut r = (*r).clone();
            if r.run != Some(4) {
                r.label = r.label.map(|l| 1 - l);
                r.log_psd.iter_mut().for_each(|v| *v += 3.0);
                r.log_band_power.iter_mut().for_each(|v| *v -= 2.0);
                for cov in &mut r.covariances {
                    cov.iter_mut().for_each(|v| *v *= 7.0);
                }
                r.evoked.iter_mut().for_each(|v| *v = -*v);
            }
            r
        })
        .collect();
    let altered_refs: Vec<&FeatureRow> = altered.iter().collect();
    let other = calibrate_subject(&model, &grouped, &altered_refs, &options);
    assert!(
        saved_bytes(&other) == reference,
        "the test runs' content changed the calibrated model"
    );

    // And the check has teeth: altering the calibration run does change it.
    let mut touched: Vec<FeatureRow> = rows.iter().map(|r| (*r).clone()).collect();
    for r in touched.iter_mut().filter(|r| r.run == Some(4)) {
        r.log_psd.iter_mut().for_each(|v| *v += 0.5);
        for cov in &mut r.covariances {
            let n = (cov.len() as f64).sqrt() as usize;
            cov[0] *= 2.0;
            cov[n + 1] *= 0.5;
        }
    }
    let touched_refs: Vec<&FeatureRow> = touched.iter().collect();
    let changed = calibrate_subject(&model, &grouped, &touched_refs, &options);
    assert!(saved_bytes(&changed) != reference);
}
