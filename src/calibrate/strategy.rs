//! Fine-tuning strategies: what a subject's calibration epochs may change, and how far.

use candle_core::{Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use serde::{Deserialize, Serialize};

use super::prepare::Prepared;
use super::CalibrateError;
use crate::encoder::cross_entropy;
use crate::pretrain::logistic::{self, Linear};
use crate::pretrain::views;
use crate::pretrain::PopulationModel;

/// Full-batch Adam steps when encoder layers are fine-tuned (each step runs the encoder).
pub const ENCODER_STEPS: usize = 10;
/// Adam learning rate when encoder layers are fine-tuned.
const ENCODER_LEARNING_RATE: f64 = 3e-3;

/// How a subject model departs from the population model. Every penalty is an L2 pull toward the
/// pretrained weights (L2-SP), on the scale of the mean per-epoch cross-entropy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Strategy {
    /// The population model as is (only the unsupervised alignment is the subject's).
    Population,
    /// For a task the encoder has no head for: logistic regression on the subject's re-centred
    /// tangent features alone (the encoder's embedding unused), with an L2 penalty.
    TangentOnly {
        /// L2 strength.
        penalty: f64,
    },
    /// Each linear view re-fitted on the encoder's population reference epochs together with
    /// the subject's, each subject epoch counting `subject_weight` times, with the L2 strength
    /// the population head chose for that view on held-out subjects; the embedding head's
    /// logits are added with the population's weight (zero in an ablation without the encoder).
    Pooled {
        /// Weight of each subject epoch relative to a population epoch.
        subject_weight: f64,
    },
    /// The task head (tangent and embedding parts) re-fitted.
    Head {
        /// L2-SP strength.
        penalty: f64,
    },
    /// The head and the encoder's last block (and its output norms) fine-tuned.
    HeadLastBlock {
        /// L2-SP strength.
        penalty: f64,
    },
    /// The head and every encoder layer fine-tuned.
    AllLayers {
        /// L2-SP strength.
        penalty: f64,
    },
    /// For a task the encoder has no head for: one logistic regression per linear view of the
    /// subject's epochs (the frozen encoder's embedding as one more view when `embedding`, the
    /// population task heads' logits as another when `population`), classes balanced, each
    /// view's L2 strength chosen by nested cross-validation log-loss, views no better than
    /// chance left out, logits averaged (see `views_head`).
    Views {
        /// Whether the encoder's embedding is one of the views.
        embedding: bool,
        /// Whether the population task heads' logits (left vs right, for the shipped encoder)
        /// are one of the views: what the population learnt with labels, offered to a task
        /// that has none.
        #[serde(default)]
        population: bool,
    },
}

impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Strategy::Population => write!(f, "population"),
            Strategy::TangentOnly { penalty } => {
                write!(f, "subject-only tangent space (L2 {penalty})")
            }
            Strategy::Pooled { subject_weight } => write!(f, "pooled (subject x{subject_weight})"),
            Strategy::Head { penalty } => write!(f, "head (L2-SP {penalty})"),
            Strategy::HeadLastBlock { penalty } => write!(f, "head + last block (L2-SP {penalty})"),
            Strategy::AllLayers { penalty } => write!(f, "all layers (L2-SP {penalty})"),
            Strategy::Views {
                embedding,
                population,
            } => write!(
                f,
                "views{}{} (nested-CV L2)",
                if *embedding { " + embedding" } else { "" },
                if *population {
                    " + population heads"
                } else {
                    ""
                }
            ),
        }
    }
}

impl Strategy {
    /// The candidates inner cross-validation chooses from by default, in order of preference
    /// (the first is kept unless another does clearly better): few and well regularized, since
    /// inner cross-validation on a dozen epochs is noisy and the best of many candidates is an
    /// optimistic pick. The pooled re-fit comes first: it uses the most data.
    pub fn default_candidates() -> Vec<Strategy> {
        vec![
            Strategy::Pooled {
                subject_weight: 5.0,
            },
            Strategy::Population,
            Strategy::Head { penalty: 1.0 },
        ]
    }

