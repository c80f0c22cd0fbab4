//! The attention weights: softmax of scaled logits plus a per-head covariance bias.

use candle_core::{CpuStorage, Layout, Result, Shape, Tensor};

use super::{contiguous, for_each_row, Real};

/// The same function from candle's elementwise ops (reference, and the non-CPU path).
pub fn composed(logits: &Tensor, alpha: f64, scale: &Tensor, cov: &Tensor) -> Result<Tensor> {
    let h = scale.dim(0)?;
    let bias = cov
        .unsqueeze(1)?
        .broadcast_mul(&scale.reshape((1, h, 1, 1))?)?;
    super::softmax::composed(&((logits * alpha)? + bias)?)
}

/// `softmax_j(alpha * logits[b, h, i, j] + scale[h] * cov[b, i, j])` for logits `[B, H, C, C]`,
/// scale `[H]` and covariance `[B, C, C]` (forward only: [`super::attention`] forms its gradient).
pub(super) struct CovarianceSoftmax {
    pub(super) alpha: f64,
}

#[inline(always)]
fn softmax_row<T: Real>(row: &[T], bias: &[T], alpha: T, scale: T, out: &mut [T]) {
    for ((o, &v), &cv) in out.iter_mut().zip(row).zip(bias) {
        *o = alpha * v + scale * cv;
    }
    let max = super::math::max(out);
    out.iter_mut().for_each(|o| *o = (*o - max).exp_fast());
    super::softmax::normalize(out);
}

multiversion!(pub(super) fn softmax_row_kernel<T: Real>(row: &[T], bias: &[T], alpha: T, scale: T, out: &mut [T]) => softmax_row);

/// `(H, C * C)` for contiguous inputs of `B * H * C * C`, `H` and `B * C * C` elements.
fn sizes(logits: usize, heads: usize, cov: usize, batch: usize) -> Result<(usize, usize)> {
    let plane = cov.checked_div(batch).unwrap_or(0);
    if heads == 0 || plane == 0 || logits != batch * heads * plane {
        candle_core::bail!("covariance bias: mismatched sizes")
    }
    Ok((heads, plane))
}

fn forward<T: Real>(
    s1: &CpuStorage,
    l1: &Layout,
    s2: &CpuStorage,
    l2: &Layout,
    s3: &CpuStorage,
    l3: &Layout,
    alpha: f64,
) -> Result<(CpuStorage, Shape)> {
    let x = contiguous::<T>(s1, l1, "covariance softmax")?;
    let scale = contiguous::<T>(s2, l2, "covariance softmax")?;
    let cov = contiguous::<T>(s3, l3, "covariance softmax")?;
    let batch = l1.dims().first().copied().unwrap_or(0);
    let (heads, plane) = sizes(x.len(), scale.len(), cov.len(), batch)?;
    let c = l1.dims().last().copied().unwrap_or(0);
    let rows_per_plane = plane / c.max(1);
    let alpha = T::from(alpha).unwrap_or_else(T::one);
    let mut y = vec![T::zero(); x.len()];
    for_each_row(&mut y, c, |r, out| {
        // Row r is (b, h, i) in row-major order.
        let (i, bh) = (r % rows_per_plane, r / rows_per_plane);
        let (b, h) = (bh / heads, bh % heads);
        let row = &x[r * c..(r + 1) * c];
        let bias = &cov[b * plane + i * c..b * plane + (i + 1) * c];
        softmax_row_kernel(row, bias, alpha, scale[h], out);
    });
    Ok((T::to_cpu_storage_owned(y), l1.shape().clone()))
}

forward_only_op!(
    CovarianceSoftmax,
    "fused-covariance-softmax",
    forward(s1, l1, s2, l2, s3, l3),
    alpha
);

/// Gradient of the scales: `sum_{b, i, j} grad[b, h, i, j] * cov[b, i, j]` for each head h.
pub(super) struct ScaleGrad;

fn scale_grad<T: Real>(
    s1: &CpuStorage,
    l1: &Layout,
    s2: &CpuStorage,
    l2: &Layout,
) -> Result<(CpuStorage, Shape)> {
    let g = contiguous::<T>(s1, l1, "covariance softmax backward")?;
    let cov = contiguous::<T>(s2, l2, "covariance softmax backward")?;
    let dims = l1.dims();
    let (batch, heads) = match dims {
        [b, h, ..] => (*b, *h),
        _ => candle_core::bail!(
            "covariance softmax backward: gradient of rank {}",
            dims.len()
        ),
    };
    let (heads, plane) = sizes(g.len(), heads, cov.len(), batch)?;
    let mut acc = vec![T::zero(); heads];
    for (k, block) in g.chunks(plane).enumerate() {
        let (b, h) = (k / heads, k % heads);
        let c = &cov[b * plane..(b + 1) * plane];
        acc[h] += block
            .iter()
            .zip(c)
            .fold(T::zero(), |a, (&gv, &cv)| a + gv * cv);
    }
    Ok((T::to_cpu_storage_owned(acc), Shape::from(heads)))
}

forward_only_op!(
    ScaleGrad,
    "covariance-softmax-scale-grad",
    scale_grad(s1, l1, s2, l2)
);
