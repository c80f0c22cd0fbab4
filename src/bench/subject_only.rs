//! The subject-only baseline: a model trained from scratch on the calibration run alone, on the
//! same aligned tangent-space features, its L2 strength chosen by the same inner folds.

use candle_core::Tensor;

use crate::calibrate::{folds, CalibrateError, Prepared};
use crate::pretrain::logistic::{self, Linear};

/// L2 strengths tried, strongest first (ties go to the stronger).
pub const PENALTIES: [f64; 4] = [10.0, 1.0, 0.1, 0.01];

/// Fits the baseline on labelled calibration epochs; returns it and the chosen strength.
pub fn fit(
    data: &Prepared,
    n_classes: usize,
    max_folds: usize,
) -> Result<(Linear, f64), CalibrateError> {
    let labels: Vec<usize> = data.labels.iter().filter_map(|l| *l).collect();
    let y = data.label_tensor()?;
    let x = &data.tangent;
    let start = Linear::zeros(n_classes, x.dim(1)?)?;
    let folds = folds::stratified_folds(&labels, n_classes, max_folds);
    let mut best = (PENALTIES[1], f64::NEG_INFINITY);
    if !folds.is_empty() {
        for penalty in PENALTIES {
            let mut correct = 0usize;
            for held_out in &folds {
                let train = folds::complement(labels.len(), held_out);
                let pick = |ids: &[usize], t: &Tensor| folds::rows(t, ids);
                let fitted = logistic::fit(
                    &pick(&train, x)?,
                    &pick(&train, &y)?,
                    None,
                    &start,
                    None,
                    penalty,
                    logistic::STEPS,
                )?;
                let predicted: Vec<u32> =
                    fitted.logits(&pick(held_out, x)?)?.argmax(1)?.to_vec1()?;
                correct += held_out
                    .iter()
                    .zip(&predicted)
                    .filter(|(&i, &p)| labels.get(i) == Some(&(p as usize)))
                    .count();
            }
            let accuracy = correct as f64 / labels.len() as f64;
            if accuracy > best.1 {
                best = (penalty, accuracy);
            }
        }
    }
    let fitted = logistic::fit(x, &y, None, &start, None, best.0, logistic::STEPS)?;
    Ok((fitted, best.0))
}
