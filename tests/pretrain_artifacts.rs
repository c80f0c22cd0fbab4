//! Pretraining end to end on real features: reproducible weights, an artifact that loads back
//! to the same predictions, and refusals when weights or features do not match.

use crate::common;

use eegadapt::features::{feature_config_hash, features_from_file, FeatureConfig};
use eegadapt::pretrain::{
    self, group, population_scores, predict, EncoderManifest, EncoderMetrics, PretrainConfig,
    Sample, TaskInfo,
};
use eegadapt::store;
use eegadapt::task::Task;

fn feature_sets() -> Vec<(usize, eegadapt::features::FeatureSet)> {
    let task = Task::resolve("eegmmidb-lr").expect("task");
    [
        "S001/S001R04.edf",
        "S001/S001R08.edf",
        "S002/S002R04.edf",
        "S003/S003R04.edf",
        "S003/S003R08.edf",
    ]
    .iter()
    .map(|f| {
        let path = common::data_file(&format!("eegmmidb/{f}"));
        let sha = store::sha256_file(&path).expect("sha");
        (
            0,
            features_from_file(&path, &sha, &task, &FeatureConfig::default()).expect("features"),
        )
    })
    .collect()
}

fn small_config(n_features: usize) -> PretrainConfig {
    let mut c = PretrainConfig::new(n_features);
    c.ssl_passes = 2;
    c.supervised_passes = 3;
    c.encoder.d_model = 16;
    c.encoder.d_ff = 32;
    c.encoder.n_layers = 1;
    c
}

#[cfg_attr(not(shared_corpus), ignore = "needs the shared corpus")]
#[test]
fn trains_saves_loads_and_refuses_mismatches() {
    let sets = feature_sets();
    let tasks = vec![TaskInfo {
        name: "eegmmidb-lr".into(),
        classes: vec!["left".into(), "right".into()],
    }];
    let grouped = group(&sets, tasks).expect("group");
    let config = small_config(grouped.layout.token_features());
    let train_set = grouped
        .for_pretraining(&["S001".into(), "S002".into()])
        .expect("train");
    let validation = grouped
        .for_pretraining(&["S003".into()])
        .expect("validation");
    let run = || pretrain::train(&train_set, &validation, &config, &mut |_| {}).expect("train");
    let first = run();
    assert_eq!(first.log.len(), 5);
    assert!(first.log.iter().all(|r| r.train_loss.is_finite()));

    let dir = tempfile::tempdir().expect("tempdir");
    let mut manifest = EncoderManifest {
        format_version: pretrain::FORMAT_VERSION,
        crate_version: env!("CARGO_PKG_VERSION").into(),
        pretrain: config.clone(),
        feature_config: FeatureConfig::default(),
        feature_config_hash: feature_config_hash(&FeatureConfig::default()),
        channel_vocabulary: grouped.channels.clone(),
        tasks: grouped.tasks.clone(),
        task_definitions: vec![Task::resolve("eegmmidb-lr").expect("task")],
        training_subjects: vec!["S001".into(), "S002".into()],
        validation_subjects: vec!["S003".into()],
        training_recordings: grouped.sources.clone(),
        threads: 1,
        metrics: EncoderMetrics {
            best_pass: first.best_pass,
            validation_loss: None,
            validation_accuracy: None,
            holdout: Vec::new(),
            training_seconds: 0.0,
            heads: first.heads.clone(),
        },
        log: first.log.clone(),
        spectrum_freqs: Vec::new(),
        population_spectrum: Vec::new(),
        reference_sha256: None,
        weights_sha256: String::new(),
        lineage: None,
    };
    pretrain::save(dir.path(), &first.model, &mut manifest).expect("save");
    let (loaded, back) =
        pretrain::load(dir.path(), Some(&manifest.feature_config_hash)).expect("load");
    assert!(back == manifest, "manifest changed in the round trip");
    let samples: Vec<&Sample> = validation.subjects[0].samples.iter().collect();
    let p1 =
        predict(&first.model, &samples, grouped.layout, &grouped.channels, 0).expect("predict");
    let p2 = predict(&loaded, &samples, grouped.layout, &grouped.channels, 0).expect("predict");
    assert_eq!(p1, p2);

    // Same seed, same data, same threads: the same weights, byte for byte.
    let second = run();
    let dir2 = tempfile::tempdir().expect("tempdir");
    let mut manifest2 = manifest.clone();
    pretrain::save(dir2.path(), &second.model, &mut manifest2).expect("save");
    assert_eq!(
        manifest.weights_sha256, manifest2.weights_sha256,
        "training is not reproducible"
    );

    // Features computed with other settings are refused, naming both hashes.
    let other = feature_config_hash(&FeatureConfig {
        fmax: 40.0,
        ..FeatureConfig::default()
    });
    let err = pretrain::load(dir.path(), Some(&other))
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains(&other) && err.contains(&manifest.feature_config_hash),
        "{err}"
    );
    // Weights that are not the manifest's are refused.
    let weights = dir.path().join(pretrain::WEIGHTS);
    let mut bytes = std::fs::read(&weights).expect("weights");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&weights, bytes).expect("write");
    let err = pretrain::load(dir.path(), None)
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("SHA-256"), "{err}");

    // Held-out scoring follows the protocol: alignment from run 4, accuracy on the other runs.
    let scores = population_scores(&first.model, &grouped, &["S003".into()]).expect("scores");
    assert_eq!(scores.len(), 1);
    assert_eq!(scores[0].alignment_run, Some(4));
    assert_eq!(scores[0].n_test, sets[4].1.rows.len());
    assert!(scores[0].accuracy_1020.is_some());
}
