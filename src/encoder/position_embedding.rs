//! Embedding of electrode positions, so that tokens know where they were recorded.

use candle_core::{Module, Tensor};
use candle_nn::{linear, Linear, VarBuilder};

use super::{ops, Result};

/// Electrode coordinates are in metres (head radius about 0.09 m); this makes them O(1).
pub const POSITION_SCALE: f64 = 10.0;

/// MLP 3 -> d -> d with GELU on scaled electrode coordinates, added to the tokens.
///
/// A function of coordinates, not a table of channel names, so unseen montages work.
/// Weights: `fc1.weight` `[d, 3]`, `fc1.bias`, `fc2.weight` `[d, d]`, `fc2.bias`.
#[derive(Debug, Clone)]
pub struct PositionEmbedding {
    fc1: Linear,
    fc2: Linear,
}

impl PositionEmbedding {
    /// A position embedding of width `d_model`.
    pub fn new(d_model: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            fc1: linear(3, d_model, vb.pp("fc1"))?,
            fc2: linear(d_model, d_model, vb.pp("fc2"))?,
        })
    }
}

impl Module for PositionEmbedding {
    /// Positions `[C, 3]` in metres to embeddings `[C, d]`.
    fn forward(&self, positions: &Tensor) -> candle_core::Result<Tensor> {
        let hidden = ops::gelu(&self.fc1.forward(&(positions * POSITION_SCALE)?)?)?;
        self.fc2.forward(&hidden)
    }
}
