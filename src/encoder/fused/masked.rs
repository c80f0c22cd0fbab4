//! The two places masked-channel pretraining touches every token: hiding the masked tokens
//! behind the learned mask token, and the reconstruction error on them.

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};

use super::{contiguous, for_each_row, fusable, Real};

/// `tokens * (1 - mask) + mask * mask_token` for tokens `[B, C, d]`, a 0/1 mask `[B, C]` and the
/// mask token `[d]`. The mask is data: it gets no gradient.
pub fn mask_tokens(tokens: &Tensor, mask: &Tensor, mask_token: &Tensor) -> Result<Tensor> {
    let (b, c, d) = tokens.dims3()?;
    if mask.dims() != [b, c] || mask_token.dims() != [d] {
        candle_core::bail!(
            "mask tokens: tokens {:?}, mask {:?}, mask token {:?}",
            tokens.dims(),
            mask.dims(),
            mask_token.dims()
        )
    }
    let mask = mask.to_dtype(tokens.dtype())?;
    if !fusable(tokens) || mask_token.dtype() != tokens.dtype() {
        return mask_tokens_composed(tokens, &mask, mask_token);
    }
    tokens.contiguous()?.apply_op3(
        &mask.detach().contiguous()?,
        &mask_token.contiguous()?,
        MaskTokens,
    )
}

/// The same blend from candle's broadcast ops (reference, and the path off the CPU).
pub fn mask_tokens_composed(tokens: &Tensor, mask: &Tensor, mask_token: &Tensor) -> Result<Tensor> {
    let mask = mask.unsqueeze(2)?;
    let kept = tokens.broadcast_mul(&(1.0 - &mask)?)?;
    kept.broadcast_add(&mask.broadcast_mul(mask_token)?)
}

struct MaskTokens;

fn blend<T: Real>(
    s1: &CpuStorage,
    l1: &Layout,
    s2: &CpuStorage,
    l2: &Layout,
    s3: &CpuStorage,
    l3: &Layout,
) -> Result<(CpuStorage, Shape)> {
    let x = contiguous::<T>(s1, l1, "mask tokens")?;
    let mask = contiguous::<T>(s2, l2, "mask tokens")?;
    let token = contiguous::<T>(s3, l3, "mask tokens")?;
    let d = token.len();
    if mask.len() * d != x.len() {
        candle_core::bail!("mask tokens: mismatched sizes")
    }
    let mut y = vec![T::zero(); x.len()];
    for_each_row(&mut y, d, |r, out| {
        let (m, row) = (mask[r], &x[r * d..(r + 1) * d]);
        for ((o, &xv), &tv) in out.iter_mut().zip(row).zip(token) {
            *o = xv * (T::one() - m) + m * tv;
        }
    });
    Ok((T::to_cpu_storage_owned(y), l1.shape().clone()))
}

/// `[grad tokens, grad mask token]` packed: `g (1 - m)` and the sum of `g m` over tokens.
fn blend_grad<T: Real>(
    s1: &CpuStorage,
    l1: &Layout,
    s2: &CpuStorage,
    l2: &Layout,
    _s3: &CpuStorage,
    _l3: &Layout,
) -> Result<(CpuStorage, Shape)> {
    let g = contiguous::<T>(s1, l1, "mask tokens backward")?;
    let mask = contiguous::<T>(s2, l2, "mask tokens backward")?;
    let d = g.len().checked_div(mask.len()).unwrap_or(0);
    if d == 0 || mask.len() * d != g.len() {
        candle_core::bail!("mask tokens backward: mismatched sizes")
    }
    let mut out = vec![T::zero(); g.len() + d];
    let (grad_x, grad_token) = out.split_at_mut(g.len());
    for_each_row(grad_x, d, |r, row| {
        let m = mask[r];
        for (o, &gv) in row.iter_mut().zip(&g[r * d..(r + 1) * d]) {
            *o = gv * (T::one() - m);
        }
    });
    for (&m, row) in mask.iter().zip(g.chunks_exact(d)) {
        if m != T::zero() {
            for (acc, &gv) in grad_token.iter_mut().zip(row) {
                *acc += gv * m;
            }
        }
    }
    Ok((T::to_cpu_storage_owned(out), Shape::from(g.len() + d)))
}

struct MaskTokensGrad;

forward_only_op!(
    MaskTokensGrad,
    "mask-tokens-grad",
    blend_grad(s1, l1, s2, l2, s3, l3)
);

impl CustomOp3 for MaskTokens {
    fn name(&self) -> &'static str {
        "fused-mask-tokens"
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
        dispatch!(s1, self.name(), blend(s1, l1, s2, l2, s3, l3))
    }

    fn bwd(
        &self,
        tokens: &Tensor,
        mask: &Tensor,
        mask_token: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let n = tokens.elem_count();
        let packed = grad
            .contiguous()?
            .apply_op3_no_bwd(mask, mask_token, &MaskTokensGrad)?;
        let grad_tokens = packed.narrow(0, 0, n)?.reshape(tokens.shape())?;
        let grad_token = packed.narrow(0, n, mask_token.elem_count())?;
        Ok((Some(grad_tokens), None, Some(grad_token)))
    }
}

