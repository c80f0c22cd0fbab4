//! Population accuracy on subjects the encoder never saw, by the benchmark's rules: each
//! subject's alignment comes from its calibration run (the task's first run; labels unused), and
//! accuracy is measured on its other runs. Also with only the 19 channels of the 10-20 system.

use serde::{Deserialize, Serialize};

use super::dataset::{samples, Grouped, Sample};
use super::model::{make_batch, tangent_vectors, PopulationModel};
use super::PretrainError;
use crate::align::{select_channels, RowLayout};
use crate::features::FeatureRow;
use crate::montage;

/// Accuracy of the population model on one held-out subject and task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubjectScore {
    /// Subject identifier.
    pub subject: String,
    /// Task name.
    pub task: String,
    /// Run whose epochs gave the alignment statistics (labels unused).
    pub alignment_run: Option<u32>,
    /// Labelled test epochs scored.
    pub n_test: usize,
    /// Accuracy with every channel.
    pub accuracy: f64,
    /// Accuracy with the 10-20 channels only (`None` when fewer than 19 of them are present).
    pub accuracy_1020: Option<f64>,
}

/// Predicted class of each sample.
pub fn predict(
    model: &PopulationModel,
    samples: &[&Sample],
    layout: RowLayout,
    channels: &[String],
    task: usize,
) -> Result<Vec<usize>, PretrainError> {
    let keep: Vec<usize> = (0..channels.len()).collect();
    let names: Vec<&str> = channels.iter().map(String::as_str).collect();
    let map = model.pair_map(&names);
    let mut out = Vec::with_capacity(samples.len());
    for chunk in samples.chunks(256) {
        let batch = make_batch(chunk, layout, channels, &keep)?;
        let tangent = tangent_vectors(chunk, channels.len(), &keep, &map)?;
        let logits = model.logits(task, &model.encode(&batch, false)?.embedding, &tangent)?;
        out.extend(
            logits
                .argmax(1)?
                .to_vec1::<u32>()?
                .into_iter()
                .map(|v| v as usize),
        );
    }
    Ok(out)
}

fn accuracy(
    model: &PopulationModel,
    subject: &str,
    rows: &[&FeatureRow],
    calibration: &[&FeatureRow],
    layout: RowLayout,
    channels: &[String],
    task: usize,
) -> Result<f64, PretrainError> {
    let tagged: Vec<(usize, &FeatureRow)> = rows.iter().map(|r| (task, *r)).collect();
    let (_, test) = samples(subject, calibration, &tagged, layout)?;
    let refs: Vec<&Sample> = test.iter().collect();
    let predicted = predict(model, &refs, layout, channels, task)?;
    let correct = predicted
        .iter()
        .zip(&test)
        .filter(|(p, s)| s.label == Some(**p))
        .count();
    Ok(correct as f64 / test.len().max(1) as f64)
}

/// Scores every task of every subject in `subjects` (which the model must not have seen).
pub fn population_scores(
    model: &PopulationModel,
    grouped: &Grouped,
    subjects: &[String],
) -> Result<Vec<SubjectScore>, PretrainError> {
    let ten_twenty: Vec<usize> = (0..grouped.channels.len())
        .filter(|&i| {
            montage::standard_name(&grouped.channels[i])
                .is_some_and(|n| montage::TEN_TWENTY_19.contains(&n))
        })
        .collect();
    let sub_channels: Vec<String> = ten_twenty
        .iter()
        .map(|&i| grouped.channels[i].clone())
        .collect();
    let sub_layout = RowLayout {
        channels: ten_twenty.len(),
        ..grouped.layout
    };
    let mut scores = Vec::new();
    for subject in subjects {
        let rows = grouped
            .subjects
            .get(subject)
            .ok_or_else(|| PretrainError::UnknownSubject(subject.clone()))?;
        for (task, info) in grouped.tasks.iter().enumerate() {
            let task_rows: Vec<&FeatureRow> = rows
                .iter()
                .filter(|(t, _)| *t == task)
                .map(|(_, r)| *r)
                .collect();
            let alignment_run = task_rows.iter().filter_map(|r| r.run).min();
            let first_recording = task_rows.first().map(|r| r.recording.clone());
            let is_calibration = |r: &FeatureRow| match alignment_run {
                Some(run) => r.run == Some(run),
                None => Some(&r.recording) == first_recording.as_ref(),
            };
            let calibration: Vec<&FeatureRow> = task_rows
                .iter()
                .copied()
                .filter(|r| is_calibration(r))
                .collect();
            let test: Vec<&FeatureRow> = task_rows
                .iter()
                .copied()
                .filter(|r| !is_calibration(r) && r.label.is_some())
                .collect();
            if calibration.is_empty() || test.is_empty() {
                continue;
            }
            let full = accuracy(
                model,
                subject,
                &test,
                &calibration,
                grouped.layout,
                &grouped.channels,
                task,
            )?;
            let accuracy_1020 = if ten_twenty.len() == montage::TEN_TWENTY_19.len() {
                let pick = |rs: &[&FeatureRow]| -> Vec<FeatureRow> {
                    rs.iter()
                        .map(|r| select_channels(r, grouped.layout, &ten_twenty))
                        .collect()
                };
                let (cal19, test19) = (pick(&calibration), pick(&test));
                let cal_refs: Vec<&FeatureRow> = cal19.iter().collect();
                let test_refs: Vec<&FeatureRow> = test19.iter().collect();
                Some(accuracy(
                    model,
                    subject,
                    &test_refs,
                    &cal_refs,
                    sub_layout,
                    &sub_channels,
                    task,
                )?)
            } else {
                None
            };
            scores.push(SubjectScore {
                subject: subject.clone(),
                task: info.name.clone(),
                alignment_run,
                n_test: test.len(),
                accuracy: full,
                accuracy_1020,
            });
        }
    }
    Ok(scores)
}
