//! Applying a subject model to new recordings: per-epoch classes and probabilities, and, when
//! the recordings carry the task's labels, the scores a clinician or a benchmark reads.

use serde::{Deserialize, Serialize};

use crate::align::select_channels;
use crate::calibrate::{CalibrateError, LoadedSubject, SubjectManifest};
use crate::features::{FeatureRow, FeatureSet};

/// Why a recording cannot be scored by a subject model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PredictError {
    /// The recording's channels or rate cannot be brought to what the model needs.
    #[error("{file}: the model cannot read this recording: {reason}")]
    Incompatible {
        /// The recording.
        file: String,
        /// What differs.
        reason: String,
    },
    /// The model failed.
    #[error(transparent)]
    Model(#[from] CalibrateError),
}

/// One scored epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochPrediction {
    /// Recording file name.
    pub file: String,
    /// Event onset, seconds from the recording's first sample.
    pub onset_s: f64,
    /// Predicted class name.
    pub predicted: String,
    /// Probability of each class, in class order.
    pub probabilities: Vec<f64>,
    /// True class name, when the recording carries it.
    pub label: Option<String>,
}

/// Scores of predictions against labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    /// Labelled epochs scored.
    pub n_epochs: usize,
    /// Fraction correct.
    pub accuracy: f64,
    /// Mean per-class recall (classes with labelled epochs only).
    pub balanced_accuracy: f64,
    /// Cohen's kappa.
    pub kappa: f64,
    /// Counts `[true][predicted]`.
    pub confusion: Vec<Vec<usize>>,
}

/// Scores of `(true, predicted)` class pairs; `None` when there are none.
pub fn scores(pairs: &[(usize, usize)], n_classes: usize) -> Option<Scores> {
    if pairs.is_empty() || n_classes == 0 {
        return None;
    }
    let mut confusion = vec![vec![0usize; n_classes]; n_classes];
    for &(t, p) in pairs {
        if let Some(cell) = confusion.get_mut(t).and_then(|r| r.get_mut(p)) {
            *cell += 1;
        }
    }
    let n = pairs.len() as f64;
    let correct: usize = (0..n_classes).map(|c| confusion[c][c]).sum();
    let accuracy = correct as f64 / n;
    let recalls: Vec<f64> = (0..n_classes)
        .filter_map(|c| {
            let total: usize = confusion[c].iter().sum();
            (total > 0).then(|| confusion[c][c] as f64 / total as f64)
        })
        .collect();
    let balanced_accuracy = recalls.iter().sum::<f64>() / recalls.len().max(1) as f64;
    let expected: f64 = (0..n_classes)
        .map(|c| {
            let row: usize = confusion[c].iter().sum();
            let col: usize = confusion.iter().map(|r| r[c]).sum();
            row as f64 * col as f64 / (n * n)
        })
        .sum();
    let kappa = if (1.0 - expected).abs() < 1e-12 {
        if accuracy == 1.0 {
            1.0
        } else {
            0.0
        }
    } else {
        (accuracy - expected) / (1.0 - expected)
    };
    Some(Scores {
        n_epochs: pairs.len(),
        accuracy,
        balanced_accuracy,
        kappa,
        confusion,
    })
}

/// Index of the largest value (the first on ties; 0 for an empty slice).
pub fn argmax(values: &[f64]) -> usize {
    values
        .iter()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |best, (i, &v)| {
            if v > best.1 {
                (i, v)
            } else {
                best
            }
        })
        .0
}

/// The rows of a feature set in the model's channel order, or why that cannot be done.
pub fn conform(
    set: &FeatureSet,
    manifest: &SubjectManifest,
) -> Result<Vec<FeatureRow>, PredictError> {
    let file = set
        .meta
        .sources
        .first()
        .map_or_else(|| "recording".to_string(), |s| s.name.clone());
    let incompatible = |reason: String| PredictError::Incompatible {
        file: file.clone(),
        reason,
    };
    if set.meta.freqs.len() != manifest.layout.freqs {
        return Err(incompatible(format!(
            "sampled at {} Hz, its spectra have {} bins where the model needs {} (calibrated at {} Hz); resample the recording",
            set.meta.sfreq,
            set.meta.freqs.len(),
            manifest.layout.freqs,
            manifest.sfreq
        )));
    }
    // The evoked view's length follows the window and the rate: the subject's head has weights
    // for the calibration's length only.
    if set.meta.evoked_times.len() != manifest.layout.evoked {
        return Err(incompatible(format!(
            "its epochs give {} evoked samples per channel where the model needs {} (task {}, \
             calibrated at {} Hz); use the model's task and resample the recording",
            set.meta.evoked_times.len(),
            manifest.layout.evoked,
            manifest.task.name,
            manifest.sfreq
        )));
    }
    let missing: Vec<&str> = manifest
        .channels
        .iter()
        .filter(|c| !set.meta.channels.contains(c))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(incompatible(format!(
            "lacks channel(s) {} that the model was calibrated with (or they were marked bad)",
            missing.join(", ")
        )));
    }
    let keep: Vec<usize> = manifest
        .channels
        .iter()
        .filter_map(|c| set.meta.channels.iter().position(|m| m == c))
        .collect();
    let layout = crate::align::RowLayout {
        channels: set.meta.channels.len(),
        ..manifest.layout
    };
    Ok(set
        .rows
        .iter()
        .map(|r| select_channels(r, layout, &keep))
        .collect())
}

/// Predictions for every epoch of `set` (already conformed rows in `rows`).
pub fn predict_rows(
    subject: &LoadedSubject,
    file: &str,
    rows: &[FeatureRow],
) -> Result<Vec<EpochPrediction>, PredictError> {
    let refs: Vec<&FeatureRow> = rows.iter().collect();
    if refs.is_empty() {
        return Ok(Vec::new());
    }
    let probabilities = subject
        .calibrated
        .probabilities(&subject.population, &refs)?;
    let classes = subject.manifest.classes();
    let name = |i: usize| classes.get(i).cloned().unwrap_or_else(|| i.to_string());
    Ok(rows
        .iter()
        .zip(probabilities)
        .map(|(row, p)| {
            let best = argmax(&p);
            EpochPrediction {
                file: file.to_string(),
                onset_s: row.onset_s,
                predicted: name(best),
                probabilities: p,
                label: row.label.map(name),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_match_hand_computed_values() {
        // 3 of class 0 (2 right), 1 of class 1 (right).
        let s = scores(&[(0, 0), (0, 0), (0, 1), (1, 1)], 2).unwrap();
        assert_eq!(s.n_epochs, 4);
        assert!((s.accuracy - 0.75).abs() < 1e-12);
        assert!((s.balanced_accuracy - (2.0 / 3.0 + 1.0) / 2.0).abs() < 1e-12);
        // p_o = 0.75, p_e = (3*2 + 1*2) / 16 = 0.5, kappa = 0.5.
        assert!((s.kappa - 0.5).abs() < 1e-12);
        assert_eq!(s.confusion, vec![vec![2, 1], vec![0, 1]]);
        assert!(scores(&[], 2).is_none());
    }
}
