//! Position-wise feed-forward block applied to every channel token.

use candle_core::{Module, ModuleT, Tensor};
use candle_nn::{linear, Linear, VarBuilder};

use super::{fused, ops, EncoderConfig, LayerNorm, Result};

/// Pre-LayerNorm residual MLP: `x + dropout(fc2(gelu(fc1(norm(x)))))`.
///
/// Weights: `norm.{weight,bias}`, `fc1.weight` `[d_ff, d]`, `fc1.bias`, `fc2.weight` `[d, d_ff]`,
/// `fc2.bias`.
#[derive(Debug, Clone)]
pub struct FeedForward {
    norm: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    dropout: f32,
}

impl FeedForward {
    /// A feed-forward block shaped by `cfg` (d_model, d_ff, dropout).
    pub fn new(cfg: &EncoderConfig, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            norm: LayerNorm::new(cfg.d_model, vb.pp("norm"))?,
            fc1: linear(cfg.d_model, cfg.d_ff, vb.pp("fc1"))?,
            fc2: linear(cfg.d_ff, cfg.d_model, vb.pp("fc2"))?,
            dropout: cfg.dropout,
        })
    }
}

impl ModuleT for FeedForward {
    /// Tokens `[B, C, d]` to tokens `[B, C, d]`; dropout only when `train`.
    fn forward_t(&self, xs: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        if !train || self.dropout == 0.0 {
            if let (Some(b1), Some(b2)) = (self.fc1.bias(), self.fc2.bias()) {
                let weights = fused::FeedForwardWeights {
                    norm: self.norm.weight_and_bias(),
                    fc1: (self.fc1.weight(), b1),
                    fc2: (self.fc2.weight(), b2),
                };
                return fused::feed_forward(xs, weights, super::layer_norm::EPS);
            }
        }
        let hidden = ops::gelu(&ops::linear_last_dim(&self.fc1, &self.norm.forward(xs)?)?)?;
        let update = ops::dropout(
            &ops::linear_last_dim(&self.fc2, &hidden)?,
            self.dropout,
            train,
        )?;
        xs + update
    }
}
