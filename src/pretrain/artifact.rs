//! The encoder on disk: `model.safetensors` (weights) and `encoder.json` (everything needed to
//! trust and rebuild it). Loading refuses a manifest that does not match the weights, the crate,
//! or the features a consumer is about to feed it.

use std::path::{Path, PathBuf};

use candle_nn::VarMap;
use serde::{Deserialize, Serialize};

use super::dataset::TaskInfo;
use super::evaluate::SubjectScore;
use super::model::PopulationModel;
use super::tangent_fit::HeadChoice;
use super::train::{LogRow, PretrainConfig};
use super::PretrainError;
use crate::atomic::write_atomically;
use crate::features::{FeatureConfig, SourceFile};
use crate::store::sha256_file;
use crate::task::Task;

/// Weights file name inside an encoder folder.
pub const WEIGHTS: &str = "model.safetensors";
/// Population reference epochs (tangent vectors and labels per task) inside an encoder folder.
pub const REFERENCE: &str = "population_reference.safetensors";
/// Manifest file name inside an encoder folder.
pub const MANIFEST: &str = "encoder.json";
/// Version of the manifest layout.
pub const FORMAT_VERSION: u32 = 1;

/// Training outcome recorded in the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncoderMetrics {
    /// Supervised pass whose weights were kept.
    pub best_pass: usize,
    /// Held-out (validation subjects) cross-entropy at that pass.
    pub validation_loss: Option<f64>,
    /// Held-out accuracy at that pass.
    pub validation_accuracy: Option<f64>,
    /// Population accuracy on subjects excluded from training (`--subjects-holdout`).
    pub holdout: Vec<SubjectScore>,
    /// Wall time of training, seconds.
    pub training_seconds: f64,
    /// How each task's tangent head was fitted and weighted against the embedding head.
    #[serde(default)]
    pub heads: Vec<HeadChoice>,
}

/// `encoder.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncoderManifest {
    /// Manifest layout version.
    pub format_version: u32,
    /// Crate version that trained it.
    pub crate_version: String,
    /// Training settings, architecture and seed.
    pub pretrain: PretrainConfig,
    /// Feature configuration the encoder expects its inputs computed with.
    pub feature_config: FeatureConfig,
    /// Hash of `feature_config` (see [`crate::features::feature_config_hash`]).
    pub feature_config_hash: String,
    /// Channel names it was trained on (any standard 10-05 electrode can be fed later).
    pub channel_vocabulary: Vec<String>,
    /// Tasks and their class names, in head order.
    pub tasks: Vec<TaskInfo>,
    /// Full task definitions.
    pub task_definitions: Vec<Task>,
    /// Subjects whose epochs trained the weights.
    pub training_subjects: Vec<String>,
    /// Subjects used for early stopping.
    pub validation_subjects: Vec<String>,
    /// Recordings (name and SHA-256) the training data came from.
    pub training_recordings: Vec<SourceFile>,
    /// Worker threads during training (results are reproducible for a given seed and count).
    pub threads: usize,
    /// Training outcome.
    pub metrics: EncoderMetrics,
    /// Per-pass training log.
    pub log: Vec<LogRow>,
    /// Frequencies of `population_spectrum`, Hz.
    #[serde(default)]
    pub spectrum_freqs: Vec<f64>,
    /// Mean log10 PSD of the training subjects (over epochs and channels), per frequency: the
    /// reference a subject's spectrum is plotted against.
    #[serde(default)]
    pub population_spectrum: Vec<f64>,
    /// SHA-256 of `population_reference.safetensors` (labelled training epochs as aligned
    /// tangent vectors, no identifiers), when saved.
    #[serde(default)]
    pub reference_sha256: Option<String>,
    /// SHA-256 of `model.safetensors`.
    pub weights_sha256: String,
    /// The encoder this one was grown from (`pretrain --from`), when it was.
    #[serde(default)]
    pub lineage: Option<Lineage>,
}

/// Where an encoder made by adding tasks to another one came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lineage {
    /// SHA-256 of the parent's `model.safetensors`.
    pub parent_weights_sha256: String,
    /// SHA-256 of the parent's `encoder.json`.
    pub parent_manifest_sha256: String,
    /// The parent's lineage, parent first, when it was itself grown from another.
    #[serde(default)]
    pub ancestors: Vec<String>,
    /// Tasks the parent had heads for.
    pub parent_tasks: Vec<String>,
    /// Subjects whose epochs trained the parent's weights.
    pub parent_training_subjects: Vec<String>,
    /// Tasks this encoder added.
    pub added_tasks: Vec<String>,
    /// Passes of self-supervised training continued on the new data (0: the encoder's weights
    /// are exactly the parent's).
    pub continued_ssl_passes: usize,
}

impl std::fmt::Display for Lineage {
    /// One line: what was added to which encoder, and whether the encoder changed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sha = &self.parent_weights_sha256;
        write!(
            f,
            "added {} to the encoder of {} (weights {}; encoder ",
            self.added_tasks.join(", "),
            self.parent_tasks.join(", "),
            sha.get(..12).unwrap_or(sha)
        )?;
        match self.continued_ssl_passes {
            0 => write!(f, "frozen)"),
            n => write!(f, "trained {n} more self-supervised passes)"),
        }
    }
}

