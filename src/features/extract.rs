//! From a recording to its feature rows: pick EEG, preprocess, epoch, Welch, bands, covariances.

use serde::{Deserialize, Serialize};

use super::config::config_hash;
use super::{
    band_powers, covariance_of_rows, EvokedConfig, FeatureConfig, FeatureError, Welch, WelchConfig,
};
use crate::edf::{ChannelKind, Recording};
use crate::epochs::{make_epochs_at, window_start, Dropped, Epochs, Window};
use crate::preprocess::FilterBand;
use crate::task::{RecordingId, Task};

/// Floor under PSD values before the logarithm, so a flat channel gives a finite (very low)
/// log power instead of minus infinity.
const PSD_FLOOR: f64 = 1e-20;

/// Features of one epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureRow {
    /// Subject identifier.
    pub subject: String,
    /// Recording name.
    pub recording: String,
    /// Run number, when known.
    pub run: Option<u32>,
    /// Index of the epoch within its recording.
    pub epoch: usize,
    /// Onset of the event, seconds from the first sample.
    pub onset_s: f64,
    /// Class index (`None`: unlabelled).
    pub label: Option<usize>,
    /// log10 PSD, channel-major: `[channel * freqs + k]`, unit^2/Hz.
    pub log_psd: Vec<f64>,
    /// log10 absolute band power (mean PSD in the band), `[channel * bands + b]`.
    pub log_band_power: Vec<f64>,
    /// Relative band power, `[channel * bands + b]`.
    pub rel_band_power: Vec<f64>,
    /// One row-major `channels x channels` covariance per covariance band.
    pub covariances: Vec<Vec<f64>>,
    /// The slow time-locked waveform, `[channel * times + t]` in the recording's unit (empty
    /// when the configuration has no evoked part).
    pub evoked: Vec<f64>,
}

/// A source file a feature set was computed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFile {
    /// File name (no folder; empty when de-identified).
    pub name: String,
    /// SHA-256 of the file's bytes.
    pub sha256: String,
}

/// Everything needed to interpret and trust a feature table: written as its JSON sidecar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureMeta {
    /// Version of the crate that wrote it.
    pub crate_version: String,
    /// The task.
    pub task: Task,
    /// The feature configuration.
    pub config: FeatureConfig,
    /// Hash of task and configuration (see [`config_hash`]).
    pub config_hash: String,
    /// Sampling rate after preprocessing, Hz.
    pub sfreq: f64,
    /// Channel names, in feature order.
    pub channels: Vec<String>,
    /// Frequencies of the stored spectra, Hz.
    pub freqs: Vec<f64>,
    /// Times of the evoked samples, seconds from the event (empty without an evoked part).
    #[serde(default)]
    pub evoked_times: Vec<f64>,
    /// Source files.
    pub sources: Vec<SourceFile>,
    /// Channels marked bad and left out.
    pub bad_channels: Vec<String>,
    /// Epochs dropped, and why.
    pub drop_log: Vec<Dropped>,
    /// True when subject identifiers were replaced by pseudonyms and file names removed.
    pub deidentified: bool,
}

/// Feature rows and their metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureSet {
    /// Metadata (the sidecar).
    pub meta: FeatureMeta,
    /// One row per epoch.
    pub rows: Vec<FeatureRow>,
}

/// Computes the features of one recording for a task.
pub fn extract(
    recording: &Recording,
    id: &RecordingId,
    task: &Task,
    config: &FeatureConfig,
) -> Result<FeatureSet, FeatureError> {
    extract_owned(recording.clone(), id, task, config, None)
}

/// [`extract`] of a recording the caller no longer needs (its samples are moved, not copied), at
/// the given epoch windows when there are some (see [`crate::epochs::make_epochs_at`]).
pub(crate) fn extract_owned(
    mut recording: Recording,
    id: &RecordingId,
    task: &Task,
    config: &FeatureConfig,
    windows: Option<&[Window]>,
) -> Result<FeatureSet, FeatureError> {
    let keep = eeg_channels(&recording, id)?;
    let data = std::mem::take(&mut recording.data);
    recording.data = data
        .into_iter()
        .enumerate()
        .filter(|(i, _)| keep.contains(i))
        .map(|(_, d)| d)
        .collect();
    recording.channels = keep
        .iter()
        .filter_map(|&i| recording.channels.get(i).cloned())
        .collect();
    extract_eeg(recording, id, task, config, windows)
}