    /// The candidates for a task the encoder has no head for: the views fitted one by one, with
    /// the population heads' scores as one more view (and the encoder's embedding as another
    /// when the calibration uses the encoder; first: kept unless another does better), a
    /// subject-only tangent-space model, and one logistic regression over the views (and the
    /// embedding) side by side. Tuning the encoder's last
    /// block ([`Strategy::HeadLastBlock`]) is not among them: it costs ten encoder passes per
    /// fit, and its inner cross-validation was the worst of the candidates (balanced accuracy
    /// 0.513 against 0.710 for the views on S001's run 4, rest / left / right).
    pub fn new_head_candidates() -> Vec<Strategy> {
        vec![
            Strategy::Views {
                embedding: false,
                population: true,
            },
            Strategy::TangentOnly { penalty: 1.0 },
            Strategy::Head { penalty: 1.0 },
        ]
    }

    /// Every candidate this build knows, for callers that want a wider search.
    pub fn all_candidates() -> Vec<Strategy> {
        vec![
            Strategy::Pooled {
                subject_weight: 5.0,
            },
            Strategy::Pooled {
                subject_weight: 20.0,
            },
            Strategy::Population,
            Strategy::Head { penalty: 1.0 },
            Strategy::Head { penalty: 0.1 },
            Strategy::HeadLastBlock { penalty: 1.0 },
            Strategy::AllLayers { penalty: 1.0 },
        ]
    }

    /// Whether encoder weights change (and so must be saved with the subject model).
    pub fn tunes_encoder(&self) -> bool {
        matches!(
            self,
            Strategy::HeadLastBlock { .. } | Strategy::AllLayers { .. }
        )
    }

    /// Whether the encoder weight `name` is trained under this strategy.
    pub(crate) fn trains(&self, name: &str, n_layers: usize) -> bool {
        match self {
            Strategy::Population
            | Strategy::Pooled { .. }
            | Strategy::Head { .. }
            | Strategy::Views { .. }
            | Strategy::TangentOnly { .. } => false,
            Strategy::AllLayers { .. } => name.starts_with("encoder."),
            Strategy::HeadLastBlock { .. } => {
                let last = format!("encoder.layers.{}.", n_layers.saturating_sub(1));
                name.starts_with(&last)
                    || name.starts_with("encoder.norm.")
                    || name.starts_with("encoder.embedding_norm.")
            }
        }
    }
}

/// The population's task head as one linear map on `[linear views | embedding]`; without the
/// encoder (`with_encoder` false) the embedding's weights are zero.
pub fn population_head(
    model: &PopulationModel,
    task: usize,
    with_encoder: bool,
) -> Result<Linear, CalibrateError> {
    let missing = || CalibrateError::Refused(format!("the encoder has no head for task {task}"));
    let head = model.heads.get(task).ok_or_else(missing)?;
    let tangent = model.tangent_heads.get(task).ok_or_else(missing)?;
    let scale = model.encoder_scales.get(task).ok_or_else(missing)?;
    let scale = if with_encoder {
        scale.clone()
    } else {
        scale.zeros_like()?
    };
    let scale = &scale;
    let embedding_weight = head_weight(head)?.broadcast_mul(scale)?;
    let weight = Tensor::cat(&[tangent.weight(), &embedding_weight], 1)?;
    let zeros = |t: &Tensor| t.zeros_like();
    let tangent_bias = match tangent.bias() {
        Some(b) => b.clone(),
        None => zeros(&tangent.weight().narrow(1, 0, 1)?.squeeze(1)?)?,
    };
    let embedding_bias = head_bias(head)?.broadcast_mul(scale)?;
    Ok(Linear {
        weight: weight.detach(),
        bias: (tangent_bias + embedding_bias)?.detach(),
    })
}

fn head_weight(head: &crate::encoder::ClassHead) -> Result<Tensor, CalibrateError> {
    Ok(head.linear().weight().clone())
}

fn head_bias(head: &crate::encoder::ClassHead) -> Result<Tensor, CalibrateError> {
    let w = head.linear().weight();
    Ok(match head.linear().bias() {
        Some(b) => b.clone(),
        None => w.narrow(1, 0, 1)?.squeeze(1)?.zeros_like()?,
    })
}

/// `[tangent | embedding]` of prepared epochs under `model`.
pub fn head_input(model: &PopulationModel, data: &Prepared) -> Result<Tensor, CalibrateError> {
    let embedding = model.encode(&data.batch, false)?.embedding;
    Ok(Tensor::cat(&[&data.tangent, &embedding], 1)?)
}

