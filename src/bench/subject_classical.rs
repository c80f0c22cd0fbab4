//! The classical subject-only baselines of a new task, as a pyRiemann user writes them for one
//! subject trained only on its own calibration epochs (covariances already estimated, OAS, by the
//! features):
//!
//! - [`tangent_lr`]: `make_pipeline(TangentSpace(metric="riemann"),
//!   LogisticRegression(class_weight="balanced"))` inside `GridSearchCV` over `C` in [`C_GRID`]
//!   (`StratifiedKFold`, no shuffle; balanced accuracy), refit on every calibration epoch;
//! - [`mdm`]: `MDM(metric="riemann")` and its `predict_proba`, `softmax(-d**2)`.
//!
//! Both are checked against pyRiemann and scikit-learn in `tests/subject_classical_reference.rs`.

use rayon::prelude::*;

use crate::align::linalg;
use crate::encoder::n_pairs;
use crate::features::FeatureRow;
use crate::pretrain::logreg::{self, Data, Model, Solver};

use super::BenchError;

/// scikit-learn `C` values searched, in `param_grid` order (ties go to the first).
pub const C_GRID: [f64; 4] = [0.01, 0.1, 1.0, 10.0];
/// `cv=5`: folds of the search when every class has that many epochs.
pub const CV_FOLDS: usize = 5;
/// `C` taken without a search when a class has fewer than two epochs (scikit-learn's default).
pub const DEFAULT_C: f64 = 1.0;
/// Eigenvalues below this fraction of the largest diagonal entry are floored before logarithms
/// (as the alignment does), so that a nearly singular covariance stays usable.
const RELATIVE_EIGEN_FLOOR: f64 = 1e-9;
/// Solved far tighter than scikit-learn's default so that the optimum, not the stopping point,
/// is compared.
const SOLVER: Solver = Solver {
    max_iterations: 20_000,
    tolerance: 1e-10,
    memory: 10,
};

/// Class probabilities `[n_test][n_classes]` and the chosen `C` of the tangent-space logistic
/// regression trained on `calibration` alone (every row labelled), covariance band `band` of
/// `channels` channels. Classes without calibration epochs get probability 0.
pub fn tangent_lr(
    calibration: &[&FeatureRow],
    test: &[&FeatureRow],
    band: usize,
    channels: usize,
    n_classes: usize,
) -> Result<(Vec<Vec<f64>>, f64), BenchError> {
    let labels = labels_of(calibration, n_classes)?;
    let train = covariances(calibration, band, channels)?;
    let test = covariances(test, band, channels)?;
    let counts = class_counts(&labels, n_classes);
    if counts.iter().filter(|&&n| n > 0).count() < 2 {
        return Err(BenchError::Setup(
            "tangent_lr: the calibration epochs hold fewer than two classes".into(),
        ));
    }
    let smallest = counts.iter().copied().filter(|&n| n > 0).min().unwrap_or(0);
    let c = if smallest >= 2 {
        choose_c(&train, &labels, channels, CV_FOLDS.min(smallest))
    } else {
        DEFAULT_C
    };
    let tangent = Tangent::fit(&train, channels);
    let x = tangent.vectors(&train);
    let all: Vec<usize> = (0..labels.len()).collect();
    let model = Balanced::fit(&x, &labels, &all, c, n_pairs(channels));
    let x_test = tangent.vectors(&test);
    let probabilities = (0..test.len())
        .map(|i| model.probabilities(row(&x_test, i, n_pairs(channels)), n_classes))
        .collect();
    Ok((probabilities, c))
}

/// Class probabilities `[n_test][n_classes]` of pyRiemann's `MDM(metric="riemann")` trained on
/// `calibration` (every row labelled): `softmax(-d^2)` of the Riemannian distances to each
/// class's Riemannian mean. Classes without calibration epochs get probability 0.
pub fn mdm(
    calibration: &[&FeatureRow],
    test: &[&FeatureRow],
    band: usize,
    channels: usize,
    n_classes: usize,
) -> Result<Vec<Vec<f64>>, BenchError> {
    let labels = labels_of(calibration, n_classes)?;
    let train = covariances(calibration, band, channels)?;
    let test = covariances(test, band, channels)?;
    // Per present class: R^-1/2 of its Riemannian mean.
    let centroids: Vec<(usize, Vec<f64>)> = (0..n_classes)
        .into_par_iter()
        .filter_map(|k| {
            let members: Vec<&[f64]> = train
                .iter()
                .zip(&labels)
                .filter(|(_, &l)| l == k)
                .map(|(c, _)| *c)
                .collect();
            (!members.is_empty()).then(|| (k, Tangent::fit(&members, channels).inv_sqrt))
        })
        .collect();
    if centroids.is_empty() {
        return Err(BenchError::Setup("mdm: no calibration epochs".into()));
    }
    Ok(test
        .par_iter()
        .map(|cov| {
            let scores: Vec<(usize, f64)> = centroids
                .iter()
                .map(|(k, p)| (*k, -squared_distance(p, cov, channels)))
                .collect();
            spread(&scores, n_classes)
        })
        .collect())
}

