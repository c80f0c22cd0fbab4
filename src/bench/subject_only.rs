//! The subject-only baseline: a model trained from scratch on the calibration run alone, on the
//! same aligned linear views as the personalized model (one logistic regression per view,
//! logits averaged), its L2 strength chosen by the same inner folds.

use crate::calibrate::{folds, CalibrateError, Prepared};
use crate::pretrain::logistic::Linear;
use crate::pretrain::views::{self, Inputs, ViewFit};

/// L2 strengths tried (on the mean cross-entropy), strongest first (ties go to the stronger).
pub const PENALTIES: [f64; 4] = [1.0, 0.3, 0.1, 0.03];

/// Fits the baseline on labelled calibration epochs with views `blocks` of the inputs; returns
/// it and the chosen strength.
pub fn fit(
    data: &Prepared,
    n_classes: usize,
    blocks: &[std::ops::Range<usize>],
    max_folds: usize,
) -> Result<(Linear, f64), CalibrateError> {
    let labels: Vec<usize> = data.labels.iter().filter_map(|l| *l).collect();
    let y: Vec<u32> = data.label_tensor()?.to_vec1()?;
    let width = data.tangent.dim(1)?;
    let x = views::flatten(&data.tangent)?;
    let fit_rows = |rows: &[usize], penalty: f64| -> Result<Linear, CalibrateError> {
        let xs: Vec<f32> = rows
            .iter()
            .flat_map(|&i| x[i * width..(i + 1) * width].iter().copied())
            .collect();
        let ys: Vec<u32> = rows.iter().map(|&i| y[i]).collect();
        let models = views::fit_views(
            &Inputs {
                x: &xs,
                width,
                labels: &ys,
                weights: None,
            },
            n_classes,
            blocks,
            &ViewFit {
                penalties: &vec![penalty; blocks.len()],
                anchors: None,
                starts: None,
            },
        )?;
        Ok(views::combine(&models, blocks, width)?)
    };
    let inner = folds::stratified_folds(&labels, n_classes, max_folds);
    let mut best = (PENALTIES[1], f64::NEG_INFINITY);
    if !inner.is_empty() {
        for penalty in PENALTIES {
            let mut correct = 0usize;
            for held_out in &inner {
                let train = folds::complement(labels.len(), held_out);
                let model = fit_rows(&train, penalty)?;
                let predicted: Vec<u32> = model
                    .logits(&folds::rows(&data.tangent, held_out)?)?
                    .argmax(1)?
                    .to_vec1()?;
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
    let all: Vec<usize> = (0..labels.len()).collect();
    Ok((fit_rows(&all, best.0)?, best.0))
}
