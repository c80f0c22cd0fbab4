//! The training loop: masked-channel reconstruction on every epoch (labelled or not), then the
//! task heads with the reconstruction loss kept as a regulariser, AdamW, early stopping on
//! held-out subjects; last, each task's tangent-space head (see [`super::fit_tangent_heads`]).

use candle_core::{Device, Module, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use serde::{Deserialize, Serialize};

use super::dataset::{Dataset, Sample};
use super::model::{make_batch, Batch, PopulationModel};
use super::rng::Rng;
use super::tangent_fit::{fit_tangent_heads, HeadChoice};
use super::PretrainError;
use crate::encoder::{cross_entropy, masked_reconstruction_loss, EncoderConfig};

/// Training settings; saved in the encoder's manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PretrainConfig {
    /// Encoder architecture.
    pub encoder: EncoderConfig,
    /// Seed of every random choice (weights, shuffles, masks, channel subsets).
    pub seed: u64,
    /// Epochs per optimisation step.
    pub batch_size: usize,
    /// AdamW learning rate.
    pub learning_rate: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// Passes of self-supervised masked-channel reconstruction before the heads train.
    pub ssl_passes: usize,
    /// Most passes of supervised training (early stopping usually ends sooner).
    pub supervised_passes: usize,
    /// Weight of the reconstruction loss during supervised training.
    pub ssl_weight: f64,
    /// Fraction of channel tokens hidden for reconstruction.
    pub mask_fraction: f64,
    /// Probability that a batch sees a random subset of channels (montage robustness).
    pub channel_subset_probability: f64,
    /// Passes without improvement of the held-out loss before training stops.
    pub patience: usize,
}

impl PretrainConfig {
    /// Defaults for feature rows of `layout`: channel tokens of its width, linear views of its
    /// covariance bands and evoked waveform.
    pub fn for_layout(layout: crate::align::RowLayout) -> Self {
        let mut config = Self::new(layout.token_features());
        config.encoder.linear_views = crate::encoder::LinearViews {
            covariance_bands: layout.covariance_bands,
            evoked: layout.evoked,
        };
        config
    }

    /// Defaults for features with `n_features` values per channel token. Dropout is off: candle's
    /// CPU dropout draws from an unseedable generator, and runs must be reproducible.
    pub fn new(n_features: usize) -> Self {
        PretrainConfig {
            encoder: EncoderConfig {
                dropout: 0.0,
                ..EncoderConfig::new(n_features)
            },
            seed: 42,
            batch_size: 64,
            learning_rate: 1e-3,
            weight_decay: 1e-2,
            ssl_passes: 10,
            supervised_passes: 60,
            ssl_weight: 0.5,
            mask_fraction: 0.3,
            channel_subset_probability: 0.5,
            patience: 10,
        }
    }
}

/// One line of the training log (one pass over the data).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRow {
    /// `ssl` or `supervised`.
    pub phase: String,
    /// Pass number within the phase.
    pub pass: usize,
    /// Mean training loss.
    pub train_loss: f64,
    /// Held-out loss (reconstruction in `ssl`, cross-entropy in `supervised`; NaN, written as
    /// `null`, without held-out subjects).
    #[serde(deserialize_with = "nan_if_null")]
    pub validation_loss: f64,
    /// Held-out accuracy (supervised phase only).
    pub validation_accuracy: Option<f64>,
}

/// JSON has no NaN: serde_json writes it as `null`, and this reads it back.
pub(crate) fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// What training returns.
pub struct Trained {
    /// The model, restored to its best held-out pass.
    pub model: PopulationModel,
    /// One row per pass.
    pub log: Vec<LogRow>,
    /// Supervised pass whose weights were kept.
    pub best_pass: usize,
    /// How each task's tangent head was fitted and weighted.
    pub heads: Vec<HeadChoice>,
}

fn all_channels(dataset: &Dataset) -> Vec<usize> {
    (0..dataset.channels.len()).collect()
}

/// Random mask [B, K] with about `fraction` of tokens hidden, at least one per sample.
fn random_mask(rng: &mut Rng, b: usize, k: usize, fraction: f64) -> Result<Tensor, PretrainError> {
    let mut m = vec![0f32; b * k];
    for row in m.chunks_mut(k) {
        for v in row.iter_mut() {
            if rng.uniform() < fraction {
                *v = 1.0;
            }
        }
        if row.iter().all(|&v| v == 0.0) {
            row[rng.below(k)] = 1.0;
        }
    }
    Ok(Tensor::from_vec(m, (b, k), &Device::Cpu)?)
}

