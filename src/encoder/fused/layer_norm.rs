//! LayerNorm over the last dimension with its weight and bias, fused.

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};

use super::{contiguous, for_each_row, fusable, Real};

/// `(x - mean) / sqrt(var + eps) * weight + bias` over the last dimension of `xs`.
pub fn layer_norm(xs: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    if !fusable(xs) || weight.dtype() != xs.dtype() || bias.dtype() != xs.dtype() {
        return composed(xs, weight, bias, eps);
    }
    let xs = xs.contiguous()?;
    xs.apply_op3(
        &weight.contiguous()?,
        &bias.contiguous()?,
        LayerNorm { eps },
    )
}

/// The same function from candle's elementwise ops (reference, and the non-CPU path).
pub fn composed(xs: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    use candle_core::D;
    let centred = xs.broadcast_sub(&xs.mean_keepdim(D::Minus1)?)?;
    let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
    let normed = centred.broadcast_div(&(var + eps)?.sqrt()?)?;
    normed.broadcast_mul(weight)?.broadcast_add(bias)
}

struct LayerNorm {
    eps: f64,
}

#[inline(always)]
fn layer_norm_row<T: Real>(row: &[T], w: &[T], b: &[T], eps: f64, out: &mut [T]) {
    let (mean, inv) = moments(row, eps);
    for (((o, &xv), &wv), &bv) in out.iter_mut().zip(row).zip(w).zip(b) {
        *o = (xv - mean) * inv * wv + bv;
    }
}

multiversion!(fn layer_norm_row_kernel<T: Real>(row: &[T], w: &[T], b: &[T], eps: f64, out: &mut [T]) => layer_norm_row);

/// One row of the backward pass: writes the input gradient and adds the row's share of the
/// weight and bias gradients to `acc` (`[grad weight, grad bias]`).
#[inline(always)]
fn layer_norm_grad_row<T: Real>(x: &[T], g: &[T], w: &[T], eps: f64, gx: &mut [T], acc: &mut [T]) {
    let d = x.len();
    let dn = T::from(d).unwrap_or_else(T::one);
    let (mean, inv) = moments(x, eps);
    let (acc_w, acc_b) = acc.split_at_mut(d);
    for j in 0..d {
        let xh = (x[j] - mean) * inv;
        acc_w[j] += g[j] * xh;
        acc_b[j] += g[j];
    }
    let sum_gh = super::math::zip_sum(g, w, |gv, wv| gv * wv);
    // sum_j g w (x - mean) inv, with g w (x - mean) read from gx's storage.
    for j in 0..d {
        gx[j] = g[j] * w[j] * (x[j] - mean);
    }
    let sum_gh_xh = super::math::map_sum(gx, |v| v) * inv;
    let (mean_gh, mean_gh_xh) = (sum_gh / dn, sum_gh_xh / dn);
    for j in 0..d {
        let xh = (x[j] - mean) * inv;
        gx[j] = (g[j] * w[j] - mean_gh - xh * mean_gh_xh) * inv;
    }
}

multiversion!(fn layer_norm_grad_row_kernel<T: Real>(x: &[T], g: &[T], w: &[T], eps: f64, gx: &mut [T], acc: &mut [T]) => layer_norm_grad_row);

/// Row statistics: the mean and 1 / sqrt(var + eps).
#[inline(always)]
fn moments<T: Real>(row: &[T], eps: f64) -> (T, T) {
    let n = T::from(row.len()).unwrap_or_else(T::one);
    let mean = super::math::map_sum(row, |x| x) / n;
    let var = super::math::map_sum(row, |x| (x - mean) * (x - mean)) / n;
    let eps = T::from(eps).unwrap_or_else(T::zero);
    (mean, (var + eps).sqrt().recip())
}

fn width_of(l: &Layout) -> Result<usize> {
    l.dims()
        .last()
        .copied()
        .ok_or_else(|| candle_core::Error::Msg("layer-norm of a scalar".into()))
}

