//! A task added to an existing encoder: the parent's weights are kept (the encoder frozen, or
//! only its self-supervised training continued on the new data), and the new tasks' heads and
//! population references are trained on top of it.

use candle_core::Var;

use super::dataset::Dataset;
use super::model::PopulationModel;
use super::train::{adamw, finish, LogRow, Phases, PretrainConfig, Trained};
use super::PretrainError;

/// Trains the heads of the tasks `train` has beyond `parent`'s, on `parent`'s weights.
///
/// `train.tasks` (and `validation.tasks`) must start with the parent's tasks, in its order; the
/// samples carry indices into that list, and only the new tasks should have samples. With
/// `config.ssl_passes > 0` the encoder first continues its masked-channel training on every new
/// sample (the parent's embedding heads then see a shifted encoder); with 0 the encoder is left
/// exactly as it was. `validation` may be empty: the heads then train for all passes, and each
/// tangent head takes the default L2 strength.
pub fn extend(
    parent: &PopulationModel,
    train: &Dataset,
    validation: &Dataset,
    config: &PretrainConfig,
    on_pass: &mut dyn FnMut(&LogRow),
) -> Result<Trained, PretrainError> {
    let n_parent = parent.tasks.len();
    if train.tasks.get(..n_parent) != Some(parent.tasks.as_slice()) {
        return Err(PretrainError::Mismatch(
            "the new tasks must follow the parent encoder's tasks".into(),
        ));
    }
    let encoder = parent.encoder.config();
    let features = train.layout.token_features();
    if features != encoder.n_features {
        return Err(PretrainError::Mismatch(format!(
            "the new data has {features} features per channel token, the encoder reads {}; \
             compute them with the encoder's feature settings",
            encoder.n_features
        )));
    }
    let views = crate::encoder::LinearViews {
        covariance_bands: train.layout.covariance_bands,
        evoked: train.layout.evoked,
    };
    if views != encoder.linear_views {
        return Err(PretrainError::Mismatch(format!(
            "the new task's epochs give {} covariance bands and {} evoked samples per channel, \
             the encoder reads {} and {}; use a task with the encoder's epoch window",
            views.covariance_bands,
            views.evoked,
            encoder.linear_views.covariance_bands,
            encoder.linear_views.evoked
        )));
    }
    let mut model = PopulationModel::new(encoder, &train.tasks, &parent.vocabulary, config.seed)?;
    copy_weights(parent, &model)?;
    for (slot, reference) in model.references.iter_mut().zip(&parent.references) {
        slot.clone_from(reference);
    }
    let new_heads: Vec<String> = train.tasks[n_parent..]
        .iter()
        .map(|t| format!("heads.{}.", t.name))
        .collect();
    let (encoder_vars, head_vars) = split_vars(&model, &new_heads)?;
    let mut run = Phases::new(&model, train, validation, config, on_pass);
    if config.ssl_passes > 0 {
        run.self_supervised(&mut adamw(encoder_vars, config)?)?;
    }
    let best = run.supervised(&mut adamw(head_vars, config)?, true)?;
    let log = std::mem::take(&mut run.log);
    drop(run);
    // The parent's tasks have no samples here, so only the new tangent heads are fitted.
    finish(model, train, validation, log, best)
}

/// Copies every weight of `parent` into the same-named weight of `child`.
fn copy_weights(parent: &PopulationModel, child: &PopulationModel) -> Result<(), PretrainError> {
    let child_vars = child.named_vars()?;
    for (name, var) in parent.named_vars()? {
        let target = child_vars
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| PretrainError::Mismatch(format!("the child has no weight {name}")))?;
        target.1.set(&var.as_tensor().copy()?)?;
    }
    Ok(())
}

/// The encoder's own weights (for continued self-supervision) and the new tasks' embedding
/// heads (the only weights the supervised phase trains), each sorted by name.
fn split_vars(
    model: &PopulationModel,
    new_heads: &[String],
) -> Result<(Vec<Var>, Vec<Var>), PretrainError> {
    let (mut encoder, mut heads) = (Vec::new(), Vec::new());
    for (name, var) in model.named_vars()? {
        if name.starts_with("encoder.") || name.starts_with("reconstruction.") {
            encoder.push(var);
        } else if new_heads.iter().any(|h| name.starts_with(h.as_str()))
            && !name.contains(".tangent.")
            && !name.ends_with("encoder_scale")
        {
            heads.push(var);
        }
    }
    Ok((encoder, heads))
}
