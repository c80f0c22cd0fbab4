//! The attention block `x + out(attention(norm(x)))` as one graph node.

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::attention_softmax::softmax_row_kernel;
use super::gemm::{matmul, Mat, MatMut, Parallelism};
use super::softmax::softmax_grad_row_kernel;
use super::{contiguous, cpu_slice, dense, fusable, layer_norm, segments};
use super::{segments_mut, Real, Stash};

/// The weights of an attention block over width d with H heads: LayerNorm `[d]`, `[d]`; the
/// query, key and value projections stacked, `[3d, d]` and `[3d]`; the output projection
/// `[d, d]`, `[d]`; the per-head covariance scales `[H]`.
#[derive(Clone, Copy)]
pub struct AttentionWeights<'a> {
    /// LayerNorm weight and bias.
    pub norm: (&'a Tensor, &'a Tensor),
    /// Stacked query, key and value weights and biases.
    pub qkv: (&'a Tensor, &'a Tensor),
    /// Output projection's weight and bias.
    pub out: (&'a Tensor, &'a Tensor),
    /// Covariance scale of each head.
    pub scale: &'a Tensor,
}

/// `x + out(mix(qkv(layer_norm(x))))` for tokens `[B, C, d]`, where head h of `mix` is
/// `softmax(q k^T / sqrt(d / H) + scale[h] cov) v`, with covariance `[B, C, C]`.
///
/// One node instead of about ten: the weights travel as one concatenated vector and the
/// activations (normalized input, queries/keys/values, attention weights, mixed tokens) are kept
/// by the op. Each epoch's heads run as one rayon task on views of the stacked queries, keys and
/// values, so nothing is split, merged or stacked. The covariance is data here: when it needs a
/// gradient (or off the CPU) the block runs as the separate kernels.
pub fn attention_block(
    xs: &Tensor,
    w: AttentionWeights<'_>,
    cov: &Tensor,
    eps: f64,
) -> Result<Tensor> {
    let (b, c, d) = xs.dims3()?;
    let heads = w.scale.elem_count();
    let expected: [(&Tensor, &[usize]); 7] = [
        (w.norm.0, &[d]),
        (w.norm.1, &[d]),
        (w.qkv.0, &[3 * d, d]),
        (w.qkv.1, &[3 * d]),
        (w.out.0, &[d, d]),
        (w.out.1, &[d]),
        (w.scale, &[heads]),
    ];
    let bad_shape = expected.iter().any(|(t, dims)| t.dims() != *dims);
    if bad_shape || heads == 0 || d % heads != 0 || cov.dims() != [b, c, c] {
        candle_core::bail!(
            "attention block: tokens {:?}, qkv weight {:?}, {heads} heads, covariance {:?}",
            xs.dims(),
            w.qkv.0.dims(),
            cov.dims()
        )
    }
    let cov = cov.to_dtype(xs.dtype())?;
    let same_dtype = expected.iter().all(|(t, _)| t.dtype() == xs.dtype());
    if !fusable(xs) || !same_dtype || cov.track_op() || xs.elem_count() == 0 {
        return composed(xs, w, &cov, eps);
    }
    let params = Tensor::cat(
        &[
            w.norm.0,
            w.norm.1,
            &w.qkv.0.flatten_all()?,
            w.qkv.1,
            &w.out.0.flatten_all()?,
            w.out.1,
            w.scale,
        ],
        0,
    )?;
    let op = AttentionBlock {
        shape: Dims { b, c, d, heads },
        eps,
        saved: Stash::new("attention block", None),
    };
    xs.contiguous()?.apply_op3(&params, &cov.contiguous()?, op)
}

/// The same block from the separate kernels (reference, and the path off the CPU).
pub fn composed(xs: &Tensor, w: AttentionWeights<'_>, cov: &Tensor, eps: f64) -> Result<Tensor> {
    xs + update(xs, w, cov, eps)?
}

/// The block's residual update `out(mix(qkv(layer_norm(x))))`, from the separate kernels.
pub fn update(xs: &Tensor, w: AttentionWeights<'_>, cov: &Tensor, eps: f64) -> Result<Tensor> {
    let heads = w.scale.elem_count();
    let dh = xs.dim(2)? / heads.max(1);
    let h = layer_norm::layer_norm(xs, w.norm.0, w.norm.1, eps)?;
    let stacked = super::split_heads(&super::linear(&h, w.qkv.0, w.qkv.1)?, 3, heads)?;
    let alpha = 1.0 / (dh as f64).sqrt();
    let mixed = super::attention(&stacked, alpha, w.scale, cov)?;
    super::linear(&super::merge_heads(&mixed)?, w.out.0, w.out.1)
}

#[derive(Clone, Copy)]
struct Dims {
    b: usize,
    c: usize,
    d: usize,
    heads: usize,
}

