//! Preprocessing methods on [`Recording`]: the array functions applied per channel and per
//! contiguous segment (filtering across an EDF+D gap would smear one stretch into the next).

mod reference;
mod resample;

use std::ops::Range;

use crate::edf::{ChannelKind, Recording};
use crate::preprocess::bads::{detect_bad_channels, BadChannel, BadChannelConfig};
use crate::preprocess::butter::{butter_sos, FilterBand};
use crate::preprocess::error::{PreprocessError, Result};
use crate::preprocess::lfilter::filtfilt;
use crate::preprocess::notch::iirnotch;
use crate::preprocess::sosfilt_lanes::{sosfiltfilt_channels, sosfiltfilt_windows};

/// Kinds that [`Recording::filter`] and [`Recording::notch`] change; trigger and other
/// channels (event codes, respiration, ...) are left as they are.
pub const FILTERED_KINDS: [ChannelKind; 4] = [
    ChannelKind::Eeg,
    ChannelKind::Eog,
    ChannelKind::Emg,
    ChannelKind::Ecg,
];

impl Recording {
    /// Sample ranges of channel `index`, one per contiguous segment.
    fn segment_ranges(&self, index: usize) -> Result<Vec<Range<usize>>> {
        let (Some(channel), Some(data)) = (self.channels.get(index), self.data.get(index)) else {
            return Err(PreprocessError::ChannelOutOfRange {
                index,
                channels: self.channels.len(),
            });
        };
        if self.segments.is_empty() {
            return Ok(std::iter::once(0..data.len()).collect());
        }
        let spr = channel.samples_per_record;
        let mut ranges = Vec::with_capacity(self.segments.len());
        let mut end = 0;
        for s in &self.segments {
            let range = s.first_record * spr..(s.first_record + s.records) * spr;
            // Segments must tile the samples in order, or some would be dropped or repeated.
            if range.start != end {
                return Err(PreprocessError::RecordLayout(format!(
                    "segment starting at record {} does not follow the previous one",
                    s.first_record
                )));
            }
            end = range.end;
            ranges.push(range);
        }
        if end != data.len() {
            return Err(PreprocessError::LengthMismatch {
                index,
                expected: end,
                found: data.len(),
            });
        }
        Ok(ranges)
    }

    /// Applies `f` to each segment of each channel selected by `pick`; all results are computed
    /// before any is written, so an error leaves the recording unchanged.
    fn map_segments(
        &mut self,
        pick: impl Fn(usize) -> bool,
        f: impl Fn(usize, &[f64]) -> Result<Vec<f64>>,
    ) -> Result<()> {
        let mut results = Vec::new();
        for (index, data) in self.data.iter().enumerate() {
            if !pick(index) {
                continue;
            }
            let mut out = Vec::with_capacity(data.len());
            for range in self.segment_ranges(index)? {
                let x: Vec<f64> = data
                    .get(range)
                    .unwrap_or_default()
                    .iter()
                    .map(|&v| f64::from(v))
                    .collect();
                out.extend(f(index, &x)?.into_iter().map(|v| v as f32));
            }
            results.push((index, out));
        }
        for (index, out) in results {
            if let Some(slot) = self.data.get_mut(index) {
                *slot = out;
            }
        }
        Ok(())
    }

    fn is_filtered(&self, index: usize) -> bool {
        self.channels
            .get(index)
            .is_some_and(|c| FILTERED_KINDS.contains(&c.kind))
    }

    fn rate(&self, index: usize) -> f64 {
        self.channels.get(index).map_or(0.0, |c| c.sampling_rate_hz)
    }

    /// Applies a filter designed per sampling rate (`design`, once per distinct rate, before
    /// any data is touched) to each segment of the EEG, EOG, EMG and ECG channels.
    fn filter_with<D>(
        &mut self,
        design: impl Fn(f64) -> Result<D>,
        apply: impl Fn(&D, &[f64]) -> Result<Vec<f64>>,
    ) -> Result<()> {
        let filtered: Vec<bool> = (0..self.channels.len())
            .map(|i| self.is_filtered(i))
            .collect();
        let rates: Vec<f64> = (0..self.channels.len()).map(|i| self.rate(i)).collect();
        let mut designs: Vec<(f64, D)> = Vec::new();
        for (&fs, _) in rates.iter().zip(&filtered).filter(|(_, &f)| f) {
            if !designs.iter().any(|(r, _)| *r == fs) {
                designs.push((fs, design(fs)?));
            }
        }
        self.map_segments(
            |i| filtered.get(i).copied().unwrap_or(false),
            |i, x| {
                let fs = rates.get(i).copied().unwrap_or(0.0);
                match designs.iter().find(|(r, _)| *r == fs) {
                    Some((_, d)) => apply(d, x),
                    None => Ok(x.to_vec()),
                }
            },
        )
    }

