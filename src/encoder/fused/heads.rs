//! Splitting tokens into attention heads and merging them back, as single graph nodes.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};

use super::{contiguous, fusable, Real};

/// Where a head's channel index goes in the split layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadLayout {
    /// `[B, H, C, dh]`: queries and values.
    ChannelRows,
    /// `[B, H, dh, C]`: keys, ready for `q @ k`.
    ChannelColumns,
}

/// `[B, C, H * dh]` to `[B, H, C, dh]` or `[B, H, dh, C]`, contiguous.
///
/// Composed as reshape, transpose and copy, candle's backward pass accumulates a full-size
/// gradient for each of the three (one of them strided); here the gradient is one copy back.
pub fn split_heads(xs: &Tensor, heads: usize, layout: HeadLayout) -> Result<Tensor> {
    let (b, c, d) = xs.dims3()?;
    if heads == 0 || d % heads != 0 {
        candle_core::bail!("split heads: width {d} is not a multiple of {heads} heads")
    }
    let dh = d / heads;
    if !fusable(xs) {
        let split = xs.reshape((b, c, heads, dh))?.transpose(1, 2)?;
        return match layout {
            HeadLayout::ChannelRows => split.contiguous(),
            HeadLayout::ChannelColumns => split.transpose(2, 3)?.contiguous(),
        };
    }
    let op = Heads {
        dims: [b, c, heads, dh],
        layout,
        split: true,
    };
    xs.contiguous()?.apply_op1(op)
}

/// `[B, H, C, dh]` to `[B, C, H * dh]`, the inverse of [`split_heads`] with `ChannelRows`.
pub fn merge_heads(xs: &Tensor) -> Result<Tensor> {
    let (b, h, c, dh) = xs.dims4()?;
    if !fusable(xs) {
        return xs.transpose(1, 2)?.contiguous()?.reshape((b, c, h * dh));
    }
    let op = Heads {
        dims: [b, c, h, dh],
        layout: HeadLayout::ChannelRows,
        split: false,
    };
    xs.contiguous()?.apply_op1(op)
}

/// The permutation between `[B, C, H * dh]` and a split layout, in either direction.
struct Heads {
    /// `[B, C, H, dh]`.
    dims: [usize; 4],
    layout: HeadLayout,
    /// Tokens to heads when true, heads to tokens when false.
    split: bool,
}

impl Heads {
    fn shape(&self) -> Shape {
        let [b, c, h, dh] = self.dims;
        match (self.split, self.layout) {
            (false, _) => Shape::from((b, c, h * dh)),
            (true, HeadLayout::ChannelRows) => Shape::from((b, h, c, dh)),
            (true, HeadLayout::ChannelColumns) => Shape::from((b, h, dh, c)),
        }
    }

    /// Offset in the split layout of token element (b, i, h, j).
    fn split_offset(&self, b: usize, i: usize, h: usize, j: usize) -> usize {
        let [_, c, heads, dh] = self.dims;
        let plane = ((b * heads) + h) * c * dh;
        match self.layout {
            HeadLayout::ChannelRows => plane + i * dh + j,
            HeadLayout::ChannelColumns => plane + j * c + i,
        }
    }
}

fn permute<T: Real>(op: &Heads, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
    let src = contiguous::<T>(s, l, "heads")?;
    let [b, c, h, dh] = op.dims;
    let n = b * c * h * dh;
    if src.len() != n {
        candle_core::bail!("heads: {} elements for {:?}", src.len(), op.dims)
    }
    let mut out = vec![T::zero(); n];
    let mut token = 0;
    for bi in 0..b {
        for i in 0..c {
            for hi in 0..h {
                // A head's dh values are adjacent in both layouts unless channels are columns.
                if op.layout == HeadLayout::ChannelRows {
                    let split = op.split_offset(bi, i, hi, 0);
                    let (dst, from) = if op.split {
                        (&mut out[split..split + dh], &src[token..token + dh])
                    } else {
                        (&mut out[token..token + dh], &src[split..split + dh])
                    };
                    dst.copy_from_slice(from);
                    token += dh;
                    continue;
                }
                for j in 0..dh {
                    let split = op.split_offset(bi, i, hi, j);
                    if op.split {
                        out[split] = src[token];
                    } else {
                        out[token] = src[split];
                    }
                    token += 1;
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

    fn bwd(&self, _xs: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let inverse = Heads {
            dims: self.dims,
            layout: self.layout,
            split: !self.split,
        };
        Ok(Some(grad.contiguous()?.apply_op1_no_bwd(&inverse)?))
    }
}
