//! Addition of a bias shared by every row (linear-layer biases, position embeddings), fused.

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};

use super::{contiguous, for_each_row, fusable, Real};

/// `xs + bias`, where `bias` has the shape of `xs`'s trailing dimensions (e.g. `[d]` for
/// `[N, d]`, or `[C, d]` for `[B, C, d]`).
pub fn add_row_bias(xs: &Tensor, bias: &Tensor) -> Result<Tensor> {
    let trailing = xs.rank().checked_sub(bias.rank()).map(|k| &xs.dims()[k..]);
    if trailing != Some(bias.dims()) {
        candle_core::bail!(
            "row bias: bias {:?} is not the trailing shape of {:?}",
            bias.dims(),
            xs.dims()
        )
    }
    if !fusable(xs) || bias.dtype() != xs.dtype() {
        return xs.broadcast_add(bias);
    }
    xs.contiguous()?.apply_op2(&bias.contiguous()?, RowBias)
}

struct RowBias;

fn forward<T: Real>(
    s1: &CpuStorage,
    l1: &Layout,
    s2: &CpuStorage,
    l2: &Layout,
) -> Result<(CpuStorage, Shape)> {
    let x = contiguous::<T>(s1, l1, "row bias")?;
    let b = contiguous::<T>(s2, l2, "row bias")?;
    let m = b.len();
    if m == 0 || x.len() % m != 0 {
        candle_core::bail!("row bias: {} elements in rows of {m}", x.len())
    }
    let mut y = vec![T::zero(); x.len()];
    for_each_row(&mut y, m, |r, out| {
        let row = &x[r * m..(r + 1) * m];
        for ((o, &xv), &bv) in out.iter_mut().zip(row).zip(b) {
            *o = xv + bv;
        }
    });
    Ok((T::to_cpu_storage_owned(y), l1.shape().clone()))
}

impl CustomOp2 for RowBias {
    fn name(&self) -> &'static str {
        "fused-row-bias"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        dispatch!(s1, self.name(), forward(s1, l1, s2, l2))
    }

    fn bwd(
        &self,
        _xs: &Tensor,
        bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad_bias = grad
            .contiguous()?
            .apply_op1_no_bwd(&ColumnSum {
                width: bias.elem_count(),
            })?
            .reshape(bias.shape())?;
        Ok((Some(grad.clone()), Some(grad_bias)))
    }
}

/// Sum of the rows of a contiguous tensor seen as `[N, width]`, in row order.
pub(super) struct ColumnSum {
    pub(super) width: usize,
}

fn column_sum<T: Real>(s: &CpuStorage, l: &Layout, m: usize) -> Result<(CpuStorage, Shape)> {
    let g = contiguous::<T>(s, l, "column sum")?;
    if m == 0 || g.len() % m != 0 {
        candle_core::bail!("column sum: {} elements in rows of {m}", g.len())
    }
    Ok((T::to_cpu_storage_owned(column_sums(g, m)), Shape::from(m)))
}

/// Sum of the rows of `g` seen as `[N, width]`, in row order.
pub(super) fn column_sums<T: Real>(g: &[T], width: usize) -> Vec<T> {
    let mut acc = vec![T::zero(); width];
    for row in g.chunks_exact(width.max(1)) {
        for (a, &v) in acc.iter_mut().zip(row) {
            *a += v;
        }
    }
    acc
}

forward_only_op!(ColumnSum, "column-sum", column_sum(s, l), width);