fn io(path: &Path) -> impl Fn(&'static str, std::io::Error) -> PretrainError + '_ {
    move |action, source| PretrainError::Io {
        path: path.to_path_buf(),
        action,
        source,
    }
}

/// Writes weights, then the manifest (with the weights' hash), each through a temporary file.
pub fn save(
    dir: &Path,
    model: &PopulationModel,
    manifest: &mut EncoderManifest,
) -> Result<(), PretrainError> {
    std::fs::create_dir_all(dir).map_err(|e| io(dir)("cannot create folder", e))?;
    let weights = dir.join(WEIGHTS);
    // VarMap::save names the file itself: save beside, then rename into place.
    let tmp = dir.join(format!(".{WEIGHTS}.{}.tmp", std::process::id()));
    model.varmap.save(&tmp)?;
    std::fs::rename(&tmp, &weights).map_err(|e| io(&weights)("cannot rename into place", e))?;
    manifest.weights_sha256 = sha256_file(&weights)?;
    manifest.reference_sha256 = save_references(dir, model)?;
    let json = serde_json::to_vec_pretty(manifest).map_err(|e| PretrainError::Manifest {
        path: dir.join(MANIFEST),
        reason: e.to_string(),
    })?;
    let path = dir.join(MANIFEST);
    write_atomically(
        &path,
        |f| std::io::Write::write_all(f, &json).map_err(|e| io(&path)("cannot write", e)),
        io(&path),
    )
}

fn save_references(dir: &Path, model: &PopulationModel) -> Result<Option<String>, PretrainError> {
    let mut tensors = std::collections::HashMap::new();
    for (task, reference) in model.tasks.iter().zip(&model.references) {
        if let Some(r) = reference {
            // Half precision: the reference is the largest file of an encoder, and three
            // significant digits are more than a logistic regression on it can use.
            tensors.insert(
                format!("{}.tangent", task.name),
                r.tangent.to_dtype(candle_core::DType::F16)?,
            );
            tensors.insert(format!("{}.labels", task.name), r.labels.clone());
            tensors.insert(
                format!("{}.penalty", task.name),
                candle_core::Tensor::new(r.penalties.as_slice(), &candle_core::Device::Cpu)?,
            );
        }
    }
    if tensors.is_empty() {
        return Ok(None);
    }
    let path = dir.join(REFERENCE);
    let tmp = dir.join(format!(".{REFERENCE}.{}.tmp", std::process::id()));
    candle_core::safetensors::save(&tensors, &tmp)?;
    std::fs::rename(&tmp, &path).map_err(|e| io(&path)("cannot rename into place", e))?;
    Ok(Some(sha256_file(&path)?))
}

fn load_references(
    dir: &Path,
    model: &mut PopulationModel,
    expected_sha256: &str,
) -> Result<(), PretrainError> {
    let path = dir.join(REFERENCE);
    let sha = sha256_file(&path)?;
    if sha != expected_sha256 {
        return Err(PretrainError::Refused {
            path: dir.to_path_buf(),
            reason: format!("{REFERENCE} has SHA-256 {sha}, the manifest names {expected_sha256}"),
        });
    }
    let mut tensors = candle_core::safetensors::load(&path, &candle_core::Device::Cpu)?;
    for (task, slot) in model.tasks.iter().zip(model.references.iter_mut()) {
        let mut take = |what: &str| tensors.remove(&format!("{}.{what}", task.name));
        if let (Some(tangent), Some(labels), Some(penalty)) =
            (take("tangent"), take("labels"), take("penalty"))
        {
            *slot = Some(super::model::Reference {
                tangent: tangent.to_dtype(candle_core::DType::F32)?,
                labels,
                penalties: penalty.to_vec1::<f64>()?,
            });
        }
    }
    Ok(())
}

/// Reads `encoder.json` alone.
pub fn read_manifest(dir: &Path) -> Result<EncoderManifest, PretrainError> {
    let path = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&path).map_err(|e| io(&path)("cannot read", e))?;
    serde_json::from_str(&text).map_err(|e| PretrainError::Manifest {
        path,
        reason: e.to_string(),
    })
}

fn major_minor(version: &str) -> &str {
    version.rsplit_once('.').map_or(version, |(mm, _)| mm)
}

/// Loads an encoder, refusing it when the weights are not the ones the manifest describes, when
/// another minor version of this crate wrote it, or when `expected_feature_hash` (the consumer's
/// feature configuration) differs from the one it was trained with.
pub fn load(
    dir: &Path,
    expected_feature_hash: Option<&str>,
) -> Result<(PopulationModel, EncoderManifest), PretrainError> {
    let manifest = read_manifest(dir)?;
    let refuse = |reason: String| PretrainError::Refused {
        path: dir.to_path_buf(),
        reason,
    };
    if manifest.format_version != FORMAT_VERSION {
        return Err(refuse(format!(
            "manifest format {} (this build reads {FORMAT_VERSION})",
            manifest.format_version
        )));
    }
    let ours = env!("CARGO_PKG_VERSION");
    if major_minor(&manifest.crate_version) != major_minor(ours) {
        return Err(refuse(format!(
            "written by eegadapt {}, this is {ours}; retrain or use that version",
            manifest.crate_version
        )));
    }
    if let Some(expected) = expected_feature_hash {
        if expected != manifest.feature_config_hash {
            return Err(refuse(format!(
                "trained on features with config {}, these features have {expected}; compute them with the encoder's feature settings",
                manifest.feature_config_hash
            )));
        }
    }
    let weights: PathBuf = dir.join(WEIGHTS);
    let sha = sha256_file(&weights)?;
    if sha != manifest.weights_sha256 {
        return Err(refuse(format!(
            "{WEIGHTS} has SHA-256 {sha}, the manifest names {}; the files do not belong together",
            manifest.weights_sha256
        )));
    }
    let mut model = PopulationModel::build(
        VarMap::new(),
        &manifest.pretrain.encoder,
        &manifest.tasks,
        &manifest.channel_vocabulary,
    )?;
    model.varmap.load(&weights)?;
    if let Some(sha) = &manifest.reference_sha256 {
        load_references(dir, &mut model, sha)?;
    }
    Ok((model, manifest))
}
