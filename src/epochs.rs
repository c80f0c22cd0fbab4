//! Cutting a recording into epochs for a task, with a log of every epoch that was dropped.

use serde::{Deserialize, Serialize};

use crate::edf::Recording;
use crate::task::{RecordingId, Task};

/// Why epochs cannot be made at all (individual epochs are dropped, not errors).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EpochError {
    /// The chosen channels do not share one sampling rate.
    #[error("{recording}: channels {first} ({first_rate} Hz) and {other} ({other_rate} Hz) differ in rate; resample first")]
    MixedRates {
        /// Recording name.
        recording: String,
        /// First channel.
        first: String,
        /// Its rate.
        first_rate: f64,
        /// A channel with another rate.
        other: String,
        /// Its rate.
        other_rate: f64,
    },
    /// No channel to cut.
    #[error("{0}: no channels selected")]
    NoChannels(String),
    /// The window holds no sample.
    #[error("{0}: the epoch window holds no sample at this rate")]
    EmptyWindow(String),
}

/// Amplitude limits for dropping epochs (peak-to-peak, in the channels' physical unit).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Reject {
    /// Drop an epoch where any channel's peak-to-peak exceeds this.
    pub max_ptp: Option<f64>,
    /// Drop an epoch where any channel's peak-to-peak is below this (flat).
    pub min_ptp: Option<f64>,
}

/// Why an epoch was dropped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum DropReason {
    /// The window runs past the end of the data.
    TooShort,
    /// The window overlaps a gap between EDF+D segments (or lies outside all segments).
    InGap,
    /// A channel's peak-to-peak exceeds `Reject::max_ptp`.
    Amplitude {
        /// Channel name.
        channel: String,
        /// Its peak-to-peak.
        ptp: f64,
    },
    /// A channel's peak-to-peak is below `Reject::min_ptp`.
    Flat {
        /// Channel name.
        channel: String,
        /// Its peak-to-peak.
        ptp: f64,
    },
}

/// One entry of the drop log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dropped {
    /// Onset of the event (or window) that was dropped, seconds.
    pub onset_s: f64,
    /// The annotation text, for event epochs.
    pub text: Option<String>,
    /// Why.
    #[serde(flatten)]
    pub reason: DropReason,
}

/// Where an epoch came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochSource {
    /// Subject identifier.
    pub subject: String,
    /// Recording name.
    pub recording: String,
    /// Run number, when known.
    pub run: Option<u32>,
    /// Onset of the event (or window start), seconds from the first sample.
    pub onset_s: f64,
}

/// Epochs of one or more recordings: `[epoch][channel][sample]`, labels (or none), provenance.
#[derive(Debug, Clone, PartialEq)]
pub struct Epochs {
    /// Task name.
    pub task: String,
    /// Class names in index order.
    pub classes: Vec<String>,
    /// Channel names (standard name where known, else the label).
    pub channels: Vec<String>,
    /// Sampling rate in Hz.
    pub sfreq: f64,
    /// Samples per epoch and channel.
    pub n_samples: usize,
    /// Window start relative to the event, seconds.
    pub tmin: f64,
    /// Samples, epoch-major: `data[(e * channels + c) * n_samples + s]`.
    pub data: Vec<f32>,
    /// Class index of each epoch (`None`: unlabelled).
    pub labels: Vec<Option<usize>>,
    /// Provenance of each epoch.
    pub sources: Vec<EpochSource>,
    /// Epochs that were dropped, and why.
    pub drop_log: Vec<Dropped>,
}

impl Epochs {
    /// Number of epochs.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when no epoch was kept.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The samples of one channel of one epoch.
    pub fn channel(&self, epoch: usize, channel: usize) -> &[f32] {
        let start = (epoch * self.channels.len() + channel) * self.n_samples;
        self.data.get(start..start + self.n_samples).unwrap_or(&[])
    }
}

/// Candidate window: event onset, text and label, start and length in seconds relative to it.
/// One window a task asks for: its event's onset, text and class.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// Seconds from the start of the recording (the event, or a fixed window's start).
    pub onset_s: f64,
    /// The annotation text (none for fixed windows).
    pub text: Option<String>,
    /// Class index (none: unlabelled).
    pub label: Option<usize>,
}

/// Cuts `recording` into the task's epochs using the channels `picks` (indices into
/// `recording.channels`; EEG channels not marked bad is the usual choice).
pub fn make_epochs(
    recording: &Recording,
    id: &RecordingId,
    task: &Task,
    picks: &[usize],
    reject: &Reject,
) -> Result<Epochs, EpochError> {
    make_epochs_at(recording, id, task, picks, reject, None)
}

