//! Errors of the preprocessing stage.

use thiserror::Error;

/// Result with a [`PreprocessError`].
pub type Result<T> = std::result::Result<T, PreprocessError>;

/// Why a preprocessing step refused its input.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum PreprocessError {
    /// Filter order outside 1..=16.
    #[error("filter order {order} is not in 1..=16")]
    InvalidOrder {
        /// The order asked for.
        order: usize,
    },
    /// A sampling rate that is not a positive finite number.
    #[error("sampling rate {fs} Hz is not a positive finite number")]
    InvalidSamplingRate {
        /// The rate given.
        fs: f64,
    },
    /// A critical frequency outside (0, fs/2).
    #[error(
        "frequency {freq} Hz is not between 0 and the Nyquist frequency {nyquist} Hz (exclusive)"
    )]
    FrequencyOutOfRange {
        /// The frequency given.
        freq: f64,
        /// Half the sampling rate.
        nyquist: f64,
    },
    /// A band whose lower edge is not below its upper edge.
    #[error("band {low}..{high} Hz: the lower edge must be below the upper edge")]
    InvalidBand {
        /// Lower edge.
        low: f64,
        /// Upper edge.
        high: f64,
    },
    /// A notch quality factor that is not a positive finite number.
    #[error("quality factor {q} is not a positive finite number")]
    InvalidQuality {
        /// The quality factor given.
        q: f64,
    },
    /// Filter coefficients that cannot be used (empty, all-zero denominator, `a0 != 1` in a
    /// section).
    #[error("invalid filter coefficients: {0}")]
    InvalidCoefficients(String),
    /// Initial conditions of the wrong shape.
    #[error("initial conditions have {found} values, the filter needs {expected}")]
    InvalidInitialConditions {
        /// Values the filter needs.
        expected: usize,
        /// Values given.
        found: usize,
    },
    /// A signal not longer than the padding a forward-backward filter needs.
    #[error("signal of {len} samples is too short: it must be longer than the padding ({padlen} samples)")]
    SignalTooShort {
        /// Samples in the signal.
        len: usize,
        /// Samples of padding on each side.
        padlen: usize,
    },
    /// Resampling factors of zero.
    #[error("resampling factors up = {up}, down = {down} must both be at least 1")]
    InvalidResampleFactors {
        /// Up-sampling factor.
        up: usize,
        /// Down-sampling factor.
        down: usize,
    },
    /// A rate ratio that needs up or down factors above 1000.
    #[error("resampling {from_hz} Hz to {to_hz} Hz needs a ratio with terms above 1000")]
    RatioTooComplex {
        /// Original rate.
        from_hz: f64,
        /// Target rate.
        to_hz: f64,
    },
    /// Channels (or a channel and the record layout) whose lengths disagree.
    #[error("channel {index} has {found} samples, expected {expected}")]
    LengthMismatch {
        /// Index of the offending channel.
        index: usize,
        /// Samples expected.
        expected: usize,
        /// Samples found.
        found: usize,
    },
    /// A window of samples that does not fit the signal.
    #[error("window of {n_samples} samples from sample {start} does not fit {len} samples")]
    WindowOutOfRange {
        /// First sample of the window.
        start: usize,
        /// Samples in the window.
        n_samples: usize,
        /// Samples in the signal.
        len: usize,
    },
    /// A channel index past the end.
    #[error("channel index {index} is out of range ({channels} channels)")]
    ChannelOutOfRange {
        /// Index given.
        index: usize,
        /// Number of channels.
        channels: usize,
    },
    /// Requested channels that the recording does not have.
    #[error("channels not found: {}", .0.join(", "))]
    MissingChannels(Vec<String>),
    /// An operation that needs all channels at one rate met several.
    #[error("channels have different sampling rates ({0:?} Hz); pick channels of one rate first")]
    MixedSamplingRates(Vec<f64>),
    /// An operation that needs channels found none.
    #[error("no channels to {0}")]
    NoChannels(&'static str),
    /// The record layout cannot describe the result (e.g. fractional samples per record).
    #[error("record layout: {0}")]
    RecordLayout(String),
    /// A linear system without a unique solution (filter with a pole at z = 1).
    #[error("filter has no steady state (singular system for the initial conditions)")]
    Singular,
    /// Detection thresholds that are not positive finite numbers.
    #[error("invalid threshold {name} = {value}")]
    InvalidThreshold {
        /// Name of the setting.
        name: &'static str,
        /// Value given.
        value: f64,
    },
}
