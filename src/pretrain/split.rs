//! Which subjects train the encoder and which stop it early.

use super::dataset::Grouped;
use super::rng::Rng;
use super::train::{train, LogRow, PretrainConfig, Trained};
use super::PretrainError;

/// Subjects for early stopping: a fifth (at least one), chosen by the seed; both lists sorted.
pub fn split_validation(subjects: &[String], seed: u64) -> (Vec<String>, Vec<String>) {
    let mut order = subjects.to_vec();
    Rng::new(seed ^ 0x5EED).shuffle(&mut order);
    let n_val = (order.len() / 5).max(1).min(order.len().saturating_sub(1));
    let mut validation = order.split_off(order.len() - n_val);
    order.sort();
    validation.sort();
    (order, validation)
}

/// Trains a population model on `train_subjects`, stopping early on `validation_subjects`.
pub fn train_subjects(
    grouped: &Grouped,
    train_subjects: &[String],
    validation_subjects: &[String],
    config: &PretrainConfig,
    on_pass: &mut dyn FnMut(&LogRow),
) -> Result<Trained, PretrainError> {
    let train_set = grouped.for_pretraining(train_subjects)?;
    let validation_set = grouped.for_pretraining(validation_subjects)?;
    train(&train_set, &validation_set, config, on_pass)
}
