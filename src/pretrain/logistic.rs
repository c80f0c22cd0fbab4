//! Multinomial logistic regression in candle, full batch, with an L2 pull toward a prior weight
//! (zero for a fresh model, the population's for personalisation: L2-SP, Li et al. 2018).

use candle_core::{Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};

use super::PretrainError;
use crate::encoder::cross_entropy;

/// Adam steps of a fit: enough for the loss to settle on a few hundred epochs (full batch).
pub const STEPS: usize = 300;
/// Adam learning rate of a fit.
const LEARNING_RATE: f64 = 0.01;

/// Weights of a linear classifier: logits = x W^T + b.
#[derive(Debug, Clone)]
pub struct Linear {
    /// `[K, P]`.
    pub weight: Tensor,
    /// `[K]`.
    pub bias: Tensor,
}

impl Linear {
    /// Logits `[N, K]` of `x` `[N, P]`.
    pub fn logits(&self, x: &Tensor) -> Result<Tensor, PretrainError> {
        Ok(x.matmul(&self.weight.t()?)?.broadcast_add(&self.bias)?)
    }

    /// All-zero weights for `k` classes and `p` inputs.
    pub fn zeros(k: usize, p: usize) -> Result<Self, PretrainError> {
        let device = candle_core::Device::Cpu;
        Ok(Linear {
            weight: Tensor::zeros((k, p), candle_core::DType::F32, &device)?,
            bias: Tensor::zeros(k, candle_core::DType::F32, &device)?,
        })
    }
}

/// Fits `x` `[N, P]` to labels `y` `[N]` (u32), starting at `start`, minimising the mean
/// cross-entropy of `x W^T + b` (weighted by `weights` `[N]` when given) plus
/// `penalty / 2 * |W - prior.W|^2` (the bias is not penalised; no prior means zero).
/// Deterministic: full batch, fixed step count.
pub fn fit(
    x: &Tensor,
    y: &Tensor,
    weights: Option<&Tensor>,
    start: &Linear,
    prior: Option<&Linear>,
    penalty: f64,
    steps: usize,
) -> Result<Linear, PretrainError> {
    Ok(fit_traced(x, y, weights, start, prior, penalty, steps)?.0)
}

/// [`fit`], also returning the cross-entropy before each step (the learning curve).
pub fn fit_traced(
    x: &Tensor,
    y: &Tensor,
    weights: Option<&Tensor>,
    start: &Linear,
    prior: Option<&Linear>,
    penalty: f64,
    steps: usize,
) -> Result<(Linear, Vec<f64>), PretrainError> {
    // Inputs may come out of a model with its graph attached: cut it, or every step would
    // back-propagate through that model too.
    let x = &x.detach();
    let weights = weights.map(Tensor::detach);
    let weight = Var::from_tensor(&start.weight.detach().copy()?)?;
    let bias = Var::from_tensor(&start.bias.detach().copy()?)?;
    let mut opt = AdamW::new(
        vec![weight.clone(), bias.clone()],
        ParamsAdamW {
            lr: LEARNING_RATE,
            weight_decay: 0.0,
            ..Default::default()
        },
    )?;
    let anchor = match prior {
        Some(p) => p.weight.detach(),
        None => start.weight.zeros_like()?,
    };
    let mut curve = Vec::with_capacity(steps);
    for _ in 0..steps {
        let logits = x
            .matmul(&weight.as_tensor().t()?)?
            .broadcast_add(bias.as_tensor())?;
        let pull = (weight.as_tensor() - &anchor)?.sqr()?.sum_all()?;
        let ce = match &weights {
            Some(w) => weighted_cross_entropy(&logits, y, w)?,
            None => cross_entropy(&logits, y)?,
        };
        curve.push(ce.to_scalar::<f32>()? as f64);
        opt.backward_step(&(ce + (pull * (penalty / 2.0))?)?)?;
    }
    let fitted = Linear {
        weight: weight.as_tensor().copy()?,
        bias: bias.as_tensor().copy()?,
    };
    Ok((fitted, curve))
}

