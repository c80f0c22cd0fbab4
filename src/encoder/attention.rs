//! Multi-head self-attention across channel tokens, optionally biased by the covariance.

use candle_core::{Module, ModuleT, Tensor};
use candle_nn::{linear, Init, Linear, VarBuilder};

use super::fused::{self, HeadLayout};
use super::{ops, EncoderConfig, EncoderError, LayerNorm, Result};

/// Pre-LayerNorm residual attention block: `x + dropout(out(attention(norm(x))))`.
///
/// With a covariance `[B, C, C]`, head h adds `cov_scale[h] * cov[b, i, j]` to the logits of
/// token i attending to token j: the spatial structure that per-channel spectra lack.
/// Weights: `norm.{weight,bias}`, `query`, `key`, `value`, `out` (each `.weight` `[d, d]` and
/// `.bias` `[d]`) and, when the config uses covariance, `cov_scale` `[n_heads]`.
#[derive(Debug, Clone)]
pub struct ChannelAttention {
    norm: LayerNorm,
    query: Linear,
    key: Linear,
    value: Linear,
    out: Linear,
    cov_scale: Option<Tensor>,
    n_heads: usize,
    dropout: f32,
}

impl ChannelAttention {
    /// An attention block shaped by `cfg` (d_model, n_heads, dropout, use_covariance).
    pub fn new(cfg: &EncoderConfig, vb: VarBuilder) -> Result<Self> {
        cfg.validate()?;
        let d = cfg.d_model;
        let cov_scale = if cfg.use_covariance {
            let init = Init::Randn {
                mean: 0.0,
                stdev: 0.1,
            };
            Some(vb.get_with_hints(cfg.n_heads, "cov_scale", init)?)
        } else {
            None
        };
        Ok(Self {
            norm: LayerNorm::new(d, vb.pp("norm"))?,
            query: linear(d, d, vb.pp("query"))?,
            key: linear(d, d, vb.pp("key"))?,
            value: linear(d, d, vb.pp("value"))?,
            out: linear(d, d, vb.pp("out"))?,
            cov_scale,
            n_heads: cfg.n_heads,
            dropout: cfg.dropout,
        })
    }

    /// Tokens `[B, C, d]` to tokens `[B, C, d]`; `covariance` `[B, C, C]` is ignored when the
    /// config does not use covariance.
    pub fn forward_t(
        &self,
        xs: &Tensor,
        covariance: Option<&Tensor>,
        train: bool,
    ) -> Result<Tensor> {
        let (b, c, d) = xs.dims3()?;
        let dh = d / self.n_heads;
        let split = |layer: &Linear, input: &Tensor, layout| -> Result<Tensor> {
            let projected = ops::linear_last_dim(layer, input)?;
            Ok(fused::split_heads(&projected, self.n_heads, layout)?)
        };
        let h = self.norm.forward(xs)?;
        // [B, H, C, dh] for queries and values, [B, H, dh, C] for keys.
        let q = split(&self.query, &h, HeadLayout::ChannelRows)?;
        let k_t = split(&self.key, &h, HeadLayout::ChannelColumns)?;
        let v = split(&self.value, &h, HeadLayout::ChannelRows)?;
        let logits = q.matmul(&k_t)?;
        let alpha = 1.0 / (dh as f64).sqrt();
        let weights = match (&self.cov_scale, covariance) {
            (Some(scale), Some(cov)) => {
                if cov.dims() != [b, c, c] {
                    return Err(EncoderError::Shape {
                        name: "covariance",
                        expected: format!("[{b}, {c}, {c}]"),
                        got: cov.dims().to_vec(),
                    });
                }
                fused::softmax_with_covariance(&logits, alpha, scale, cov)?
            }
            _ => ops::softmax_last_dim(&(logits * alpha)?)?,
        };
        let mixed = fused::merge_heads(&weights.matmul(&v)?)?;
        let update = ops::dropout(
            &ops::linear_last_dim(&self.out, &mixed)?,
            self.dropout,
            train,
        )?;
        Ok((xs + update)?)
    }
}

impl ModuleT for ChannelAttention {
    fn forward_t(&self, xs: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        ChannelAttention::forward_t(self, xs, None, train).map_err(super::into_candle)
    }
}