/// A random channel subset (at least 19 channels, or all when there are fewer), sorted.
fn channel_subset(rng: &mut Rng, c: usize, probability: f64) -> Vec<usize> {
    let mut all: Vec<usize> = (0..c).collect();
    if c <= 19 || rng.uniform() >= probability {
        return all;
    }
    let k = 19 + rng.below(c - 19 + 1);
    rng.shuffle(&mut all);
    all.truncate(k);
    all.sort_unstable();
    all
}

/// What a training step minimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loss {
    /// Masked-channel reconstruction alone.
    Ssl,
    /// The task head's cross-entropy plus the weighted reconstruction.
    Joint,
    /// The task head's cross-entropy on a frozen encoder's embedding.
    Head,
}

fn batch_loss(
    model: &PopulationModel,
    batch: &mut Batch,
    task: usize,
    rng: &mut Rng,
    config: &PretrainConfig,
    how: Loss,
) -> Result<Tensor, PretrainError> {
    let head = model
        .heads
        .get(task)
        .ok_or_else(|| PretrainError::Mismatch("task without head".into()));
    let labels = |batch: &Batch| {
        batch.labels.clone().ok_or_else(|| {
            PretrainError::Mismatch("unlabelled sample in a supervised batch".into())
        })
    };
    if how == Loss::Head {
        // A frozen encoder: its embedding is data, so no gradient flows back into it.
        let embedding = model.encode(batch, false)?.embedding.detach();
        return Ok(cross_entropy(&head?.forward(&embedding)?, &labels(batch)?)?);
    }
    let (b, k, _) = batch.target.dims3()?;
    let mask = random_mask(rng, b, k, config.mask_fraction)?;
    batch.input.mask = Some(mask.clone());
    let out = model.encode(batch, true)?;
    let recon = masked_reconstruction_loss(
        &model.reconstruction.forward(&out.tokens)?,
        &batch.target,
        &mask,
    )?;
    if how == Loss::Ssl {
        return Ok(recon);
    }
    // One forward pass serves both losses: hidden channels act as augmentation for the head (as
    // channel dropout would), and the reconstruction keeps regularising the shared encoder.
    let ce = cross_entropy(&head?.forward(&out.embedding)?, &labels(batch)?)?;
    Ok((ce + (recon * config.ssl_weight)?)?)
}

/// Mean cross-entropy and accuracy of the heads on labelled samples (all channels, no mask).
pub fn evaluate(model: &PopulationModel, dataset: &Dataset) -> Result<(f64, f64), PretrainError> {
    let keep = all_channels(dataset);
    let (mut loss, mut correct, mut n) = (0.0, 0usize, 0usize);
    for subject in &dataset.subjects {
        for task in 0..dataset.tasks.len() {
            let labelled: Vec<&Sample> = subject
                .samples
                .iter()
                .filter(|s| s.task == task && s.label.is_some())
                .collect();
            for chunk in labelled.chunks(256) {
                let batch = make_batch(chunk, dataset.layout, &dataset.channels, &keep)?;
                let out = model.encode(&batch, false)?;
                let head = &model.heads[task];
                let logits = head.forward(&out.embedding)?;
                let labels = batch
                    .labels
                    .as_ref()
                    .ok_or_else(|| PretrainError::Mismatch("unlabelled".into()))?;
                loss +=
                    cross_entropy(&logits, labels)?.to_scalar::<f32>()? as f64 * chunk.len() as f64;
                let predicted: Vec<u32> = logits.argmax(1)?.to_vec1()?;
                let truth: Vec<u32> = labels.to_vec1()?;
                correct += predicted.iter().zip(&truth).filter(|(p, t)| p == t).count();
                n += chunk.len();
            }
        }
    }
    if n == 0 {
        return Ok((f64::NAN, f64::NAN));
    }
    Ok((loss / n as f64, correct as f64 / n as f64))
}

