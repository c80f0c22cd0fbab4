//! Differentiable building blocks that candle 0.11.1 lacks or gets wrong.
//!
//! `candle_nn::ops::softmax_last_dim` and the fast path of `candle_nn::LayerNorm` are custom ops
//! registered without a backward pass: gradients through them are silently dropped. Candle's
//! built-in GELU backward uses 6-digit constants. These versions have exact gradients: fused
//! CPU kernels with hand-written backward passes (`encoder::fused`), or elsewhere plain
//! compositions of ops whose gradients candle derives.

use candle_core::{Result, Tensor};

use super::fused;

/// Softmax over the last dimension.
pub fn softmax_last_dim(xs: &Tensor) -> Result<Tensor> {
    fused::softmax_last_dim(xs)
}

/// Exact GELU, `x * (1 + erf(x / sqrt 2)) / 2`, with an exact gradient.
pub fn gelu(xs: &Tensor) -> Result<Tensor> {
    fused::gelu(xs)
}

/// Dropout with probability `p` while training; the identity otherwise, and also for `p = 0`,
/// where candle would still draw (and keep) a full random mask.
pub fn dropout(xs: &Tensor, p: f32, train: bool) -> Result<Tensor> {
    if train && p > 0.0 {
        candle_nn::ops::dropout(xs, p)
    } else {
        Ok(xs.clone())
    }
}

/// A linear layer applied to the last dimension of a `[.., d_in]` tensor, as one graph node
/// (see `encoder::fused::linear`).
///
/// `candle_nn::Linear` broadcasts its weight over the leading dimension of a 3-D input, which
/// runs one small product per epoch and, in the backward pass, sums a `[B, d_out, d_in]`
/// gradient over B with a strided reduction; this runs one 2-D product instead.
pub fn linear_last_dim(layer: &candle_nn::Linear, xs: &Tensor) -> Result<Tensor> {
    match layer.bias() {
        Some(bias) => fused::linear(xs, layer.weight(), bias),
        None => {
            let d_in = layer.weight().dim(1)?;
            let rows = xs.elem_count() / d_in.max(1);
            let mut dims = xs.dims().to_vec();
            if let Some(last) = dims.last_mut() {
                *last = layer.weight().dim(0)?;
            }
            xs.reshape((rows, d_in))?
                .matmul(&layer.weight().t()?)?
                .reshape(dims)
        }
    }
}
