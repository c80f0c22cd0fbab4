//! Fused CPU kernels, each with a hand-written backward pass, for the encoder's hot spots.
//!
//! Candle builds LayerNorm, softmax, GELU and bias additions from many elementwise ops; on the
//! CPU each allocates a tensor, and the backward pass of every broadcast sums its gradient with
//! a strided reduction. Profiling a training step showed those reductions and allocations taking
//! most of the time, so these ops compute forward and backward in one pass over contiguous rows.
//! The encoder's two blocks ([`attention_block`], [`feed_forward`]) go further: each is one
//! graph node over its concatenated weights, built from the same row kernels and from gemm calls
//! on strided views ([`gemm`]), so its inner activations never enter candle's graph.
//!
//! Every function falls back to the composed ops in [`super::ops`] off the CPU or for dtypes
//! other than f32/f64, so results never depend on a kernel being available. The unit tests
//! check values and gradients against those composed versions, and `tests/encoder_gradcheck.rs`
//! checks the layers built on them against finite differences.

/// Runs `f::<f32>` or `f::<f64>` for the storage's (or, with `dtype`, the given) dtype,
/// refusing any other.
macro_rules! dispatch {
    (dtype $dtype:expr, $op:expr, $f:ident ( $($arg:expr),* )) => {
        match $dtype {
            candle_core::DType::F32 => $f::<f32>($($arg),*),
            candle_core::DType::F64 => $f::<f64>($($arg),*),
            other => Err(candle_core::Error::UnsupportedDTypeForOp(other, $op)),
        }
    };
    ($storage:expr, $op:expr, $f:ident ( $($arg:expr),* )) => {
        dispatch!(dtype candle_core::backend::BackendStorage::dtype($storage), $op, $f($($arg),*))
    };
}

/// Implements a forward-only custom op (a kernel that backward passes call) whose CPU forward is
/// `$f::<f32 or f64>(storages and layouts..., self.fields...)`; the arity follows the arguments.
macro_rules! forward_only_op {
    ($op:ty, $name:literal, $f:ident(s, l) $(, $field:ident)*) => {
        impl candle_core::CustomOp1 for $op {
            fn name(&self) -> &'static str {
                $name
            }

            fn cpu_fwd(
                &self,
                s: &candle_core::CpuStorage,
                l: &candle_core::Layout,
            ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
                dispatch!(s, $name, $f(s, l $(, self.$field)*))
            }
        }
    };
    ($op:ty, $name:literal, $f:ident(s1, l1, s2, l2) $(, $field:ident)*) => {
        impl candle_core::CustomOp2 for $op {
            fn name(&self) -> &'static str {
                $name
            }

            fn cpu_fwd(
                &self,
                s1: &candle_core::CpuStorage,
                l1: &candle_core::Layout,
                s2: &candle_core::CpuStorage,
                l2: &candle_core::Layout,
            ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
                dispatch!(s1, $name, $f(s1, l1, s2, l2 $(, self.$field)*))
            }
        }
    };
    ($op:ty, $name:literal, $f:ident(s1, l1, s2, l2, s3, l3) $(, $field:ident)*) => {
        impl candle_core::CustomOp3 for $op {
            fn name(&self) -> &'static str {
                $name
            }

            fn cpu_fwd(
                &self,
                s1: &candle_core::CpuStorage,
                l1: &candle_core::Layout,
                s2: &candle_core::CpuStorage,
                l2: &candle_core::Layout,
                s3: &candle_core::CpuStorage,
                l3: &candle_core::Layout,
            ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
                dispatch!(s1, $name, $f(s1, l1, s2, l2, s3, l3 $(, self.$field)*))
            }
        }
    };
}

