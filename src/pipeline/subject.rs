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
