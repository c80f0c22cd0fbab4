//! Spectral features per epoch: Welch log power spectra per channel, band powers (absolute and
//! relative), and band-limited channel covariances.

mod bands;
mod config;
mod covariance;
mod extract;
mod from_file;
pub mod pieces;
mod welch;

pub use bands::{band_power, band_powers, default_bands, Band};
pub use config::{config_hash, feature_config_hash, hex, EvokedConfig, FeatureConfig};
pub use covariance::{covariance, covariance_of_rows, Estimator};
pub use extract::{extract, FeatureMeta, FeatureRow, FeatureSet, SourceFile};
pub use from_file::{features_from_file, pieces_of_file, pieces_of_file_with, Pieced};
pub use welch::{welch, Welch, WelchConfig};

/// Why features cannot be computed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FeatureError {
    /// A parameter that cannot work with the data.
    #[error("feature configuration: {0}")]
    Config(String),
    /// The recording has no usable EEG channel.
    #[error("{0}: no EEG channel left to compute features from")]
    NoEeg(String),
    /// The recording cannot be read.
    #[error(transparent)]
    Edf(#[from] crate::edf::EdfError),
    /// Preprocessing failed.
    #[error(transparent)]
    Preprocess(#[from] crate::preprocess::PreprocessError),
    /// Epoching failed.
    #[error(transparent)]
    Epochs(#[from] crate::epochs::EpochError),
    /// A BIDS name or sidecar of the recording is unusable.
    #[error(transparent)]
    Bids(#[from] crate::bids::BidsError),
}