struct AttentionBlock {
    shape: Dims,
    eps: f64,
    /// Normalized input `[B C, d]`, stacked queries/keys/values `[B C, 3d]`, attention weights
    /// `[B, H, C, C]` and mixed tokens `[B C, d]`, kept by the forward pass for the backward.
    saved: Stash<[CpuStorage; 4]>,
}

/// One epoch's views: head `head`'s queries, keys and values in its stacked `[C, 3d]` rows.
fn head_views<T>(qkv: &[T], s: Dims, head: usize) -> [Mat<'_, T>; 3] {
    let dh = s.d / s.heads;
    [0, s.d, 2 * s.d].map(|stack| Mat::new(&qkv[stack + head * dh..], s.c, dh, 3 * s.d))
}

impl AttentionBlock {
    /// Lengths of the concatenated weights, in order.
    fn lengths(&self) -> [usize; 7] {
        let d = self.shape.d;
        [d, d, 3 * d * d, 3 * d, d * d, d, self.shape.heads]
    }

    fn alpha<T: Real>(&self) -> T {
        let dh = self.shape.d / self.shape.heads;
        T::from(1.0 / (dh as f64).sqrt()).unwrap_or_else(T::one)
    }

    fn forward<T: Real>(&self, x: &[T], p: &[T], cov: &[T]) -> Result<(Vec<T>, [CpuStorage; 4])> {
        let s = self.shape;
        let (rows, d, c, dh) = (s.b * s.c, s.d, s.c, s.d / s.heads);
        let [nw, nb, w_qkv, b_qkv, w_out, b_out, scale] = segments(p, self.lengths())?;
        if x.len() != rows * d || cov.len() != s.b * c * c {
            candle_core::bail!("attention block: mismatched sizes")
        }
        let mut h = vec![T::zero(); rows * d];
        layer_norm::forward_rows(x, nw, nb, self.eps, &mut h);
        let mut qkv = vec![T::zero(); rows * 3 * d];
        dense::forward(&h, w_qkv, b_qkv, None, &mut qkv)?;
        let mut probs = vec![T::zero(); s.b * s.heads * c * c];
        let mut mixed = vec![T::zero(); rows * d];
        let alpha = self.alpha::<T>();
        mixed
            .par_chunks_mut(c * d)
            .zip(probs.par_chunks_mut(s.heads * c * c))
            .enumerate()
            .try_for_each(|(e, (mixed, probs))| -> Result<()> {
                let qkv = &qkv[e * c * 3 * d..(e + 1) * c * 3 * d];
                let cov = &cov[e * c * c..(e + 1) * c * c];
                let mut logits = vec![T::zero(); c * c];
                for (head, probs) in probs.chunks_mut(c * c).enumerate() {
                    let [q, k, v] = head_views(qkv, s, head);
                    let dst = MatMut::dense(&mut logits, c, c);
                    matmul(dst, q, k.t(), T::one(), false, Parallelism::None)?;
                    for ((row, bias), out) in
                        logits.chunks(c).zip(cov.chunks(c)).zip(probs.chunks_mut(c))
                    {
                        softmax_row_kernel(row, bias, alpha, scale[head], out);
                    }
                    let dst = MatMut::new(&mut mixed[head * dh..], c, dh, d);
                    let weights = Mat::dense(probs, c, c);
                    matmul(dst, weights, v, T::one(), false, Parallelism::None)?;
                }
                Ok(())
            })?;
        let mut y = vec![T::zero(); rows * d];
        dense::forward(&mixed, w_out, b_out, Some(x), &mut y)?;
        Ok((y, [h, qkv, probs, mixed].map(T::to_cpu_storage_owned)))
    }

