//! A subject model applied to recordings, and the held-out part of a report.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{features_of, PipelineError};
use crate::calibrate::LoadedSubject;
use crate::features::SourceFile;
use crate::predict::{conform, predict_rows, scores, EpochPrediction, Scores};
use crate::report::HeldOut;
use crate::store::sha256_file;

/// What a prediction over several recordings gave (what `predict --json` prints).
#[derive(Debug, Clone, Serialize)]
pub struct PredictReport {
    /// Subject of the model.
    pub subject: String,
    /// Task name.
    pub task: String,
    /// Class names, in probability order.
    pub classes: Vec<String>,
    /// The model's head is new: the encoder had no population head for the task.
    pub new_head: bool,
    /// Why the head is new (`null` for a population head, or a model that did not record it).
    pub new_head_reason: Option<String>,
    /// Labelled epochs scored.
    pub n_epochs: usize,
    /// Accuracy over labelled epochs (`null` without labels).
    pub accuracy: Option<f64>,
    /// Balanced accuracy.
    pub balanced_accuracy: Option<f64>,
    /// Cohen's kappa.
    pub kappa: Option<f64>,
    /// Confusion counts `[true][predicted]`.
    pub confusion: Option<Vec<Vec<usize>>>,
    /// Every epoch.
    pub epochs: Vec<EpochPrediction>,
    /// Recordings that could not be scored, each with why (one line, naming the file).
    pub failed: Vec<String>,
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Predicts every epoch of `files` and scores the labelled ones; a recording that cannot be read
/// or scored is listed in [`PredictReport::failed`] and the others go on.
pub fn predict_files(subject: &LoadedSubject, files: &[PathBuf]) -> PredictReport {
    let manifest = &subject.manifest;
    let mut epochs = Vec::new();
    let mut failed = Vec::new();
    for (file, set) in
        files
            .iter()
            .zip(features_of(files, &manifest.task, &manifest.feature_config))
    {
        let predicted = set.and_then(|set| {
            let rows = conform(&set, manifest).map_err(|e| PipelineError::from(e).in_file(file))?;
            predict_rows(subject, &file_name(file), &rows)
                .map_err(|e| PipelineError::from(e).in_file(file))
        });
        match predicted {
            Ok(p) => epochs.extend(p),
            Err(e) => failed.push(super::one_line(&e)),
        }
    }
    let classes = manifest.classes().to_vec();
    let index = |name: &str| classes.iter().position(|c| c == name);
    let pairs: Vec<(usize, usize)> = epochs
        .iter()
        .filter_map(|e| Some((index(e.label.as_deref()?)?, index(&e.predicted)?)))
        .collect();
    let s: Option<Scores> = scores(&pairs, classes.len());
    PredictReport {
        subject: manifest.subject.clone(),
        task: manifest.task.name.clone(),
        classes,
        new_head: manifest.new_head,
        new_head_reason: manifest.new_head_reason.clone(),
        n_epochs: pairs.len(),
        accuracy: s.as_ref().map(|s| s.accuracy),
        balanced_accuracy: s.as_ref().map(|s| s.balanced_accuracy),
        kappa: s.as_ref().map(|s| s.kappa),
        confusion: s.map(|s| s.confusion),
        epochs,
        failed,
    }
}

/// The held-out part of a report from [`predict_files`]'s results on `files`. Every file must
/// have been scored, or the figure would describe fewer recordings than the report lists.
pub fn held_out_of(predicted: PredictReport, files: &[PathBuf]) -> Result<HeldOut, PipelineError> {
    if let Some(failure) = predicted.failed.first() {
        return Err(PipelineError::Refused(failure.clone()));
    }
    let (Some(accuracy), Some(balanced_accuracy), Some(kappa), Some(confusion)) = (
        predicted.accuracy,
        predicted.balanced_accuracy,
        predicted.kappa,
        predicted.confusion,
    ) else {
        return Err(PipelineError::Refused(format!(
            "the held-out recordings carry no labels of task {}: nothing to score",
            predicted.task
        )));
    };
    let recordings = files
        .iter()
        .map(|path| {
            Ok(SourceFile {
                name: path
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
                sha256: sha256_file(path).map_err(|e| PipelineError::from(e).in_file(path))?,
            })
        })
        .collect::<Result<Vec<_>, PipelineError>>()?;
    Ok(HeldOut {
        recordings,
        scores: Scores {
            n_epochs: predicted.n_epochs,
            accuracy,
            balanced_accuracy,
            kappa,
            confusion,
        },
    })
}