/// The EEG channels of `recording` not marked bad; an error when there are none.
fn eeg_channels(recording: &Recording, id: &RecordingId) -> Result<Vec<usize>, FeatureError> {
    let keep: Vec<usize> = (0..recording.channels.len())
        .filter(|&i| {
            recording.channels[i].kind == ChannelKind::Eeg
                && !recording.bads.contains(&recording.channels[i].label)
        })
        .collect();
    if keep.is_empty() {
        return Err(FeatureError::NoEeg(id.recording.clone()));
    }
    Ok(keep)
}

/// The features of `eeg`, a recording of EEG channels only (its `bads` those of the recording it
/// was taken from).
fn extract_eeg(
    mut eeg: Recording,
    id: &RecordingId,
    task: &Task,
    config: &FeatureConfig,
    windows: Option<&[Window]>,
) -> Result<FeatureSet, FeatureError> {
    if let Some(f0) = config.notch_hz {
        eeg.notch(f0, 30.0)?;
    }
    if let Some(rate) = config.resample_hz {
        eeg.resample(rate)?;
    }
    if config.average_reference {
        eeg.set_average_reference()?;
    }
    let picks: Vec<usize> = (0..eeg.channels.len()).collect();
    let epochs = make_epochs_at(&eeg, id, task, &picks, &config.reject, windows)?;
    let fs = epochs.sfreq;
    let segment = (config.welch_segment_s * fs).round() as usize;
    let overlap = (config.welch_overlap * segment as f64).round() as usize;
    let mut welch = Welch::new(
        WelchConfig {
            nperseg: segment,
            noverlap: overlap,
        },
        fs,
    )?;
    let all_freqs = welch.frequencies();
    let kept: Vec<usize> = (0..all_freqs.len())
        .filter(|&k| all_freqs[k] >= config.fmin && all_freqs[k] <= config.fmax)
        .collect();
    let mut rows = spectral_rows(&epochs, &mut welch, &all_freqs, &kept, config)?;
    let n_samples = epochs.n_samples;
    let onsets: Vec<f64> = rows.iter().map(|r| r.onset_s).collect();
    let band_windows =
        |band: (f64, f64)| band_windows(&eeg, &epochs, &onsets, band, config, (id, task, windows));
    let n = eeg.channels.len();
    for band in &config.covariance_bands {
        for (row, x) in rows.iter_mut().zip(band_windows((band.lo, band.hi))?) {
            let estimator = config.covariance_estimator;
            row.covariances
                .push(covariance_of_rows(x, n, n_samples, estimator));
        }
    }
    let mut evoked_times = Vec::new();
    if let Some(evoked) = &config.evoked {
        let step = evoked_step(evoked, fs)?;
        evoked_times = (0..n_samples)
            .step_by(step)
            .map(|i| epochs.tmin + i as f64 / fs)
            .collect();
        for (row, x) in rows
            .iter_mut()
            .zip(band_windows((evoked.lo_hz, evoked.hi_hz))?)
        {
            row.evoked = x
                .chunks_exact(n_samples)
                .flat_map(|channel| channel.iter().step_by(step).copied())
                .collect();
        }
    }
    Ok(FeatureSet {
        meta: FeatureMeta {
            crate_version: env!("CARGO_PKG_VERSION").to_string(),
            task: task.clone(),
            config: config.clone(),
            config_hash: config_hash(config, task),
            sfreq: fs,
            channels: epochs.channels.clone(),
            freqs: kept.iter().map(|&k| all_freqs[k]).collect(),
            evoked_times,
            sources: Vec::new(),
            bad_channels: eeg.bads.clone(),
            drop_log: epochs.drop_log.clone(),
            deidentified: false,
        },
        rows,
    })
}