    fn backward<T: Real>(
        &self,
        x: &[T],
        p: &[T],
        cov: &[T],
        g: &[T],
        saved: &[CpuStorage; 4],
    ) -> Result<(Vec<T>, Vec<T>)> {
        let s = self.shape;
        let (rows, d, c, dh) = (s.b * s.c, s.d, s.c, s.d / s.heads);
        let [nw, _, w_qkv, _, w_out, _, _] = segments(p, self.lengths())?;
        let [h, qkv, probs, mixed] = [0, 1, 2, 3].map(|i| saved[i].as_slice::<T>());
        let (h, qkv, probs, mixed) = (h?, qkv?, probs?, mixed?);
        let sizes_agree = g.len() == rows * d
            && x.len() == g.len()
            && h.len() == g.len()
            && mixed.len() == g.len()
            && qkv.len() == 3 * g.len()
            && probs.len() == s.b * s.heads * c * c
            && cov.len() == s.b * c * c;
        if !sizes_agree {
            candle_core::bail!("attention block backward: mismatched sizes")
        }
        let mut grad_p = vec![T::zero(); p.len()];
        let [g_nw, g_nb, g_wqkv, g_bqkv, g_wout, g_bout, g_scale] =
            segments_mut(&mut grad_p, self.lengths())?;
        let grad_mixed = dense::backward(mixed, w_out, g, g_wout, g_bout)?;
        let mut grad_qkv = vec![T::zero(); rows * 3 * d];
        let alpha = self.alpha::<T>();
        // Per epoch: the gradients of its queries, keys and values, and its share of the scales'.
        let scale_parts: Vec<Vec<T>> = grad_qkv
            .par_chunks_mut(c * 3 * d)
            .enumerate()
            .map(|(e, grad_qkv)| -> Result<Vec<T>> {
                let qkv = &qkv[e * c * 3 * d..(e + 1) * c * 3 * d];
                let cov = &cov[e * c * c..(e + 1) * c * c];
                let grad_mixed = &grad_mixed[e * c * d..(e + 1) * c * d];
                let (mut grad_w, mut grad_z) = (vec![T::zero(); c * c], vec![T::zero(); c * c]);
                let mut scale_part = vec![T::zero(); s.heads];
                for (head, part) in scale_part.iter_mut().enumerate() {
                    let [q, k, v] = head_views(qkv, s, head);
                    let plane = (e * s.heads + head) * c * c;
                    let weights = &probs[plane..plane + c * c];
                    let gm = Mat::new(&grad_mixed[head * dh..], c, dh, d);
                    let none = Parallelism::None;
                    matmul(
                        MatMut::dense(&mut grad_w, c, c),
                        gm,
                        v.t(),
                        T::one(),
                        false,
                        none,
                    )?;
                    let grad_v = MatMut::new(&mut grad_qkv[2 * d + head * dh..], c, dh, 3 * d);
                    let weights_t = Mat::dense(weights, c, c).t();
                    matmul(grad_v, weights_t, gm, T::one(), false, none)?;
                    for ((y, gy), out) in weights
                        .chunks(c)
                        .zip(grad_w.chunks(c))
                        .zip(grad_z.chunks_mut(c))
                    {
                        softmax_grad_row_kernel(y, gy, out);
                    }
                    *part = super::math::zip_sum(&grad_z, cov, |gz, cv| gz * cv);
                    let gz = Mat::dense(&grad_z, c, c);
                    let grad_q = MatMut::new(&mut grad_qkv[head * dh..], c, dh, 3 * d);
                    matmul(grad_q, gz, k, alpha, false, none)?;
                    let grad_k = MatMut::new(&mut grad_qkv[d + head * dh..], c, dh, 3 * d);
                    matmul(grad_k, gz.t(), q, alpha, false, none)?;
                }
                Ok(scale_part)
            })
            .collect::<Result<_>>()?;
        for part in scale_parts {
            for (acc, v) in g_scale.iter_mut().zip(part) {
                *acc += v;
            }
        }
        drop(grad_mixed);
        let grad_h = dense::backward(h, w_qkv, &grad_qkv, g_wqkv, g_bqkv)?;
        let norm = (nw, self.eps);
        let grad_x = dense::norm_and_residual_backward(x, &grad_h, g, norm, g_nw, g_nb);
        Ok((grad_x, grad_p))
    }
}

fn forward<T: Real>(
    op: &AttentionBlock,
    inputs: [(&CpuStorage, &Layout); 3],
) -> Result<(CpuStorage, Shape)> {
    let [x, p, cov] = inputs.map(|(s, l)| contiguous::<T>(s, l, "attention block"));
    let (y, saved) = op.forward(x?, p?, cov?)?;
    op.saved.put(saved)?;
    Ok((T::to_cpu_storage_owned(y), inputs[0].1.shape().clone()))
}

fn backward<T: Real>(
    op: &AttentionBlock,
    xs: &Tensor,
    params: &Tensor,
    cov: &Tensor,
    grad: &Tensor,
) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
    let grad = grad.contiguous()?;
    let name = "attention block backward";
    let (xs_s, xs_l) = xs.storage_and_layout();
    let (p_s, p_l) = params.storage_and_layout();
    let (c_s, c_l) = cov.storage_and_layout();
    let (g_s, g_l) = grad.storage_and_layout();
    let (gx, gp) = op.saved.with(|saved| {
        op.backward(
            cpu_slice::<T>(&xs_s, xs_l, name)?,
            cpu_slice::<T>(&p_s, p_l, name)?,
            cpu_slice::<T>(&c_s, c_l, name)?,
            cpu_slice::<T>(&g_s, g_l, name)?,
            saved,
        )
    })?;
    Ok((
        Some(Tensor::from_vec(gx, xs.shape(), xs.device())?),
        Some(Tensor::from_vec(gp, params.shape(), params.device())?),
        // The covariance is data: `attention_block` takes this path only when it is untracked.
        None,
    ))
}

impl CustomOp3 for AttentionBlock {
    fn name(&self) -> &'static str {
        "fused-attention-block"
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
            forward(self, [(s1, l1), (s2, l2), (s3, l3)])
        )
    }

    fn bwd(
        &self,
        xs: &Tensor,
        params: &Tensor,
        cov: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        dispatch!(dtype xs.dtype(), self.name(), backward(self, xs, params, cov, grad))
    }
}
