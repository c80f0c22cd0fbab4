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
        if set.meta.channels != channels
            || set.meta.freqs != first.meta.freqs
            || set.meta.evoked_times.len() != first.meta.evoked_times.len()
        {
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
    // The encoder's tokens hold the evoked waveform of its own window: epochs of another length
    // are read with that part zeroed and their own waveform in the linear views, which the
    // population head (weights for the encoder's window) cannot read, so they get a new head.
    let encoder_evoked = calibrate::Prepared::encoder_evoked(population.encoder.config(), layout)
        .map_err(|e| PipelineError::Refused(format!("task {}: {e}", task.name)))?;
    let other_window = (encoder_evoked != layout.evoked).then(|| {
        format!(
            "window {} s differs from the encoder's {} ({} evoked samples per channel, the \
             encoder reads {encoder_evoked})",
            seconds(window_s(&task)),
            encoder_window(&encoder_manifest, encoder_evoked),
            layout.evoked
        )
    });
    // A task the encoder has no head for gets a new one, trained on this subject alone.
    let head_index = encoder_manifest
        .tasks
        .iter()
        .position(|t| t.name == task.head_name());
    let new_head_reason = match (head_index, &other_window) {
        (Some(_), None) => None,
        (Some(_), Some(window)) => Some(window.clone()),
        (None, None) => Some(NO_HEAD.to_string()),
        (None, Some(window)) => Some(format!("{NO_HEAD}; {window}")),
    };
    let head_index = head_index.filter(|_| other_window.is_none());
    let task_index = head_index.unwrap_or(encoder_manifest.tasks.len());
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
    manifest.new_head_reason = new_head_reason;
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

/// Why a task without a population head gets a new one.
const NO_HEAD: &str = "the encoder has no head for it";

/// A task's epoch window, seconds: its fixed windows' length, else `tmax - tmin`.
fn window_s(task: &Task) -> f64 {
    task.fixed
        .as_ref()
        .map_or(task.tmax - task.tmin, |fixed| fixed.length_s)
}

/// Seconds for a message: at most three decimals, no trailing zeros (`4`, `2.5`).
fn seconds(value: f64) -> String {
    let text = format!("{value:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    text.to_string()
}

/// The encoder's epoch window in words: its first task's, else from its evoked length.
fn encoder_window(encoder: &pretrain::EncoderManifest, evoked: usize) -> String {
    let from_rate = || {
        encoder
            .feature_config
            .evoked
            .as_ref()
            .map(|e| evoked as f64 / e.rate_hz)
    };
    match encoder
        .task_definitions
        .first()
        .map(window_s)
        .or_else(from_rate)
    {
        Some(w) => format!("{} s", seconds(w)),
        None => format!("{evoked} evoked samples"),
    }
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