    /// Zero-phase Butterworth filtering (`sosfiltfilt`, so the effective order is twice
    /// `order`) of the EEG, EOG, EMG and ECG channels, each segment separately.
    pub fn filter(&mut self, band: FilterBand, order: usize) -> Result<()> {
        for (index, out) in self.band_filtered(band, order)? {
            if let Some(slot) = self.data.get_mut(index) {
                *slot = out;
            }
        }
        Ok(())
    }

    /// A filtered copy, as cloning and then [`Recording::filter`], without first copying the
    /// samples the filter replaces.
    pub fn filtered(&self, band: FilterBand, order: usize) -> Result<Recording> {
        let mut data: Vec<Option<Vec<f32>>> = vec![None; self.data.len()];
        for (index, out) in self.band_filtered(band, order)? {
            if let Some(slot) = data.get_mut(index) {
                *slot = Some(out);
            }
        }
        let data = data
            .into_iter()
            .zip(&self.data)
            .map(|(new, old)| new.unwrap_or_else(|| old.clone()))
            .collect();
        Ok(self.with_data(data))
    }

    /// The windows `starts[w]..starts[w] + n_samples` of every channel of a filtered copy
    /// (as [`Recording::filtered`], f32 samples as f64), cut without building the copy: window
    /// `w` is channel-major, `out[w][c * n_samples + s]`. `None` when that shortcut does not
    /// apply: a channel the filter leaves alone, channels of different rates, or more than one
    /// segment.
    pub fn filtered_windows(
        &self,
        band: FilterBand,
        order: usize,
        starts: &[usize],
        n_samples: usize,
    ) -> Result<Option<Vec<Vec<f64>>>> {
        let Some(fs) = self.channels.first().map(|c| c.sampling_rate_hz) else {
            return Ok(None);
        };
        if self.data.len() != self.channels.len() {
            return Ok(None);
        }
        for i in 0..self.channels.len() {
            let whole = self.data.get(i).map_or(0, Vec::len);
            let one_segment = matches!(self.segment_ranges(i)?.as_slice(), [r] if *r == (0..whole));
            if !self.is_filtered(i) || self.rate(i) != fs || !one_segment {
                return Ok(None);
            }
        }
        let views: Vec<&[f32]> = self.data.iter().map(Vec::as_slice).collect();
        let sos = butter_sos(order, band, fs)?;
        sosfiltfilt_windows(&sos, &views, starts, n_samples).map(Some)
    }

    /// The filtered samples of the channels [`Recording::filter`] changes: channels with the
    /// same rate and segments go through the filter side by side ([`sosfiltfilt_channels`]),
    /// with the same result as one at a time.
    fn band_filtered(&self, band: FilterBand, order: usize) -> Result<Vec<(usize, Vec<f32>)>> {
        let picked: Vec<usize> = (0..self.channels.len())
            .filter(|&i| self.is_filtered(i))
            .collect();
        // Channels that can share a pass: same rate (so the same design), same segments.
        let mut groups: Vec<(f64, Vec<Range<usize>>, Vec<usize>)> = Vec::new();
        for &i in &picked {
            let (fs, ranges) = (self.rate(i), self.segment_ranges(i)?);
            match groups.iter_mut().find(|(r, s, _)| *r == fs && *s == ranges) {
                Some((_, _, members)) => members.push(i),
                None => groups.push((fs, ranges, vec![i])),
            }
        }
        let mut results = Vec::with_capacity(picked.len());
        for (fs, ranges, members) in groups {
            let sos = butter_sos(order, band, fs)?;
            let mut filtered: Vec<Vec<f32>> = vec![Vec::new(); members.len()];
            for range in ranges {
                let views: Vec<&[f32]> = members
                    .iter()
                    .map(|&i| {
                        self.data
                            .get(i)
                            .and_then(|d| d.get(range.clone()))
                            .unwrap_or_default()
                    })
                    .collect();
                let segment = sosfiltfilt_channels(&sos, &views)?;
                for (whole, part) in filtered.iter_mut().zip(segment) {
                    if whole.is_empty() {
                        *whole = part;
                    } else {
                        whole.extend(part);
                    }
                }
            }
            results.extend(members.into_iter().zip(filtered));
        }
        Ok(results)
    }

    /// Zero-phase notch (`iirnotch` + `filtfilt`) at `f0` Hz with quality `q` on the EEG, EOG,
    /// EMG and ECG channels, each segment separately.
    pub fn notch(&mut self, f0: f64, q: f64) -> Result<()> {
        self.filter_with(|fs| iirnotch(f0, q, fs), |(b, a), x| filtfilt(b, a, x))
    }

    /// Finds bad channels ([`detect_bad_channels`]) and adds their labels to `bads` (marked, not
    /// dropped); returns what was found.
    pub fn mark_bad_channels(&mut self, config: &BadChannelConfig) -> Result<Vec<BadChannel>> {
        let found = detect_bad_channels(self, config)?;
        for b in &found {
            if !self.bads.contains(&b.label) {
                self.bads.push(b.label.clone());
            }
        }
        Ok(found)
    }
}
