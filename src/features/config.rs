//! What the feature stage computes, serialisable so every artifact can carry it and its hash.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{default_bands, Band, Estimator};
use crate::epochs::Reject;
use crate::task::Task;

/// Feature configuration. Together with the task it fixes every number in a feature table;
/// its hash (see [`config_hash`]) tells consumers whether two tables are comparable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureConfig {
    /// Resample every recording to this rate first (Hz); `None` keeps the file's rate.
    pub resample_hz: Option<f64>,
    /// Notch out this line frequency (Hz) first; `None` for no notch.
    pub notch_hz: Option<f64>,
    /// Re-reference EEG channels to their common average first.
    pub average_reference: bool,
    /// Welch segment length, seconds.
    pub welch_segment_s: f64,
    /// Welch overlap as a fraction of the segment.
    pub welch_overlap: f64,
    /// Lowest frequency kept in the stored spectra, Hz (inclusive).
    pub fmin: f64,
    /// Highest frequency kept in the stored spectra, Hz (inclusive).
    pub fmax: f64,
    /// Bands for band powers.
    pub bands: Vec<Band>,
    /// Bands for band-limited covariances (each a zero-phase Butterworth band-pass of the whole
    /// recording before epoching, so epochs carry no filter edge).
    pub covariance_bands: Vec<Band>,
    /// Covariance estimator.
    pub covariance_estimator: Estimator,
    /// Butterworth order of the covariance band-passes.
    pub filter_order: usize,
    /// Amplitude limits for dropping epochs.
    pub reject: Reject,
    /// The slow, time-locked part of each epoch (see [`EvokedConfig`]); `None` to leave it out.
    #[serde(default)]
    pub evoked: Option<EvokedConfig>,
}

/// The epoch's slow waveform, time-locked to the event: a zero-phase Butterworth band-pass of the
/// whole recording, then one sample every `1 / rate_hz` seconds of the epoch window. What the
/// band-limited covariances cannot see (they discard the sign and timing of slow potentials).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvokedConfig {
    /// Band-pass low edge, Hz.
    pub lo_hz: f64,
    /// Band-pass high edge, Hz.
    pub hi_hz: f64,
    /// Output sampling rate, Hz (at least twice `hi_hz`).
    pub rate_hz: f64,
}

impl Default for EvokedConfig {
    fn default() -> Self {
        EvokedConfig {
            lo_hz: 0.5,
            hi_hz: 3.0,
            rate_hz: 8.0,
        }
    }
}

impl Default for FeatureConfig {
    fn default() -> Self {
        FeatureConfig {
            resample_hz: None,
            notch_hz: None,
            average_reference: false,
            welch_segment_s: 1.0,
            welch_overlap: 0.5,
            fmin: 1.0,
            fmax: 45.0,
            bands: default_bands(),
            covariance_bands: vec![Band::new("mu_beta", 8.0, 30.0), Band::new("slow", 1.0, 8.0)],
            covariance_estimator: Estimator::Oas,
            filter_order: 4,
            reject: Reject::default(),
            evoked: Some(EvokedConfig::default()),
        }
    }
}

/// Hex SHA-256 of the canonical JSON of the feature configuration and the task.
pub fn config_hash(config: &FeatureConfig, task: &Task) -> String {
    let canonical = serde_json::json!({ "features": config, "task": task });
    hex(&Sha256::digest(canonical.to_string().as_bytes()))
}

/// Hex SHA-256 of the canonical JSON of the feature configuration alone (no task): what a model
/// needs its inputs to agree on, whatever task labelled them.
pub fn feature_config_hash(config: &FeatureConfig) -> String {
    hex(&Sha256::digest(
        serde_json::json!(config).to_string().as_bytes(),
    ))
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_changes_with_config_and_task() {
        let task = Task::resolve("eegmmidb-lr").unwrap();
        let a = config_hash(&FeatureConfig::default(), &task);
        assert_eq!(a, config_hash(&FeatureConfig::default(), &task));
        let other = FeatureConfig {
            fmax: 40.0,
            ..FeatureConfig::default()
        };
        assert_ne!(a, config_hash(&other, &task));
        assert_ne!(
            a,
            config_hash(
                &FeatureConfig::default(),
                &Task::resolve("eegmmidb-ff").unwrap()
            )
        );
    }
}
