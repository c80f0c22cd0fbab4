//! Re-referencing a whole recording (EEG channels only; bad channels stay out of the mean).

use crate::edf::{ChannelKind, Recording};
use crate::preprocess::error::{PreprocessError, Result};
use crate::preprocess::picks::matches_name;
use crate::preprocess::reference::mean_over;

impl Recording {
    /// Indices of EEG channels, and of those not marked bad.
    fn eeg_indices(&self) -> (Vec<usize>, Vec<usize>) {
        let eeg: Vec<usize> = (0..self.channels.len())
            .filter(|&i| self.channels[i].kind == ChannelKind::Eeg)
            .collect();
        let good = eeg
            .iter()
            .copied()
            .filter(|&i| !self.bads.contains(&self.channels[i].label))
            .collect();
        (eeg, good)
    }

    /// Re-references the EEG channels to their common average: the mean over the EEG channels
    /// not marked bad is subtracted from every EEG channel (bad ones included, so that all stay
    /// on one reference, as MNE does).
    pub fn set_average_reference(&mut self) -> Result<()> {
        let (eeg, good) = self.eeg_indices();
        if good.is_empty() {
            return Err(PreprocessError::NoChannels("average-reference"));
        }
        let n = self.equal_length(&eeg)?;
        let rows: Vec<Vec<f64>> = good
            .iter()
            .filter_map(|&i| self.data.get(i))
            .map(|x| x.iter().map(|&v| f64::from(v)).collect())
            .collect();
        let mean = mean_over(rows.iter().map(Vec::as_slice), n, rows.len());
        self.subtract(&eeg, &mean);
        Ok(())
    }

    /// Re-references the other EEG channels to the channel named `name` (label or normalized
    /// name, case-insensitive), which is left as it was.
    pub fn set_reference_channel(&mut self, name: &str) -> Result<()> {
        let reference = self
            .channels
            .iter()
            .position(|c| matches_name(c, name))
            .ok_or_else(|| PreprocessError::MissingChannels(vec![name.to_string()]))?;
        let (eeg, _) = self.eeg_indices();
        let targets: Vec<usize> = eeg.into_iter().filter(|&i| i != reference).collect();
        let mut all = targets.clone();
        all.push(reference);
        self.equal_length(&all)?;
        let r: Vec<f64> = self
            .data
            .get(reference)
            .map(|x| x.iter().map(|&v| f64::from(v)).collect())
            .unwrap_or_default();
        self.subtract(&targets, &r);
        Ok(())
    }

    fn equal_length(&self, indices: &[usize]) -> Result<usize> {
        let len = |i: usize| self.data.get(i).map_or(0, Vec::len);
        let n = indices.first().map_or(0, |&i| len(i));
        match indices.iter().find(|&&i| len(i) != n) {
            Some(&index) => Err(PreprocessError::LengthMismatch {
                index,
                expected: n,
                found: len(index),
            }),
            None => Ok(n),
        }
    }

    fn subtract(&mut self, indices: &[usize], reference: &[f64]) {
        for &i in indices {
            if let Some(x) = self.data.get_mut(i) {
                for (v, r) in x.iter_mut().zip(reference) {
                    *v = (f64::from(*v) - r) as f32;
                }
            }
        }
    }
}
