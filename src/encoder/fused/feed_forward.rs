//! The feed-forward block `x + fc2(gelu(fc1(norm(x))))` as one graph node.

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};

use super::{contiguous, dense, fusable, gelu, layer_norm, Real};
use super::{cpu_slice, segments, segments_mut, Stash};

/// The weights of a feed-forward block: LayerNorm `[d]`, `[d]`; fc1 `[f, d]`, `[f]`; fc2
/// `[d, f]`, `[d]`.
#[derive(Clone, Copy)]
pub struct FeedForwardWeights<'a> {
    /// LayerNorm weight and bias.
    pub norm: (&'a Tensor, &'a Tensor),
    /// First linear layer's weight and bias.
    pub fc1: (&'a Tensor, &'a Tensor),
    /// Second linear layer's weight and bias.
    pub fc2: (&'a Tensor, &'a Tensor),
}

/// `x + fc2(gelu(fc1(layer_norm(x))))` over the last dimension of `xs`.
///
/// Built from the other kernels, the block is eight graph nodes, and candle's backward pass
/// allocates, zero-fills and accumulates a full-size gradient at each. Here the weights travel
/// as one concatenated vector, the intermediate activations are kept by the op, and the
/// backward pass is four products, two column sums and the LayerNorm and GELU kernels.
pub fn feed_forward(xs: &Tensor, w: FeedForwardWeights<'_>, eps: f64) -> Result<Tensor> {
    let (f, d) = w.fc1.0.dims2()?;
    let expected: [(&Tensor, &[usize]); 6] = [
        (w.norm.0, &[d]),
        (w.norm.1, &[d]),
        (w.fc1.1, &[f]),
        (w.fc2.0, &[d, f]),
        (w.fc2.1, &[d]),
        (w.fc1.0, &[f, d]),
    ];
    if xs.dims().last() != Some(&d) || expected.iter().any(|(t, dims)| t.dims() != *dims) {
        candle_core::bail!(
            "feed-forward: input {:?} with fc1 weight {:?}",
            xs.dims(),
            w.fc1.0.dims()
        )
    }
    let same_dtype = expected.iter().all(|(t, _)| t.dtype() == xs.dtype());
    if !fusable(xs) || !same_dtype || xs.elem_count() == 0 {
        return composed(xs, w, eps);
    }
    let params = Tensor::cat(
        &[
            w.norm.0,
            w.norm.1,
            &w.fc1.0.flatten_all()?,
            w.fc1.1,
            &w.fc2.0.flatten_all()?,
            w.fc2.1,
        ],
        0,
    )?;
    let op = FeedForward {
        d,
        f,
        eps,
        saved: Stash::new("feed-forward", None),
    };
    xs.contiguous()?.apply_op2(&params, op)
}

/// The same block from the separate kernels (reference, and the path off the CPU).
pub fn composed(xs: &Tensor, w: FeedForwardWeights<'_>, eps: f64) -> Result<Tensor> {
    let h = layer_norm::layer_norm(xs, w.norm.0, w.norm.1, eps)?;
    let a = super::linear(&h, w.fc1.0, w.fc1.1)?;
    xs + super::linear(&gelu::gelu(&a)?, w.fc2.0, w.fc2.1)?
}

struct FeedForward {
    d: usize,
    f: usize,
    eps: f64,
    /// Normalized input, fc1 output and its GELU, kept by the forward pass for the backward.
    saved: Stash<[CpuStorage; 3]>,
}

impl FeedForward {
    /// Lengths of the concatenated weights, in order.
    fn lengths(&self) -> [usize; 6] {
        let (d, f) = (self.d, self.f);
        [d, d, f * d, f, d * f, d]
    }

