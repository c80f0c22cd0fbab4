//! A linear layer over the last dimension as one graph node.

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Storage, Tensor};

use super::bias::ColumnSum;
use super::{contiguous, for_each_row, fusable, Real, Stash};

/// `xs @ weight^T + bias` over the last dimension of `xs` (`[.., k]` with weight `[n, k]` and
/// bias `[n]`), as one node of the autograd graph.
///
/// Composed from candle ops this is two reshapes, a transpose, a product and a bias addition,
/// and candle's backward pass allocates and accumulates a full-size gradient for each; here the
/// product runs on detached tensors and a single op adds the bias and records the inputs, so the
/// backward pass is the two products and a column sum.
pub fn linear(xs: &Tensor, weight: &Tensor, bias: &Tensor) -> Result<Tensor> {
    let (n, k) = weight.dims2()?;
    let dims = xs.dims();
    if dims.last() != Some(&k) || bias.dims() != [n] {
        candle_core::bail!(
            "linear: input {dims:?}, weight {:?}, bias {:?}",
            weight.dims(),
            bias.dims()
        )
    }
    let rows = xs.elem_count() / k.max(1);
    let mut out_dims = dims.to_vec();
    if let Some(last) = out_dims.last_mut() {
        *last = n;
    }
    let same_dtype = weight.dtype() == xs.dtype() && bias.dtype() == xs.dtype();
    if !fusable(xs) || !same_dtype || rows == 0 || n == 0 {
        let product = xs.reshape((rows, k))?.matmul(&weight.t()?)?;
        return product.broadcast_add(bias)?.reshape(out_dims);
    }
    let xs = xs.contiguous()?;
    let product = xs
        .detach()
        .reshape((rows, k))?
        .matmul(&weight.detach().t()?)?;
    let op = Linear {
        product: Stash::new("linear", Some(product)),
        out: Shape::from(out_dims),
    };
    xs.apply_op3(&weight.contiguous()?, &bias.contiguous()?, op)
}

struct Linear {
    /// `xs @ weight^T`, computed before the op runs and taken by its forward pass.
    product: Stash<Tensor>,
    /// Output shape: the input's with the last dimension replaced by n.
    out: Shape,
}

fn add_bias<T: Real>(product: &Tensor, s3: &CpuStorage, l3: &Layout) -> Result<Vec<T>> {
    let bias = contiguous::<T>(s3, l3, "linear")?;
    let (storage, layout) = product.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        candle_core::bail!("linear: product off the CPU")
    };
    let p = contiguous::<T>(cpu, layout, "linear")?;
    let n = bias.len();
    let mut y = vec![T::zero(); p.len()];
    for_each_row(&mut y, n, |r, out| {
        let row = &p[r * n..(r + 1) * n];
        for ((o, &pv), &bv) in out.iter_mut().zip(row).zip(bias) {
            *o = pv + bv;
        }
    });
    Ok(y)
}

impl CustomOp3 for Linear {
    fn name(&self) -> &'static str {
        "fused-linear"
    }

    fn cpu_fwd(
        &self,
        _s1: &CpuStorage,
        _l1: &Layout,
        _s2: &CpuStorage,
        _l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let product = self.product.take()?;
        let storage = match s3 {
            CpuStorage::F32(_) => CpuStorage::F32(add_bias::<f32>(&product, s3, l3)?),
            CpuStorage::F64(_) => CpuStorage::F64(add_bias::<f64>(&product, s3, l3)?),
            other => {
                use candle_core::backend::BackendStorage;
                return Err(candle_core::Error::UnsupportedDTypeForOp(
                    other.dtype(),
                    self.name(),
                ));
            }
        };
        Ok((storage, self.out.clone()))
    }

    fn bwd(
        &self,
        xs: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (n, k) = weight.dims2()?;
        let rows = xs.elem_count() / k.max(1);
        let g = grad.contiguous()?.reshape((rows, n))?;
        // Inputs that are data (the feature tokens, the covariances) need no gradient; candle's
        // own matmul backward would compute it anyway.
        let grad_x = if xs.track_op() {
            Some(g.matmul(&weight.detach())?.reshape(xs.shape())?)
        } else {
            None
        };
        let grad_w = g.t()?.matmul(&xs.detach().reshape((rows, k))?)?;
        let grad_b = g
            .apply_op1_no_bwd(&ColumnSum { width: n })?
            .reshape(bias.shape())?;
        Ok((grad_x, Some(grad_w), Some(grad_b)))
    }
}
