//! Multi-head self-attention across channel tokens, optionally biased by the covariance.

use candle_core::{Module, ModuleT, Tensor};
use candle_nn::{linear, Init, Linear, VarBuilder};

use super::fused;
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
        let h = self.norm.forward(xs)?;
        // One product for queries, keys and values, split to [3, B, H, C, dh].
        let weight = Tensor::cat(
            &[self.query.weight(), self.key.weight(), self.value.weight()],
            0,
        )?;
        let biases = [&self.query, &self.key, &self.value].map(|l| l.bias().cloned());
        let qkv = match biases {
            [Some(bq), Some(bk), Some(bv)] => {
                fused::linear(&h, &weight, &Tensor::cat(&[bq, bk, bv], 0)?)?
            }
            _ => h.broadcast_matmul(&weight.t()?)?,
        };
        let stacked = fused::split_heads(&qkv, 3, self.n_heads)?;
        let alpha = 1.0 / (dh as f64).sqrt();
        let mixed = match (&self.cov_scale, covariance) {
            (Some(scale), Some(cov)) => {
                if cov.dims() != [b, c, c] {
                    return Err(EncoderError::Shape {
                        name: "covariance",
                        expected: format!("[{b}, {c}, {c}]"),
                        got: cov.dims().to_vec(),
                    });
                }
                fused::attention(&stacked, alpha, scale, cov)?
            }
            // No covariance: a zero bias, so one code path serves both.
            _ => {
                let scale = Tensor::zeros(self.n_heads, xs.dtype(), xs.device())?;
                let cov = Tensor::zeros((b, c, c), xs.dtype(), xs.device())?;
                fused::attention(&stacked, alpha, &scale, &cov)?
            }
        };
        let mixed = fused::merge_heads(&mixed)?;
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