/// Defines `$name`, which runs the `#[inline(always)]` function `$body` compiled for AVX2 and
/// FMA when the CPU has them, and as baseline x86-64 (or other) code otherwise.
///
/// Release builds target baseline x86-64, where these loops stay scalar; PyTorch dispatches the
/// same way at run time. std caches the feature check.
macro_rules! multiversion {
    ($vis:vis fn $name:ident<T: Real>($($arg:ident: $ty:ty),* $(,)?) => $body:ident) => {
        $vis fn $name<T: Real>($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    #[target_feature(enable = "avx512f,avx2,fma")]
                    fn fast512<T: Real>($($arg: $ty),*) {
                        $body($($arg),*)
                    }
                    // SAFETY: calling a function compiled for AVX-512F, AVX2 and FMA needs only
                    // a CPU that has them, checked just above.
                    return unsafe { fast512::<T>($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    #[target_feature(enable = "avx2,fma")]
                    fn fast<T: Real>($($arg: $ty),*) {
                        $body($($arg),*)
                    }
                    // SAFETY: calling a function compiled for AVX2 and FMA needs only a CPU
                    // that has them, checked just above.
                    return unsafe { fast::<T>($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}

mod attention;
pub(crate) mod attention_block;
mod attention_softmax;
mod bias;
mod dense;
mod feed_forward;
mod gelu;
mod gemm;
mod heads;
mod layer_norm;
mod linear;
pub(crate) mod masked;
mod math;
mod pooling;
mod softmax;

pub use attention::attention;
pub use attention_block::{attention_block, AttentionWeights};
pub use bias::add_row_bias;
pub use feed_forward::{feed_forward, FeedForwardWeights};
pub use gelu::gelu;
pub use heads::{merge_heads, split_heads};
pub use layer_norm::layer_norm;
pub use linear::linear;
pub use masked::{mask_tokens, masked_squared_error};
pub use pooling::{data_product, mean_over_channels};
pub use softmax::softmax_last_dim;

use candle_core::{CpuStorage, DType, Error, Layout, Result, Tensor, WithDType};
use rayon::prelude::*;

/// Rows handed to one rayon task: large enough that scheduling costs little next to the work.
const ROWS_PER_TASK: usize = 128;

/// Float types the kernels run on.
pub(crate) trait Real: WithDType + num_traits::Float + Send + Sync {
    /// `e^x`; vectorizable for f32 (see [`math`]).
    fn exp_fast(self) -> Self;
    /// The error function; vectorizable for f32 (see [`math`]).
    fn erf(self) -> Self;
}

impl Real for f32 {
    #[inline(always)]
    fn exp_fast(self) -> Self {
        math::exp_f32(self)
    }
    #[inline(always)]
    fn erf(self) -> Self {
        math::erf_f32(self)
    }
}

impl Real for f64 {
    #[inline(always)]
    fn exp_fast(self) -> Self {
        self.exp()
    }
    #[inline(always)]
    fn erf(self) -> Self {
        libm::erf(self)
    }
}

/// Whether the fused kernels can run on this tensor (CPU, f32 or f64).
fn fusable(t: &Tensor) -> bool {
    t.device().is_cpu() && matches!(t.dtype(), DType::F32 | DType::F64)
}

/// The contiguous elements of a storage under `layout`.
fn contiguous<'a, T: WithDType>(
    storage: &'a CpuStorage,
    layout: &Layout,
    op: &'static str,
) -> Result<&'a [T]> {
    let data = storage.as_slice::<T>()?;
    let (start, end) = layout
        .contiguous_offsets()
        .ok_or(Error::RequiresContiguous { op })?;
    data.get(start..end)
        .ok_or_else(|| Error::Msg(format!("{op}: layout outside its storage")))
}

/// What an op computes in one pass and needs in another: the product a forward pass picks up,
/// or the activations a backward pass reads. Candle hands ops `&self`, hence the lock.
struct Stash<S> {
    value: std::sync::Mutex<Option<S>>,
    op: &'static str,
}

impl<S> Stash<S> {
    fn new(op: &'static str, value: Option<S>) -> Self {
        Self {
            value: std::sync::Mutex::new(value),
            op,
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Option<S>>> {
        self.value
            .lock()
            .map_err(|_| Error::Msg(format!("{}: poisoned lock", self.op)))
    }

    /// Keeps `value`, replacing what was kept.
    fn put(&self, value: S) -> Result<()> {
        *self.lock()? = Some(value);
        Ok(())
    }

    /// Takes the value out; an error when there is none (the forward pass ran twice).
    fn take(&self) -> Result<S> {
        self.lock()?
            .take()
            .ok_or_else(|| Error::Msg(format!("{}: forward run twice", self.op)))
    }

    /// Runs `f` on the kept value; an error when there is none (backward before forward).
    fn with<R>(&self, f: impl FnOnce(&S) -> Result<R>) -> Result<R> {
        let guard = self.lock()?;
        match guard.as_ref() {
            Some(value) => f(value),
            None => Err(Error::Msg(format!("{}: backward before forward", self.op))),
        }
    }
}

/// The contiguous elements of a tensor's CPU storage (held by the caller's read guard).
fn cpu_slice<'a, T: WithDType>(
    storage: &'a candle_core::Storage,
    layout: &Layout,
    op: &'static str,
) -> Result<&'a [T]> {
    match storage {
        candle_core::Storage::Cpu(cpu) => contiguous(cpu, layout, op),
        _ => Err(Error::Msg(format!("{op}: tensor off the CPU"))),
    }
}

/// `data` cut into consecutive pieces of the given lengths, which must add up to its length.
fn segments<T, const N: usize>(data: &[T], lengths: [usize; N]) -> Result<[&[T]; N]> {
    if lengths.iter().sum::<usize>() != data.len() {
        return Err(Error::Msg(format!(
            "{} packed weights for pieces of {lengths:?}",
            data.len()
        )));
    }
    let mut rest = data;
    Ok(lengths.map(|n| {
        let (piece, tail) = rest.split_at(n);
        rest = tail;
        piece
    }))
}

/// [`segments`], mutably.
fn segments_mut<T, const N: usize>(data: &mut [T], lengths: [usize; N]) -> Result<[&mut [T]; N]> {
    if lengths.iter().sum::<usize>() != data.len() {
        return Err(Error::Msg(format!(
            "{} packed gradients for pieces of {lengths:?}",
            data.len()
        )));
    }
    let mut rest = data;
    Ok(lengths.map(|n| {
        let (piece, tail) = std::mem::take(&mut rest).split_at_mut(n);
        rest = tail;
        piece
    }))
}

/// Fills `out` row by row (`width` elements each), rows spread over rayon's threads.
fn for_each_row<T: Send>(out: &mut [T], width: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    if width == 0 {
        return;
    }
    out.par_chunks_mut(width * ROWS_PER_TASK)
        .enumerate()
        .for_each(|(task, chunk)| {
            for (i, row) in chunk.chunks_mut(width).enumerate() {
                f(task * ROWS_PER_TASK + i, row);
            }
        });
}

#[cfg(test)]
mod tests;
