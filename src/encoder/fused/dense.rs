//! Slice-level pieces shared by the block kernels: a linear layer's forward and backward passes,
//! and the backward pass of a pre-LayerNorm residual block's normalization.

use candle_core::Result;

use super::gemm::{across_threads, matmul, Mat, MatMut};
use super::{bias, for_each_row, layer_norm, Real};

/// `out = [residual +] bias + x W^T` for rows of `x` (`[rows, k]`), `W` `[n, k]` and bias `[n]`.
/// The bias (and residual) are written first and the product accumulates onto them.
pub(super) fn forward<T: Real>(
    x: &[T],
    w: &[T],
    bias: &[T],
    residual: Option<&[T]>,
    out: &mut [T],
) -> Result<()> {
    let n = bias.len();
    let k = w.len().checked_div(n).unwrap_or(0);
    let rows = x.len().checked_div(k).unwrap_or(0);
    if n == 0 || k == 0 || out.len() != rows * n || residual.is_some_and(|r| r.len() != out.len()) {
        candle_core::bail!("dense layer: mismatched sizes")
    }
    for_each_row(out, n, |r, row| match residual {
        Some(res) => {
            for ((o, &rv), &bv) in row.iter_mut().zip(&res[r * n..(r + 1) * n]).zip(bias) {
                *o = rv + bv;
            }
        }
        None => row.copy_from_slice(bias),
    });
    matmul(
        MatMut::dense(out, rows, n),
        Mat::dense(x, rows, k),
        Mat::dense(w, n, k).t(),
        T::one(),
        true,
        across_threads(),
    )
}

/// The backward pass of [`forward`] for output gradient `g` (`[rows, n]`): writes the weight and
/// bias gradients and returns the input's, `g W`.
pub(super) fn backward<T: Real>(
    x: &[T],
    w: &[T],
    g: &[T],
    grad_w: &mut [T],
    grad_b: &mut [T],
) -> Result<Vec<T>> {
    let n = grad_b.len();
    let k = w.len().checked_div(n).unwrap_or(0);
    let rows = x.len().checked_div(k).unwrap_or(0);
    if n == 0 || k == 0 || g.len() != rows * n || grad_w.len() != w.len() {
        candle_core::bail!("dense layer backward: mismatched sizes")
    }
    let g_mat = Mat::dense(g, rows, n);
    matmul(
        MatMut::dense(grad_w, n, k),
        g_mat.t(),
        Mat::dense(x, rows, k),
        T::one(),
        false,
        across_threads(),
    )?;
    grad_b.copy_from_slice(&bias::column_sums(g, n));
    let mut grad_x = vec![T::zero(); rows * k];
    matmul(
        MatMut::dense(&mut grad_x, rows, k),
        g_mat,
        Mat::dense(w, n, k),
        T::one(),
        false,
        across_threads(),
    )?;
    Ok(grad_x)
}

/// The input gradient of `x + f(layer_norm(x))` from the gradient `grad_h` reaching the
/// normalized input and the block's output gradient `g` (the residual path); writes the
/// LayerNorm's weight and bias gradients.
pub(super) fn norm_and_residual_backward<T: Real>(
    x: &[T],
    grad_h: &[T],
    g: &[T],
    (norm_w, eps): (&[T], f64),
    grad_norm_w: &mut [T],
    grad_norm_b: &mut [T],
) -> Vec<T> {
    let d = norm_w.len();
    let mut grad_x = vec![T::zero(); x.len()];
    let norm_grads = layer_norm::backward_rows(x, grad_h, norm_w, eps, &mut grad_x);
    grad_norm_w.copy_from_slice(&norm_grads[..d]);
    grad_norm_b.copy_from_slice(&norm_grads[d..]);
    for (gx, &gv) in grad_x.iter_mut().zip(g) {
        *gx += gv;
    }
    grad_x
}
