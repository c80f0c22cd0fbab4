//! eegadapt: EEG recordings to personalized models.
//!
//! The pipeline, one module per stage, each depending only on the ones before it:
//! [`edf`] reads EDF/EDF+/BDF recordings into a [`edf::Recording`]; [`preprocess`] filters,
//! resamples, re-references and marks bad channels; [`task`] says what to learn from which
//! recordings and [`epochs`] cuts them accordingly; [`features`] computes spectra, band powers and
//! covariances; [`store`] keeps feature tables as Parquet with a JSON sidecar; [`encoder`] and
//! [`pretrain`] make the population model; [`calibrate`] personalizes it to one subject,
//! [`predict`] applies that to new recordings, [`report`] writes the subject's report and
//! [`batch`] does all of it for every subject of a clinic's manifest. [`pipeline`] runs the stages
//! from files, as the `eegadapt` binary does; library users call the same functions.
#![deny(missing_docs)]

pub mod align;
pub mod allocator;
pub mod atomic;
pub mod batch;
pub mod bench;
pub mod bids;
pub mod calibrate;
pub mod edf;
pub mod encoder;
pub mod epochs;
pub mod features;
pub mod montage;
pub mod pipeline;
pub mod plots;
pub mod predict;
pub mod preprocess;
pub mod pretrain;
pub mod report;
pub mod store;
pub mod task;
