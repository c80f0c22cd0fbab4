//! Exact GELU, fused.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};

use super::{contiguous, for_each_row, fusable, Real};

/// Exact GELU, `x * (1 + erf(x / sqrt 2)) / 2`, with an exact gradient.
pub fn gelu(xs: &Tensor) -> Result<Tensor> {
    if !fusable(xs) {
        return composed(xs);
    }
    xs.contiguous()?.apply_op1(Gelu)
}

/// The same function from candle's elementwise ops (reference, and the non-CPU path). Candle's
/// own GELU backward uses 6-digit constants; this composition's gradient is exact.
pub fn composed(xs: &Tensor) -> Result<Tensor> {
    let cdf = ((xs * std::f64::consts::FRAC_1_SQRT_2)?.erf()? + 1.0)?;
    (xs * 0.5)?.mul(&cdf)
}

#[inline(always)]
fn half<T: Real>() -> T {
    T::from(0.5).unwrap_or_else(T::zero)
}

#[inline(always)]
fn sqrt_half<T: Real>() -> T {
    T::from(std::f64::consts::FRAC_1_SQRT_2).unwrap_or_else(T::zero)
}

struct Gelu;

#[inline(always)]
fn gelu_values<T: Real>(x: &[T], out: &mut [T]) {
    let (h, k) = (half::<T>(), sqrt_half::<T>());
    for (o, &v) in out.iter_mut().zip(x) {
        *o = v * h * (T::one() + (v * k).erf());
    }
}

multiversion!(fn gelu_kernel<T: Real>(x: &[T], out: &mut [T]) => gelu_values);

#[inline(always)]
fn gelu_gradients<T: Real>(x: &[T], g: &[T], out: &mut [T]) {
    let (h, k) = (half::<T>(), sqrt_half::<T>());
    // phi(x) = exp(-x^2 / 2) / sqrt(2 pi) = exp(-x^2 / 2) * k / sqrt(pi).
    let c = T::from(std::f64::consts::FRAC_1_SQRT_2 / std::f64::consts::PI.sqrt())
        .unwrap_or_else(T::zero);
    for ((o, &v), &gv) in out.iter_mut().zip(x).zip(g) {
        let cdf = h * (T::one() + (v * k).erf());
        let pdf = c * (-(v * v) * h).exp_fast();
        *o = gv * (cdf + v * pdf);
    }
}

multiversion!(fn gelu_grad_kernel<T: Real>(x: &[T], g: &[T], out: &mut [T]) => gelu_gradients);

/// Elements per rayon task in the slice kernels below.
const BLOCK: usize = 4096;

/// GELU of every element of `x` into `out`, spread over rayon's threads.
pub(super) fn values_into<T: Real>(x: &[T], out: &mut [T]) {
    for_each_row(out, BLOCK, |r, o| {
        let start = r * BLOCK;
        gelu_kernel(&x[start..start + o.len()], o);
    });
}

/// `g * GELU'(x)` elementwise into `out`, spread over rayon's threads.
pub(super) fn gradients_into<T: Real>(x: &[T], g: &[T], out: &mut [T]) {
    for_each_row(out, BLOCK, |r, o| {
        let range = r * BLOCK..r * BLOCK + o.len();
        gelu_grad_kernel(&x[range.clone()], &g[range], o);
    });
}

fn forward<T: Real>(s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
    let x = contiguous::<T>(s, l, "gelu")?;
    let mut y = vec![T::zero(); x.len()];
    gelu_kernel(x, &mut y);
    Ok((T::to_cpu_storage_owned(y), l.shape().clone()))
}

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "fused-gelu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        dispatch!(s, self.name(), forward(s, l))
    }

    fn bwd(&self, xs: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(xs.apply_op2_no_bwd(&grad.contiguous()?, &GeluGrad)?))
    }
}

/// Backward of [`Gelu`]: `grad * (Phi(x) + x phi(x))`.
struct GeluGrad;

fn backward<T: Real>(
    s1: &CpuStorage,
    l1: &Layout,
    s2: &CpuStorage,
    l2: &Layout,
) -> Result<(CpuStorage, Shape)> {
    let x = contiguous::<T>(s1, l1, "gelu backward")?;
    let g = contiguous::<T>(s2, l2, "gelu backward")?;
    if x.len() != g.len() {
        candle_core::bail!("gelu backward: mismatched shapes")
    }
    let mut gx = vec![T::zero(); x.len()];
    gelu_grad_kernel(x, g, &mut gx);
    Ok((T::to_cpu_storage_owned(gx), l1.shape().clone()))
}

forward_only_op!(GeluGrad, "fused-gelu-grad", backward(s1, l1, s2, l2));
