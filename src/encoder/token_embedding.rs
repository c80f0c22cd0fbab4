//! Projection of each channel's feature vector to a token, with a learned mask token.

use candle_core::{Module, Tensor};
use candle_nn::{linear, Init, Linear, VarBuilder};

use super::Result;

/// Shared linear projection F -> d of every channel's features.
///
/// Where the mask is 1 the token is the learned `mask_token` instead, so a masked channel's
/// features cannot leak into the output (masked-channel pretraining). Weights: `proj.weight`
/// `[d, F]`, `proj.bias` `[d]`, `mask_token` `[d]`.
#[derive(Debug, Clone)]
pub struct TokenEmbedding {
    proj: Linear,
    mask_token: Tensor,
}

impl TokenEmbedding {
    /// Embeds `n_features`-long vectors into `d_model`-wide tokens.
    pub fn new(n_features: usize, d_model: usize, vb: VarBuilder) -> Result<Self> {
        let proj = linear(n_features, d_model, vb.pp("proj"))?;
        let init = Init::Randn {
            mean: 0.0,
            stdev: 0.02,
        };
        let mask_token = vb.get_with_hints(d_model, "mask_token", init)?;
        Ok(Self { proj, mask_token })
    }

    /// Tokens `[B, C, F]` and optional mask `[B, C]` (1.0 = hidden) to embeddings `[B, C, d]`.
    pub fn forward(&self, tokens: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let projected = super::ops::linear_last_dim(&self.proj, tokens)?;
        let Some(mask) = mask else {
            return Ok(projected);
        };
        // A blend rather than a select keeps it one differentiable expression; the mask is 0/1.
        Ok(super::fused::mask_tokens(
            &projected,
            mask,
            &self.mask_token,
        )?)
    }
}

impl Module for TokenEmbedding {
    fn forward(&self, tokens: &Tensor) -> candle_core::Result<Tensor> {
        super::ops::linear_last_dim(&self.proj, tokens)
    }
}