/// Labels of the calibration rows, each required and below `n_classes`.
fn labels_of(rows: &[&FeatureRow], n_classes: usize) -> Result<Vec<usize>, BenchError> {
    if rows.is_empty() {
        return Err(BenchError::Setup("no calibration epochs".into()));
    }
    rows.iter()
        .map(|r| match r.label {
            Some(l) if l < n_classes => Ok(l),
            Some(l) => Err(BenchError::Setup(format!(
                "calibration epoch {} of {} has class {l}, the task has {n_classes}",
                r.epoch, r.recording
            ))),
            None => Err(BenchError::Setup(format!(
                "calibration epoch {} of {} is unlabelled",
                r.epoch, r.recording
            ))),
        })
        .collect()
}

/// Covariance band `band` of every row, checked to be `channels x channels`.
fn covariances<'a>(
    rows: &[&'a FeatureRow],
    band: usize,
    channels: usize,
) -> Result<Vec<&'a [f64]>, BenchError> {
    rows.iter()
        .map(|r| {
            r.covariances
                .get(band)
                .filter(|c| c.len() == channels * channels)
                .map(Vec::as_slice)
                .ok_or_else(|| {
                    BenchError::Setup(format!(
                        "epoch {} of {} has no {channels} x {channels} covariance in band {band}",
                        r.epoch, r.recording
                    ))
                })
        })
        .collect()
}

fn class_counts(labels: &[usize], n_classes: usize) -> Vec<usize> {
    let mut counts = vec![0; n_classes];
    for &l in labels {
        if let Some(n) = counts.get_mut(l) {
            *n += 1;
        }
    }
    counts
}

fn row(x: &[f32], i: usize, width: usize) -> &[f32] {
    x.get(i * width..(i + 1) * width).unwrap_or(&[])
}

/// pyRiemann's `TangentSpace(metric="riemann")` fitted on some covariances: `R^-1/2` of their
/// Riemannian mean.
struct Tangent {
    inv_sqrt: Vec<f64>,
    channels: usize,
}

impl Tangent {
    fn fit(covariances: &[&[f64]], channels: usize) -> Self {
        let mean = linalg::riemannian_mean(covariances, channels, RELATIVE_EIGEN_FLOOR);
        let inv_sqrt = linalg::spd_function(&mean, channels, f64::NEG_INFINITY, |l| {
            1.0 / l.max(f64::MIN_POSITIVE).sqrt()
        });
        Tangent { inv_sqrt, channels }
    }

    /// Row-major `[n, n_pairs]`: upper triangle of `logm(R^-1/2 C R^-1/2)`, `sqrt 2` off the
    /// diagonal (pyRiemann's `upper`).
    fn vectors(&self, covariances: &[&[f64]]) -> Vec<f32> {
        let c = self.channels;
        let per_row: Vec<Vec<f32>> = covariances
            .par_iter()
            .map(|cov| {
                let p = &self.inv_sqrt;
                let whitened = linalg::matmul(&linalg::matmul(p, cov, c), p, c);
                let floor = linalg::max_diagonal(&whitened, c) * RELATIVE_EIGEN_FLOOR;
                let log = linalg::spd_function(&whitened, c, floor, f64::ln);
                let mut v = Vec::with_capacity(n_pairs(c));
                for i in 0..c {
                    for j in i..c {
                        let w = if i == j {
                            1.0
                        } else {
                            std::f64::consts::SQRT_2
                        };
                        v.push((w * log.get(i * c + j).copied().unwrap_or(0.0)) as f32);
                    }
                }
                v
            })
            .collect();
        per_row.concat()
    }
}

/// Squared affine-invariant distance between `cov` and the matrix whose `R^-1/2` is `inv_sqrt`:
/// the sum of squared logarithms of the eigenvalues of `R^-1/2 C R^-1/2`.
fn squared_distance(inv_sqrt: &[f64], cov: &[f64], channels: usize) -> f64 {
    let whitened = linalg::matmul(&linalg::matmul(inv_sqrt, cov, channels), inv_sqrt, channels);
    let floor = linalg::max_diagonal(&whitened, channels) * RELATIVE_EIGEN_FLOOR;
    linalg::symmetric_eigen(&whitened, channels)
        .values
        .iter()
        .map(|l| l.max(floor).ln().powi(2))
        .sum()
}

