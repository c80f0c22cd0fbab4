//! A subject model on disk: `model.safetensors` (the subject's head, and the encoder weights the
//! strategy changed; everything else comes from the encoder) and `subject.json`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::{CalibrateError, Calibrated, CandidateScore, Fitted, Strategy};
use crate::align::{RowLayout, SubjectAlignment};
use crate::atomic::write_atomically;
use crate::features::{FeatureConfig, SourceFile};
use crate::pretrain::logistic::Linear;
use crate::pretrain::{self, PopulationModel};
use crate::store::sha256_file;
use crate::task::Task;

/// Weights file name inside a subject folder.
pub const WEIGHTS: &str = "model.safetensors";
/// Manifest file name inside a subject folder.
pub const MANIFEST: &str = "subject.json";
/// Version of the manifest layout.
pub const FORMAT_VERSION: u32 = 1;
const HEAD_WEIGHT: &str = "subject_head.weight";
const HEAD_BIAS: &str = "subject_head.bias";

/// The encoder a subject model builds on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncoderReference {
    /// Encoder folder as given at calibration (absolute when it could be resolved).
    pub dir: String,
    /// SHA-256 of its weights: loading refuses any other encoder.
    pub weights_sha256: String,
}

/// How much calibration data went in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationSize {
    /// Labelled epochs per class.
    pub per_class: Vec<usize>,
    /// Unlabelled epochs used for alignment.
    pub unlabeled_epochs: usize,
    /// Labelled calibration recordings.
    pub recordings: Vec<SourceFile>,
    /// Unlabelled recordings.
    pub unlabeled_recordings: Vec<SourceFile>,
}

/// `subject.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubjectManifest {
    /// Manifest layout version.
    pub format_version: u32,
    /// Crate version that calibrated it.
    pub crate_version: String,
    /// Subject identifier (a pseudonym when the user chose one).
    pub subject: String,
    /// The task.
    pub task: Task,
    /// Index of the task among the encoder's heads (for a new head: the number of heads).
    pub task_index: usize,
    /// The encoder had no head for the task: the head was trained from zero on this subject.
    #[serde(default)]
    pub new_head: bool,
    /// Why the head is new (the encoder has no head for the task, or the task's epoch window
    /// differs from the encoder's); `None` for a population head or a model written before.
    #[serde(default)]
    pub new_head_reason: Option<String>,
    /// The encoder it builds on.
    pub encoder: EncoderReference,
    /// Feature configuration of its inputs.
    pub feature_config: FeatureConfig,
    /// Hash of `feature_config`.
    pub feature_config_hash: String,
    /// Channels, in feature order; a recording must have all of them.
    pub channels: Vec<String>,
    /// Sampling rate the features were computed at, Hz.
    pub sfreq: f64,
    /// Row layout.
    pub layout: RowLayout,
    /// Alignment statistics (from calibration and unlabelled epochs only).
    pub alignment: SubjectAlignment,
    /// Chosen strategy.
    pub strategy: Strategy,
    /// Inner cross-validation folds (0: too few epochs, default strategy taken).
    pub inner_cv_folds: usize,
    /// Every candidate's inner cross-validation score.
    pub inner_cv: Vec<CandidateScore>,
    /// Confusion counts of the chosen strategy over the inner folds, `[true][predicted]`.
    pub inner_cv_confusion: Vec<Vec<usize>>,
    /// Calibration data.
    pub calibration: CalibrationSize,
    /// Training loss per step of the final fit.
    pub learning_curve: Vec<f64>,
    /// SHA-256 of `model.safetensors`.
    pub weights_sha256: String,
}

/// What a manifest records about where a calibration came from (the rest is computed).
#[derive(Debug, Clone)]
pub struct Provenance {
    /// Subject identifier (a pseudonym when the user chose one).
    pub subject: String,
    /// The task.
    pub task: Task,
    /// The encoder calibrated from.
    pub encoder: EncoderReference,
    /// Feature configuration of the inputs (the encoder's).
    pub feature_config: FeatureConfig,
    /// Sampling rate the features were computed at, Hz.
    pub sfreq: f64,
    /// Labelled calibration recordings.
    pub recordings: Vec<SourceFile>,
    /// Unlabelled recordings.
    pub unlabeled_recordings: Vec<SourceFile>,
}

impl SubjectManifest {
    /// The manifest of a calibration (its weights' hash is filled in by [`save`]).
    pub fn new(calibrated: &Calibrated, provenance: Provenance) -> Self {
        SubjectManifest {
            format_version: FORMAT_VERSION,
            crate_version: env!("CARGO_PKG_VERSION").to_string(),
            subject: provenance.subject,
            task: provenance.task,
            task_index: calibrated.task,
            new_head: calibrated.new_head,
            new_head_reason: None,
            encoder: provenance.encoder,
            feature_config_hash: crate::features::feature_config_hash(&provenance.feature_config),
            feature_config: provenance.feature_config,
            channels: calibrated.channels.clone(),
            sfreq: provenance.sfreq,
            layout: calibrated.layout,
            alignment: calibrated.alignment.clone(),
            strategy: calibrated.strategy,
            inner_cv_folds: calibrated.folds,
            inner_cv: calibrated.inner_cv.clone(),
            inner_cv_confusion: calibrated.confusion.clone(),
            calibration: CalibrationSize {
                per_class: calibrated.per_class.clone(),
                unlabeled_epochs: calibrated.unlabeled_epochs,
                recordings: provenance.recordings,
                unlabeled_recordings: provenance.unlabeled_recordings,
            },
            learning_curve: calibrated.fitted.curve.clone(),
            weights_sha256: String::new(),
        }
    }

