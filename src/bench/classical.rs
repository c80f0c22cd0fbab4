//! The classical pooled baseline, as a pyRiemann user writes it (no encoder): each subject's
//! band-limited covariances re-centred by that subject's own Riemannian mean (the target by its
//! calibration run's), tangent space at the identity (upper triangle, sqrt 2 off the diagonal),
//! logistic regression on the other subjects pooled with the target's calibration epochs
//! weighted x5, its strength chosen by leave-subjects-out cross-validation on the pool only.

use std::collections::BTreeMap;

use rayon::prelude::*;

use crate::align::{RowLayout, SubjectAlignment};
use crate::encoder::{n_pairs, PairMap};
use crate::features::FeatureRow;
use crate::pretrain::logreg::{self, Data, Model, Solver};

use super::BenchError;

/// scikit-learn `C` values tried (`C = 0.1` is the recipe's published setting).
pub const C_VALUES: [f64; 3] = [0.01, 0.1, 1.0];
/// Weight of each calibration epoch of the target relative to a pool epoch.
pub const TARGET_WEIGHT: f32 = 5.0;
/// Groups of pool subjects for choosing `C`.
const INNER_FOLDS: usize = 4;

/// One subject's re-centred tangent vectors (row-major `[n, n_pairs]`) and labels.
#[derive(Debug, Clone, Default)]
pub struct Vectors {
    /// Rows.
    pub x: Vec<f32>,
    /// Labels.
    pub y: Vec<u32>,
}

impl Vectors {
    fn len(&self) -> usize {
        self.y.len()
    }

    fn extend(&mut self, other: &Vectors) {
        self.x.extend_from_slice(&other.x);
        self.y.extend_from_slice(&other.y);
    }
}

/// The covariance band the baseline reads, and the rows' layout.
#[derive(Debug, Clone, Copy)]
pub struct Band {
    /// Index among the rows' covariance bands.
    pub index: usize,
    /// Layout of the rows.
    pub layout: RowLayout,
}

/// Tangent vectors of `rows` (labelled ones only) re-centred by the Riemannian mean of
/// `reference` (labels unused).
pub fn vectors(
    subject: &str,
    reference: &[&FeatureRow],
    rows: &[&FeatureRow],
    band: Band,
) -> Result<Vectors, BenchError> {
    let c = band.layout.channels;
    let one_band: Vec<FeatureRow> = reference.iter().map(|r| only_band(r, band.index)).collect();
    let refs: Vec<&FeatureRow> = one_band.iter().collect();
    let layout = RowLayout {
        covariance_bands: 1,
        ..band.layout
    };
    let alignment = SubjectAlignment::fit(subject, &refs, layout)
        .map_err(|e| BenchError::Setup(e.to_string()))?;
    let identity: Vec<Option<usize>> = (0..c).map(Some).collect();
    let map = PairMap::new(&identity, c);
    let mut out = Vectors::default();
    for row in rows {
        let Some(label) = row.label else { continue };
        let tangent = alignment
            .tangent(&only_band(row, band.index))
            .map_err(|e| BenchError::Setup(e.to_string()))?
            .ok_or_else(|| BenchError::Setup("rows carry no covariance".into()))?;
        map.vectorize(&tangent, &mut out.x);
        out.y.push(label as u32);
    }
    Ok(out)
}

fn only_band(row: &FeatureRow, band: usize) -> FeatureRow {
    FeatureRow {
        covariances: row.covariances.get(band).cloned().into_iter().collect(),
        ..row.clone()
    }
}

/// Pool subjects' vectors, each re-centred on all of its own epochs.
pub fn pool_vectors(
    subjects: &BTreeMap<String, Vec<&FeatureRow>>,
    band: Band,
) -> Result<BTreeMap<String, Vectors>, BenchError> {
    subjects
        .par_iter()
        .map(|(s, rows)| Ok((s.clone(), vectors(s, rows, rows, band)?)))
        .collect()
}

/// L2 strength on our objective equal to scikit-learn's `C` on total sample weight `total`
/// (a binary model's single weight vector is half the difference of our two class rows).
fn penalty_of(c: f64, total: f64) -> f64 {
    2.0 / (c * total.max(1.0))
}

fn fit(data: &Vectors, weights: Option<&[f32]>, c: f64, width: usize, k: usize) -> Model {
    let total = weights.map_or(data.len() as f64, |w| w.iter().map(|&v| f64::from(v)).sum());
    logreg::fit(
        &Data {
            x: &data.x,
            stride: width,
            columns: 0..width,
            labels: &data.y,
            weights,
        },
        k,
        penalty_of(c, total),
        None,
        None,
        &Solver::default(),
    )
}

fn accuracy(model: &Model, data: &Vectors, width: usize) -> (usize, usize) {
    let mut logits = vec![0.0; model.k];
    let correct = data
        .y
        .iter()
        .enumerate()
        .filter(|(i, &y)| {
            model.logits(&data.x[i * width..(i + 1) * width], &mut logits);
            crate::predict::argmax(&logits) == y as usize
        })
        .count();
    (correct, data.len())
}

/// `C` with the best accuracy over leave-subjects-out folds of the pool (ties: stronger L2).
pub fn choose_c(pool: &[&Vectors], width: usize, k: usize) -> f64 {
    let folds = INNER_FOLDS.min(pool.len());
    if folds < 2 {
        return 0.1;
    }
    let scores: Vec<(f64, usize)> = C_VALUES
        .par_iter()
        .map(|&c| {
            let mut correct = 0;
            for f in 0..folds {
                let mut train = Vectors::default();
                for (i, v) in pool.iter().enumerate() {
                    if i % folds != f {
                        train.extend(v);
                    }
                }
                let model = fit(&train, None, c, width, k);
                for (i, v) in pool.iter().enumerate() {
                    if i % folds == f {
                        correct += accuracy(&model, v, width).0;
                    }
                }
            }
            (c, correct)
        })
        .collect();
    scores
        .iter()
        .fold(
            (0.1, 0usize),
            |best, &(c, n)| if n > best.1 { (c, n) } else { best },
        )
        .0
}

/// The baseline's model for one target: `pool` (the other subjects' vectors, weight 1) with the
/// target's `calibration` vectors weighted [`TARGET_WEIGHT`].
pub fn fit_pooled(
    pool: &[&Vectors],
    calibration: &Vectors,
    c: f64,
    k: usize,
    channels: usize,
) -> Model {
    let width = n_pairs(channels);
    let mut train = Vectors::default();
    for v in pool {
        train.extend(v);
    }
    let mut weights = vec![1f32; train.len()];
    train.extend(calibration);
    weights.extend(std::iter::repeat_n(TARGET_WEIGHT, calibration.len()));
    fit(&train, Some(&weights), c, width, k)
}

/// The baseline's test accuracy for one target (see [`fit_pooled`]).
pub fn score(
    pool: &[&Vectors],
    calibration: &Vectors,
    test: &Vectors,
    c: f64,
    k: usize,
    channels: usize,
) -> f64 {
    let model = fit_pooled(pool, calibration, c, k, channels);
    let (correct, n) = accuracy(&model, test, n_pairs(channels));
    correct as f64 / n.max(1) as f64
}