/// Softmax of `(class, score)` pairs into `n_classes` probabilities (absent classes 0).
fn spread(scores: &[(usize, f64)], n_classes: usize) -> Vec<f64> {
    let max = scores.iter().map(|s| s.1).fold(f64::NEG_INFINITY, f64::max);
    let total: f64 = scores.iter().map(|s| (s.1 - max).exp()).sum();
    let mut out = vec![0.0; n_classes];
    for &(k, s) in scores {
        if let Some(o) = out.get_mut(k) {
            *o = (s - max).exp() / total;
        }
    }
    out
}

/// A `LogisticRegression(class_weight="balanced")` fitted on some rows.
struct Balanced {
    model: Model,
    /// Class of each of the model's outputs (the classes present in its training rows, sorted).
    classes: Vec<usize>,
}

impl Balanced {
    /// Fits rows `rows` of `x` (row-major, `width` wide) with scikit-learn's `C`: weights
    /// `n / (K n_k)` (summing to `n`); the penalty on our `K`-row objective is `1 / (C n)` for
    /// scikit-learn's multinomial model and `2 / (C n)` for its binary one (one weight vector,
    /// half the difference of our two rows).
    fn fit(x: &[f32], labels: &[usize], rows: &[usize], c: f64, width: usize) -> Self {
        let mut classes: Vec<usize> = rows
            .iter()
            .filter_map(|&i| labels.get(i).copied())
            .collect();
        classes.sort_unstable();
        classes.dedup();
        let index = |l: usize| classes.binary_search(&l).unwrap_or(0);
        let y: Vec<u32> = rows
            .iter()
            .map(|&i| index(labels.get(i).copied().unwrap_or(0)) as u32)
            .collect();
        let k = classes.len();
        let mut counts = vec![0usize; k];
        for &l in &y {
            counts[l as usize] += 1;
        }
        let n = y.len() as f64;
        let weights: Vec<f32> = y
            .iter()
            .map(|&l| (n / (k as f64 * counts[l as usize] as f64)) as f32)
            .collect();
        let xs: Vec<f32> = rows
            .iter()
            .flat_map(|&i| row(x, i, width).iter().copied())
            .collect();
        let penalty = if k == 2 { 2.0 } else { 1.0 } / (c * n.max(1.0));
        let model = logreg::fit(
            &Data {
                x: &xs,
                stride: width,
                columns: 0..width,
                labels: &y,
                weights: Some(&weights),
            },
            k,
            penalty,
            None,
            None,
            &SOLVER,
        );
        Balanced { model, classes }
    }

    fn logits(&self, x: &[f32]) -> Vec<f64> {
        let mut logits = vec![0.0; self.model.k];
        self.model.logits(x, &mut logits);
        logits
    }

    /// `predict_proba` over `n_classes` (classes the model never saw get 0).
    fn probabilities(&self, x: &[f32], n_classes: usize) -> Vec<f64> {
        let scores: Vec<(usize, f64)> = self.classes.iter().copied().zip(self.logits(x)).collect();
        spread(&scores, n_classes)
    }

    /// `predict`: the first class of largest logit (scikit-learn's binary rule, decision > 0
    /// for the second class, is the same).
    fn predict(&self, x: &[f32]) -> usize {
        let logits = self.logits(x);
        let best = logits
            .iter()
            .enumerate()
            .fold(
                (0, f64::NEG_INFINITY),
                |b, (i, &v)| if v > b.1 { (i, v) } else { b },
            );
        self.classes.get(best.0).copied().unwrap_or(0)
    }
}

/// scikit-learn's `StratifiedKFold(n_splits)._make_test_folds` without shuffling: the test fold
/// of each sample. Classes are numbered by first appearance; the per-fold count of each class is
/// a round robin over the labels sorted by that number, and each class's samples, in order, fill
/// folds 0, 1, ... with those counts.
fn stratified_test_folds(labels: &[usize], n_splits: usize) -> Vec<usize> {
    let mut order: Vec<usize> = Vec::new();
    let encoded: Vec<usize> = labels
        .iter()
        .map(|l| match order.iter().position(|o| o == l) {
            Some(p) => p,
            None => {
                order.push(*l);
                order.len() - 1
            }
        })
        .collect();
    let n_classes = order.len();
    let mut sorted = encoded.clone();
    sorted.sort_unstable();
    let splits = n_splits.max(1);
    // allocation[f][k]: samples of class k in test fold f.
    let mut allocation = vec![vec![0usize; n_classes]; splits];
    for (i, &k) in sorted.iter().enumerate() {
        allocation[i % splits][k] += 1;
    }
    let mut next = vec![(0usize, 0usize); n_classes]; // (fold, filled in that fold)
    encoded
        .iter()
        .map(|&k| {
            let (fold, filled) = &mut next[k];
            while *fold + 1 < splits && *filled >= allocation[*fold][k] {
                *fold += 1;
                *filled = 0;
            }
            *filled += 1;
            *fold
        })
        .collect()
}

