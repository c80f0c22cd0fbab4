//! One subject of a clinic's batch, from recordings to report.

use std::path::Path;

use super::{calibrate_files, held_out_of, predict_files, CalibrateFiles, PipelineError};
use crate::batch::{self, Outcome, SubjectJob};
use crate::report::{self, ReportOptions};

/// One subject: calibrate, score the test recordings, classify the predict recordings, report.
///
/// The subject's folder `dir` receives the subject model, its plots, `predictions.json` and
/// `report.html` (de-identified when asked).
pub fn process_subject(
    encoder: &Path,
    task: &str,
    job: &SubjectJob,
    dir: &Path,
    deidentify: bool,
) -> Result<Outcome, PipelineError> {
    let calibration = calibrate_files(&CalibrateFiles {
        encoder: encoder.to_path_buf(),
        task: task.to_string(),
        subject: job.subject.clone(),
        calibration: job.calibration.clone(),
        unlabeled: job.unlabeled.clone(),
        out: dir.to_path_buf(),
    })?;
    let loaded = &calibration.subject;
    let manifest = &loaded.manifest;
    let held_out = if job.test.is_empty() {
        None
    } else {
        Some(held_out_of(predict_files(loaded, &job.test), &job.test)?)
    };
    let predicted = predict_files(loaded, &job.predict);
    batch::write_json(&dir.join("predictions.json"), &predicted)?;
    let options = ReportOptions { deidentify };
    let html = report::render(dir, held_out.as_ref(), &options)?;
    report::write(&dir.join(report::REPORT), &html)?;
    Ok(Outcome {
        calibration_epochs: manifest.calibration.per_class.iter().sum(),
        strategy: manifest.strategy.to_string(),
        test_epochs: held_out.as_ref().map_or(0, |h| h.scores.n_epochs),
        test_accuracy: held_out.as_ref().map(|h| h.scores.accuracy),
        predicted_epochs: predicted.epochs.len(),
        failed_recordings: predicted.failed,
    })
}

/// A batch's settings besides its jobs.
#[derive(Debug, Clone, Copy)]
pub struct BatchFiles<'a> {
    /// Encoder folder.
    pub encoder: &'a Path,
    /// Task name or TOML file (`None`: the encoder's only task).
    pub task: Option<&'a str>,
    /// Output folder.
    pub out: &'a Path,
    /// Withhold identifiers from the reports.
    pub deidentify: bool,
}

/// The task a batch runs: the one asked for, or the encoder's only task.
pub fn batch_task(encoder: &Path, task: Option<&str>) -> Result<String, PipelineError> {
    if let Some(task) = task {
        return Ok(task.to_string());
    }
    let manifest = crate::pretrain::read_manifest(encoder)?;
    match manifest.tasks.as_slice() {
        [only] => Ok(only.name.clone()),
        tasks => Err(PipelineError::Refused(format!(
            "{}: the encoder has heads for {:?}; say which with --task",
            encoder.display(),
            tasks.iter().map(|t| &t.name).collect::<Vec<_>>()
        ))),
    }
}

/// Runs [`process_subject`] for every job (in parallel on the current rayon pool, resumable:
/// see [`batch::run_subjects`]); `on_done` sees each subject's result as it ends.
pub fn run_batch(
    request: &BatchFiles,
    jobs: &[SubjectJob],
    on_done: &(dyn Fn(&batch::SubjectResult) + Sync),
) -> Result<Vec<batch::SubjectResult>, PipelineError> {
    let task = batch_task(request.encoder, request.task)?;
    let encoder = crate::pretrain::read_manifest(request.encoder)?;
    std::fs::create_dir_all(request.out)
        .map_err(|e| PipelineError::io(request.out, "cannot create folder", e))?;
    // What the outputs depend on besides the recordings: a change re-does every subject.
    let context = format!(
        "encoder {} task {} deidentify {}",
        encoder.weights_sha256, task, request.deidentify
    );
    Ok(batch::run_subjects(
        jobs,
        request.out,
        &context,
        |job, dir| {
            process_subject(request.encoder, &task, job, dir, request.deidentify)
                .map_err(|e| super::one_line(&e))
        },
        on_done,
    ))
}