    /// The class names, in index order.
    pub fn classes(&self) -> &[String] {
        &self.task.classes
    }
}

fn io(path: &Path) -> impl Fn(&'static str, std::io::Error) -> CalibrateError + '_ {
    move |action, source| CalibrateError::Io {
        path: path.to_path_buf(),
        action,
        source,
    }
}

/// The tensors a subject model saves: its head and the encoder weights its strategy trained.
fn tensors(calibrated: &Calibrated) -> Result<HashMap<String, Tensor>, CalibrateError> {
    let mut out = HashMap::new();
    out.insert(
        HEAD_WEIGHT.to_string(),
        calibrated.fitted.head.weight.clone(),
    );
    out.insert(HEAD_BIAS.to_string(), calibrated.fitted.head.bias.clone());
    if let Some(model) = &calibrated.fitted.model {
        let n_layers = model.encoder.config().n_layers;
        for (name, var) in model.named_vars()? {
            if calibrated.strategy.trains(&name, n_layers) {
                out.insert(name, var.as_tensor().clone());
            }
        }
    }
    Ok(out)
}

/// Writes `model.safetensors`, then `subject.json` with the weights' hash, each atomically.
pub fn save(
    dir: &Path,
    calibrated: &Calibrated,
    manifest: &mut SubjectManifest,
) -> Result<(), CalibrateError> {
    std::fs::create_dir_all(dir).map_err(|e| io(dir)("cannot create folder", e))?;
    let weights = dir.join(WEIGHTS);
    let tmp = dir.join(format!(".{WEIGHTS}.{}.tmp", std::process::id()));
    candle_core::safetensors::save(&tensors(calibrated)?, &tmp)?;
    std::fs::rename(&tmp, &weights).map_err(|e| io(&weights)("cannot rename into place", e))?;
    manifest.weights_sha256 = sha256_file(&weights)?;
    let path = dir.join(MANIFEST);
    let json = serde_json::to_vec_pretty(manifest).map_err(|e| CalibrateError::Manifest {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    write_atomically(
        &path,
        |f| std::io::Write::write_all(f, &json).map_err(|e| io(&path)("cannot write", e)),
        io(&path),
    )
}

/// Reads `subject.json` alone.
pub fn read_manifest(dir: &Path) -> Result<SubjectManifest, CalibrateError> {
    let path = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&path).map_err(|e| io(&path)("cannot read", e))?;
    serde_json::from_str(&text).map_err(|e| CalibrateError::Manifest {
        path,
        reason: e.to_string(),
    })
}

/// A subject model ready to predict: manifest, population model, and the calibrated parts.
pub struct LoadedSubject {
    /// `subject.json`.
    pub manifest: SubjectManifest,
    /// The encoder it builds on.
    pub population: PopulationModel,
    /// The subject's model.
    pub calibrated: Calibrated,
}

/// Loads a subject model and its encoder (from `encoder_dir`, or the folder recorded at
/// calibration), refusing any mismatch of hashes, versions or feature settings.
pub fn load(dir: &Path, encoder_dir: Option<&Path>) -> Result<LoadedSubject, CalibrateError> {
    let manifest = read_manifest(dir)?;
    let refuse = |reason: String| CalibrateError::Refused(format!("{}: {reason}", dir.display()));
    if manifest.format_version != FORMAT_VERSION {
        return Err(refuse(format!(
            "manifest format {} (this build reads {FORMAT_VERSION})",
            manifest.format_version
        )));
    }
    let weights = dir.join(WEIGHTS);
    let sha = sha256_file(&weights)?;
    if sha != manifest.weights_sha256 {
        return Err(refuse(format!(
            "{WEIGHTS} has SHA-256 {sha}, the manifest names {}",
            manifest.weights_sha256
        )));
    }
    let encoder_dir: PathBuf = encoder_dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(&manifest.encoder.dir));
    let (population, encoder_manifest) =
        pretrain::load(&encoder_dir, Some(&manifest.feature_config_hash))?;
    if encoder_manifest.weights_sha256 != manifest.encoder.weights_sha256 {
        return Err(refuse(format!(
            "calibrated on the encoder with weights {}, {} holds {}",
            manifest.encoder.weights_sha256,
            encoder_dir.display(),
            encoder_manifest.weights_sha256
        )));
    }
    let mut tensors = candle_core::safetensors::load(&weights, &Device::Cpu)?;
    let mut take = |name: &str| {
        tensors
            .remove(name)
            .ok_or_else(|| refuse(format!("{WEIGHTS} has no tensor {name}")))
    };
    let head = Linear {
        weight: take(HEAD_WEIGHT)?,
        bias: take(HEAD_BIAS)?,
    };
    let model = if manifest.strategy.tunes_encoder() {
        let tuned = population.duplicate()?;
        for (name, var) in tuned.named_vars()? {
            if let Some(t) = tensors.remove(&name) {
                var.set(&t)?;
            }
        }
        Some(tuned)
    } else {
        None
    };
    let calibrated = Calibrated {
        alignment: manifest.alignment.clone(),
        channels: manifest.channels.clone(),
        layout: manifest.layout,
        task: manifest.task_index,
        new_head: manifest.new_head,
        strategy: manifest.strategy,
        fitted: Fitted {
            head,
            model,
            curve: manifest.learning_curve.clone(),
        },
        inner_cv: manifest.inner_cv.clone(),
        folds: manifest.inner_cv_folds,
        confusion: manifest.inner_cv_confusion.clone(),
        per_class: manifest.calibration.per_class.clone(),
        unlabeled_epochs: manifest.calibration.unlabeled_epochs,
    };
    Ok(LoadedSubject {
        manifest,
        population,
        calibrated,
    })
}