/// `GridSearchCV`'s choice of `C`: the best mean balanced accuracy over stratified folds, each
/// fold's tangent space fitted on its own training epochs; ties go to the first in [`C_GRID`].
fn choose_c(train: &[&[f64]], labels: &[usize], channels: usize, n_splits: usize) -> f64 {
    let folds = stratified_test_folds(labels, n_splits);
    let width = n_pairs(channels);
    // Per fold, per C: balanced accuracy on the fold's test epochs.
    let scores: Vec<Vec<f64>> = (0..n_splits)
        .into_par_iter()
        .map(|f| {
            let (fit_rows, test_rows): (Vec<usize>, Vec<usize>) =
                (0..labels.len()).partition(|&i| folds.get(i) != Some(&f));
            let pick = |rows: &[usize]| -> Vec<&[f64]> {
                rows.iter().filter_map(|&i| train.get(i).copied()).collect()
            };
            let tangent = Tangent::fit(&pick(&fit_rows), channels);
            let x_fit = tangent.vectors(&pick(&fit_rows));
            let x_test = tangent.vectors(&pick(&test_rows));
            let fit_labels: Vec<usize> = fit_rows.iter().map(|&i| labels[i]).collect();
            let test_labels: Vec<usize> = test_rows.iter().map(|&i| labels[i]).collect();
            let local: Vec<usize> = (0..fit_rows.len()).collect();
            C_GRID
                .par_iter()
                .map(|&c| {
                    let model = Balanced::fit(&x_fit, &fit_labels, &local, c, width);
                    let predicted: Vec<usize> = (0..test_rows.len())
                        .map(|i| model.predict(row(&x_test, i, width)))
                        .collect();
                    balanced_accuracy(&test_labels, &predicted)
                })
                .collect()
        })
        .collect();
    let mut best = (DEFAULT_C, f64::NEG_INFINITY);
    for (j, &c) in C_GRID.iter().enumerate() {
        // Summed in fold order, then divided (numpy's mean of a few numbers).
        let mean = scores
            .iter()
            .map(|s| s.get(j).copied().unwrap_or(0.0))
            .sum::<f64>()
            / n_splits as f64;
        if mean > best.1 {
            best = (c, mean);
        }
    }
    best.0
}

