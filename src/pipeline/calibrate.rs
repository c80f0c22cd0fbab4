//! A subject's personalized model from an encoder and recordings.

use std::path::PathBuf;
use std::time::Instant;

use super::{features_of, keep_vocabulary, PipelineError};
use crate::calibrate::{
    self, diagnostics, CalibrateOptions, CalibrationInput, EncoderReference, LoadedSubject,
    Provenance, Strategy, SubjectManifest,
};
use crate::features::{feature_config_hash, FeatureRow, FeatureSet};
use crate::pretrain;
use crate::task::Task;

/// What to calibrate: the encoder, the task, the subject and their recordings, and where the
/// subject model goes.
#[derive(Debug, Clone)]
pub struct CalibrateFiles {
    /// Encoder folder (from `pretrain`).
    pub encoder: PathBuf,
    /// Task: a built-in name or a task .toml file; the encoder must have its head.
    pub task: String,
    /// Subject identifier written in the model (a pseudonym for de-identified output).
    pub subject: String,
    /// Labelled calibration recordings.
    pub calibration: Vec<PathBuf>,
    /// Further recordings of the subject; their labels are never used (alignment only).
    pub unlabeled: Vec<PathBuf>,
    /// Subject model folder to write.
    pub out: PathBuf,
}

/// What a calibration did, with the model it wrote (ready to predict without reading it back).
pub struct CalibrationSummary {
    /// The subject model written, with its manifest.
    pub subject: LoadedSubject,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Channels of the calibration recordings the model does not read (not EEG, no standard
    /// electrode name, or unknown to the encoder), as labelled in the file or named in features.
    pub ignored_channels: Vec<String>,
}

fn sets_of(
    files: &[PathBuf],
    task: &Task,
    encoder: &pretrain::EncoderManifest,
) -> Result<Vec<FeatureSet>, PipelineError> {
    let mut sets = Vec::new();
    for (file, result) in files
        .iter()
        .zip(features_of(files, task, &encoder.feature_config))
    {
        let set = result?;
        if set.rows.is_empty() {
            return Err(PipelineError::Refused(format!(
                "{}: no epochs of task {} in this recording",
                file.display(),
                task.name
            )));
        }
        sets.push(set);
    }
    Ok(sets)
}

/// Calibrates a subject from recordings and writes the subject model (weights, `subject.json`,
/// diagnostic plots) to `request.out`.
pub fn calibrate_files(request: &CalibrateFiles) -> Result<CalibrationSummary, PipelineError> {
    calibrate_files_as(request, None)
}

/// [`calibrate_files`] with the approach fixed to `only` instead of chosen by inner
/// cross-validation (`None`: chosen as usual), for benchmarks that score each approach.
pub fn calibrate_files_as(
    request: &CalibrateFiles,
    only: Option<Strategy>,
) -> Result<CalibrationSummary, PipelineError> {
    let CalibrateFiles {
        encoder: encoder_dir,
        task: task_name,
        subject,
        calibration,
        unlabeled,
        out,
    } = request;
    let started = Instant::now();
    let encoder_manifest = pretrain::read_manifest(encoder_dir)?;
    let (population, encoder_manifest) = pretrain::load(
        encoder_dir,
        Some(&feature_config_hash(&encoder_manifest.feature_config)),
    )?;
    let task = Task::resolve(task_name)?;
    // A task the encoder has no head for gets a new one, trained on this subject alone.
    let head_index = encoder_manifest
        .tasks
        .iter()
        .position(|t| t.name == task.head_name());
    let task_index = head_index.unwrap_or(encoder_manifest.tasks.len());
    let mut labelled_sets = sets_of(calibration, &task, &encoder_manifest)?;
    let mut unlabeled_sets = sets_of(unlabeled, &task, &encoder_manifest)?;
    for set in &mut unlabeled_sets {
        for row in &mut set.rows {
            row.label = None;
        }
    }
    // The views' covariances must span exactly the channels the model reads: the tangent vector
    // of a sub-block is not the sub-block of a larger matrix's tangent vector.
    for (set, file) in labelled_sets
        .iter_mut()
        .chain(&mut unlabeled_sets)
        .zip(calibration.iter().chain(unlabeled))
    {
        keep_vocabulary(set, &population.vocabulary).map_err(|e| e.in_file(file))?;
    }
    let first = labelled_sets
        .first()
        .ok_or_else(|| PipelineError::Refused("no calibration recordings".into()))?;
    let channels = first.meta.channels.clone();
    // After the pick, the recording's other channels are exactly those the model cannot read.
    let ignored_channels = ignored_channels(calibration, &channels, &population.vocabulary)?;
    for (set, file) in labelled_sets
        .iter()
        .chain(&unlabeled_sets)
        .zip(calibration.iter().chain(unlabeled))
    {
        if set.meta.channels != channels || set.meta.freqs != first.meta.freqs {
            return Err(PipelineError::Refused(format!(
                "{}: channels or sampling differ from {} (all of a subject's recordings must share a montage)",
                file.display(),
                calibration.first().map_or(String::new(), |p| p.display().to_string())
            )));
        }
    }
    let layout = crate::align::RowLayout {
        channels: channels.len(),
        ..crate::align::RowLayout::of(&first.meta)
    };
    // The encoder reads a fixed number of features per channel, the evoked waveform's among
    // them: a task whose window has another length cannot be read by it.
    let expected = population.encoder.config().n_features;
    if layout.token_features() != expected {
        let window = encoder_manifest
            .task_definitions
            .first()
            .map_or(String::new(), |t| format!(" ({} s)", t.tmax - t.tmin));
        return Err(PipelineError::Refused(format!(
            "task {}: its epochs give {} features per channel ({} evoked samples), the encoder \
             reads {expected}; the epoch window must be as long as the encoder's{window}",
            task.name,
            layout.token_features(),
            layout.evoked
        )));
    }
    let mut labelled: Vec<&FeatureRow> = labelled_sets
        .iter()
        .flat_map(|s| s.rows.iter())
        .filter(|r| r.label.is_some())
        .collect();
    // Chronological within the calibration, so that inner folds mix early and late trials.
    labelled.sort_by(|a, b| {
        (&a.recording, a.onset_s)
            .partial_cmp(&(&b.recording, b.onset_s))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let unlabeled_rows: Vec<&FeatureRow> =
        unlabeled_sets.iter().flat_map(|s| s.rows.iter()).collect();
    let input = CalibrationInput {
        task: task_index,
        channels: channels.clone(),
        layout,
        labelled,
        unlabeled: unlabeled_rows,
    };
    let mut options = CalibrateOptions::default();
    let calibrated = match (head_index, only) {
        (Some(_), only) => {
            if let Some(s) = only {
                options.candidates = vec![s];
                options.use_encoder |= s.tunes_encoder();
            }
            calibrate::calibrate(&population, &input, &options)?
        }
        (None, None) => {
            calibrate::calibrate_new_head(&population, &input, task.classes.len(), &options)?
        }
        (None, Some(s)) => calibrate::calibrate_new_head_among(
            &population,
            &input,
            task.classes.len(),
            &options,
            vec![s],
        )?,
    };
    let encoder_path =
        std::fs::canonicalize(encoder_dir).unwrap_or_else(|_| encoder_dir.to_path_buf());
    let sources = |sets: &[FeatureSet]| sets.iter().flat_map(|s| s.meta.sources.clone()).collect();
    let mut manifest = SubjectManifest::new(
        &calibrated,
        Provenance {
            subject: subject.to_string(),
            task: task.clone(),
            encoder: EncoderReference {
                dir: encoder_path.display().to_string(),
                weights_sha256: encoder_manifest.weights_sha256.clone(),
            },
            feature_config: encoder_manifest.feature_config.clone(),
            sfreq: first.meta.sfreq,
            recordings: sources(&labelled_sets),
            unlabeled_recordings: sources(&unlabeled_sets),
        },
    );
    calibrate::save(out, &calibrated, &mut manifest)?;
    let all_rows: Vec<&FeatureRow> = input
        .labelled
        .iter()
        .chain(&input.unlabeled)
        .copied()
        .collect();
    diagnostics::write_plots(
        &out.join("plots"),
        &population,
        &encoder_manifest,
        &calibrated,
        &manifest,
        &all_rows,
        &first.meta.freqs,
    )?;
    Ok(CalibrationSummary {
        subject: LoadedSubject {
            manifest,
            population,
            calibrated,
        },
        seconds: started.elapsed().as_secs_f64(),
        ignored_channels,
    })
}

/// Channels of the first calibration recording that the model cannot read: channels that are
/// not EEG or name no standard electrode (left out of the features), and EEG channels the
/// encoder's vocabulary lacks.
fn ignored_channels(
    calibration: &[PathBuf],
    features: &[String],
    vocabulary: &[String],
) -> Result<Vec<String>, PipelineError> {
    let Some(file) = calibration.first() else {
        return Ok(Vec::new());
    };
    let header = crate::edf::open(file).map_err(|e| PipelineError::from(e).in_file(file))?;
    let mut ignored: Vec<String> = header
        .channels()
        .iter()
        .filter(|c| c.name.as_ref().is_none_or(|n| !features.contains(n)))
        .map(|c| c.label.trim().to_string())
        .collect();
    ignored.extend(features.iter().filter(|c| !vocabulary.contains(c)).cloned());
    Ok(ignored)
}
