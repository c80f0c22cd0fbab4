//! Resampling a whole recording: one rate for all channels, record layout kept consistent.

use crate::edf::{ChannelKind, Recording};
use crate::preprocess::error::{PreprocessError, Result};
use crate::preprocess::resample::{gcd, resample_factors, resample_poly};

impl Recording {
    /// Resamples every channel to `to_hz` (all channels must share one rate), each segment
    /// separately: polyphase ([`resample_poly`]) for signals, sample-and-hold keeping the
    /// largest code per output sample for trigger channels (a low-pass would smear event
    /// codes). Updates rates, sample counts and samples per record; when a record would hold
    /// a fractional number of samples, records are merged in groups that hold a whole number.
    pub fn resample(&mut self, to_hz: f64) -> Result<()> {
        let from_hz = self.common_rate()?;
        let (up, down) = resample_factors(from_hz, to_hz)?;
        if up == down {
            return Ok(());
        }
        let spr = self.channels.first().map_or(0, |c| c.samples_per_record);
        // Records per group so that a group holds a whole number of output samples.
        let group = down / gcd(spr * up, down);
        if group > 1
            && (!self.records.is_multiple_of(group)
                || self
                    .segments
                    .iter()
                    .any(|s| s.first_record % group != 0 || s.records % group != 0))
        {
            return Err(PreprocessError::RecordLayout(format!(
                "{spr} samples per record at {from_hz} Hz give a fractional number per record at \
                 {to_hz} Hz, and the segments cannot be regrouped into whole records of {group}"
            )));
        }
        let stim: Vec<bool> = self
            .channels
            .iter()
            .map(|c| c.kind == ChannelKind::Stim)
            .collect();
        self.map_segments(
            |_| true,
            |i, x| {
                if stim.get(i).copied().unwrap_or(false) {
                    Ok(hold_resample(x, up, down))
                } else {
                    resample_poly(x, up, down)
                }
            },
        )?;
        let new_spr = group * spr * up / down;
        if group > 1 {
            self.records /= group;
            self.record_duration_s *= group as f64;
            for s in &mut self.segments {
                s.first_record /= group;
                s.records /= group;
            }
        }
        for (c, x) in self.channels.iter_mut().zip(&self.data) {
            c.sampling_rate_hz = to_hz;
            c.samples_per_record = new_spr;
            c.samples = x.len();
        }
        Ok(())
    }

    /// The one sampling rate of all channels.
    fn common_rate(&self) -> Result<f64> {
        let first = self
            .channels
            .first()
            .ok_or(PreprocessError::NoChannels("resample"))?;
        let mut rates: Vec<f64> = Vec::new();
        for c in &self.channels {
            if !rates
                .iter()
                .any(|r| (r - c.sampling_rate_hz).abs() <= 1e-9 * r.abs())
            {
                rates.push(c.sampling_rate_hz);
            }
        }
        if rates.len() > 1
            || self
                .channels
                .iter()
                .any(|c| c.samples_per_record != first.samples_per_record)
        {
            return Err(PreprocessError::MixedSamplingRates(rates));
        }
        Ok(first.sampling_rate_hz)
    }
}

/// Resampling for event codes: each output sample takes the input sample of largest magnitude
/// among those it covers (so a one-sample trigger survives), else the last one before it.
fn hold_resample(x: &[f64], up: usize, down: usize) -> Vec<f64> {
    let n_out = (x.len() * up).div_ceil(down);
    (0..n_out)
        .map(|k| {
            let lo = (k * down).div_ceil(up);
            let hi = ((k + 1) * down).div_ceil(up).min(x.len());
            match x.get(lo..hi).filter(|w| !w.is_empty()) {
                Some(w) => w
                    .iter()
                    .copied()
                    .fold(0.0, |m: f64, v| if v.abs() > m.abs() { v } else { m }),
                None => x.get((k * down) / up).copied().unwrap_or(0.0),
            }
        })
        .collect()
}
