//! Bad channel detection: flat, constant, high-amplitude and outlying channels.
//!
//! Thresholds are in microvolts for channels with a voltage unit (V, mV, uV, nV) and in the
//! channel's own physical unit otherwise. Channels are marked, never dropped.

use crate::edf::{ChannelKind, Recording};

use super::error::{PreprocessError, Result};

/// Settings of [`detect_bad_channels`].
#[derive(Debug, Clone, PartialEq)]
pub struct BadChannelConfig {
    /// Kinds of channel examined; the robust z-score compares channels of these kinds.
    pub kinds: Vec<ChannelKind>,
    /// A standard deviation below this is flat (uV).
    pub flat_std: f64,
    /// A run of identical consecutive samples at least this long (seconds) is flat
    /// (disconnected or saturated electrode).
    pub flat_run_s: f64,
    /// A typical peak-to-peak amplitude (the median over windows of
    /// [`amplitude_window_s`](Self::amplitude_window_s)) above this is a bad channel (uV).
    /// The median, because a few blinks or movements spoil a stretch of time, not a channel.
    pub max_peak_to_peak: f64,
    /// Window length for the peak-to-peak amplitude (seconds).
    pub amplitude_window_s: f64,
    /// A robust z-score above this is an outlier: the log of the channel's typical standard
    /// deviation (median over the same windows) against the median and the scaled median
    /// absolute deviation of that over the examined channels. Logarithms because channel
    /// amplitudes spread multiplicatively (eyes-closed alpha makes occipital channels loud
    /// but not bad); one-sided because quiet channels are caught by the flat checks.
    pub max_robust_z: f64,
}

impl Default for BadChannelConfig {
    fn default() -> Self {
        Self {
            kinds: vec![ChannelKind::Eeg],
            flat_std: 1e-3,
            flat_run_s: 5.0,
            max_peak_to_peak: 500.0,
            amplitude_window_s: 1.0,
            max_robust_z: 5.0,
        }
    }
}

/// Why a channel was marked bad.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum BadReason {
    /// Standard deviation (uV) below [`BadChannelConfig::flat_std`].
    Flat {
        /// The channel's standard deviation.
        std: f64,
    },
    /// The longest run of identical samples, in seconds, reached
    /// [`BadChannelConfig::flat_run_s`].
    Constant {
        /// Length of the run in seconds.
        seconds: f64,
    },
    /// Median windowed peak-to-peak amplitude (uV) above
    /// [`BadChannelConfig::max_peak_to_peak`].
    HighAmplitude {
        /// The channel's median windowed peak-to-peak amplitude.
        peak_to_peak: f64,
    },
    /// Robust z-score of the typical standard deviation above
    /// [`BadChannelConfig::max_robust_z`].
    Outlier {
        /// The z-score.
        z: f64,
    },
}

/// A channel found bad.
#[derive(Debug, Clone, PartialEq)]
pub struct BadChannel {
    /// Index in the recording's channels.
    pub index: usize,
    /// The channel's label.
    pub label: String,
    /// The first reason found (flat, constant, high amplitude, outlier, in that order).
    pub reason: BadReason,
}

/// Microvolts per unit for voltage units; 1 for anything else (thresholds then apply as is).
fn microvolts_per_unit(unit: &str) -> f64 {
    match unit.trim() {
        "V" | "v" => 1e6,
        "mV" | "mv" => 1e3,
        "nV" | "nv" => 1e-3,
        _ => 1.0,
    }
}

struct Stats {
    std: f64,
    typical_std: f64,
    peak_to_peak: f64,
    longest_run: usize,
}

fn std_of(w: &[f32]) -> f64 {
    let n = w.len().max(1) as f64;
    let mean = w.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    (w.iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n)
        .sqrt()
}

fn peak_to_peak(w: &[f32]) -> f64 {
    let (lo, hi) = w
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    f64::from(hi) - f64::from(lo)
}

/// Statistics of one channel, scaled by `scale` (to microvolts), over windows of `window`.
fn stats(x: &[f32], scale: f64, window: usize) -> Stats {
    let windows = x.chunks(window.max(1));
    let (mut longest, mut run) = (0, 0);
    let mut prev: Option<f32> = None;
    for &v in x {
        run = if prev == Some(v) { run + 1 } else { 1 };
        longest = longest.max(run);
        prev = Some(v);
    }
    Stats {
        std: std_of(x) * scale,
        typical_std: median(windows.clone().map(std_of).collect()).unwrap_or(0.0) * scale,
        peak_to_peak: median(windows.map(peak_to_peak).collect()).unwrap_or(0.0) * scale,
        longest_run: longest,
    }
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => v.get(n / 2).copied(),
        _ => Some((v.get(n / 2 - 1)? + v.get(n / 2)?) / 2.0),
    }
}

fn check(name: &'static str, value: f64) -> Result<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(PreprocessError::InvalidThreshold { name, value })
    }
}

/// Channels of the configured kinds that are flat, constant for long, of excessive typical
/// amplitude, or whose standard deviation is a high outlier among them; in channel order.
pub fn detect_bad_channels(
    recording: &Recording,
    config: &BadChannelConfig,
) -> Result<Vec<BadChannel>> {
    check("flat_std", config.flat_std)?;
    check("flat_run_s", config.flat_run_s)?;
    check("max_peak_to_peak", config.max_peak_to_peak)?;
    check("amplitude_window_s", config.amplitude_window_s)?;
    check("max_robust_z", config.max_robust_z)?;
    let examined: Vec<(usize, Stats, f64)> = recording
        .channels
        .iter()
        .zip(&recording.data)
        .enumerate()
        .filter(|(_, (c, _))| config.kinds.contains(&c.kind))
        .map(|(i, (c, x))| {
            let window = (config.amplitude_window_s * c.sampling_rate_hz).round() as usize;
            let s = stats(x, microvolts_per_unit(&c.unit), window);
            (i, s, c.sampling_rate_hz)
        })
        .collect();
    // Robust z of the log typical (median windowed) std, over the channels that are not flat:
    // windowed, so that blinks on frontal channels do not make them outliers.
    let live: Vec<f64> = examined
        .iter()
        .filter(|(_, s, _)| s.std >= config.flat_std)
        .map(|(_, s, _)| s.typical_std.ln())
        .filter(|s| s.is_finite())
        .collect();
    let center = median(live.clone());
    let spread = center
        .and_then(|m| median(live.iter().map(|s| (s - m).abs()).collect()))
        .map(|mad| 1.4826 * mad);
    let mut bads = Vec::new();
    for (index, s, fs) in examined {
        let run_s = if fs > 0.0 {
            s.longest_run as f64 / fs
        } else {
            0.0
        };
        let reason = if s.std.is_nan() || s.std < config.flat_std {
            Some(BadReason::Flat { std: s.std })
        } else if run_s >= config.flat_run_s {
            Some(BadReason::Constant { seconds: run_s })
        } else if s.peak_to_peak > config.max_peak_to_peak {
            Some(BadReason::HighAmplitude {
                peak_to_peak: s.peak_to_peak,
            })
        } else {
            match (center, spread) {
                (Some(m), Some(d)) if d > 0.0 => {
                    let z = (s.typical_std.ln() - m) / d;
                    (z > config.max_robust_z).then_some(BadReason::Outlier { z })
                }
                _ => None,
            }
        };
        if let Some(reason) = reason {
            let label = recording
                .channels
                .get(index)
                .map(|c| c.label.clone())
                .unwrap_or_default();
            bads.push(BadChannel {
                index,
                label,
                reason,
            });
        }
    }
    Ok(bads)
}
