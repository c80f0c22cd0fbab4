//! Scaled dot-product attention with the per-head covariance bias, as one graph node.

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Storage, Tensor};

use super::attention_softmax::{CovarianceSoftmax, ScaleGrad};
use super::softmax::SoftmaxGrad;
use super::{contiguous, fusable, Real, Stash};

/// `softmax(alpha * q k^T + scale[h] * cov) v` for every head, from queries, keys and values
/// stacked as `qkv` `[3, B, H, C, dh]`, scale `[H]` and covariance `[B, C, C]`; out `[B, H, C, dh]`.
///
/// The `[B, H, C, C]` logits and weights are the largest tensors of a training step. Here they
/// never enter the autograd graph: the products run on detached tensors, the weights are kept
/// for the backward pass, and candle sees one node instead of six, each of which would have had
/// a full-size gradient allocated, zeroed and accumulated.
pub fn attention(qkv: &Tensor, alpha: f64, scale: &Tensor, cov: &Tensor) -> Result<Tensor> {
    let (stacks, b, h, c, _) = qkv.dims5()?;
    if stacks != 3 || scale.dims() != [h] || cov.dims() != [b, c, c] {
        candle_core::bail!(
            "attention: qkv {:?}, scale {:?}, covariance {:?}",
            qkv.dims(),
            scale.dims(),
            cov.dims()
        )
    }
    let cov = cov.to_dtype(qkv.dtype())?;
    if !fusable(qkv) || scale.dtype() != qkv.dtype() {
        let (q, k, v) = (qkv.get(0)?, qkv.get(1)?, qkv.get(2)?);
        let logits = q.matmul(&k.t()?)?;
        let weights = super::attention_softmax::composed(&logits, alpha, scale, &cov)?;
        return weights.matmul(&v);
    }
    let qkv = qkv.contiguous()?;
    let (scale, cov) = (scale.contiguous()?, cov.contiguous()?);
    let detached = qkv.detach();
    let (q, k, v) = (detached.get(0)?, detached.get(1)?, detached.get(2)?);
    let logits = q.matmul(&k.t()?)?;
    let weights = logits.apply_op3_no_bwd(&scale.detach(), &cov, &CovarianceSoftmax { alpha })?;
    let out = weights.matmul(&v)?;
    let op = Attention {
        alpha,
        weights,
        out: Stash::new("attention", Some(out)),
    };
    qkv.apply_op3(&scale, &cov, op)
}

struct Attention {
    alpha: f64,
    /// The softmax weights `[B, H, C, C]`, kept for the backward pass.
    weights: Tensor,
    /// The result, computed before the op runs and taken by its forward pass.
    out: Stash<Tensor>,
}

fn copy_out<T: Real>(out: &Tensor) -> Result<CpuStorage> {
    let (storage, layout) = out.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        candle_core::bail!("attention: result off the CPU")
    };
    Ok(T::to_cpu_storage(contiguous::<T>(
        cpu,
        layout,
        "attention",
    )?))
}

impl CustomOp3 for Attention {
    fn name(&self) -> &'static str {
        "fused-attention"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        _l1: &Layout,
        _s2: &CpuStorage,
        _l2: &Layout,
        _s3: &CpuStorage,
        _l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let out = self.out.take()?;
        let storage = dispatch!(s1, self.name(), copy_out(&out))?;
        Ok((storage, out.shape().clone()))
    }

    fn bwd(
        &self,
        qkv: &Tensor,
        scale: &Tensor,
        cov: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let detached = qkv.detach();
        let (q, k, v) = (detached.get(0)?, detached.get(1)?, detached.get(2)?);
        let g = grad.contiguous()?;
        let grad_weights = g.matmul(&v.t()?)?;
        let grad_v = self.weights.t()?.matmul(&g)?;
        // Gradient with respect to the softmax input z = alpha q k^T + scale * cov.
        let grad_z = self.weights.apply_op2_no_bwd(&grad_weights, &SoftmaxGrad)?;
        let grad_q = (grad_z.matmul(&k)? * self.alpha)?;
        let grad_k = (grad_z.t()?.matmul(&q)? * self.alpha)?;
        let grad_qkv = Tensor::stack(&[grad_q, grad_k, grad_v], 0)?;
        let grad_scale = if scale.track_op() {
            Some(grad_z.apply_op2_no_bwd(cov, &ScaleGrad)?)
        } else {
            None
        };
        // The covariance is data in training; its gradient is only formed when something asks.
        let grad_cov = if cov.track_op() {
            let (b, h, c, c2) = grad_z.dims4()?;
            let per_head = grad_z.broadcast_mul(&scale.reshape((1, h, 1, 1))?)?;
            Some(per_head.sum(1)?.reshape((b, c, c2))?)
        } else {
            None
        };
        Ok((Some(grad_qkv), grad_scale, grad_cov))
    }
}