/// Held-out reconstruction loss with a fixed mask stream (comparable between passes).
fn validation_reconstruction(
    model: &PopulationModel,
    dataset: &Dataset,
    config: &PretrainConfig,
) -> Result<f64, PretrainError> {
    let mut rng = Rng::new(config.seed ^ 0xA11CE);
    let keep = all_channels(dataset);
    let (mut total, mut n) = (0.0, 0usize);
    for subject in &dataset.subjects {
        let samples: Vec<&Sample> = subject.samples.iter().collect();
        for chunk in samples.chunks(256) {
            let mut batch = make_batch(chunk, dataset.layout, &dataset.channels, &keep)?;
            let (b, k, _) = batch.target.dims3()?;
            let mask = random_mask(&mut rng, b, k, config.mask_fraction)?;
            batch.input.mask = Some(mask.clone());
            let out = model.encode(&batch, false)?;
            let loss = masked_reconstruction_loss(
                &model.reconstruction.forward(&out.tokens)?,
                &batch.target,
                &mask,
            )?;
            total += loss.to_scalar::<f32>()? as f64 * b as f64;
            n += b;
        }
    }
    Ok(if n == 0 { f64::NAN } else { total / n as f64 })
}

fn snapshot(model: &PopulationModel) -> Result<Vec<(String, Tensor)>, PretrainError> {
    let data = model
        .varmap
        .data()
        .lock()
        .map_err(|_| PretrainError::Mismatch("weights locked".into()))?;
    data.iter()
        .map(|(k, v)| Ok((k.clone(), v.as_tensor().copy()?)))
        .collect()
}

fn restore(model: &PopulationModel, saved: &[(String, Tensor)]) -> Result<(), PretrainError> {
    let data = model
        .varmap
        .data()
        .lock()
        .map_err(|_| PretrainError::Mismatch("weights locked".into()))?;
    for (k, t) in saved {
        if let Some(var) = data.get(k) {
            var.set(t)?;
        }
    }
    Ok(())
}

/// Trains a population model on `train`, stopping early on `validation` (other subjects).
/// `on_pass` is called after every pass (for progress display).
pub fn train(
    train: &Dataset,
    validation: &Dataset,
    config: &PretrainConfig,
    on_pass: &mut dyn FnMut(&LogRow),
) -> Result<Trained, PretrainError> {
    let model = PopulationModel::new(&config.encoder, &train.tasks, &train.channels, config.seed)?;
    // One optimiser over encoder and embedding heads for both phases.
    let mut opt = adamw(model.encoder_vars()?, config)?;
    let mut run = Phases::new(&model, train, validation, config, on_pass);
    run.self_supervised(&mut opt)?;
    let best = run.supervised(&mut opt, false)?;
    let log = run.log;
    finish(model, train, validation, log, best)
}

/// AdamW over `vars` with the configured rate and decay.
pub(crate) fn adamw(
    vars: Vec<candle_core::Var>,
    config: &PretrainConfig,
) -> Result<AdamW, PretrainError> {
    Ok(AdamW::new(
        vars,
        ParamsAdamW {
            lr: config.learning_rate,
            weight_decay: config.weight_decay,
            ..Default::default()
        },
    )?)
}

/// Restores the best supervised pass, then fits the tangent heads of every task with labelled
/// epochs in `train`.
pub(crate) fn finish(
    mut model: PopulationModel,
    train: &Dataset,
    validation: &Dataset,
    log: Vec<LogRow>,
    best: Best,
) -> Result<Trained, PretrainError> {
    restore(&model, &best.weights)?;
    let heads = fit_tangent_heads(&mut model, train, validation)?;
    Ok(Trained {
        model,
        log,
        best_pass: best.pass,
        heads,
    })
}

/// The supervised pass with the lowest held-out loss, and its weights.
pub(crate) struct Best {
    loss: f64,
    pass: usize,
    weights: Vec<(String, Tensor)>,
}

/// The two training phases over one model and dataset, sharing the random stream and the log.
pub(crate) struct Phases<'a> {
    model: &'a PopulationModel,
    train: &'a Dataset,
    validation: &'a Dataset,
    config: &'a PretrainConfig,
    on_pass: &'a mut dyn FnMut(&LogRow),
    rng: Rng,
    samples: Vec<&'a Sample>,
    /// One row per pass so far.
    pub log: Vec<LogRow>,
}