/// [`make_epochs`] at the given `windows` (onsets in this recording's time) instead of the ones
/// the task finds in it: for a piece of a longer recording, whose windows were found in the whole.
pub fn make_epochs_at(
    recording: &Recording,
    id: &RecordingId,
    task: &Task,
    picks: &[usize],
    reject: &Reject,
    windows: Option<&[Window]>,
) -> Result<Epochs, EpochError> {
    let name = id.recording.clone();
    let first = picks
        .first()
        .and_then(|&i| recording.channels.get(i))
        .ok_or_else(|| EpochError::NoChannels(name.clone()))?;
    let fs = first.sampling_rate_hz;
    if let Some(other) = picks
        .iter()
        .filter_map(|&i| recording.channels.get(i))
        .find(|c| c.sampling_rate_hz != fs)
    {
        return Err(EpochError::MixedRates {
            recording: name,
            first: first.label.clone(),
            first_rate: fs,
            other: other.label.clone(),
            other_rate: other.sampling_rate_hz,
        });
    }
    let samples_per_record = first.samples_per_record;
    let (tmin, length_s, found) = task_windows(recording, id, task);
    let candidates = match windows {
        Some(given) => given.to_vec(),
        None => found,
    };
    let n_samples = (length_s * fs).round() as usize;
    if n_samples == 0 {
        return Err(EpochError::EmptyWindow(name));
    }
    let channels: Vec<String> = picks
        .iter()
        .filter_map(|&i| recording.channels.get(i))
        .map(|c| c.name.clone().unwrap_or_else(|| c.label.clone()))
        .collect();
    let mut epochs = Epochs {
        task: task.name.clone(),
        classes: task.classes.clone(),
        channels,
        sfreq: fs,
        n_samples,
        tmin,
        data: Vec::new(),
        labels: Vec::new(),
        sources: Vec::new(),
        drop_log: Vec::new(),
    };
    // One allocation for every epoch that may be kept, rather than a doubling copy per epoch.
    epochs
        .data
        .reserve_exact(candidates.len() * picks.len() * n_samples);
    for c in candidates {
        let drop = |reason| Dropped {
            onset_s: c.onset_s,
            text: c.text.clone(),
            reason,
        };
        let layout = (fs, samples_per_record);
        let start = match window_start(recording, layout, tmin, n_samples, c.onset_s) {
            Ok(start) => start,
            Err(reason) => {
                epochs.drop_log.push(drop(reason));
                continue;
            }
        };
        let window: Vec<&[f32]> = picks
            .iter()
            .map(|&i| {
                recording
                    .data
                    .get(i)
                    .and_then(|d| d.get(start..start + n_samples))
                    .unwrap_or(&[])
            })
            .collect();
        if let Some(reason) = amplitude_problem(&window, &epochs.channels, reject) {
            epochs.drop_log.push(drop(reason));
            continue;
        }
        for w in &window {
            epochs.data.extend_from_slice(w);
        }
        epochs.labels.push(c.label);
        epochs.sources.push(EpochSource {
            subject: id.subject.clone(),
            recording: id.recording.clone(),
            run: id.run,
            onset_s: c.onset_s,
        });
    }
    Ok(epochs)
}

/// First sample of the window from `onset_s + tmin` for `n_samples` in channels sampled at `fs`
/// with `samples_per_record` per record (`layout`), or why it has none: it starts in a gap
/// between segments, or runs past its segment's end.
pub(crate) fn window_start(
    recording: &Recording,
    (fs, samples_per_record): (f64, usize),
    tmin: f64,
    n_samples: usize,
    onset_s: f64,
) -> Result<usize, DropReason> {
    let data_end = recording.segments.last().map_or(0.0, |s| s.end_s());
    let start_s = onset_s + tmin;
    let segment = recording
        .segments
        .iter()
        .find(|s| start_s >= s.onset_s - 0.5 / fs && start_s < s.end_s());
    let Some(segment) = segment else {
        return Err(if start_s >= data_end {
            DropReason::TooShort
        } else {
            DropReason::InGap
        });
    };
    // Sample of the event, then the window offset, each rounded (as MNE and the references do).
    let base = segment.first_record * samples_per_record;
    let event = ((onset_s - segment.onset_s) * fs).round() as i64;
    let start = base as i64 + event + (tmin * fs).round() as i64;
    let segment_end = base + segment.records * samples_per_record;
    if start < base as i64 || start as usize + n_samples > segment_end {
        let past_data = segment.end_s() >= data_end - 0.5 / fs;
        return Err(if past_data {
            DropReason::TooShort
        } else {
            DropReason::InGap
        });
    }
    Ok(start as usize)
}

/// The windows a task asks for in a recording (its annotations and segments; the samples are
/// not read): `(tmin, length_s, windows)`, each window from `onset_s + tmin` for `length_s`.
pub fn task_windows(
    recording: &Recording,
    id: &RecordingId,
    task: &Task,
) -> (f64, f64, Vec<Window>) {
    if !task.events.is_empty() {
        let list = recording
            .annotations
            .iter()
            .filter_map(|a| {
                task.class_of_text(&a.text).map(|label| Window {
                    onset_s: a.onset_s,
                    text: Some(a.text.clone()),
                    label: Some(label),
                })
            })
            .collect();
        return (task.tmin, task.tmax - task.tmin, list);
    }
    let Some(fixed) = &task.fixed else {
        return (0.0, 0.0, Vec::new());
    };
    let label = task.class_of_run(id.run);
    let mut list = Vec::new();
    for s in &recording.segments {
        let count = ((s.duration_s - fixed.length_s) / fixed.step_s + 1e-9).floor();
        for k in 0..(count.max(-1.0) + 1.0) as usize {
            list.push(Window {
                onset_s: s.onset_s + k as f64 * fixed.step_s,
                text: None,
                label,
            });
        }
    }
    (0.0, fixed.length_s, list)
}

fn amplitude_problem(window: &[&[f32]], names: &[String], reject: &Reject) -> Option<DropReason> {
    for (w, name) in window.iter().zip(names) {
        let (lo, hi) = w
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        let ptp = f64::from(hi - lo);
        if reject.max_ptp.is_some_and(|max| ptp > max) {
            return Some(DropReason::Amplitude {
                channel: name.clone(),
                ptp,
            });
        }
        if reject.min_ptp.is_some_and(|min| ptp < min) {
            return Some(DropReason::Flat {
                channel: name.clone(),
                ptp,
            });
        }
    }
    None
}