/// Cross-entropy averaged with per-sample `weights` `[N]`: `sum w_i CE_i / sum w_i`.
pub fn weighted_cross_entropy(
    logits: &Tensor,
    labels: &Tensor,
    weights: &Tensor,
) -> Result<Tensor, PretrainError> {
    let log_p = candle_nn::ops::log_softmax(logits, 1)?;
    let picked = log_p.gather(&labels.unsqueeze(1)?, 1)?.squeeze(1)?;
    let total = weights.sum_all()?;
    Ok(picked
        .mul(weights)?
        .sum_all()?
        .neg()?
        .broadcast_div(&total)?)
}

/// Mean cross-entropy and accuracy of logits `[N, K]` against labels `[N]` (u32).
pub fn score(logits: &Tensor, y: &Tensor) -> Result<(f64, f64), PretrainError> {
    let n = y.dim(0)?;
    if n == 0 {
        return Ok((f64::NAN, f64::NAN));
    }
    let loss = cross_entropy(logits, y)?.to_scalar::<f32>()? as f64;
    let predicted: Vec<u32> = logits.argmax(1)?.to_vec1()?;
    let truth: Vec<u32> = y.to_vec1()?;
    let correct = predicted.iter().zip(&truth).filter(|(p, t)| p == t).count();
    Ok((loss, correct as f64 / n as f64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn separable_data_is_learned_and_the_prior_pulls() -> Result<(), PretrainError> {
        let x = Tensor::new(
            &[[1f32, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.8]],
            &Device::Cpu,
        )?;
        let y = Tensor::new(&[0u32, 0, 1, 1], &Device::Cpu)?;
        let start = Linear::zeros(2, 2)?;
        let free = fit(&x, &y, None, &start, None, 1e-3, STEPS)?;
        let (_, accuracy) = score(&free.logits(&x)?, &y)?;
        assert_eq!(accuracy, 1.0);
        // A strong pull toward a prior that prefers the opposite classes keeps the weights near it.
        let prior = Linear {
            weight: Tensor::new(&[[-1f32, 1.0], [1.0, -1.0]], &Device::Cpu)?,
            bias: Tensor::zeros(2, candle_core::DType::F32, &Device::Cpu)?,
        };
        let pulled = fit(&x, &y, None, &prior, Some(&prior), 1e3, STEPS)?;
        let gap = (&pulled.weight - &prior.weight)?
            .abs()?
            .max_all()?
            .to_scalar::<f32>()?;
        assert!(
            gap < 0.05,
            "weights moved {gap} from a strongly weighted prior"
        );
        Ok(())
    }

    #[test]
    fn weighted_cross_entropy_matches_repeated_samples() -> Result<(), PretrainError> {
        let logits = Tensor::new(&[[0.3f32, -0.2], [1.0, 0.5], [-0.7, 0.4]], &Device::Cpu)?;
        let y = Tensor::new(&[0u32, 1, 1], &Device::Cpu)?;
        let w = Tensor::new(&[1f32, 3.0, 1.0], &Device::Cpu)?;
        let weighted = weighted_cross_entropy(&logits, &y, &w)?.to_scalar::<f32>()?;
        // The same as the second sample three times over, unweighted.
        let repeated = Tensor::new(
            &[
                [0.3f32, -0.2],
                [1.0, 0.5],
                [1.0, 0.5],
                [1.0, 0.5],
                [-0.7, 0.4],
            ],
            &Device::Cpu,
        )?;
        let y_repeated = Tensor::new(&[0u32, 1, 1, 1, 1], &Device::Cpu)?;
        let plain = cross_entropy(&repeated, &y_repeated)?.to_scalar::<f32>()?;
        assert!((weighted - plain).abs() < 1e-6, "{weighted} vs {plain}");
        Ok(())
    }
}