/// [`head_input`] without the encoder's graph: for fits that leave the encoder frozen.
pub fn frozen_head_input(
    model: &PopulationModel,
    data: &Prepared,
) -> Result<Tensor, CalibrateError> {
    Ok(head_input(model, data)?.detach())
}

/// A fitted strategy: the subject's head, and the fine-tuned encoder when the strategy tunes one.
pub struct Fitted {
    /// The head on `[tangent | embedding]`.
    pub head: Linear,
    /// The fine-tuned copy of the population model (`None`: the population encoder as is).
    pub model: Option<PopulationModel>,
    /// Training loss per step.
    pub curve: Vec<f64>,
}

impl Fitted {
    /// Class logits `[N, K]` of prepared epochs.
    pub fn logits(
        &self,
        population: &PopulationModel,
        data: &Prepared,
    ) -> Result<Tensor, CalibrateError> {
        let model = self.model.as_ref().unwrap_or(population);
        Ok(self.head.logits(&head_input(model, data)?)?)
    }
}

/// Fits `strategy` on labelled epochs. `frozen_input` is `[tangent | embedding]` of `train` under
/// the population encoder (shared by every head-only fit of a cross-validation).
pub fn fit(
    strategy: Strategy,
    population: &PopulationModel,
    task: usize,
    prior: &Linear,
    train: &Prepared,
    frozen_input: &Tensor,
) -> Result<Fitted, CalibrateError> {
    let labels = train.label_tensor()?;
    match strategy {
        Strategy::Pooled { subject_weight } => {
            fit_pooled(population, task, subject_weight, prior, train, &labels)
        }
        Strategy::Population => Ok(Fitted {
            head: prior.clone(),
            model: None,
            curve: Vec::new(),
        }),
        Strategy::Head { penalty } | Strategy::TangentOnly { penalty } => {
            let tangent_only = matches!(strategy, Strategy::TangentOnly { .. });
            let width = train.tangent.dim(1)?;
            let input = if tangent_only {
                without_embedding(frozen_input, width)?
            } else {
                frozen_input.clone()
            };
            let (mut head, curve) = logistic::fit_traced(
                &input,
                &labels,
                None,
                prior,
                Some(prior),
                penalty,
                logistic::STEPS,
            )?;
            if tangent_only {
                // The embedding's weights stay exactly zero, whatever the prior held.
                head.weight = without_embedding(&head.weight, width)?;
            }
            Ok(Fitted {
                head,
                model: None,
                curve,
            })
        }
        Strategy::HeadLastBlock { penalty } | Strategy::AllLayers { penalty } => {
            fit_encoder(strategy, penalty, population, prior, train, &labels)
        }
        Strategy::Views {
            embedding,
            population: with_population,
        } => {
            let width = train.tangent.dim(1)?;
            let total = frozen_input.dim(1)?;
            let mut blocks = train.blocks.clone();
            if embedding && total > width {
                blocks.push(width..total);
            }
            let derived = if with_population {
                population_heads_over(population, total)?
            } else {
                Vec::new()
            };
            let y: Vec<u32> = labels.to_vec1()?;
            let (head, _) =
                super::views_head::fit(frozen_input, &y, prior.weight.dim(0)?, &blocks, &derived)?;
            Ok(Fitted {
                head,
                model: None,
                curve: Vec::new(),
            })
        }
    }
}

/// The population's task heads (their linear views only, the embedding weighing zero) as maps
/// over `[tangent | embedding]` of width `width`; a head of another width (a task window whose
/// evoked view differs from the encoder's) is left out.
fn population_heads_over(
    population: &PopulationModel,
    width: usize,
) -> Result<Vec<Linear>, CalibrateError> {
    let mut heads = Vec::new();
    for task in 0..population.tasks.len() {
        let head = population_head(population, task, false)?;
        if head.weight.dim(1)? == width {
            heads.push(head);
        }
    }
    Ok(heads)
}

/// `x` (`[rows, tangent | embedding]`) with the embedding's columns set to zero.
pub(super) fn without_embedding(
    x: &Tensor,
    tangent_width: usize,
) -> Result<Tensor, CalibrateError> {
    let (_, width) = x.dims2()?;
    let embedding = x.narrow(1, tangent_width, width - tangent_width)?;
    Ok(Tensor::cat(
        &[&x.narrow(1, 0, tangent_width)?, &embedding.zeros_like()?],
        1,
    )?)
}

