//! The linear part of a task head as an ensemble of views: one logistic regression per view
//! (each covariance band's tangent vectors, the evoked waveform), each with its own L2 strength,
//! combined by averaging their logits. Averaging separately fitted views generalises across
//! subjects better than one model on the concatenated inputs, whose single penalty cannot suit
//! inputs of different scale and reliability.

use std::ops::Range;

use candle_core::{Device, Tensor};
use rayon::prelude::*;

use super::logistic::Linear;
use super::logreg::{self, Data, Model, Solver};
use super::PretrainError;

/// Labelled inputs of the linear head: `x` row-major `[n, width]`.
pub struct Inputs<'a> {
    /// Row-major inputs.
    pub x: &'a [f32],
    /// Row length.
    pub width: usize,
    /// Class indices.
    pub labels: &'a [u32],
    /// Sample weights (`None`: all 1).
    pub weights: Option<&'a [f32]>,
}

impl Inputs<'_> {
    fn view(&self, block: &Range<usize>) -> Data<'_> {
        Data {
            x: self.x,
            stride: self.width,
            columns: block.clone(),
            labels: self.labels,
            weights: self.weights,
        }
    }
}

/// How each view is fitted.
pub struct ViewFit<'a> {
    /// L2 strength per view.
    pub penalties: &'a [f64],
    /// Per view, the weights to pull toward (L2-SP); `None`: toward zero.
    pub anchors: Option<&'a [Model]>,
    /// Per view, where to start (a nearby optimum converges in few iterations).
    pub starts: Option<&'a [Model]>,
}

/// Fits one model per view (in parallel).
pub fn fit_views(
    inputs: &Inputs,
    k: usize,
    blocks: &[Range<usize>],
    how: &ViewFit,
) -> Result<Vec<Model>, PretrainError> {
    if how.penalties.len() != blocks.len() {
        return Err(PretrainError::Mismatch(format!(
            "{} penalties for {} views",
            how.penalties.len(),
            blocks.len()
        )));
    }
    let solver = Solver::default();
    Ok(blocks
        .par_iter()
        .enumerate()
        .map(|(v, block)| {
            let anchor = how
                .anchors
                .and_then(|a| a.get(v))
                .map(|m| m.weight.as_slice());
            let start = how.starts.and_then(|s| s.get(v));
            logreg::fit(
                &inputs.view(block),
                k,
                how.penalties[v],
                anchor,
                start,
                &solver,
            )
        })
        .collect())
}

/// Mean cross-entropy of each view's model alone on `inputs`.
pub fn view_losses(inputs: &Inputs, blocks: &[Range<usize>], models: &[Model]) -> Vec<f64> {
    blocks
        .iter()
        .zip(models)
        .map(|(b, m)| logreg::cross_entropy(&inputs.view(b), m))
        .collect()
}

/// The views' models as one linear map over the whole input, logits averaged over views.
pub fn combine(
    models: &[Model],
    blocks: &[Range<usize>],
    width: usize,
) -> Result<Linear, PretrainError> {
    let k = models.first().map_or(0, |m| m.k);
    let scale = 1.0 / models.len().max(1) as f64;
    let mut weight = vec![0f32; k * width];
    let mut bias = vec![0f32; k];
    for (m, block) in models.iter().zip(blocks) {
        for (c, b) in bias.iter_mut().enumerate() {
            for (j, col) in block.clone().enumerate() {
                if let Some(slot) = weight.get_mut(c * width + col) {
                    *slot = (m.weight[c * m.p + j] * scale) as f32;
                }
            }
            *b += (m.bias.get(c).copied().unwrap_or(0.0) * scale) as f32;
        }
    }
    Ok(Linear {
        weight: Tensor::from_vec(weight, (k, width), &Device::Cpu)?,
        bias: Tensor::from_vec(bias, k, &Device::Cpu)?,
    })
}

/// Each view's model back out of a combined linear map (the inverse of [`combine`], bias split
/// evenly across views).
pub fn split(linear: &Linear, blocks: &[Range<usize>]) -> Result<Vec<Model>, PretrainError> {
    let weight: Vec<Vec<f32>> = linear.weight.to_vec2()?;
    let bias: Vec<f32> = linear.bias.to_vec1()?;
    let k = weight.len();
    let views = blocks.len().max(1) as f64;
    Ok(blocks
        .iter()
        .map(|block| {
            let p = block.len();
            let mut w = vec![0.0; k * p];
            for (c, row) in weight.iter().enumerate() {
                for (j, col) in block.clone().enumerate() {
                    w[c * p + j] = f64::from(row.get(col).copied().unwrap_or(0.0)) * views;
                }
            }
            Model {
                k,
                p,
                weight: w,
                bias: bias.iter().map(|&b| f64::from(b)).collect(),
            }
        })
        .collect())
}

/// Rows of a `[n, width]` tensor as one flat vector.
pub fn flatten(x: &Tensor) -> Result<Vec<f32>, PretrainError> {
    Ok(x.flatten_all()?.to_vec1()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combine_and_split_are_inverse_and_logits_average() -> Result<(), PretrainError> {
        let blocks = vec![0..2, 2..3];
        let models = vec![
            Model {
                k: 2,
                p: 2,
                weight: vec![1.0, 2.0, -1.0, -2.0],
                bias: vec![0.5, -0.5],
            },
            Model {
                k: 2,
                p: 1,
                weight: vec![4.0, -4.0],
                bias: vec![0.1, -0.1],
            },
        ];
        let linear = combine(&models, &blocks, 3)?;
        let x = Tensor::new(&[[1f32, 1.0, 1.0]], &Device::Cpu)?;
        let logits: Vec<Vec<f32>> = linear.logits(&x)?.to_vec2()?;
        // View logits for class 0: 3.5 and 4.1; their mean 3.8.
        assert!((logits[0][0] - 3.8).abs() < 1e-6, "{logits:?}");
        let back = split(&linear, &blocks)?;
        for (a, b) in back.iter().zip(&models) {
            assert!(a
                .weight
                .iter()
                .zip(&b.weight)
                .all(|(p, q)| (p - q).abs() < 1e-6));
        }
        Ok(())
    }
}