/// The epoch at each of `onsets` (the rows') of a zero-phase band-pass of the whole recording (so epochs carry no filter
/// edge), channel-major in f64 (`[c * n_samples + s]`, through f32 as filtered recordings hold
/// it). The windows are cut straight from the filter's output where
/// [`Recording::filtered_windows`] applies, else from a filtered copy, epoched without amplitude
/// rejection (that used the unfiltered data).
fn band_windows(
    eeg: &Recording,
    epochs: &Epochs,
    onsets: &[f64],
    (lo, hi): (f64, f64),
    config: &FeatureConfig,
    (id, task, windows): (&RecordingId, &Task, Option<&[Window]>),
) -> Result<Vec<Vec<f64>>, FeatureError> {
    let band = FilterBand::Bandpass(lo, hi);
    let n_samples = epochs.n_samples;
    let starts: Option<Vec<usize>> = eeg
        .channels
        .first()
        .map(|c| (c.sampling_rate_hz, c.samples_per_record))
        .and_then(|layout| {
            onsets
                .iter()
                .map(|&t| window_start(eeg, layout, epochs.tmin, n_samples, t).ok())
                .collect()
        });
    if let Some(starts) = starts {
        if let Some(cut) = eeg.filtered_windows(band, config.filter_order, &starts, n_samples)? {
            return Ok(cut);
        }
    }
    let filtered = eeg.filtered(band, config.filter_order)?;
    let picks: Vec<usize> = (0..eeg.channels.len()).collect();
    let reject = crate::epochs::Reject::default();
    let band_epochs = make_epochs_at(&filtered, id, task, &picks, &reject, windows)?;
    onsets
        .iter()
        .map(|&onset_s| {
            let k = matching_epoch(&band_epochs, onset_s)?;
            Ok((0..band_epochs.channels.len())
                .flat_map(|c| band_epochs.channel(k, c).iter().map(|&v| f64::from(v)))
                .collect())
        })
        .collect()
}

/// Index of the epoch of `epochs` with this onset: same events, same windows.
fn matching_epoch(epochs: &Epochs, onset_s: f64) -> Result<usize, FeatureError> {
    epochs
        .sources
        .iter()
        .position(|s| s.onset_s == onset_s)
        .ok_or_else(|| {
            FeatureError::Config(format!("epoch at {onset_s} s missing after band-pass"))
        })
}

/// Samples to step over per evoked sample at sampling rate `fs`.
fn evoked_step(evoked: &EvokedConfig, fs: f64) -> Result<usize, FeatureError> {
    let step = (fs / evoked.rate_hz).round();
    if step.is_nan()
        || step < 1.0
        || evoked.rate_hz < 2.0 * evoked.hi_hz
        || evoked.lo_hz >= evoked.hi_hz
    {
        return Err(FeatureError::Config(format!(
            "evoked part: band {}-{} Hz at {} Hz from a recording sampled at {fs} Hz \
             (need lo < hi, rate >= 2 x hi and rate <= the sampling rate)",
            evoked.lo_hz, evoked.hi_hz, evoked.rate_hz
        )));
    }
    Ok(step as usize)
}

fn spectral_rows(
    epochs: &Epochs,
    welch: &mut Welch,
    freqs: &[f64],
    kept: &[usize],
    config: &FeatureConfig,
) -> Result<Vec<FeatureRow>, FeatureError> {
    let n_channels = epochs.channels.len();
    let mut psd = vec![0.0; welch.n_freqs()];
    let mut x = vec![0.0; epochs.n_samples];
    let mut rows = Vec::with_capacity(epochs.len());
    for e in 0..epochs.len() {
        let mut row = FeatureRow {
            subject: epochs.sources[e].subject.clone(),
            recording: epochs.sources[e].recording.clone(),
            run: epochs.sources[e].run,
            epoch: e,
            onset_s: epochs.sources[e].onset_s,
            label: epochs.labels[e],
            log_psd: Vec::with_capacity(n_channels * kept.len()),
            log_band_power: Vec::with_capacity(n_channels * config.bands.len()),
            rel_band_power: Vec::with_capacity(n_channels * config.bands.len()),
            covariances: Vec::new(),
            evoked: Vec::new(),
        };
        for c in 0..n_channels {
            for (o, &v) in x.iter_mut().zip(epochs.channel(e, c)) {
                *o = f64::from(v);
            }
            welch.psd_into(&x, &mut psd)?;
            row.log_psd
                .extend(kept.iter().map(|&k| psd[k].max(PSD_FLOOR).log10()));
            let (absolute, relative) = band_powers(freqs, &psd, &config.bands);
            row.log_band_power
                .extend(absolute.iter().map(|p| p.max(PSD_FLOOR).log10()));
            row.rel_band_power.extend(relative);
        }
        rows.push(row);
    }
    Ok(rows)
}
