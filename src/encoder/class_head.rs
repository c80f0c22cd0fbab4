//! Task head: embedding to class logits.

use candle_core::{Module, Tensor};
use candle_nn::{linear, Linear, VarBuilder};

use super::Result;

/// Linear d -> n_classes on the pooled embedding; one per task, on a shared encoder.
///
/// Weights: `weight` `[n_classes, d]`, `bias` `[n_classes]` under the caller's prefix
/// (for example `heads.<task>`).
#[derive(Debug, Clone)]
pub struct ClassHead {
    linear: Linear,
}

impl ClassHead {
    /// A head from `d_model`-wide embeddings to `n_classes` logits.
    pub fn new(d_model: usize, n_classes: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            linear: linear(d_model, n_classes, vb)?,
        })
    }
}

impl ClassHead {
    /// The underlying linear layer (`weight` `[n_classes, d]`, `bias` `[n_classes]`).
    pub fn linear(&self) -> &Linear {
        &self.linear
    }
}

impl Module for ClassHead {
    /// Embeddings `[B, d]` to logits `[B, n_classes]`.
    fn forward(&self, embedding: &Tensor) -> candle_core::Result<Tensor> {
        self.linear.forward(embedding)
    }
}
