//! Exact GELU, fused.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};

use super::{contiguous, fusable, Real};

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

fn half<T: Real>() -> T {
    T::from(0.5).unwrap_or_else(T::zero)
}

fn sqrt_half<T: Real>() -> T {
    T::from(std::f64::consts::FRAC_1_SQRT_2).unwrap_or_else(T::zero)
}

struct Gelu;

fn forward<T: Real>(s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
    let x = contiguous::<T>(s, l, "gelu")?;
    let (h, k) = (half::<T>(), sqrt_half::<T>());
    let y: Vec<T> = x
        .iter()
        .map(|&v| v * h * (T::one() + (v * k).erf()))
        .collect();
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
    let (h, k) = (half::<T>(), sqrt_half::<T>());
    // phi(x) = exp(-x^2 / 2) / sqrt(2 pi) = exp(-x^2 / 2) * k / sqrt(pi).
    let c = T::from(std::f64::consts::FRAC_1_SQRT_2 / std::f64::consts::PI.sqrt())
        .unwrap_or_else(T::zero);
    let gx: Vec<T> = x
        .iter()
        .zip(g)
        .map(|(&v, &gv)| {
            let cdf = h * (T::one() + (v * k).erf());
            let pdf = c * (-(v * v) * h).exp_fast();
            gv * (cdf + v * pdf)
        })
        .collect();
    Ok((T::to_cpu_storage_owned(gx), l1.shape().clone()))
}

impl CustomOp2 for GeluGrad {
    fn name(&self) -> &'static str {
        "fused-gelu-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        dispatch!(s1, self.name(), backward(s1, l1, s2, l2))
    }
}