    fn forward<T: Real>(&self, x: &[T], p: &[T]) -> Result<(Vec<T>, [CpuStorage; 3])> {
        let (d, f) = (self.d, self.f);
        let [nw, nb, w1, b1, w2, b2] = segments(p, self.lengths())?;
        let rows = x.len() / d;
        let mut h = vec![T::zero(); rows * d];
        layer_norm::forward_rows(x, nw, nb, self.eps, &mut h);
        let mut a = vec![T::zero(); rows * f];
        dense::forward(&h, w1, b1, None, &mut a)?;
        let mut u = vec![T::zero(); rows * f];
        gelu::values_into(&a, &mut u);
        let mut y = vec![T::zero(); rows * d];
        dense::forward(&u, w2, b2, Some(x), &mut y)?;
        Ok((y, [h, a, u].map(T::to_cpu_storage_owned)))
    }

    fn backward<T: Real>(
        &self,
        x: &[T],
        p: &[T],
        g: &[T],
        saved: &[CpuStorage; 3],
    ) -> Result<(Vec<T>, Vec<T>)> {
        let (d, f) = (self.d, self.f);
        let [nw, _, w1, _, w2, _] = segments(p, self.lengths())?;
        let [h, a, u] = [&saved[0], &saved[1], &saved[2]].map(|s| s.as_slice::<T>());
        let (h, a, u) = (h?, a?, u?);
        let rows = x.len() / d;
        if g.len() != x.len() || h.len() != rows * d || a.len() != rows * f || u.len() != a.len() {
            candle_core::bail!("feed-forward backward: mismatched sizes")
        }
        let mut grad_p = vec![T::zero(); p.len()];
        let [g_nw, g_nb, g_w1, g_b1, g_w2, g_b2] = segments_mut(&mut grad_p, self.lengths())?;
        let grad_u = dense::backward(u, w2, g, g_w2, g_b2)?;
        let mut grad_a = vec![T::zero(); rows * f];
        gelu::gradients_into(a, &grad_u, &mut grad_a);
        drop(grad_u);
        let grad_h = dense::backward(h, w1, &grad_a, g_w1, g_b1)?;
        let norm = (nw, self.eps);
        let grad_x = dense::norm_and_residual_backward(x, &grad_h, g, norm, g_nw, g_nb);
        Ok((grad_x, grad_p))
    }
}

fn forward<T: Real>(
    op: &FeedForward,
    s1: &CpuStorage,
    l1: &Layout,
    s2: &CpuStorage,
    l2: &Layout,
) -> Result<(CpuStorage, Shape)> {
    let x = contiguous::<T>(s1, l1, "feed-forward")?;
    let p = contiguous::<T>(s2, l2, "feed-forward")?;
    let (y, saved) = op.forward(x, p)?;
    op.saved.put(saved)?;
    Ok((T::to_cpu_storage_owned(y), l1.shape().clone()))
}

fn backward<T: Real>(
    op: &FeedForward,
    xs: &Tensor,
    params: &Tensor,
    grad: &Tensor,
) -> Result<(Option<Tensor>, Option<Tensor>)> {
    let grad = grad.contiguous()?;
    let name = "feed-forward backward";
    let (xs_s, xs_l) = xs.storage_and_layout();
    let (p_s, p_l) = params.storage_and_layout();
    let (g_s, g_l) = grad.storage_and_layout();
    let (gx, gp) = op.saved.with(|saved| {
        op.backward(
            cpu_slice::<T>(&xs_s, xs_l, name)?,
            cpu_slice::<T>(&p_s, p_l, name)?,
            cpu_slice::<T>(&g_s, g_l, name)?,
            saved,
        )
    })?;
    Ok((
        Some(Tensor::from_vec(gx, xs.shape(), xs.device())?),
        Some(Tensor::from_vec(gp, params.shape(), params.device())?),
    ))
}

impl CustomOp2 for FeedForward {
    fn name(&self) -> &'static str {
        "fused-feed-forward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        dispatch!(s1, self.name(), forward(self, s1, l1, s2, l2))
    }

    fn bwd(
        &self,
        xs: &Tensor,
        params: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        dispatch!(dtype xs.dtype(), self.name(), backward(self, xs, params, grad))
    }
}
