//! Encoder hyperparameters, saved beside the weights so a model can be rebuilt.

use serde::{Deserialize, Serialize};

use super::EncoderError;

/// Architecture of the channel-token [`Encoder`](super::Encoder).
///
/// Nothing here depends on the number of channels: one encoder serves any montage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncoderConfig {
    /// Length of each channel's feature vector (log spectrum + band powers).
    pub n_features: usize,
    /// Width of every token and of the pooled embedding.
    #[serde(default = "default_d_model")]
    pub d_model: usize,
    /// Attention heads per layer; must divide `d_model`.
    #[serde(default = "default_n_heads")]
    pub n_heads: usize,
    /// Number of attention + feed-forward blocks.
    #[serde(default = "default_n_layers")]
    pub n_layers: usize,
    /// Hidden width of each feed-forward block.
    #[serde(default = "default_d_ff")]
    pub d_ff: usize,
    /// Dropout probability, applied only in training.
    #[serde(default = "default_dropout")]
    pub dropout: f32,
    /// Whether the channel covariance biases attention and adds a pooled summary.
    #[serde(default = "default_use_covariance")]
    pub use_covariance: bool,
    /// What the task heads' linear part reads besides the embedding (tangent vectors per
    /// covariance band, the evoked waveform).
    #[serde(default)]
    pub linear_views: super::LinearViews,
}

fn default_d_model() -> usize {
    64
}
fn default_n_heads() -> usize {
    4
}
fn default_n_layers() -> usize {
    2
}
fn default_d_ff() -> usize {
    128
}
fn default_dropout() -> f32 {
    0.1
}
fn default_use_covariance() -> bool {
    true
}

impl EncoderConfig {
    /// The default architecture for feature vectors of length `n_features`.
    pub fn new(n_features: usize) -> Self {
        Self {
            n_features,
            d_model: default_d_model(),
            n_heads: default_n_heads(),
            n_layers: default_n_layers(),
            d_ff: default_d_ff(),
            dropout: default_dropout(),
            use_covariance: default_use_covariance(),
            linear_views: super::LinearViews::default(),
        }
    }

    /// Checks the settings fit together, before any weight is created.
    pub fn validate(&self) -> Result<(), EncoderError> {
        let bad = |msg: String| Err(EncoderError::Config(msg));
        if self.n_features == 0 || self.d_model == 0 || self.d_ff == 0 {
            return bad("n_features, d_model and d_ff must be positive".into());
        }
        if self.n_heads == 0 || !self.d_model.is_multiple_of(self.n_heads) {
            return bad(format!(
                "n_heads ({}) must be positive and divide d_model ({})",
                self.n_heads, self.d_model
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad(format!("dropout must be in [0, 1), got {}", self.dropout));
        }
        Ok(())
    }
}
