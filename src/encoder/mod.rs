//! Channel-token encoder over per-epoch EEG features (candle).
//!
//! Each channel is a token: its standardized feature vector (log spectrum + band powers) is
//! projected to width d, its electrode position is embedded and added, and attention mixes the
//! tokens, biased per head by the epoch's aligned tangent-space covariance. The tokens are pooled
//! (mean over channels) and a learned, position-kernel functional of the covariance is added.
//! Nothing depends on the number of channels C, so one set of weights serves a 64-channel cap and
//! a 19-channel 10-20 montage, and channel order does not matter.
//!
//! Everything runs in the `VarBuilder`'s dtype: f32 for training, f64 for gradient checks.
//!
//! # Weight names (safetensors keys; do not rename without a migration)
//! With `d = d_model`, `F = n_features`, `H = n_heads`, `i` in `0..n_layers`:
//!
//! | name | shape |
//! |---|---|
//! | `token.proj.weight`, `token.proj.bias` | `[d, F]`, `[d]` |
//! | `token.mask_token` | `[d]` |
//! | `position.fc1.weight`, `position.fc1.bias` | `[d, 3]`, `[d]` |
//! | `position.fc2.weight`, `position.fc2.bias` | `[d, d]`, `[d]` |
//! | `layers.{i}.attention.norm.weight`, `.norm.bias` | `[d]`, `[d]` |
//! | `layers.{i}.attention.{query,key,value,out}.weight`, `.bias` | `[d, d]`, `[d]` |
//! | `layers.{i}.attention.cov_scale` (only with `use_covariance`) | `[H]` |
//! | `layers.{i}.feed_forward.norm.weight`, `.norm.bias` | `[d]`, `[d]` |
//! | `layers.{i}.feed_forward.fc1.weight`, `.fc1.bias` | `[d_ff, d]`, `[d_ff]` |
//! | `layers.{i}.feed_forward.fc2.weight`, `.fc2.bias` | `[d, d_ff]`, `[d]` |
//! | `norm.weight`, `norm.bias` | `[d]`, `[d]` |
//! | `covariance.fc1.weight`, `.fc1.bias` (only with `use_covariance`) | `[d, 6]`, `[d]` |
//! | `covariance.fc2.weight`, `.fc2.bias` (only with `use_covariance`) | `[d, d]`, `[d]` |
//! | `embedding_norm.weight`, `embedding_norm.bias` | `[d]`, `[d]` |
//!
//! Heads take the caller's prefix: [`ClassHead`], [`TangentHead`] and [`ReconstructionHead`] are
//! `weight`, `bias` under it (e.g. `heads.<task>.weight`, `heads.<task>.tangent.weight`,
//! `reconstruction.weight`).
//!
//! # Candle 0.11.1 pitfalls avoided
//! `candle_nn::ops::softmax_last_dim` and `candle_nn::LayerNorm` (contiguous input) have no
//! backward pass, so [`ops::softmax_last_dim`] and [`LayerNorm`] have their own, exact ones;
//! conv1d (wrong CPU weight gradient) is not used. `tests/encoder_gradcheck.rs` checks every
//! layer against finite differences.
//!
//! # Speed
//! On the CPU, each attention block and each feed-forward block is one graph node with a
//! hand-written backward pass (`fused`), its products direct gemm calls on views of its buffers,
//! and LayerNorm, softmax, GELU, linear layers and the masking steps are fused kernels too:
//! candle's backward pass allocates, zero-fills and accumulates a full-size gradient for every
//! op, so fewer, larger ops (with the binary's allocator, mimalloc) train about six times faster.
//! Elsewhere (GPU, other dtypes) the same functions run as compositions of candle ops, which the
//! kernels' tests use as the reference.

mod attention;
mod class_head;
mod config;
mod covariance_pooling;
mod feed_forward;
mod fused;
mod layer_norm;
mod loss;
mod model;
pub mod ops;
mod position_embedding;
mod reconstruction_head;
mod tangent_head;
mod token_embedding;

#[cfg(test)]
mod tests;

pub use attention::ChannelAttention;
pub use class_head::ClassHead;
pub use config::EncoderConfig;
pub use covariance_pooling::CovariancePooling;
pub use feed_forward::FeedForward;
pub use layer_norm::LayerNorm;
pub use loss::{cross_entropy, masked_reconstruction_loss};
pub use model::{positions, Encoder, EncoderInput, EncoderOutput};
pub use position_embedding::{PositionEmbedding, POSITION_SCALE};
pub use reconstruction_head::ReconstructionHead;
pub use tangent_head::{n_pairs, LinearViews, PairMap, TangentHead};
pub use token_embedding::TokenEmbedding;

use candle_nn::VarMap;

/// Why the encoder could not be built or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncoderError {
    /// The configuration is inconsistent.
    #[error("encoder configuration: {0}")]
    Config(String),
    /// An input tensor has the wrong shape.
    #[error("encoder input `{name}`: expected shape {expected}, got {got:?}")]
    Shape {
        /// Which input.
        name: &'static str,
        /// The shape it should have.
        expected: String,
        /// The shape it has.
        got: Vec<usize>,
    },
    /// An electrode name with no standard position.
    #[error("no standard position for electrode `{0}`")]
    UnknownElectrode(String),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Result of encoder operations.
pub type Result<T> = std::result::Result<T, EncoderError>;

/// Back to a candle error, for `Module`/`ModuleT` impls that must return one.
fn into_candle(err: EncoderError) -> candle_core::Error {
    match err {
        EncoderError::Candle(err) => err,
        other => candle_core::Error::wrap(other),
    }
}

/// Number of scalar parameters held by `varmap`.
pub fn parameter_count(varmap: &VarMap) -> usize {
    // A poisoned lock still holds valid tensors: a count is safe to read.
    let data = varmap
        .data()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    data.values().map(|var| var.elem_count()).sum()
}
