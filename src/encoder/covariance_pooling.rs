//! Montage-independent summary of the channel covariance.

use candle_core::Tensor;
use candle_nn::{linear, Linear, VarBuilder};

use super::position_embedding::POSITION_SCALE;
use super::{ops, EncoderError, Result};

/// A learned linear functional of the (tangent-space) covariance that works for any montage.
///
/// Each channel pair (i, j) gets a kernel `k(p_i, p_j) = fc2(gelu(fc1([p_i, p_j])))` in R^d from
/// the two electrode positions, and `z = sum_ij cov[b, i, j] k(p_i, p_j) / C`. Because the kernel
/// depends on positions rather than channel indices, the same weights read a 64-channel cap and
/// a 19-channel clinical montage, and the sum ignores channel order.
/// Weights: `fc1.weight` `[d, 6]`, `fc1.bias`, `fc2.weight` `[d, d]`, `fc2.bias`.
#[derive(Debug, Clone)]
pub struct CovariancePooling {
    fc1: Linear,
    fc2: Linear,
}

impl CovariancePooling {
    /// A pooling into `d_model` dimensions.
    pub fn new(d_model: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            fc1: linear(6, d_model, vb.pp("fc1"))?,
            fc2: linear(d_model, d_model, vb.pp("fc2"))?,
        })
    }

    /// Pair kernels `[C * C, d]`, row i * C + j for the pair (i, j).
    fn kernel(&self, positions: &Tensor) -> Result<Tensor> {
        let c = positions.dim(0)?;
        let p = (positions * POSITION_SCALE)?;
        let p_i = p.unsqueeze(1)?.broadcast_as((c, c, 3))?;
        let p_j = p.unsqueeze(0)?.broadcast_as((c, c, 3))?;
        let pairs = Tensor::cat(&[p_i, p_j], 2)?.reshape((c * c, 6))?;
        let hidden = ops::gelu(&ops::linear_last_dim(&self.fc1, &pairs)?)?;
        Ok(ops::linear_last_dim(&self.fc2, &hidden)?)
    }

    /// Covariance `[B, C, C]` and positions `[C, 3]` (metres) to a summary `[B, d]`.
    pub fn forward(&self, covariance: &Tensor, positions: &Tensor) -> Result<Tensor> {
        let (b, c, c2) = covariance.dims3()?;
        if c != c2 || positions.dims() != [c, 3] {
            return Err(EncoderError::Shape {
                name: "covariance",
                expected: format!("[B, C, C] with positions [C, 3], C = {}", positions.dim(0)?),
                got: covariance.dims().to_vec(),
            });
        }
        let kernel = self.kernel(positions)?;
        let cov = covariance.reshape((b, c * c))?;
        Ok(super::fused::data_product(&cov, &kernel, 1.0 / c as f64)?)
    }
}
