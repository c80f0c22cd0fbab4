//! After the encoder trains: each task's tangent-space head, fitted on the training subjects,
//! and how much the embedding head's logits add to it, both chosen on the held-out subjects.

use candle_core::{Module, Tensor};
use serde::{Deserialize, Serialize};

use super::dataset::{Dataset, Sample};
use super::logistic;
use super::logreg::Model;
use super::model::{make_batch, set_tensor, tangent_vectors, PopulationModel, Reference};
use super::views::{combine, fit_views, flatten, view_losses, Inputs, ViewFit};
use super::PretrainError;

/// L2 strengths tried for each view of the population head (on the mean cross-entropy; with
/// unit weights `1 / (C N)` for scikit-learn's `C` on `N` epochs: 0.007 is `C = 0.1` on 1,400).
pub const PENALTIES: [f64; 6] = [1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1];
/// Weights of the embedding head's logits tried.
pub const ENCODER_SCALES: [f64; 3] = [0.0, 0.5, 1.0];

/// What was chosen for one task's head, and the held-out scores it was chosen on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadChoice {
    /// Task name.
    pub task: String,
    /// Largest L2 strength of the views (kept for manifests written before views existed).
    pub penalty: f64,
    /// L2 strength of each view.
    #[serde(default)]
    pub view_penalties: Vec<f64>,
    /// Weight of the embedding head in the logits.
    pub encoder_scale: f64,
    /// Held-out cross-entropy of the choice (NaN, written as `null`, without held-out subjects).
    #[serde(deserialize_with = "super::train::nan_if_null")]
    pub validation_loss: f64,
    /// Held-out accuracy of the choice (NaN, written as `null`, without held-out subjects).
    #[serde(deserialize_with = "super::train::nan_if_null")]
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

/// Fits every task's linear head (one logistic regression per view, each view's L2 strength
/// chosen on the held-out subjects) and its embedding weight (in `model`'s weights), and keeps
/// the epochs it was fitted on as the model's population reference.
pub fn fit_tangent_heads(
    model: &mut PopulationModel,
    train: &Dataset,
    validation: &Dataset,
) -> Result<Vec<HeadChoice>, PretrainError> {
    let mut choices = Vec::new();
    let blocks = model
        .encoder
        .config()
        .linear_views
        .blocks(model.vocabulary.len());
    for (task, info) in train.tasks.iter().enumerate() {
        let Some(fit_data) = task_data(model, train, task)? else {
            continue;
        };
        let k = info.classes.len();
        let held_out = task_data(model, validation, task)?;
        let (x, y) = (
            flatten(&fit_data.tangent)?,
            fit_data.labels.to_vec1::<u32>()?,
        );
        let width = fit_data.tangent.dim(1)?;
        let fit_inputs = Inputs {
            x: &x,
            width,
            labels: &y,
            weights: None,
        };
        let (penalties, chosen_models, choice) = match &held_out {
            Some(val) => {
                let (vx, vy) = (flatten(&val.tangent)?, val.labels.to_vec1::<u32>()?);
                let val_inputs = Inputs {
                    x: &vx,
                    width,
                    labels: &vy,
                    weights: None,
                };
                let mut best: Vec<Option<(f64, f64, Model)>> = vec![None; blocks.len()];
                for penalty in PENALTIES {
                    let how = ViewFit {
                        penalties: &vec![penalty; blocks.len()],
                        anchors: None,
                        starts: None,
                    };
                    let models = fit_views(&fit_inputs, k, &blocks, &how)?;
                    let losses = view_losses(&val_inputs, &blocks, &models);
                    for ((slot, loss), m) in best.iter_mut().zip(losses).zip(models) {
                        if slot.as_ref().is_none_or(|(l, _, _)| loss < *l) {
                            *slot = Some((loss, penalty, m));
                        }
                    }
                }
                let penalties: Vec<f64> = best
                    .iter()
                    .map(|b| b.as_ref().map_or(1e-2, |b| b.1))
                    .collect();
                let models: Vec<Model> = best.into_iter().flatten().map(|b| b.2).collect();
                let linear = combine(&models, &blocks, width)?;
                let linear_logits = linear.logits(&val.tangent)?;
                let mut choice: Option<HeadChoice> = None;
                for scale in ENCODER_SCALES {
                    let logits = (&linear_logits + (&val.encoder_logits * scale)?)?;
                    let (loss, accuracy) = logistic::score(&logits, &val.labels)?;
                    if choice.as_ref().is_none_or(|b| loss < b.validation_loss) {
                        choice = Some(HeadChoice {
                            task: info.name.clone(),
                            penalty: penalties.iter().copied().fold(f64::NAN, f64::max),
                            view_penalties: penalties.clone(),
                            encoder_scale: scale,
                            validation_loss: loss,
                            validation_accuracy: accuracy,
                        });
                    }
                }
                (penalties, Some(models), choice)
            }
            None => (vec![1e-2; blocks.len()], None, None),
        };
        let choice = choice.unwrap_or(HeadChoice {
            task: info.name.clone(),
            penalty: 1e-2,
            view_penalties: penalties.clone(),
            encoder_scale: 0.0,
            validation_loss: f64::NAN,
            validation_accuracy: f64::NAN,
        });
        // Final weights from training and held-out subjects together, with the chosen strengths.
        let (all_x, all_y) = match &held_out {
            Some(val) => (
                Tensor::cat(&[&fit_data.tangent, &val.tangent], 0)?,
                Tensor::cat(&[&fit_data.labels, &val.labels], 0)?,
            ),
            None => (fit_data.tangent.clone(), fit_data.labels.clone()),
        };
        let (ax, ay) = (flatten(&all_x)?, all_y.to_vec1::<u32>()?);
        let all_inputs = Inputs {
            x: &ax,
            width,
            labels: &ay,
            weights: None,
        };
        let models = fit_views(
            &all_inputs,
            k,
            &blocks,
            &ViewFit {
                penalties: &penalties,
                anchors: None,
                starts: chosen_models.as_deref(),
            },
        )?;
        let fitted = combine(&models, &blocks, width)?;
        let head = &model.tangent_heads[task];
        set_tensor(&model.varmap, head.weight(), &fitted.weight)?;
        if let Some(bias) = head.bias() {
            set_tensor(&model.varmap, bias, &fitted.bias)?;
        }
        let scale = Tensor::new(&[choice.encoder_scale as f32], &candle_core::Device::Cpu)?;
        set_tensor(&model.varmap, &model.encoder_scales[task], &scale)?;
        if let Some(slot) = model.references.get_mut(task) {
            *slot = Some(Reference {
                tangent: all_x,
                labels: all_y,
                penalties,
            });
        }
        choices.push(choice);
    }
    Ok(choices)
}
