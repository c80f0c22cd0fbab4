//! The population model: the encoder, one class head per task, and the reconstruction head used
//! for self-supervised pretraining, all in one `VarMap` with stable names.

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use super::dataset::{Sample, TaskInfo};
use super::rng::Rng;
use super::PretrainError;
use crate::align::RowLayout;
use crate::encoder::{
    positions, ClassHead, Encoder, EncoderConfig, EncoderInput, EncoderOutput, ReconstructionHead,
};

/// Encoder plus heads. Weight names: `encoder.*` (see [`crate::encoder`]), `heads.<task>.*`,
/// `reconstruction.*`.
pub struct PopulationModel {
    /// The weights.
    pub varmap: VarMap,
    /// The encoder.
    pub encoder: Encoder,
    /// One head per task, in task order.
    pub heads: Vec<ClassHead>,
    /// Predicts masked channels' features from their output tokens.
    pub reconstruction: ReconstructionHead,
    /// Tasks, in head order.
    pub tasks: Vec<TaskInfo>,
}

impl PopulationModel {
    /// A new model; weights drawn from `seed` (see [`reinitialize`]).
    pub fn new(
        config: &EncoderConfig,
        tasks: &[TaskInfo],
        seed: u64,
    ) -> Result<Self, PretrainError> {
        let varmap = VarMap::new();
        let model = Self::build(varmap, config, tasks)?;
        reinitialize(&model.varmap, seed)?;
        Ok(model)
    }

    /// Builds the layers over an existing `VarMap` (fresh or loaded).
    pub fn build(
        varmap: VarMap,
        config: &EncoderConfig,
        tasks: &[TaskInfo],
    ) -> Result<Self, PretrainError> {
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let encoder = Encoder::new(config, vb.pp("encoder"))?;
        let heads = tasks
            .iter()
            .map(|t| ClassHead::new(config.d_model, t.classes.len(), vb.pp("heads").pp(&t.name)))
            .collect::<Result<Vec<_>, _>>()?;
        let reconstruction =
            ReconstructionHead::new(config.d_model, config.n_features, vb.pp("reconstruction"))?;
        Ok(PopulationModel {
            varmap,
            encoder,
            heads,
            reconstruction,
            tasks: tasks.to_vec(),
        })
    }

    /// Runs the encoder on a batch.
    pub fn encode(&self, batch: &Batch, train: bool) -> Result<EncoderOutput, PretrainError> {
        Ok(self.encoder.forward_t(&batch.input, train)?)
    }
}

/// A batch of samples as tensors, for a subset of channels.
pub struct Batch {
    /// Encoder input (mask set by the caller for pretraining).
    pub input: EncoderInput,
    /// Unmasked tokens [B, K, F], the reconstruction target.
    pub target: Tensor,
    /// Labels `[B]` (u32) when every sample is labelled.
    pub labels: Option<Tensor>,
}

/// Stacks samples into tensors, keeping the channels `keep` (indices into `channels`).
pub fn make_batch(
    samples: &[&Sample],
    layout: RowLayout,
    channels: &[String],
    keep: &[usize],
) -> Result<Batch, PretrainError> {
    let device = Device::Cpu;
    let f = layout.token_features();
    let c = layout.channels;
    let k = keep.len();
    let b = samples.len();
    let mut tokens = Vec::with_capacity(b * k * f);
    let mut tangent = Vec::with_capacity(b * k * k);
    let with_tangent = samples.iter().all(|s| s.tangent.is_some());
    for s in samples {
        for &ch in keep {
            tokens.extend_from_slice(s.tokens.get(ch * f..(ch + 1) * f).unwrap_or(&[]));
        }
        if let (true, Some(t)) = (with_tangent, &s.tangent) {
            for &i in keep {
                tangent.extend(
                    keep.iter()
                        .map(|&j| t.get(i * c + j).copied().unwrap_or(0.0)),
                );
            }
        }
    }
    if tokens.len() != b * k * f {
        return Err(PretrainError::Mismatch(
            "a sample's tokens do not match the channel layout".into(),
        ));
    }
    let names: Vec<&str> = keep
        .iter()
        .filter_map(|&i| channels.get(i).map(String::as_str))
        .collect();
    let tokens = Tensor::from_vec(tokens, (b, k, f), &device)?;
    let labels = samples
        .iter()
        .map(|s| s.label.map(|l| l as u32))
        .collect::<Option<Vec<u32>>>()
        .map(|l| Tensor::from_vec(l, b, &device))
        .transpose()?;
    Ok(Batch {
        input: EncoderInput {
            tokens: tokens.clone(),
            positions: positions(&names, &device)?,
            covariance: if with_tangent {
                Some(Tensor::from_vec(tangent, (b, k, k), &device)?)
            } else {
                None
            },
            mask: None,
        },
        target: tokens,
        labels,
    })
}

/// Redraws every weight from `seed`, in name order, so that a run is reproducible (candle's CPU
/// generator cannot be seeded). Matrices: uniform in +-1/sqrt(fan_in) (PyTorch's default for
/// linear layers); biases and LayerNorm shifts: 0; LayerNorm scales: 1; the mask token and the
/// covariance attention scales: N(0, 0.02^2).
pub fn reinitialize(varmap: &VarMap, seed: u64) -> Result<(), PretrainError> {
    let mut rng = Rng::new(seed);
    let data = varmap
        .data()
        .lock()
        .map_err(|_| PretrainError::Mismatch("weights locked by a failed thread".into()))?;
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    for name in names {
        let var = &data[name];
        let dims = var.dims().to_vec();
        let n: usize = dims.iter().product();
        let last = name.rsplit('.').next().unwrap_or("");
        let is_norm = name.rsplit('.').nth(1).is_some_and(|p| p.ends_with("norm"));
        let values: Vec<f32> = match (last, is_norm) {
            ("weight", true) => vec![1.0; n],
            ("bias", _) => vec![0.0; n],
            ("weight", false) if dims.len() == 2 => {
                let bound = 1.0 / (dims[1] as f64).sqrt();
                (0..n)
                    .map(|_| ((rng.uniform() * 2.0 - 1.0) * bound) as f32)
                    .collect()
            }
            _ => (0..n).map(|_| (rng.normal() * 0.02) as f32).collect(),
        };
        var.set(&Tensor::from_vec(values, dims.as_slice(), &Device::Cpu)?)?;
    }
    Ok(())
}