/// `sum_{b, c, f} mask[b, c] (pred - target)^2` for predictions and targets `[B, C, F]` and a
/// mask `[B, C]`, as a scalar; only the predictions get a gradient.
pub fn masked_squared_error(pred: &Tensor, target: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let (b, c, _) = pred.dims3()?;
    if target.dims() != pred.dims() || mask.dims() != [b, c] {
        candle_core::bail!(
            "masked squared error: prediction {:?}, target {:?}, mask {:?}",
            pred.dims(),
            target.dims(),
            mask.dims()
        )
    }
    let target = target.to_dtype(pred.dtype())?.detach();
    let mask = mask.to_dtype(pred.dtype())?.detach();
    if !fusable(pred) {
        return masked_squared_error_composed(pred, &target, &mask);
    }
    pred.contiguous()?.apply_op3(
        &target.contiguous()?,
        &mask.contiguous()?,
        MaskedSquaredError,
    )
}

/// The same sum from candle's ops (reference, and the path off the CPU).
pub fn masked_squared_error_composed(
    pred: &Tensor,
    target: &Tensor,
    mask: &Tensor,
) -> Result<Tensor> {
    (pred - target)?
        .sqr()?
        .broadcast_mul(&mask.unsqueeze(2)?)?
        .sum_all()
}

struct MaskedSquaredError;

/// Predictions, targets and mask as slices, with the row width F.
type MaskedRows<'a, T> = (&'a [T], &'a [T], &'a [T], usize);

/// Rows of `pred`, `target` (width = their length over the mask's) with the mask, or an error.
fn masked_rows<'a, T: Real>(
    inputs: [(&'a CpuStorage, &Layout); 3],
    op: &'static str,
) -> Result<MaskedRows<'a, T>> {
    let [p, t, m] = inputs.map(|(s, l)| contiguous::<T>(s, l, op));
    let (p, t, m) = (p?, t?, m?);
    let f = p.len().checked_div(m.len()).unwrap_or(0);
    if f == 0 || p.len() != t.len() || m.len() * f != p.len() {
        candle_core::bail!("{op}: mismatched sizes")
    }
    Ok((p, t, m, f))
}

fn squared_error<T: Real>(inputs: [(&CpuStorage, &Layout); 3]) -> Result<(CpuStorage, Shape)> {
    let (p, t, m, f) = masked_rows::<T>(inputs, "masked squared error")?;
    let mut total = T::zero();
    for ((pr, tr), &mv) in p.chunks_exact(f).zip(t.chunks_exact(f)).zip(m) {
        if mv != T::zero() {
            let row = pr
                .iter()
                .zip(tr)
                .fold(T::zero(), |a, (&pv, &tv)| a + (pv - tv) * (pv - tv));
            total += mv * row;
        }
    }
    Ok((T::to_cpu_storage_owned(vec![total]), Shape::from(())))
}

/// `2 (pred - target) mask`, the gradient of [`MaskedSquaredError`] per unit of output gradient.
struct MaskedSquaredErrorGrad;

fn squared_error_grad<T: Real>(inputs: [(&CpuStorage, &Layout); 3]) -> Result<(CpuStorage, Shape)> {
    let (p, t, m, f) = masked_rows::<T>(inputs, "masked squared error backward")?;
    let two = T::one() + T::one();
    let mut grad = vec![T::zero(); p.len()];
    for_each_row(&mut grad, f, |r, out| {
        let mv = m[r] * two;
        let (pr, tr) = (&p[r * f..(r + 1) * f], &t[r * f..(r + 1) * f]);
        for ((o, &pv), &tv) in out.iter_mut().zip(pr).zip(tr) {
            *o = mv * (pv - tv);
        }
    });
    Ok((T::to_cpu_storage_owned(grad), inputs[0].1.shape().clone()))
}

fn squared_error_grad_op<T: Real>(
    s1: &CpuStorage,
    l1: &Layout,
    s2: &CpuStorage,
    l2: &Layout,
    s3: &CpuStorage,
    l3: &Layout,
) -> Result<(CpuStorage, Shape)> {
    squared_error_grad::<T>([(s1, l1), (s2, l2), (s3, l3)])
}

forward_only_op!(
    MaskedSquaredErrorGrad,
    "masked-squared-error-grad",
    squared_error_grad_op(s1, l1, s2, l2, s3, l3)
);

impl CustomOp3 for MaskedSquaredError {
    fn name(&self) -> &'static str {
        "fused-masked-squared-error"
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
        dispatch!(
            s1,
            self.name(),
            squared_error([(s1, l1), (s2, l2), (s3, l3)])
        )
    }

    fn bwd(
        &self,
        pred: &Tensor,
        target: &Tensor,
        mask: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let unit = pred.apply_op3_no_bwd(target, mask, &MaskedSquaredErrorGrad)?;
        Ok((Some(unit.broadcast_mul(grad)?), None, None))
    }
}
