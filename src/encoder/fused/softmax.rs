//! Softmax over the last dimension, fused.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};

use super::{contiguous, for_each_row, fusable, Real};

/// Softmax over the last dimension of `xs`.
pub fn softmax_last_dim(xs: &Tensor) -> Result<Tensor> {
    if !fusable(xs) {
        return composed(xs);
    }
    xs.contiguous()?.apply_op1(Softmax)
}

/// The same function from candle's elementwise ops (reference, and the non-CPU path).
///
/// The row maximum is subtracted for stability and detached: the result does not depend on it,
/// so no gradient needs to flow through the (tie-sensitive) max.
pub fn composed(xs: &Tensor) -> Result<Tensor> {
    use candle_core::D;
    let max = xs.max_keepdim(D::Minus1)?.detach();
    let num = xs.broadcast_sub(&max)?.exp()?;
    let den = num.sum_keepdim(D::Minus1)?;
    num.broadcast_div(&den)
}

fn last_dim(l: &Layout) -> Result<usize> {
    l.dims()
        .last()
        .copied()
        .ok_or_else(|| candle_core::Error::Msg("softmax of a scalar".into()))
}

struct Softmax;

/// Divides a row of positive numbers by its sum.
#[inline(always)]
pub(super) fn normalize<T: Real>(row: &mut [T]) {
    let inv = super::math::map_sum(row, |v| v).recip();
    row.iter_mut().for_each(|o| *o *= inv);
}

fn forward<T: Real>(s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
    let x = contiguous::<T>(s, l, "softmax")?;
    let d = last_dim(l)?;
    let mut y = vec![T::zero(); x.len()];
    for_each_row(&mut y, d, |r, out| {
        let row = &x[r * d..(r + 1) * d];
        let max = super::math::max(row);
        for (o, &v) in out.iter_mut().zip(row) {
            *o = (v - max).exp_fast();
        }
        normalize(out);
    });
    Ok((T::to_cpu_storage_owned(y), l.shape().clone()))
}

impl CustomOp1 for Softmax {
    fn name(&self) -> &'static str {
        "fused-softmax"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        dispatch!(s, self.name(), forward(s, l))
    }

    fn bwd(&self, _xs: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(
            res.apply_op2_no_bwd(&grad.contiguous()?, &SoftmaxGrad)?,
        ))
    }
}

/// Backward of [`Softmax`]: from (y, grad of y) to `y * (grad - sum(grad * y))` per row.
pub(super) struct SoftmaxGrad;

#[inline(always)]
fn softmax_grad_row<T: Real>(y: &[T], g: &[T], out: &mut [T]) {
    let dot = super::math::zip_sum(y, g, |yv, gv| yv * gv);
    for ((o, &yv), &gv) in out.iter_mut().zip(y).zip(g) {
        *o = yv * (gv - dot);
    }
}

multiversion!(pub(super) fn softmax_grad_row_kernel<T: Real>(y: &[T], g: &[T], out: &mut [T]) => softmax_grad_row);

fn backward<T: Real>(
    s1: &CpuStorage,
    l1: &Layout,
    s2: &CpuStorage,
    l2: &Layout,
) -> Result<(CpuStorage, Shape)> {
    let y = contiguous::<T>(s1, l1, "softmax backward")?;
    let g = contiguous::<T>(s2, l2, "softmax backward")?;
    if y.len() != g.len() {
        candle_core::bail!("softmax backward: mismatched shapes")
    }
    let d = last_dim(l1)?;
    let mut gx = vec![T::zero(); y.len()];
    for_each_row(&mut gx, d, |r, out| {
        let (yr, gr) = (&y[r * d..(r + 1) * d], &g[r * d..(r + 1) * d]);
        softmax_grad_row_kernel(yr, gr, out);
    });
    Ok((T::to_cpu_storage_owned(gx), l1.shape().clone()))
}

forward_only_op!(SoftmaxGrad, "fused-softmax-grad", backward(s1, l1, s2, l2));
