//! The full encoder: channel tokens in, per-channel tokens and one pooled embedding out.

use candle_core::{DType, Device, Module, ModuleT, Tensor};
use candle_nn::VarBuilder;

use super::{
    ChannelAttention, CovariancePooling, EncoderConfig, EncoderError, FeedForward, LayerNorm,
    PositionEmbedding, Result, TokenEmbedding,
};

/// One batch of epochs as channel tokens. C may differ between calls, never within one.
#[derive(Debug, Clone)]
pub struct EncoderInput {
    /// Standardized per-channel features `[B, C, F]`.
    pub tokens: Tensor,
    /// Electrode positions `[C, 3]` in metres, head frame (see [`positions`]).
    pub positions: Tensor,
    /// Per-subject aligned, tangent-space channel covariance `[B, C, C]`, if available.
    pub covariance: Option<Tensor>,
    /// `[B, C]`, 1.0 where the token's features are hidden (masked-channel pretraining).
    pub mask: Option<Tensor>,
}

/// What the encoder computes for a batch.
#[derive(Debug, Clone)]
pub struct EncoderOutput {
    /// Contextualized channel tokens `[B, C, d]`, input to the reconstruction head.
    pub tokens: Tensor,
    /// Pooled epoch embedding `[B, d]`, input to the class heads.
    pub embedding: Tensor,
}

/// Positions `[C, 3]` (f32, metres) of the named electrodes, from [`crate::montage::position`].
pub fn positions(names: &[&str], device: &Device) -> Result<Tensor> {
    let mut xyz = Vec::with_capacity(3 * names.len());
    for name in names {
        let p = crate::montage::position(name)
            .ok_or_else(|| EncoderError::UnknownElectrode((*name).to_string()))?;
        xyz.extend(p.iter().map(|&v| v as f32));
    }
    Ok(Tensor::from_vec(xyz, (names.len(), 3), device)?)
}

/// Channel-token encoder: token + position embedding, `n_layers` x (attention + feed-forward),
/// final LayerNorm, mean over channels, plus the covariance summary, then a LayerNorm.
#[derive(Debug, Clone)]
pub struct Encoder {
    cfg: EncoderConfig,
    dtype: DType,
    token: TokenEmbedding,
    position: PositionEmbedding,
    layers: Vec<(ChannelAttention, FeedForward)>,
    norm: LayerNorm,
    covariance: Option<CovariancePooling>,
    embedding_norm: LayerNorm,
}

impl Encoder {
    /// Builds (or loads, from a `VarBuilder` over saved weights) an encoder; its dtype is the
    /// `VarBuilder`'s, and inputs are converted to it.
    pub fn new(cfg: &EncoderConfig, vb: VarBuilder) -> Result<Self> {
        cfg.validate()?;
        let layers = (0..cfg.n_layers)
            .map(|i| {
                let vb = vb.pp(format!("layers.{i}"));
                Ok((
                    ChannelAttention::new(cfg, vb.pp("attention"))?,
                    FeedForward::new(cfg, vb.pp("feed_forward"))?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let covariance = if cfg.use_covariance {
            Some(CovariancePooling::new(cfg.d_model, vb.pp("covariance"))?)
        } else {
            None
        };
        Ok(Self {
            cfg: cfg.clone(),
            dtype: vb.dtype(),
            token: TokenEmbedding::new(cfg.n_features, cfg.d_model, vb.pp("token"))?,
            position: PositionEmbedding::new(cfg.d_model, vb.pp("position"))?,
            layers,
            norm: LayerNorm::new(cfg.d_model, vb.pp("norm"))?,
            covariance,
            embedding_norm: LayerNorm::new(cfg.d_model, vb.pp("embedding_norm"))?,
        })
    }

    /// The architecture this encoder was built with.
    pub fn config(&self) -> &EncoderConfig {
        &self.cfg
    }

    /// Encodes a batch; dropout only when `train`. Without a covariance (or with
    /// `use_covariance` off) attention is unbiased and the embedding is LayerNorm(z_tokens).
    pub fn forward_t(&self, input: &EncoderInput, train: bool) -> Result<EncoderOutput> {
        let input = self.checked(input)?;
        let cov = input
            .covariance
            .as_ref()
            .filter(|_| self.cfg.use_covariance);
        let mut xs = self.token.forward(&input.tokens, input.mask.as_ref())?;
        xs = super::fused::add_row_bias(&xs, &self.position.forward(&input.positions)?)?;
        for (attention, feed_forward) in &self.layers {
            xs = attention.forward_t(&xs, cov, train)?;
            xs = feed_forward.forward_t(&xs, train)?;
        }
        let tokens = self.norm.forward(&xs)?;
        let mut pooled = super::fused::mean_over_channels(&tokens)?;
        if let (Some(pooling), Some(cov)) = (&self.covariance, cov) {
            pooled = (pooled + pooling.forward(cov, &input.positions)?)?;
        }
        let embedding = self.embedding_norm.forward(&pooled)?;
        Ok(EncoderOutput { tokens, embedding })
    }

    /// The input in this encoder's dtype, after checking every shape against `[B, C, F]`.
    fn checked(&self, input: &EncoderInput) -> Result<EncoderInput> {
        let shape_err = |name, expected: String, t: &Tensor| EncoderError::Shape {
            name,
            expected,
            got: t.dims().to_vec(),
        };
        let f = self.cfg.n_features;
        let (b, c) = match *input.tokens.dims() {
            [b, c, nf] if nf == f && b > 0 && c > 0 => (b, c),
            _ => {
                return Err(shape_err(
                    "tokens",
                    format!("[B > 0, C > 0, {f}]"),
                    &input.tokens,
                ))
            }
        };
        if input.positions.dims() != [c, 3] {
            return Err(shape_err(
                "positions",
                format!("[{c}, 3]"),
                &input.positions,
            ));
        }
        if let Some(cov) = &input.covariance {
            if cov.dims() != [b, c, c] {
                return Err(shape_err("covariance", format!("[{b}, {c}, {c}]"), cov));
            }
        }
        if let Some(mask) = &input.mask {
            if mask.dims() != [b, c] {
                return Err(shape_err("mask", format!("[{b}, {c}]"), mask));
            }
        }
        let cast = |t: &Tensor| t.to_dtype(self.dtype);
        Ok(EncoderInput {
            tokens: cast(&input.tokens)?,
            positions: cast(&input.positions)?,
            covariance: input.covariance.as_ref().map(cast).transpose()?,
            mask: input.mask.as_ref().map(cast).transpose()?,
        })
    }
}
