//! Differentiable building blocks that candle 0.11.1 lacks or gets wrong.
//!
//! `candle_nn::ops::softmax_last_dim` and the fast path of `candle_nn::LayerNorm` are custom ops
//! registered without a backward pass: gradients through them are silently dropped. Candle's
//! built-in GELU backward uses 6-digit constants. These versions have exact gradients: fused
//! CPU kernels with hand-written backward passes ([`super::fused`]), or elsewhere plain
//! compositions of ops whose gradients candle derives.

use candle_core::{Module, Result, Tensor};

use super::fused;

/// Softmax over the last dimension.
pub fn softmax_last_dim(xs: &Tensor) -> Result<Tensor> {
    fused::softmax_last_dim(xs)
}

/// Exact GELU, `x * (1 + erf(x / sqrt 2)) / 2`, with an exact gradient.
pub fn gelu(xs: &Tensor) -> Result<Tensor> {
    fused::gelu(xs)
}

/// A linear layer applied to the last dimension of a `[.., d_in]` tensor as one 2-D product.
///
/// `candle_nn::Linear` broadcasts its weight over the leading dimension of a 3-D input, which
/// runs one small product per epoch and, in the backward pass, sums a `[B, d_out, d_in]`
/// gradient over B with a strided reduction; flattening first avoids both, and the bias is added
/// by a fused kernel whose gradient is a plain column sum.
pub fn linear_last_dim(layer: &candle_nn::Linear, xs: &Tensor) -> Result<Tensor> {
    let dims = xs.dims();
    let Some((&d_in, lead)) = dims.split_last() else {
        return layer.forward(xs);
    };
    let rows: usize = lead.iter().product();
    let flat = xs.reshape((rows, d_in))?;
    let mut out = flat.matmul(&layer.weight().t()?)?;
    if let Some(bias) = layer.bias() {
        out = fused::add_row_bias(&out, bias)?;
    }
    let mut shape = lead.to_vec();
    shape.push(out.dim(1)?);
    out.reshape(shape)
}
