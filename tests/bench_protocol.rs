//! The benchmark protocol on real recordings, with a tiny encoder: every column is measured for
//! every evaluated subject, a subject without the test runs only pretrains, the folds partition
//! the evaluated subjects, and the classical baseline matches its recipe (pyRiemann's
//! re-centred tangent space and scikit-learn's logistic regression) on a fixed input.

use std::collections::BTreeMap;

use crate::common;

use eegadapt::bench::{self, classical, BenchConfig, ClassicalSet, Protocol};
use eegadapt::calibrate::CalibrateOptions;
use eegadapt::features::{features_from_file, FeatureConfig, FeatureRow, FeatureSet};
use eegadapt::pretrain::{group, heads_of, PretrainConfig};
use eegadapt::store;
use eegadapt::task::Task;

fn sets(subjects: &[&str], runs: &[u32]) -> Vec<(usize, FeatureSet)> {
    let tasks = [
        Task::resolve("eegmmidb-lr").expect("task"),
        Task::resolve("eegmmidb-lr-executed").expect("task"),
    ];
    let mut out = Vec::new();
    for s in subjects {
        for &run in runs {
            let path = common::data_file(&format!("eegmmidb/{s}/{s}R{run:02}.edf"));
            let task = tasks
                .iter()
                .find(|t| t.runs.as_ref().is_some_and(|r| r.contains(&run)))
                .expect("run of a task");
            let sha = store::sha256_file(&path).expect("sha");
            let set = features_from_file(&path, &sha, task, &FeatureConfig::default());
            out.push((0, set.expect("features")));
        }
    }
    out
}

#[cfg_attr(not(shared_corpus), ignore = "needs the shared corpus")]
#[test]
fn every_column_for_every_evaluated_subject_and_pretraining_only_subjects_listed() {
    // S024 has no runs 11 and 12 here: it may only pretrain.
    let mut all = sets(&["S001", "S002", "S003"], &[3, 4, 7, 8, 11, 12]);
    all.extend(sets(&["S024"], &[3, 4, 7, 8]));
    let tasks = [
        Task::resolve("eegmmidb-lr").expect("task"),
        Task::resolve("eegmmidb-lr-executed").expect("task"),
    ];
    let (heads, _) = heads_of(&tasks).expect("heads");
    assert_eq!(heads.len(), 1, "executed runs train the imagined head");
    let grouped = group(&all, heads).expect("group");
    let protocol = Protocol::named("eegmmidb-lr").expect("protocol");
    let mut pretrain = PretrainConfig::for_layout(grouped.layout);
    pretrain.ssl_passes = 1;
    pretrain.supervised_passes = 1;
    pretrain.encoder.d_model = 16;
    pretrain.encoder.d_ff = 32;
    pretrain.encoder.n_layers = 1;
    let config = BenchConfig {
        protocol: protocol.clone(),
        folds: None,
        pretrain,
        calibrate: CalibrateOptions::default(),
        kshots: vec![2],
    };
    let classical =
        vec![ClassicalSet::new("classical_pooled", &grouped, 0, &protocol).expect("classical")];
    let report = bench::run(&grouped, &classical, &config, &mut |_| {}).expect("bench");
    assert_eq!(report.pretraining_only, vec!["S024".to_string()]);
    // Leave one subject out over the three evaluated subjects.
    assert_eq!(report.folds.len(), 3);
    assert!(report.folds.iter().all(|f| f.len() == 1));
    assert_eq!(report.subjects.len(), 3);
    for s in &report.subjects {
        for column in [
            "population",
            "subject_only",
            "classical_pooled",
            "personalized",
            "with_encoder",
            "kshot_2",
            "calibration_3_4",
            "with_unlabelled_7_11",
        ] {
            let v = s.accuracy.get(column).copied();
            assert!(
                v.is_some_and(|v| (0.0..=1.0).contains(&v)),
                "{}: {column} = {v:?}",
                s.subject
            );
        }
        assert_eq!((s.n_calibration, s.n_test), (15, 30), "{}", s.subject);
        assert!(s.optimism().is_some());
    }
    let p = report.wilcoxon();
    assert!(p.contains_key("personalized_vs_classical_pooled"));
    assert!(report.optimism().is_some());
}

#[cfg_attr(not(shared_corpus), ignore = "needs the shared corpus")]
#[test]
fn the_development_protocol_never_reads_runs_8_and_12() {
    let dev = Protocol::named("eegmmidb-lr-dev").expect("protocol");
    let all = sets(&["S001"], &[3, 4, 7, 8, 11, 12]);
    let rows: Vec<&FeatureRow> = all
        .iter()
        .flat_map(|(_, s)| s.rows.iter())
        .filter(|r| dev.keeps(r.run))
        .collect();
    assert!(rows.iter().all(|r| r.run != Some(8) && r.run != Some(12)));
    let runs = dev.split(&rows).expect("runs 3, 7, 11");
    assert!(runs.calibration.iter().all(|r| r.run == Some(3)));
    assert!(runs
        .test
        .iter()
        .all(|r| r.run == Some(7) || r.run == Some(11)));
}

