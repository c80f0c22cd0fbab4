//! Differentiable building blocks that candle 0.11.1 lacks or gets wrong.
//!
//! `candle_nn::ops::softmax_last_dim` and the fast path of `candle_nn::LayerNorm` are custom ops
//! registered without a backward pass: gradients through them are silently dropped. Candle's
//! built-in GELU backward uses 6-digit constants. These versions are plain compositions of ops
//! whose gradients candle derives exactly.

use candle_core::{Result, Tensor, D};

/// Softmax over the last dimension.
///
/// The row maximum is subtracted for stability and detached: the result does not depend on it,
/// so no gradient needs to flow through the (tie-sensitive) max.
pub fn softmax_last_dim(xs: &Tensor) -> Result<Tensor> {
    let max = xs.max_keepdim(D::Minus1)?.detach();
    let num = xs.broadcast_sub(&max)?.exp()?;
    let den = num.sum_keepdim(D::Minus1)?;
    num.broadcast_div(&den)
}

/// Exact GELU, `x * (1 + erf(x / sqrt 2)) / 2`, with an exact gradient.
pub fn gelu(xs: &Tensor) -> Result<Tensor> {
    let cdf = ((xs * std::f64::consts::FRAC_1_SQRT_2)?.erf()? + 1.0)?;
    (xs * 0.5)?.mul(&cdf)
}
