//! eegadapt: EEG recordings to personalized models.
//!
//! The pipeline, one module per stage: [`edf`] reads EDF/EDF+/BDF recordings into a
//! [`edf::Recording`]; [`preprocess`] filters, resamples, re-references and marks bad channels.
//! Later stages (epochs, features, the population encoder, per-subject calibration) build on it.
#![deny(missing_docs)]

pub mod edf;
pub mod montage;
pub mod preprocess;
