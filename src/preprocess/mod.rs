//! Preprocessing: filtering, resampling, re-referencing, channel picking, bad channels.
//!
//! Two layers, as in MNE: pure functions on arrays (`&[f64]` in, `Vec<f64>` out) that
//! reproduce scipy.signal ([`butter_sos`], [`sosfiltfilt`], [`iirnotch`], [`filtfilt`],
//! [`resample_poly`]), and methods on [`Recording`](crate::edf::Recording) that apply them per
//! channel and per contiguous segment (`filter`, `notch`, `resample`, `set_average_reference`,
//! `mark_bad_channels`). Arithmetic is f64; recordings keep f32 samples.

mod bads;
mod butter;
mod complex;
mod error;
mod lane_tiles;
mod lfilter;
mod linalg;
mod notch;
mod pad;
mod picks;
mod recording;
mod reference;
mod resample;
mod sosfilt;
mod sosfilt_lanes;
mod window;
mod zpk;

pub use bads::{detect_bad_channels, BadChannel, BadChannelConfig, BadReason};
pub use butter::{butter_sos, FilterBand, MAX_ORDER};
pub use error::{PreprocessError, Result};
pub use lfilter::{filtfilt, lfilter, lfilter_zi};
pub use notch::iirnotch;
pub use picks::{pick_channels, pick_indices, Picks};
pub use recording::FILTERED_KINDS;
pub use reference::{channel_reference, common_average_reference};
pub use resample::{resample_factors, resample_poly, resample_to, MAX_FACTOR};
pub use sosfilt::{sosfilt, sosfilt_zi, sosfiltfilt, sosfiltfilt_padlen};
pub use sosfilt_lanes::sosfiltfilt_channels;
pub use window::{bessel_i0, firwin_kaiser, kaiser};