/// scikit-learn's `balanced_accuracy_score`: the mean recall over the classes present in `truth`.
fn balanced_accuracy(truth: &[usize], predicted: &[usize]) -> f64 {
    let mut classes: Vec<usize> = truth.to_vec();
    classes.sort_unstable();
    classes.dedup();
    if classes.is_empty() {
        return 0.0;
    }
    let recall_sum: f64 = classes
        .iter()
        .map(|&k| {
            let (hit, total) = truth
                .iter()
                .zip(predicted)
                .filter(|(t, _)| **t == k)
                .fold((0usize, 0usize), |(h, n), (_, p)| {
                    (h + usize::from(*p == k), n + 1)
                });
            hit as f64 / total as f64
        })
        .sum();
    recall_sum / classes.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_folds_match_scikit_learn_stratified_k_fold() {
        // Printed by tests/python/subject_classical_reference.py (StratifiedKFold, no shuffle).
        let cases: [(&[usize], usize, &[usize]); 3] = [
            (
                &[2, 0, 0, 1, 2, 1, 0, 2, 2, 0, 1, 0, 2],
                3,
                &[0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2],
            ),
            (
                &[1, 1, 0, 2, 0, 1, 2, 0, 1, 1, 0],
                2,
                &[0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1],
            ),
            (
                &[
                    0, 2, 0, 1, 0, 1, 0, 2, 0, 2, 0, 1, 0, 2, 0, 1, 0, 2, 0, 1, 0, 1, 0, 2, 0,
                ],
                5,
                &[
                    0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 1, 2, 2, 3, 2, 3, 2, 3, 3, 4, 3, 4, 4, 4, 4,
                ],
            ),
        ];
        for (labels, splits, expected) in cases {
            assert_eq!(
                stratified_test_folds(labels, splits),
                expected,
                "{labels:?}"
            );
        }
    }

    #[test]
    fn balanced_accuracy_averages_recall_over_present_classes() {
        // Recalls: class 0 1/2, class 2 1/1; class 1 is only predicted.
        assert!((balanced_accuracy(&[0, 0, 2], &[0, 1, 2]) - 0.75).abs() < 1e-12);
    }

    fn row_of(cov: [f64; 4], label: Option<usize>) -> FeatureRow {
        FeatureRow {
            subject: "S".into(),
            recording: "R".into(),
            run: None,
            epoch: 0,
            onset_s: 0.0,
            label,
            log_psd: Vec::new(),
            log_band_power: Vec::new(),
            rel_band_power: Vec::new(),
            covariances: vec![cov.to_vec()],
            evoked: Vec::new(),
        }
    }

    #[test]
    fn mdm_uses_geometric_means_and_softmax_of_squared_distances() {
        // Commuting diagonal matrices: class 0's Riemannian mean is diag(2, 6) (geometric mean
        // of diag(1, 4) and diag(4, 9)), class 1's is diag(1, 1); the test matrix diag(2, 6)
        // sits on class 0's mean, at squared distance ln(2)^2 + ln(6)^2 from class 1's.
        let rows = [
            row_of([1.0, 0.0, 0.0, 4.0], Some(0)),
            row_of([4.0, 0.0, 0.0, 9.0], Some(0)),
            row_of([1.0, 0.0, 0.0, 1.0], Some(2)),
        ];
        let test = row_of([2.0, 0.0, 0.0, 6.0], None);
        let calibration: Vec<&FeatureRow> = rows.iter().collect();
        let p = mdm(&calibration, &[&test], 0, 2, 3).expect("mdm");
        let d2 = 2f64.ln().powi(2) + 6f64.ln().powi(2);
        let expected = [
            1.0 / (1.0 + (-d2).exp()),
            0.0,
            (-d2).exp() / (1.0 + (-d2).exp()),
        ];
        assert!(
            p[0].iter().zip(expected).all(|(a, b)| (a - b).abs() < 1e-9),
            "{p:?} vs {expected:?}"
        );
    }

    #[test]
    fn unlabelled_or_out_of_range_calibration_is_refused() {
        let a = row_of([1.0, 0.0, 0.0, 1.0], None);
        let b = row_of([1.0, 0.0, 0.0, 1.0], Some(3));
        assert!(mdm(&[&a], &[], 0, 2, 2).is_err());
        assert!(tangent_lr(&[&b], &[], 0, 2, 2).is_err());
        // A wrong channel count is a typed error too, not a panic.
        let c = row_of([1.0, 0.0, 0.0, 1.0], Some(0));
        assert!(mdm(&[&c], &[&c], 0, 3, 2).is_err());
    }

    #[test]
    fn tangent_lr_separates_two_classes_and_searches_c() {
        // Class 1 has more power on the first channel; six epochs per class: 5 folds.
        let rows: Vec<FeatureRow> = (0..12)
            .map(|i| {
                let class = i % 2;
                let jitter = 1.0 + 0.05 * (i as f64);
                let first = if class == 1 { 4.0 } else { 1.0 } * jitter;
                row_of([first, 0.1, 0.1, 1.0 / jitter], Some(class))
            })
            .collect();
        let calibration: Vec<&FeatureRow> = rows.iter().collect();
        let test = [
            row_of([5.0, 0.0, 0.0, 1.0], None),
            row_of([0.9, 0.0, 0.0, 1.0], None),
        ];
        let tests: Vec<&FeatureRow> = test.iter().collect();
        let (p, c) = tangent_lr(&calibration, &tests, 0, 2, 2).expect("tangent_lr");
        // Every C separates the folds perfectly: the first of the grid is taken.
        assert_eq!(c, C_GRID[0]);
        assert!(p[0][1] > 0.5 && p[1][0] > 0.5, "{p:?}");
        assert!(p
            .iter()
            .all(|q| (q.iter().sum::<f64>() - 1.0).abs() < 1e-12));
        // A class with a single epoch: no search, scikit-learn's default C; an absent class
        // (2 of 3) gets probability 0.
        let (p, c) = tangent_lr(&calibration[..3], &tests, 0, 2, 3).expect("tangent_lr");
        assert_eq!(c, DEFAULT_C);
        assert!(p
            .iter()
            .all(|q| q[2] == 0.0 && (q[0] + q[1] - 1.0).abs() < 1e-12));
    }
}
