//! After the encoder trains: each task's tangent-space head, fitted on the training subjects,
//! and how much the embedding head's logits add to it, both chosen on the held-out subjects.

use candle_core::{Module, Tensor};
use serde::{Deserialize, Serialize};

use super::dataset::{Dataset, Sample};
use super::logistic::{self, Linear};
use super::model::{make_batch, set_tensor, tangent_vectors, PopulationModel, Reference};
use super::PretrainError;

/// L2 strengths tried for the population tangent head (per-epoch mean loss scale).
pub const PENALTIES: [f64; 4] = [1e-3, 1e-2, 1e-1, 1.0];
/// Weights of the embedding head's logits tried.
pub const ENCODER_SCALES: [f64; 3] = [0.0, 0.5, 1.0];

/// What was chosen for one task's head, and the held-out scores it was chosen on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadChoice {
    /// Task name.
    pub task: String,
    /// L2 strength of the tangent head.
    pub penalty: f64,
    /// Weight of the embedding head in the logits.
    pub encoder_scale: f64,
    /// Held-out cross-entropy of the choice.
    pub validation_loss: f64,
    /// Held-out accuracy of the choice.
    pub validation_accuracy: f64,
}

/// Labelled samples of one task: tangent vectors, embedding-head logits, labels.
pub(crate) struct TaskData {
    pub tangent: Tensor,
    pub encoder_logits: Tensor,
    pub labels: Tensor,
}

pub(crate) fn task_data(
    model: &PopulationModel,
    dataset: &Dataset,
    task: usize,
) -> Result<Option<TaskData>, PretrainError> {
    let labelled: Vec<&Sample> = dataset
        .subjects
        .iter()
        .flat_map(|s| s.samples.iter())
        .filter(|s| s.task == task && s.label.is_some())
        .collect();
    if labelled.is_empty() {
        return Ok(None);
    }
    let keep: Vec<usize> = (0..dataset.channels.len()).collect();
    let names: Vec<&str> = dataset.channels.iter().map(String::as_str).collect();
    let map = model.pair_map(&names);
    let head = model
        .heads
        .get(task)
        .ok_or_else(|| PretrainError::Mismatch(format!("no head for task {task}")))?;
    let (mut tangent, mut logits, mut labels) = (Vec::new(), Vec::new(), Vec::new());
    for chunk in labelled.chunks(256) {
        let batch = make_batch(chunk, dataset.layout, &dataset.channels, &keep)?;
        let embedding = model.encode(&batch, false)?.embedding;
        logits.push(head.forward(&embedding)?);
        tangent.push(tangent_vectors(chunk, dataset.channels.len(), &keep, &map)?);
        labels.push(
            batch
                .labels
                .ok_or_else(|| PretrainError::Mismatch("unlabelled sample".into()))?,
        );
    }
    Ok(Some(TaskData {
        tangent: Tensor::cat(&tangent, 0)?,
        encoder_logits: Tensor::cat(&logits, 0)?,
        labels: Tensor::cat(&labels, 0)?,
    }))
}

/// Fits every task's tangent head and sets its embedding weight (in `model`'s weights), and keeps
/// the epochs it was fitted on as the model's population reference.
pub fn fit_tangent_heads(
    model: &mut PopulationModel,
    train: &Dataset,
    validation: &Dataset,
) -> Result<Vec<HeadChoice>, PretrainError> {
    let mut choices = Vec::new();
    for (task, info) in train.tasks.iter().enumerate() {
        let Some(fit_data) = task_data(model, train, task)? else {
            continue;
        };
        let k = info.classes.len();
        let p = fit_data.tangent.dim(1)?;
        let start = Linear::zeros(k, p)?;
        let held_out = task_data(model, validation, task)?;
        let mut best: Option<HeadChoice> = None;
        if let Some(val) = &held_out {
            for penalty in PENALTIES {
                let fitted = logistic::fit(
                    &fit_data.tangent,
                    &fit_data.labels,
                    None,
                    &start,
                    None,
                    penalty,
                    logistic::STEPS,
                )?;
                let tangent_logits = fitted.logits(&val.tangent)?;
                for scale in ENCODER_SCALES {
                    let logits = (&tangent_logits + (&val.encoder_logits * scale)?)?;
                    let (loss, accuracy) = logistic::score(&logits, &val.labels)?;
                    if best.as_ref().is_none_or(|b| loss < b.validation_loss) {
                        best = Some(HeadChoice {
                            task: info.name.clone(),
                            penalty,
                            encoder_scale: scale,
                            validation_loss: loss,
                            validation_accuracy: accuracy,
                        });
                    }
                }
            }
        }
        let choice = best.unwrap_or(HeadChoice {
            task: info.name.clone(),
            penalty: 1e-2,
            encoder_scale: 0.0,
            validation_loss: f64::NAN,
            validation_accuracy: f64::NAN,
        });
        // Final weights from training and held-out subjects together, with the chosen strength.
        let (x, y) = match &held_out {
            Some(val) => (
                Tensor::cat(&[&fit_data.tangent, &val.tangent], 0)?,
                Tensor::cat(&[&fit_data.labels, &val.labels], 0)?,
            ),
            None => (fit_data.tangent.clone(), fit_data.labels.clone()),
        };
        let fitted = logistic::fit(&x, &y, None, &start, None, choice.penalty, logistic::STEPS)?;
        let head = &model.tangent_heads[task];
        set_tensor(&model.varmap, head.weight(), &fitted.weight)?;
        if let Some(bias) = head.bias() {
            set_tensor(&model.varmap, bias, &fitted.bias)?;
        }
        let scale = Tensor::new(&[choice.encoder_scale as f32], &candle_core::Device::Cpu)?;
        set_tensor(&model.varmap, &model.encoder_scales[task], &scale)?;
        if let Some(slot) = model.references.get_mut(task) {
            *slot = Some(Reference {
                tangent: x,
                labels: y,
                penalty: choice.penalty,
            });
        }
        choices.push(choice);
    }
    Ok(choices)
}