fn forward<T: Real>(
    s1: &CpuStorage,
    l1: &Layout,
    s2: &CpuStorage,
    l2: &Layout,
    s3: &CpuStorage,
    l3: &Layout,
    eps: f64,
) -> Result<(CpuStorage, Shape)> {
    let x = contiguous::<T>(s1, l1, "layer-norm")?;
    let w = contiguous::<T>(s2, l2, "layer-norm")?;
    let b = contiguous::<T>(s3, l3, "layer-norm")?;
    let d = width_of(l1)?;
    if w.len() != d || b.len() != d {
        candle_core::bail!("layer-norm: weight/bias length {} for rows of {d}", w.len())
    }
    let mut y = vec![T::zero(); x.len()];
    forward_rows(x, w, b, eps, &mut y);
    Ok((T::to_cpu_storage_owned(y), l1.shape().clone()))
}

/// LayerNorm of each row of `x` (rows as long as `w`) into `out`, rows spread over threads.
pub(super) fn forward_rows<T: Real>(x: &[T], w: &[T], b: &[T], eps: f64, out: &mut [T]) {
    let d = w.len();
    for_each_row(out, d, |r, out| {
        let row = &x[r * d..(r + 1) * d];
        layer_norm_row_kernel(row, w, b, eps, out);
    });
}

impl CustomOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        "fused-layer-norm"
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
        dispatch!(s1, self.name(), forward(s1, l1, s2, l2, s3, l3, self.eps))
    }

    fn bwd(
        &self,
        xs: &Tensor,
        weight: &Tensor,
        _bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let d = weight.elem_count();
        let n = xs.elem_count();
        let packed = xs.apply_op3_no_bwd(
            weight,
            &grad.contiguous()?,
            &LayerNormGrad { eps: self.eps },
        )?;
        let grad_x = packed.narrow(0, 0, n)?.reshape(xs.shape())?;
        let grad_w = packed.narrow(0, n, d)?.reshape(weight.shape())?;
        let grad_b = packed.narrow(0, n + d, d)?.reshape(weight.shape())?;
        Ok((Some(grad_x), Some(grad_w), Some(grad_b)))
    }
}

/// Backward of [`LayerNorm`]: from (x, weight, grad of y) to `[grad x, grad weight, grad bias]`
/// packed in one vector.
struct LayerNormGrad {
    eps: f64,
}

fn backward<T: Real>(
    s1: &CpuStorage,
    l1: &Layout,
    s2: &CpuStorage,
    l2: &Layout,
    s3: &CpuStorage,
    l3: &Layout,
    eps: f64,
) -> Result<(CpuStorage, Shape)> {
    let x = contiguous::<T>(s1, l1, "layer-norm backward")?;
    let w = contiguous::<T>(s2, l2, "layer-norm backward")?;
    let g = contiguous::<T>(s3, l3, "layer-norm backward")?;
    let d = width_of(l1)?;
    if w.len() != d || g.len() != x.len() {
        candle_core::bail!("layer-norm backward: mismatched shapes")
    }
    let n = x.len();
    let mut out = vec![T::zero(); n + 2 * d];
    let (grad_x, params) = out.split_at_mut(n);
    params.copy_from_slice(&backward_rows(x, g, w, eps, grad_x));
    Ok((T::to_cpu_storage_owned(out), Shape::from(n + 2 * d)))
}

/// The backward pass over rows of `x` (as long as `w`) with output gradient `g`: writes the input
/// gradient to `grad_x` and returns `[grad weight, grad bias]`.
pub(super) fn backward_rows<T: Real>(
    x: &[T],
    g: &[T],
    w: &[T],
    eps: f64,
    grad_x: &mut [T],
) -> Vec<T> {
    use rayon::prelude::*;
    let d = w.len();
    // Each task returns its rows' share of the weight and bias gradients.
    let partials: Vec<Vec<T>> = grad_x
        .par_chunks_mut(d.max(1) * super::ROWS_PER_TASK)
        .enumerate()
        .map(|(task, chunk)| {
            let mut acc = vec![T::zero(); 2 * d];
            for (i, gx) in chunk.chunks_mut(d.max(1)).enumerate() {
                let r = task * super::ROWS_PER_TASK + i;
                let xr = &x[r * d..(r + 1) * d];
                let gr = &g[r * d..(r + 1) * d];
                layer_norm_grad_row_kernel(xr, gr, w, eps, gx, &mut acc);
            }
            acc
        })
        .collect();
    let mut params = vec![T::zero(); 2 * d];
    for part in partials {
        for (p, v) in params.iter_mut().zip(part) {
            *p += v;
        }
    }
    params
}

forward_only_op!(
    LayerNormGrad,
    "fused-layer-norm-grad",
    backward(s1, l1, s2, l2, s3, l3),
    eps
);
