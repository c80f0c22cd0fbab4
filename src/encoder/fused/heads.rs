//! Splitting tokens into attention heads and merging them back, as single graph nodes.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};

use super::{contiguous, fusable, Real};

/// `[B, C, S * H * dh]` (S projections side by side, e.g. queries, keys and values) to
/// `[S, B, H, C, dh]`, contiguous.
///
/// Composed as reshape, transpose and copy, candle's backward pass accumulates a full-size
/// gradient for each of those ops; here the gradient is one copy back.
pub fn split_heads(xs: &Tensor, stacks: usize, heads: usize) -> Result<Tensor> {
    let (b, c, width) = xs.dims3()?;
    let parts = stacks * heads;
    if parts == 0 || width % parts != 0 {
        candle_core::bail!("split heads: width {width} is not {stacks} x {heads} heads")
    }
    let dh = width / parts;
    if !fusable(xs) {
        return xs
            .reshape((b, c, stacks, heads, dh))?
            .permute((2, 0, 3, 1, 4))?
            .contiguous();
    }
    let op = Heads {
        dims: [stacks, b, c, heads, dh],
        split: true,
    };
    xs.contiguous()?.apply_op1(op)
}

/// `[B, H, C, dh]` to `[B, C, H * dh]`, the inverse of [`split_heads`] with one stack.
pub fn merge_heads(xs: &Tensor) -> Result<Tensor> {
    let (b, h, c, dh) = xs.dims4()?;
    if !fusable(xs) {
        return xs.transpose(1, 2)?.contiguous()?.reshape((b, c, h * dh));
    }
    let op = Heads {
        dims: [1, b, c, h, dh],
        split: false,
    };
    xs.contiguous()?.apply_op1(op)
}

/// The permutation between `[B, C, S * H * dh]` and `[S, B, H, C, dh]`, in either direction.
struct Heads {
    /// `[S, B, C, H, dh]`.
    dims: [usize; 5],
    /// Tokens to heads when true, heads to tokens when false.
    split: bool,
}

impl Heads {
    fn shape(&self) -> Shape {
        let [s, b, c, h, dh] = self.dims;
        match (self.split, s) {
            (false, 1) => Shape::from((b, c, h * dh)),
            (false, _) => Shape::from((b, c, s * h * dh)),
            (true, _) => Shape::from(vec![s, b, h, c, dh]),
        }
    }
}

fn permute<T: Real>(op: &Heads, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
    let src = contiguous::<T>(s, l, "heads")?;
    let [stacks, b, c, h, dh] = op.dims;
    let n = stacks * b * c * h * dh;
    if src.len() != n {
        candle_core::bail!("heads: {} elements for {:?}", src.len(), op.dims)
    }
    let mut out = vec![T::zero(); n];
    // Walk the token layout; each head's dh values are adjacent in both layouts.
    let mut token = 0;
    for bi in 0..b {
        for i in 0..c {
            for si in 0..stacks {
                for hi in 0..h {
                    let split = (((si * b + bi) * h + hi) * c + i) * dh;
                    let (dst, from) = if op.split {
                        (&mut out[split..split + dh], &src[token..token + dh])
                    } else {
                        (&mut out[token..token + dh], &src[split..split + dh])
                    };
                    dst.copy_from_slice(from);
                    token += dh;
                }
            }
        }
    }
    Ok((T::to_cpu_storage_owned(out), op.shape()))
}

impl CustomOp1 for Heads {
    fn name(&self) -> &'static str {
        if self.split {
            "split-heads"
        } else {
            "merge-heads"
        }
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        dispatch!(s, self.name(), permute(self, s, l))
    }

    fn bwd(&self, xs: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let inverse = Heads {
            dims: self.dims,
            split: !self.split,
        };
        // The inverse of a merge comes out as [1, B, H, C, dh]; the input was [B, H, C, dh].
        let back = grad.contiguous()?.apply_op1_no_bwd(&inverse)?;
        Ok(Some(back.reshape(xs.shape())?))
    }
}