fn fit_pooled(
    population: &PopulationModel,
    task: usize,
    subject_weight: f64,
    prior: &Linear,
    train: &Prepared,
    labels: &Tensor,
) -> Result<Fitted, CalibrateError> {
    let reference = population
        .references
        .get(task)
        .and_then(Option::as_ref)
        .ok_or_else(|| {
            CalibrateError::Refused(
                "the encoder carries no population reference epochs (retrain it with this version)"
                    .into(),
            )
        })?;
    let head = population
        .tangent_heads
        .get(task)
        .ok_or_else(|| CalibrateError::Refused(format!("no tangent head for task {task}")))?;
    let width = reference.tangent.dim(1)?;
    let blocks = population
        .encoder
        .config()
        .linear_views
        .blocks(population.vocabulary.len());
    let x = views::flatten(&Tensor::cat(&[&reference.tangent, &train.tangent], 0)?)?;
    let mut y: Vec<u32> = reference.labels.to_vec1()?;
    y.extend(labels.to_vec1::<u32>()?);
    let n_ref = reference.tangent.dim(0)?;
    let mut w = vec![1f32; n_ref];
    w.extend(std::iter::repeat_n(subject_weight as f32, train.len()));
    let population_linear = Linear {
        weight: head.weight().detach(),
        bias: match head.bias() {
            Some(b) => b.detach(),
            None => prior.bias.zeros_like()?,
        },
    };
    let starts = views::split(&population_linear, &blocks)?;
    let k = prior.weight.dim(0)?;
    let models = views::fit_views(
        &views::Inputs {
            x: &x,
            width,
            labels: &y,
            weights: Some(&w),
        },
        k,
        &blocks,
        &views::ViewFit {
            penalties: &reference.penalties,
            anchors: None,
            starts: Some(&starts),
        },
    )?;
    let fitted = views::combine(&models, &blocks, width)?;
    // The embedding head's share of the prior (population weights times its scale) stays.
    let (_, p_all) = prior.weight.dims2()?;
    let embedding = prior.weight.narrow(1, width, p_all - width)?;
    let embedding_bias = (&prior.bias - &population_linear.bias)?;
    Ok(Fitted {
        head: Linear {
            weight: Tensor::cat(&[&fitted.weight, &embedding], 1)?,
            bias: (fitted.bias + embedding_bias)?,
        },
        model: None,
        curve: Vec::new(),
    })
}

fn fit_encoder(
    strategy: Strategy,
    penalty: f64,
    population: &PopulationModel,
    prior: &Linear,
    train: &Prepared,
    labels: &Tensor,
) -> Result<Fitted, CalibrateError> {
    let model = population.duplicate()?;
    let n_layers = model.encoder.config().n_layers;
    let mut trained: Vec<(Var, Tensor)> = Vec::new();
    for (name, var) in model.named_vars()? {
        if strategy.trains(&name, n_layers) {
            let anchor = var.as_tensor().copy()?;
            trained.push((var, anchor));
        }
    }
    let weight = Var::from_tensor(&prior.weight.copy()?)?;
    let bias = Var::from_tensor(&prior.bias.copy()?)?;
    let mut vars: Vec<Var> = trained.iter().map(|(v, _)| v.clone()).collect();
    vars.push(weight.clone());
    vars.push(bias.clone());
    let mut opt = AdamW::new(
        vars,
        ParamsAdamW {
            lr: ENCODER_LEARNING_RATE,
            weight_decay: 0.0,
            ..Default::default()
        },
    )?;
    let mut curve = Vec::with_capacity(ENCODER_STEPS);
    for _ in 0..ENCODER_STEPS {
        let x = head_input(&model, train)?;
        let logits = x
            .matmul(&weight.as_tensor().t()?)?
            .broadcast_add(bias.as_tensor())?;
        let mut pull = (weight.as_tensor() - &prior.weight)?.sqr()?.sum_all()?;
        for (var, anchor) in &trained {
            pull = (pull + (var.as_tensor() - anchor)?.sqr()?.sum_all()?)?;
        }
        let ce = cross_entropy(&logits, labels)?;
        curve.push(ce.to_scalar::<f32>()? as f64);
        opt.backward_step(&(ce + (pull * (penalty / 2.0))?)?)?;
    }
    Ok(Fitted {
        head: Linear {
            weight: weight.as_tensor().copy()?,
            bias: bias.as_tensor().copy()?,
        },
        model: Some(model),
        curve,
    })
}