impl<'a> Phases<'a> {
    pub(crate) fn new(
        model: &'a PopulationModel,
        train: &'a Dataset,
        validation: &'a Dataset,
        config: &'a PretrainConfig,
        on_pass: &'a mut dyn FnMut(&LogRow),
    ) -> Self {
        Phases {
            model,
            train,
            validation,
            config,
            on_pass,
            rng: Rng::new(config.seed.wrapping_add(1)),
            samples: train
                .subjects
                .iter()
                .flat_map(|s| s.samples.iter())
                .collect(),
            log: Vec::new(),
        }
    }

    /// `config.ssl_passes` passes of masked-channel reconstruction over every sample.
    pub(crate) fn self_supervised(&mut self, opt: &mut AdamW) -> Result<(), PretrainError> {
        let (config, train) = (self.config, self.train);
        let c = train.channels.len();
        for pass in 0..config.ssl_passes {
            let mut order: Vec<&Sample> = self.samples.clone();
            self.rng.shuffle(&mut order);
            let (mut total, mut steps) = (0.0, 0usize);
            for chunk in order.chunks(config.batch_size) {
                let keep = channel_subset(&mut self.rng, c, config.channel_subset_probability);
                let mut batch = make_batch(chunk, train.layout, &train.channels, &keep)?;
                let loss = batch_loss(self.model, &mut batch, 0, &mut self.rng, config, Loss::Ssl)?;
                opt.backward_step(&loss)?;
                total += loss.to_scalar::<f32>()? as f64;
                steps += 1;
            }
            let row = LogRow {
                phase: "ssl".into(),
                pass,
                train_loss: total / steps.max(1) as f64,
                validation_loss: validation_reconstruction(self.model, self.validation, config)?,
                validation_accuracy: None,
            };
            (self.on_pass)(&row);
            self.log.push(row);
        }
        Ok(())
    }

    /// Up to `config.supervised_passes` passes over the labelled samples, stopping when the
    /// held-out loss has not improved for `config.patience` passes. With `frozen`, the encoder's
    /// embedding is a fixed input: only the heads `opt` holds learn, and no reconstruction loss
    /// is computed.
    pub(crate) fn supervised(
        &mut self,
        opt: &mut AdamW,
        frozen: bool,
    ) -> Result<Best, PretrainError> {
        let (config, train) = (self.config, self.train);
        let c = train.channels.len();
        let how = if frozen { Loss::Head } else { Loss::Joint };
        let mut best = Best {
            loss: f64::INFINITY,
            pass: 0,
            weights: snapshot(self.model)?,
        };
        for pass in 0..config.supervised_passes {
            let (mut total, mut steps) = (0.0, 0usize);
            // Batches hold one task each (one head), in a shuffled interleaving.
            let mut batches: Vec<(usize, Vec<&Sample>)> = Vec::new();
            for task in 0..train.tasks.len() {
                let mut labelled: Vec<&Sample> = self
                    .samples
                    .iter()
                    .copied()
                    .filter(|s| s.task == task && s.label.is_some())
                    .collect();
                self.rng.shuffle(&mut labelled);
                batches.extend(
                    labelled
                        .chunks(config.batch_size)
                        .map(|ch| (task, ch.to_vec())),
                );
            }
            self.rng.shuffle(&mut batches);
            for (task, chunk) in &batches {
                let keep = channel_subset(&mut self.rng, c, config.channel_subset_probability);
                let mut batch = make_batch(chunk, train.layout, &train.channels, &keep)?;
                let loss = batch_loss(self.model, &mut batch, *task, &mut self.rng, config, how)?;
                opt.backward_step(&loss)?;
                total += loss.to_scalar::<f32>()? as f64;
                steps += 1;
            }
            let (validation_loss, validation_accuracy) = evaluate(self.model, self.validation)?;
            let row = LogRow {
                phase: "supervised".into(),
                pass,
                train_loss: total / steps.max(1) as f64,
                validation_loss,
                validation_accuracy: Some(validation_accuracy).filter(|a| a.is_finite()),
            };
            (self.on_pass)(&row);
            self.log.push(row);
            // Without held-out labels there is nothing to stop on: keep the latest weights.
            if validation_loss.is_nan() || validation_loss < best.loss {
                best = Best {
                    loss: validation_loss.min(f64::INFINITY),
                    pass,
                    weights: snapshot(self.model)?,
                };
            } else if pass >= best.pass + config.patience {
                break;
            }
        }
        Ok(best)
    }
}