/// What pyRiemann 0.12 and scikit-learn print for the recipe on S001's runs 3 and 4 (see
/// `tests/python/classical_reference.py`): the probability of class 1 of run 4's last 5 trials,
/// after training on run 3 (weight 1) and run 4's first 10 trials (weight 5), C = 0.1.
const SKLEARN_PROBABILITIES: [f64; 5] = [0.465558, 0.602689, 0.421031, 0.697364, 0.419015];

#[cfg_attr(not(shared_corpus), ignore = "needs the shared corpus")]
#[test]
fn classical_recipe_matches_pyriemann_and_scikit_learn() {
    let config = FeatureConfig {
        covariance_bands: vec![eegadapt::features::Band::new("mu_beta", 8.0, 30.0)],
        evoked: None,
        ..FeatureConfig::default()
    };
    let mut rows_owned = Vec::new();
    for (run, name) in [(3, "eegmmidb-lr-executed"), (4, "eegmmidb-lr")] {
        let task = Task {
            tmin: 0.5,
            tmax: 3.5,
            ..Task::resolve(name).expect("task")
        };
        let path = common::data_file(&format!("eegmmidb/S001/S001R{run:02}.edf"));
        let sha = store::sha256_file(&path).expect("sha");
        rows_owned.push(features_from_file(&path, &sha, &task, &config).expect("features"));
    }
    let layout = eegadapt::align::RowLayout::of(&rows_owned[0].meta);
    let band = classical::Band { index: 0, layout };
    let rows: Vec<&FeatureRow> = rows_owned.iter().flat_map(|s| s.rows.iter()).collect();
    assert_eq!(rows.len(), 30);
    let all = classical::vectors("S001", &rows, &rows, band).expect("vectors");
    let width = eegadapt::encoder::n_pairs(layout.channels);
    let part = |range: std::ops::Range<usize>| classical::Vectors {
        x: all.x[range.start * width..range.end * width].to_vec(),
        y: all.y[range].to_vec(),
    };
    let (run3, run4_first, run4_last) = (part(0..15), part(15..25), part(25..30));
    let model = classical::fit_pooled(&[&run3], &run4_first, 0.1, 2, layout.channels);
    let mut logits = [0.0; 2];
    for (i, expected) in SKLEARN_PROBABILITIES.iter().enumerate() {
        model.logits(&run4_last.x[i * width..(i + 1) * width], &mut logits);
        let p1 = 1.0 / (1.0 + (logits[0] - logits[1]).exp());
        assert!(
            (p1 - expected).abs() < 2e-3,
            "trial {i}: ours {p1:.6}, scikit-learn {expected:.6}"
        );
    }
}

#[cfg_attr(not(shared_corpus), ignore = "needs the shared corpus")]
#[test]
fn classical_pool_vectors_are_centred_on_each_subject() {
    let config = FeatureConfig {
        covariance_bands: vec![eegadapt::features::Band::new("mu_beta", 8.0, 30.0)],
        evoked: None,
        ..FeatureConfig::default()
    };
    let task = Task::resolve("eegmmidb-lr").expect("task");
    let mut by_subject: BTreeMap<String, Vec<FeatureSet>> = BTreeMap::new();
    for s in ["S001", "S002"] {
        for run in [4, 8] {
            let path = common::data_file(&format!("eegmmidb/{s}/{s}R{run:02}.edf"));
            let sha = store::sha256_file(&path).expect("sha");
            let set = features_from_file(&path, &sha, &task, &config).expect("features");
            by_subject.entry(s.to_string()).or_default().push(set);
        }
    }
    let layout = eegadapt::align::RowLayout::of(&by_subject["S001"][0].meta);
    let band = classical::Band { index: 0, layout };
    let rows: BTreeMap<String, Vec<&FeatureRow>> = by_subject
        .iter()
        .map(|(s, sets)| (s.clone(), sets.iter().flat_map(|x| x.rows.iter()).collect()))
        .collect();
    let pool = classical::pool_vectors(&rows, band).expect("pool");
    // Re-centred by its own Riemannian mean, each subject's mean tangent vector is near zero.
    let width = eegadapt::encoder::n_pairs(layout.channels);
    for (s, v) in &pool {
        let n = v.y.len();
        assert_eq!(v.x.len(), n * width);
        let mean_norm: f64 = (0..width)
            .map(|j| {
                let m: f64 = (0..n).map(|i| f64::from(v.x[i * width + j])).sum::<f64>() / n as f64;
                m * m
            })
            .sum::<f64>()
            .sqrt();
        let spread: f64 =
            (v.x.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>() / n as f64).sqrt();
        assert!(
            mean_norm < 1e-3 * spread,
            "{s}: mean {mean_norm} vs spread {spread}"
        );
    }
}
