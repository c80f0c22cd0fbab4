//! Layer normalization over the last dimension.

use candle_core::{Module, Tensor, D};
use candle_nn::{Init, VarBuilder};

use super::Result;

/// Variance floor, as in PyTorch's default.
const EPS: f64 = 1e-5;

/// LayerNorm written as differentiable tensor ops.
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
}

impl Module for LayerNorm {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let centred = xs.broadcast_sub(&xs.mean_keepdim(D::Minus1)?)?;
        let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = centred.broadcast_div(&(var + EPS)?.sqrt()?)?;
        normed
            .broadcast_mul(&self.weight)?
            .broadcast_add(&self.bias)
    }
}
