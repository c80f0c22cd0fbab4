//! Multi-head self-attention across channel tokens, optionally biased by the covariance.

use candle_core::{ModuleT, Tensor};
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
        let (b, c, _) = xs.dims3()?;
        // One projection for queries, keys and values (the checkpoint keeps them apart).
        let weight = Tensor::cat(
            &[self.query.weight(), self.key.weight(), self.value.weight()],
            0,
        )?;
        let biases = [&self.query, &self.key, &self.value].map(|l| l.bias().cloned());
        let ([Some(bq), Some(bk), Some(bv)], Some(out_bias)) = (biases, self.out.bias()) else {
            return Err(EncoderError::Shape {
                name: "attention biases",
                expected: "a bias on every projection".into(),
                got: Vec::new(),
            });
        };
        let bias = Tensor::cat(&[bq, bk, bv], 0)?;
        // Without a covariance the bias is zero, so one code path serves both.
        let zeros;
        let (scale, cov) = match (&self.cov_scale, covariance) {
            (Some(scale), Some(cov)) => (scale.clone(), cov),
            _ => {
                zeros = Tensor::zeros((b, c, c), xs.dtype(), xs.device())?;
                let scale = Tensor::zeros(self.n_heads, xs.dtype(), xs.device())?;
                (scale, &zeros)
            }
        };
        if cov.dims() != [b, c, c] {
            return Err(EncoderError::Shape {
                name: "covariance",
                expected: format!("[{b}, {c}, {c}]"),
                got: cov.dims().to_vec(),
            });
        }
        let weights = fused::AttentionWeights {
            norm: self.norm.weight_and_bias(),
            qkv: (&weight, &bias),
            out: (self.out.weight(), out_bias),
            scale: &scale,
        };
        let eps = super::layer_norm::EPS;
        if !train || self.dropout == 0.0 {
            return Ok(fused::attention_block(xs, weights, cov, eps)?);
        }
        let update = fused::attention_block::update(xs, weights, cov, eps)?;
        Ok((xs + ops::dropout(&update, self.dropout, train)?)?)
    }
}

impl ModuleT for ChannelAttention {
    fn forward_t(&self, xs: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        ChannelAttention::forward_t(self, xs, None, train).map_err(super::into_candle)
    }
}
