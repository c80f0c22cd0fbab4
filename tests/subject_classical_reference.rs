//! The classical subject-only baselines (`bench::subject_classical`) against pyRiemann and
//! scikit-learn on S001's run 4: window 0-3 s after each T0/T1/T2 annotation, 8-30 Hz OAS
//! covariances; trained on the first 25 epochs, predicting the last 5, for the 3-class task
//! (rest / left / right) and the 2-class one (rest / movement). The expected values are printed
//! by `tests/python/subject_classical_reference.py` (pyRiemann 0.12, scikit-learn 1.9.1).

use crate::common;

use eegadapt::bench::subject_classical;
use eegadapt::features::{features_from_file, FeatureConfig, FeatureRow};
use eegadapt::store;
use eegadapt::task::{EventClass, Task};

/// `GridSearchCV`'s chosen `C`, 3 classes (mean balanced accuracies 0.422, 0.389, 0.422, 0.444).
const THREE_C: f64 = 10.0;
/// `predict_proba` of the tuned pipeline on the last 5 epochs, 3 classes.
const THREE_TANGENT_LR: [[f64; 3]; 5] = [
    [0.336747, 0.543338, 0.119916],
    [0.818005, 0.088763, 0.093232],
    [0.826637, 0.031089, 0.142275],
    [0.973655, 0.006549, 0.019797],
    [0.502971, 0.295982, 0.201047],
];
/// `MDM(metric="riemann").predict_proba`, 3 classes.
const THREE_MDM: [[f64; 3]; 5] = [
    [0.377764, 0.566770, 0.055465],
    [0.923654, 0.035452, 0.040894],
    [0.914469, 0.009698, 0.075833],
    [0.990546, 0.000949, 0.008505],
    [0.565387, 0.298608, 0.136004],
];
/// `GridSearchCV`'s chosen `C`, 2 classes: 0.01 and 0.1 tie (0.533), the first is taken.
const TWO_C: f64 = 0.01;
/// `predict_proba` of the tuned pipeline, 2 classes.
const TWO_TANGENT_LR: [[f64; 2]; 5] = [
    [0.489781, 0.510219],
    [0.508365, 0.491635],
    [0.511064, 0.488936],
    [0.528671, 0.471329],
    [0.491847, 0.508153],
];
/// `MDM(metric="riemann").predict_proba`, 2 classes.
const TWO_MDM: [[f64; 2]; 5] = [
    [0.209872, 0.790128],
    [0.751032, 0.248968],
    [0.809673, 0.190327],
    [0.977062, 0.022938],
    [0.257206, 0.742794],
];

/// Run 4's epochs for T0 / T1 / T2 mapped to `classes` (window 0-3 s, the 8-30 Hz band only).
fn rows(classes: [&str; 3]) -> (Vec<FeatureRow>, usize) {
    let mut names: Vec<String> = Vec::new();
    for c in classes {
        if !names.iter().any(|n| n == c) {
            names.push(c.to_string());
        }
    }
    let task = Task {
        name: "subject-classical-reference".into(),
        classes: names,
        events: ["T0", "T1", "T2"]
            .into_iter()
            .zip(classes)
            .map(|(text, class)| EventClass {
                text: text.into(),
                class: class.into(),
            })
            .collect(),
        tmin: 0.0,
        tmax: 3.0,
        runs: None,
        fixed: None,
        head: None,
    };
    let config = FeatureConfig {
        covariance_bands: vec![eegadapt::features::Band::new("mu_beta", 8.0, 30.0)],
        evoked: None,
        ..FeatureConfig::default()
    };
    let path = common::data_file("eegmmidb/S001/S001R04.edf");
    let sha = store::sha256_file(&path).expect("sha");
    let set = features_from_file(&path, &sha, &task, &config).expect("features");
    assert_eq!(set.rows.len(), 30, "every annotation of run 4 is an epoch");
    (set.rows, set.meta.channels.len())
}

fn assert_close<const K: usize>(what: &str, ours: &[Vec<f64>], expected: &[[f64; K]; 5]) {
    assert_eq!(ours.len(), expected.len(), "{what}");
    for (i, (o, e)) in ours.iter().zip(expected).enumerate() {
        assert_eq!(o.len(), K, "{what}");
        for (a, b) in o.iter().zip(e) {
            assert!(
                (a - b).abs() < 2e-3,
                "{what}, epoch {i}: ours {o:.6?}, reference {e:?}"
            );
        }
    }
}

fn check<const K: usize>(
    classes: [&str; 3],
    expected_c: f64,
    tangent_lr: &[[f64; K]; 5],
    mdm: &[[f64; K]; 5],
) {
    let (rows, channels) = rows(classes);
    let all: Vec<&FeatureRow> = rows.iter().collect();
    let (calibration, test) = all.split_at(25);
    let (p, c) =
        subject_classical::tangent_lr(calibration, test, 0, channels, K).expect("tangent_lr");
    assert_eq!(c, expected_c, "{K} classes: chosen C");
    assert_close(&format!("tangent_lr, {K} classes"), &p, tangent_lr);
    let p = subject_classical::mdm(calibration, test, 0, channels, K).expect("mdm");
    assert_close(&format!("mdm, {K} classes"), &p, mdm);
}

#[cfg_attr(not(shared_corpus), ignore = "needs the shared corpus")]
#[test]
fn three_classes_match_pyriemann_and_scikit_learn() {
    check(
        ["rest", "left", "right"],
        THREE_C,
        &THREE_TANGENT_LR,
        &THREE_MDM,
    );
}

#[cfg_attr(not(shared_corpus), ignore = "needs the shared corpus")]
#[test]
fn rest_against_movement_matches_pyriemann_and_scikit_learn() {
    check(["rest", "move", "move"], TWO_C, &TWO_TANGENT_LR, &TWO_MDM);
}
