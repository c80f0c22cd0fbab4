//! eegadapt: EEG recordings to personalized models.
//!
//! The pipeline, one module per stage: [`edf`] reads EDF/EDF+/BDF recordings into a
//! [`edf::Recording`]. Later stages (preprocessing, epochs, features, the population encoder,
//! per-subject calibration) build on it.
#![deny(missing_docs)]

pub mod edf;
pub mod montage;
pub mod epochs;
pub mod features;
pub mod task;
pub mod store;
