//! Pretraining the population encoder: self-supervised masked-channel reconstruction on every
//! epoch (labelled or not), then supervised task heads, with early stopping on held-out subjects.

mod artifact;
pub mod dataset;
mod evaluate;
mod extend;
pub mod logistic;
pub mod logreg;
mod model;
pub mod rng;
mod split;
mod tangent_fit;
mod train;
pub mod views;

pub use artifact::{
    load, read_manifest, save, EncoderManifest, EncoderMetrics, Lineage, FORMAT_VERSION, MANIFEST,
    WEIGHTS,
};
pub use dataset::{group, group_after, heads_of, Dataset, Grouped, Sample, SubjectData, TaskInfo};
pub use evaluate::{population_scores, predict, SubjectScore};
pub use extend::extend;
pub use model::{
    make_batch, reinitialize, set_tensor, tangent_vectors, Batch, PopulationModel, Reference,
};
pub use split::{split_validation, train_subjects};
pub use tangent_fit::{fit_tangent_heads, HeadChoice, ENCODER_SCALES, PENALTIES};
pub use train::{evaluate as validation_metrics, train, LogRow, PretrainConfig, Trained};

use std::path::PathBuf;

/// Why pretraining, saving or loading failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PretrainError {
    /// No feature tables or no labelled epochs.
    #[error("no training data")]
    NoData,
    /// A subject named on the command line has no epochs.
    #[error("subject {0} has no epochs in the data")]
    UnknownSubject(String),
    /// Inputs that cannot be trained together.
    #[error("{0}")]
    Mismatch(String),
    /// A file-system error.
    #[error("{}: {action}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// The manifest cannot be parsed or written.
    #[error("{}: invalid encoder manifest: {reason}", path.display())]
    Manifest {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// An encoder that does not fit what it is asked to do.
    #[error("{}: encoder refused: {reason}", path.display())]
    Refused {
        /// The encoder folder.
        path: PathBuf,
        /// What differs.
        reason: String,
    },
    /// Alignment failed.
    #[error(transparent)]
    Align(#[from] crate::align::AlignError),
    /// The model failed.
    #[error(transparent)]
    Encoder(#[from] crate::encoder::EncoderError),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// Reading a file's hash failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}
