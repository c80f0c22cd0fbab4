//! Training objectives: masked-channel reconstruction and classification.

use candle_core::{DType, Tensor};

use super::{EncoderError, Result};

/// Mean squared error over the masked tokens only.
///
/// `pred`, `target` `[B, C, F]`; `mask` `[B, C]` with 1.0 where the token was hidden. The mean is
/// over masked tokens and features; a mask with no hidden token gives 0 (with zero gradients),
/// so a batch that happened to draw no mask does not poison training with NaN.
pub fn masked_reconstruction_loss(pred: &Tensor, target: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let (b, c, f) = pred.dims3()?;
    if target.dims() != pred.dims() || mask.dims() != [b, c] {
        return Err(EncoderError::Shape {
            name: "mask/target",
            expected: format!("target [{b}, {c}, {f}], mask [{b}, {c}]"),
            got: [target.dims(), mask.dims()].concat(),
        });
    }
    let mask = mask.to_dtype(pred.dtype())?;
    // The mask is data, not a parameter: its count can be read on the host.
    let count = mask.to_dtype(DType::F64)?.sum_all()?.to_scalar::<f64>()?;
    let total = super::fused::masked_squared_error(pred, target, &mask)?;
    Ok((total / (count.max(1.0) * f as f64))?)
}

/// Mean cross-entropy of `logits` `[B, n_classes]` against class indices `labels` (u32 `[B]`).
pub fn cross_entropy(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    Ok(candle_nn::loss::cross_entropy(logits, labels)?)
}
