//! The two poolings at the end of the encoder: the mean over channel tokens, and the covariance
//! weighted by its learned pair kernel.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::gemm::{across_threads, matmul, Mat, MatMut};
use super::{contiguous, cpu_slice, for_each_row, fusable, Real};

/// The mean over the channel axis of tokens `[B, C, d]`, to `[B, d]`.
///
/// Candle reduces a middle axis with a strided loop, and its backward pass broadcasts and copies;
/// here both passes are one sweep over contiguous rows.
pub fn mean_over_channels(xs: &Tensor) -> Result<Tensor> {
    let (_, c, _) = xs.dims3()?;
    if !fusable(xs) || c == 0 {
        return xs.mean(1);
    }
    xs.contiguous()?.apply_op1(ChannelMean)
}

struct ChannelMean;

fn channel_mean<T: Real>(s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
    let x = contiguous::<T>(s, l, "channel mean")?;
    let (b, c, d) = l.shape().dims3()?;
    let scale = T::from(c).unwrap_or_else(T::one).recip();
    let mut y = vec![T::zero(); b * d];
    y.par_chunks_mut(d.max(1)).enumerate().for_each(|(e, out)| {
        for row in x[e * c * d..(e + 1) * c * d].chunks_exact(d.max(1)) {
            for (o, &v) in out.iter_mut().zip(row) {
                *o += v;
            }
        }
        out.iter_mut().for_each(|o| *o *= scale);
    });
    Ok((T::to_cpu_storage_owned(y), Shape::from((b, d))))
}

/// Backward of [`ChannelMean`]: the gradient `[B, d]` spread over `C` channels, divided by `C`.
struct SpreadOverChannels {
    channels: usize,
}

fn spread<T: Real>(s: &CpuStorage, l: &Layout, c: usize) -> Result<(CpuStorage, Shape)> {
    let g = contiguous::<T>(s, l, "channel mean backward")?;
    let (b, d) = l.shape().dims2()?;
    let scale = T::from(c).unwrap_or_else(T::one).recip();
    let mut out = vec![T::zero(); b * c * d];
    for_each_row(&mut out, d, |r, row| {
        let e = r / c.max(1);
        for (o, &gv) in row.iter_mut().zip(&g[e * d..(e + 1) * d]) {
            *o = gv * scale;
        }
    });
    Ok((T::to_cpu_storage_owned(out), Shape::from((b, c, d))))
}

forward_only_op!(
    SpreadOverChannels,
    "channel-mean-grad",
    spread(s, l),
    channels
);

impl CustomOp1 for ChannelMean {
    fn name(&self) -> &'static str {
        "fused-channel-mean"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        dispatch!(s, self.name(), channel_mean(s, l))
    }

    fn bwd(&self, xs: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let channels = xs.dim(1)?;
        let op = SpreadOverChannels { channels };
        Ok(Some(grad.contiguous()?.apply_op1_no_bwd(&op)?))
    }
}

/// `scale * data @ kernel` for data `[B, K]` (the covariances) and a learned kernel `[K, d]`, to
/// `[B, d]`; the data gets a gradient only when it is tracked (then through candle's ops).
pub fn data_product(data: &Tensor, kernel: &Tensor, scale: f64) -> Result<Tensor> {
    let (b, k) = data.dims2()?;
    let (k2, _) = kernel.dims2()?;
    if k != k2 {
        candle_core::bail!(
            "data product: data {:?}, kernel {:?}",
            data.dims(),
            kernel.dims()
        )
    }
    let data = data.to_dtype(kernel.dtype())?;
    // A covariance that needs a gradient (none does in training) takes candle's ops.
    if !fusable(kernel) || b == 0 || data.track_op() {
        return data.matmul(kernel)? * scale;
    }
    data.contiguous()?
        .apply_op2(&kernel.contiguous()?, DataProduct { scale })
}

struct DataProduct {
    scale: f64,
}

fn product<T: Real>(
    op: &DataProduct,
    s1: &CpuStorage,
    l1: &Layout,
    s2: &CpuStorage,
    l2: &Layout,
) -> Result<(CpuStorage, Shape)> {
    let data = contiguous::<T>(s1, l1, "data product")?;
    let kernel = contiguous::<T>(s2, l2, "data product")?;
    let (b, k) = l1.shape().dims2()?;
    let (_, d) = l2.shape().dims2()?;
    let mut y = vec![T::zero(); b * d];
    let scale = T::from(op.scale).unwrap_or_else(T::one);
    matmul(
        MatMut::dense(&mut y, b, d),
        Mat::dense(data, b, k),
        Mat::dense(kernel, k, d),
        scale,
        false,
        across_threads(),
    )?;
    Ok((T::to_cpu_storage_owned(y), Shape::from((b, d))))
}

fn product_grad<T: Real>(op: &DataProduct, data: &Tensor, grad: &Tensor) -> Result<Tensor> {
    let (b, k) = data.dims2()?;
    let (_, d) = grad.dims2()?;
    let grad = grad.contiguous()?;
    let (data_s, data_l) = data.storage_and_layout();
    let (g_s, g_l) = grad.storage_and_layout();
    let x = cpu_slice::<T>(&data_s, data_l, "data product backward")?;
    let g = cpu_slice::<T>(&g_s, g_l, "data product backward")?;
    let mut grad_kernel = vec![T::zero(); k * d];
    let scale = T::from(op.scale).unwrap_or_else(T::one);
    matmul(
        MatMut::dense(&mut grad_kernel, k, d),
        Mat::dense(x, b, k).t(),
        Mat::dense(g, b, d),
        scale,
        false,
        across_threads(),
    )?;
    Tensor::from_vec(grad_kernel, (k, d), data.device())
}

impl CustomOp2 for DataProduct {
    fn name(&self) -> &'static str {
        "fused-data-product"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        dispatch!(s1, self.name(), product(self, s1, l1, s2, l2))
    }

    fn bwd(
        &self,
        data: &Tensor,
        kernel: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad_kernel = dispatch!(
            dtype kernel.dtype(),
            self.name(),
            product_grad(self, data, grad)
        )?;
        Ok((None, Some(grad_kernel)))
    }
}
