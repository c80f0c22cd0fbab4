//! The attention logits' per-head covariance bias, fused.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};

use super::{contiguous, fusable, Real};

/// `logits[b, h, i, j] + scale[h] * cov[b, i, j]` for logits `[B, H, C, C]`, scale `[H]` and
/// covariance `[B, C, C]`.
pub fn add_scaled_covariance(logits: &Tensor, scale: &Tensor, cov: &Tensor) -> Result<Tensor> {
    let (b, h, c, c2) = logits.dims4()?;
    if scale.dims() != [h] || cov.dims() != [b, c, c2] {
        candle_core::bail!(
            "covariance bias: logits {:?}, scale {:?}, covariance {:?}",
            logits.dims(),
            scale.dims(),
            cov.dims()
        )
    }
    let cov = cov.to_dtype(logits.dtype())?;
    if !fusable(logits) || scale.dtype() != logits.dtype() {
        let bias = cov
            .unsqueeze(1)?
            .broadcast_mul(&scale.reshape((1, h, 1, 1))?)?;
        return logits + bias;
    }
    logits
        .contiguous()?
        .apply_op3(&scale.contiguous()?, &cov.contiguous()?, CovBias)
}

struct CovBias;

/// Shapes `(B, H, C * C)` of the three contiguous inputs, checked.
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
) -> Result<(CpuStorage, Shape)> {
    let x = contiguous::<T>(s1, l1, "covariance bias")?;
    let scale = contiguous::<T>(s2, l2, "covariance bias")?;
    let cov = contiguous::<T>(s3, l3, "covariance bias")?;
    let batch = l1.dims().first().copied().unwrap_or(0);
    let (_, plane) = sizes(x.len(), scale.len(), cov.len(), batch)?;
    let mut y = x.to_vec();
    for (k, block) in y.chunks_mut(plane).enumerate() {
        let (b, h) = (k / scale.len(), k % scale.len());
        let c = &cov[b * plane..(b + 1) * plane];
        for (o, &cv) in block.iter_mut().zip(c) {
            *o += scale[h] * cv;
        }
    }
    Ok((T::to_cpu_storage_owned(y), l1.shape().clone()))
}

impl CustomOp3 for CovBias {
    fn name(&self) -> &'static str {
        "fused-covariance-bias"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        dispatch!(s1, self.name(), forward(s1, l1, s2, l2, s3, l3))
    }

    fn bwd(
        &self,
        _logits: &Tensor,
        scale: &Tensor,
        cov: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let grad_scale = grad.apply_op2_no_bwd(cov, &ScaleGrad)?;
        // The covariance is data in training; its gradient is only formed when something asks.
        let grad_cov = if cov.track_op() {
            let (b, h, c, c2) = grad.dims4()?;
            let per_head = grad.broadcast_mul(&scale.reshape((1, h, 1, 1))?)?;
            Some(per_head.sum(1)?.reshape((b, c, c2))?)
        } else {
            None
        };
        Ok((Some(grad), Some(grad_scale), grad_cov))
    }
}

/// Gradient of the scales: `sum_{b, i, j} grad[b, h, i, j] * cov[b, i, j]` for each head h.
struct ScaleGrad;

fn scale_grad<T: Real>(
    s1: &CpuStorage,
    l1: &Layout,
    s2: &CpuStorage,
    l2: &Layout,
) -> Result<(CpuStorage, Shape)> {
    let g = contiguous::<T>(s1, l1, "covariance bias backward")?;
    let cov = contiguous::<T>(s2, l2, "covariance bias backward")?;
    let dims = l1.dims();
    let (batch, heads) = match dims {
        [b, h, ..] => (*b, *h),
        _ => candle_core::bail!("covariance bias backward: gradient of rank {}", dims.len()),
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

impl CustomOp2 for ScaleGrad {
    fn name(&self) -> &'static str {
        "covariance-bias-scale-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        dispatch!(s1, self.name(), scale_grad(s1, l1, s2, l2))
    }
}
