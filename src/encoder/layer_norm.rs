//! Layer normalization over the last dimension.

use candle_core::{Module, Tensor};
use candle_nn::{Init, VarBuilder};

use super::Result;

/// Variance floor, as in PyTorch's default.
pub(crate) const EPS: f64 = 1e-5;

/// LayerNorm with an exact gradient (a fused kernel on the CPU, see `encoder::fused`).
///
/// `candle_nn::LayerNorm` takes a custom-op fast path for contiguous inputs that has no backward
/// pass (and no f64 CPU kernel) in candle 0.11.1, so it cannot be trained. Weights: `weight`
/// (ones), `bias` (zeros), like `candle_nn::layer_norm`, so checkpoints stay interchangeable.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
}

impl LayerNorm {
    /// A LayerNorm over vectors of length `size`.
    pub fn new(size: usize, vb: VarBuilder) -> Result<Self> {
        let weight = vb.get_with_hints(size, "weight", Init::Const(1.0))?;
        let bias = vb.get_with_hints(size, "bias", Init::Const(0.0))?;
        Ok(Self { weight, bias })
    }

    /// The weight and bias, for kernels that fuse the normalization into a larger block.
    pub(crate) fn weight_and_bias(&self) -> (&Tensor, &Tensor) {
        (&self.weight, &self.bias)
    }
}

impl Module for LayerNorm {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        super::fused::layer_norm(xs, &self.weight, &self.bias, EPS)
    }
}
