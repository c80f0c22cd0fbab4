//! The population model: the encoder, one class head per task, and the reconstruction head used
//! for self-supervised pretraining, all in one `VarMap` with stable names.

use candle_core::{DType, Device, Module, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};

use super::dataset::{Sample, TaskInfo};
use super::rng::Rng;
use super::PretrainError;
use crate::align::RowLayout;
use crate::encoder::{
    positions, ClassHead, Encoder, EncoderConfig, EncoderInput, EncoderOutput, LinearViews,
    PairMap, ReconstructionHead, TangentHead,
};

/// Encoder plus heads. Weight names: `encoder.*` (see [`crate::encoder`]), `heads.<task>.*`
/// (class head on the embedding), `heads.<task>.tangent.*` (linear head on the tangent vector over
/// the channel vocabulary), `heads.<task>.encoder_scale` (`[1]`, weight of the embedding head in
/// the task's logits), `reconstruction.*`.
///
/// A task's logits are `tangent(t) + encoder_scale * head(embedding)`; see [`Self::logits`].
pub struct PopulationModel {
    /// The weights.
    pub varmap: VarMap,
    /// The encoder.
    pub encoder: Encoder,
    /// One head per task, in task order.
    pub heads: Vec<ClassHead>,
    /// One tangent-space head per task, in task order.
    pub tangent_heads: Vec<TangentHead>,
    /// Per task, the `[1]` weight of the embedding head's logits.
    pub encoder_scales: Vec<Tensor>,
    /// Channels the tangent heads have weights for, in weight order.
    pub vocabulary: Vec<String>,
    /// Per task, the labelled population epochs the tangent head was fitted on (for pooled
    /// calibration); `None` until fitted, or for an encoder saved without them.
    pub references: Vec<Option<Reference>>,
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
        vocabulary: &[String],
        seed: u64,
    ) -> Result<Self, PretrainError> {
        let varmap = VarMap::new();
        let model = Self::build(varmap, config, tasks, vocabulary)?;
        reinitialize(&model.varmap, seed)?;
        for scale in &model.encoder_scales {
            set_tensor(
                &model.varmap,
                scale,
                &Tensor::ones(1, DType::F32, &Device::Cpu)?,
            )?;
        }
        Ok(model)
    }

    /// Builds the layers over an existing `VarMap` (fresh or loaded).
    pub fn build(
        varmap: VarMap,
        config: &EncoderConfig,
        tasks: &[TaskInfo],
        vocabulary: &[String],
    ) -> Result<Self, PretrainError> {
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let encoder = Encoder::new(config, vb.pp("encoder"))?;
        let heads = tasks
            .iter()
            .map(|t| ClassHead::new(config.d_model, t.classes.len(), vb.pp("heads").pp(&t.name)))
            .collect::<Result<Vec<_>, _>>()?;
        let tangent_heads = tasks
            .iter()
            .map(|t| {
                let vb = vb.pp("heads").pp(&t.name).pp("tangent");
                let width = config.linear_views.width(vocabulary.len());
                TangentHead::new(width, t.classes.len(), vb)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let encoder_scales = tasks
            .iter()
            .map(|t| {
                let vb = vb.pp("heads").pp(&t.name);
                vb.get_with_hints(1, "encoder_scale", candle_nn::Init::Const(1.0))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let reconstruction =
            ReconstructionHead::new(config.d_model, config.n_features, vb.pp("reconstruction"))?;
        Ok(PopulationModel {
            varmap,
            encoder,
            heads,
            tangent_heads,
            encoder_scales,
            vocabulary: vocabulary.to_vec(),
            references: vec![None; tasks.len()],
            reconstruction,
            tasks: tasks.to_vec(),
        })
    }

    /// How the channels `names` map into the tangent heads' vocabulary.
    pub fn pair_map(&self, names: &[&str]) -> PairMap {
        self.pair_map_with(names, self.encoder.config().linear_views)
    }

    /// [`Self::pair_map`] for vectors holding `views` instead of the encoder's own (an evoked
    /// view of another window's length, for a new head).
    pub fn pair_map_with(&self, names: &[&str], views: LinearViews) -> PairMap {
        let index: Vec<Option<usize>> = names
            .iter()
            .map(|n| self.vocabulary.iter().position(|v| v == n))
            .collect();
        PairMap::with_views(&index, self.vocabulary.len(), views)
    }

    /// The task's logits `[B, K]` from an embedding `[B, d]` and tangent vectors `[B, P]`.
    pub fn logits(
        &self,
        task: usize,
        embedding: &Tensor,
        tangent: &Tensor,
    ) -> Result<Tensor, PretrainError> {
        let missing = || PretrainError::Mismatch(format!("no head for task {task}"));
        let head = self.heads.get(task).ok_or_else(missing)?;
        let tangent_head = self.tangent_heads.get(task).ok_or_else(missing)?;
        let scale = self.encoder_scales.get(task).ok_or_else(missing)?;
        let from_embedding = head.forward(embedding)?.broadcast_mul(scale)?;
        Ok((tangent_head.forward(tangent)? + from_embedding)?)
    }

    /// Runs the encoder on a batch.
    pub fn encode(&self, batch: &Batch, train: bool) -> Result<EncoderOutput, PretrainError> {
        Ok(self.encoder.forward_t(&batch.input, train)?)
    }

    /// An independent copy (same architecture, copied weights), for fine-tuning.
    pub fn duplicate(&self) -> Result<Self, PretrainError> {
        let mut copy = Self::build(
            VarMap::new(),
            self.encoder.config(),
            &self.tasks,
            &self.vocabulary,
        )?;
        copy.references = self.references.clone();
        // Same architecture, so the sorted names pair up one to one.
        for ((name, var), (copy_name, target)) in self.named_vars()?.iter().zip(copy.named_vars()?)
        {
            if *name == copy_name {
                target.set(&var.as_tensor().copy()?)?;
            }
        }
        Ok(copy)
    }

    /// Every weight with its name, sorted by name.
    pub fn named_vars(&self) -> Result<Vec<(String, Var)>, PretrainError> {
        let data = self
            .varmap
            .data()
            .lock()
            .map_err(|_| PretrainError::Mismatch("weights locked by a failed thread".into()))?;
        let mut named: Vec<(String, Var)> =
            data.iter().map(|(n, v)| (n.clone(), v.clone())).collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(named)
    }

    /// Parameters of the encoder only (not the heads), for the encoder's optimiser.
    pub fn encoder_vars(&self) -> Result<Vec<Var>, PretrainError> {
        let data = self
            .varmap
            .data()
            .lock()
            .map_err(|_| PretrainError::Mismatch("weights locked by a failed thread".into()))?;
        let mut named: Vec<(&String, &Var)> = data
            .iter()
            .filter(|(name, _)| !name.contains(".tangent.") && !name.ends_with("encoder_scale"))
            .collect();
        named.sort_by(|a, b| a.0.cmp(b.0));
        Ok(named.into_iter().map(|(_, v)| v.clone()).collect())
    }
}

/// Labelled population epochs of one task, as the tangent head saw them.
#[derive(Debug, Clone)]
pub struct Reference {
    /// Aligned tangent vectors over the vocabulary `[N, P]`.
    pub tangent: Tensor,
    /// Class indices `[N]` (u32).
    pub labels: Tensor,
    /// L2 strength of each view of the population head.
    pub penalties: Vec<f64>,
}

/// Overwrites the variable of `varmap` whose tensor is `target` with `value`.
pub fn set_tensor(varmap: &VarMap, target: &Tensor, value: &Tensor) -> Result<(), PretrainError> {
    let data = varmap
        .data()
        .lock()
        .map_err(|_| PretrainError::Mismatch("weights locked by a failed thread".into()))?;
    let var = data
        .values()
        .find(|v| v.as_tensor().id() == target.id())
        .ok_or_else(|| PretrainError::Mismatch("tensor is not a model weight".into()))?;
    var.set(value)?;
    Ok(())
}

/// Tangent vectors `[B, P]` of samples over the vocabulary (zeros when a sample has no
/// covariance), keeping the channels `keep` of `channels`.
pub fn tangent_vectors(
    samples: &[&Sample],
    channels: usize,
    keep: &[usize],
    map: &PairMap,
) -> Result<Tensor, PretrainError> {
    let mut out = Vec::with_capacity(samples.len() * map.len());
    let k = keep.len();
    let submatrix = |t: &[f32]| -> Vec<f32> {
        let mut sub = vec![0f32; k * k];
        for (a, &i) in keep.iter().enumerate() {
            for (b, &j) in keep.iter().enumerate() {
                sub[a * k + b] = t.get(i * channels + j).copied().unwrap_or(0.0);
            }
        }
        sub
    };
    for s in samples {
        let bands: Vec<Vec<f32>> = s
            .tangent
            .iter()
            .chain(&s.extra_tangents)
            .map(|t| submatrix(t))
            .collect();
        let band_refs: Vec<&[f32]> = bands.iter().map(Vec::as_slice).collect();
        let e = s.evoked.len().checked_div(channels).unwrap_or(0);
        let evoked: Vec<f32> = keep
            .iter()
            .flat_map(|&c| {
                s.evoked
                    .get(c * e..(c + 1) * e)
                    .unwrap_or(&[])
                    .iter()
                    .copied()
            })
            .collect();
        map.vectorize_views(&band_refs, &evoked, &mut out);
    }
    Ok(Tensor::from_vec(
        out,
        (samples.len(), map.len()),
        &Device::Cpu,
    )?)
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
