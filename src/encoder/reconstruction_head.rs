//! Pretraining head: output tokens back to channel features.

use candle_core::{Module, Tensor};
use candle_nn::{linear, Linear, VarBuilder};

use super::Result;

/// Linear d -> F predicting each (masked) channel's features from its output token.
///
/// Weights: `weight` `[F, d]`, `bias` `[F]` under the caller's prefix (for example
/// `reconstruction`).
#[derive(Debug, Clone)]
pub struct ReconstructionHead {
    linear: Linear,
}

impl ReconstructionHead {
    /// A head from `d_model`-wide tokens to `n_features` features.
    pub fn new(d_model: usize, n_features: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            linear: linear(d_model, n_features, vb)?,
        })
    }
}

impl Module for ReconstructionHead {
    /// Tokens `[B, C, d]` to predicted features `[B, C, F]`.
    fn forward(&self, tokens: &Tensor) -> candle_core::Result<Tensor> {
        super::ops::linear_last_dim(&self.linear, tokens)
    }
}
