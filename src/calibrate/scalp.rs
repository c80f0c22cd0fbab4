//! Scalp maps of a calibration: where on the head the mu and beta power differ between the two
//! first classes, and where the chosen model's decision follows the signal.

use std::path::{Path, PathBuf};

use super::{CalibrateError, Calibrated};
use crate::features::FeatureRow;
use crate::plots::{self, ScalpPanel};
use crate::pretrain::PopulationModel;

/// The mu band, Hz (inclusive).
pub const MU: (f64, f64) = (8.0, 13.0);
/// The beta band, Hz (inclusive).
pub const BETA: (f64, f64) = (13.0, 30.0);
/// The band whose power the model pattern correlates with, Hz (inclusive).
const SENSORIMOTOR: (f64, f64) = (8.0, 30.0);

/// log10 of the mean power of each channel in `band`, from a row's log10 PSD (`None` when no
/// frequency bin falls in the band or the row's spectrum has another shape).
pub fn band_log_power(row: &FeatureRow, freqs: &[f64], band: (f64, f64)) -> Option<Vec<f64>> {
    let bins: Vec<usize> = freqs
        .iter()
        .enumerate()
        .filter(|(_, &f)| f >= band.0 && f <= band.1)
        .map(|(k, _)| k)
        .collect();
    if bins.is_empty() || freqs.is_empty() || !row.log_psd.len().is_multiple_of(freqs.len()) {
        return None;
    }
    Some(
        row.log_psd
            .chunks(freqs.len())
            .map(|spectrum| {
                let mean =
                    bins.iter().map(|&k| 10f64.powf(spectrum[k])).sum::<f64>() / bins.len() as f64;
                mean.log10()
            })
            .collect(),
    )
}

/// Per channel: mean over class `b`'s epochs minus mean over class `a`'s, in dB (10 log10), of
/// the channel's power in `band` (`None` when either class has no epoch).
pub fn class_difference_db(
    rows: &[&FeatureRow],
    freqs: &[f64],
    band: (f64, f64),
    a: usize,
    b: usize,
) -> Option<Vec<f64>> {
    let mut sums: [Option<Vec<f64>>; 2] = [None, None];
    let mut counts = [0usize; 2];
    for row in rows {
        let Some(side) = row.label.and_then(|l| [a, b].iter().position(|&c| c == l)) else {
            continue;
        };
        let Some(power) = band_log_power(row, freqs, band) else {
            continue;
        };
        let sum = sums[side].get_or_insert_with(|| vec![0.0; power.len()]);
        if sum.len() != power.len() {
            continue;
        }
        for (s, p) in sum.iter_mut().zip(&power) {
            *s += p;
        }
        counts[side] += 1;
    }
    let [Some(sa), Some(sb)] = &sums else {
        return None;
    };
    let (na, nb) = (counts[0] as f64, counts[1] as f64);
    Some(
        sa.iter()
            .zip(sb)
            .map(|(x, y)| 10.0 * (y / nb - x / na))
            .collect(),
    )
}

/// Pearson correlation of `x` and `y` (0 when either is constant).
fn correlation(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len().min(y.len()) as f64;
    if n < 2.0 {
        return 0.0;
    }
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx).powi(2);
        syy += (b - my).powi(2);
    }
    if sxx <= 0.0 || syy <= 0.0 {
        0.0
    } else {
        sxy / (sxx * syy).sqrt()
    }
}

/// The model's activation pattern (Haufe et al. 2014, in correlation form): per channel, the
/// correlation over the labelled epochs between the channel's 8-30 Hz log power and the model's
/// score for class `b` over class `a` (log-probability difference). It says where the decision
/// follows the signal, whatever the model's form.
pub fn model_pattern(
    calibrated: &Calibrated,
    population: &PopulationModel,
    rows: &[&FeatureRow],
    freqs: &[f64],
    (a, b): (usize, usize),
) -> Result<Option<Vec<f64>>, CalibrateError> {
    let labelled: Vec<&FeatureRow> = rows.iter().copied().filter(|r| r.label.is_some()).collect();
    let powers: Vec<Vec<f64>> = labelled
        .iter()
        .filter_map(|r| band_log_power(r, freqs, SENSORIMOTOR))
        .collect();
    if powers.len() != labelled.len() || powers.len() < 3 {
        return Ok(None);
    }
    let probabilities = calibrated.probabilities(population, &labelled)?;
    let score: Vec<f64> = probabilities
        .iter()
        .map(|p| {
            let at = |k: usize| p.get(k).copied().unwrap_or(0.0).max(1e-12).ln();
            at(b) - at(a)
        })
        .collect();
    let channels = powers[0].len();
    Ok(Some(
        (0..channels)
            .map(|c| {
                let x: Vec<f64> = powers.iter().map(|p| p[c]).collect();
                correlation(&x, &score)
            })
            .collect(),
    ))
}

/// Writes `scalp_maps.svg/png` under `dir`: the mu and beta class differences and the model
/// pattern, for the task's first two classes. Nothing is written for a task with fewer classes.
pub fn write_scalp_maps(
    dir: &Path,
    population: &PopulationModel,
    calibrated: &Calibrated,
    classes: &[String],
    rows: &[&FeatureRow],
    freqs: &[f64],
) -> Result<Vec<PathBuf>, CalibrateError> {
    let (Some(first), Some(second)) = (classes.first(), classes.get(1)) else {
        return Ok(Vec::new());
    };
    let labelled: Vec<&FeatureRow> = rows.iter().copied().filter(|r| r.label.is_some()).collect();
    let named = |values: Vec<f64>| -> Vec<(String, f64)> {
        calibrated.channels.iter().cloned().zip(values).collect()
    };
    let mut panels = Vec::new();
    for (name, band) in [("mu", MU), ("beta", BETA)] {
        if let Some(diff) = class_difference_db(&labelled, freqs, band, 0, 1) {
            panels.push(ScalpPanel {
                title: format!("{name} {}-{} Hz: {second} - {first}", band.0, band.1),
                unit: "power difference (dB)".into(),
                values: named(diff),
            });
        }
    }
    if let Some(pattern) = model_pattern(calibrated, population, &labelled, freqs, (0, 1))? {
        panels.push(ScalpPanel {
            title: format!("model: {second} vs {first} score"),
            unit: "correlation with 8-30 Hz power".into(),
            values: named(pattern),
        });
    }
    if panels.is_empty() {
        return Ok(Vec::new());
    }
    plots::scalp_maps(
        &dir.join("scalp_maps"),
        "Calibration data seen from above (nose up, left ear left)",
        &panels,
    )
    .map_err(|e| CalibrateError::Refused(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(label: usize, log_psd: Vec<f64>) -> FeatureRow {
        FeatureRow {
            subject: "S".into(),
            recording: "r".into(),
            run: None,
            epoch: 0,
            onset_s: 0.0,
            label: Some(label),
            log_psd,
            log_band_power: Vec::new(),
            rel_band_power: Vec::new(),
            covariances: Vec::new(),
            evoked: Vec::new(),
        }
    }

    #[test]
    fn class_difference_is_in_decibels_per_channel() {
        let freqs = [5.0, 10.0, 20.0];
        // Two channels; class 1 has ten times the 10 Hz power on channel 0 only.
        let a = row(0, vec![0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        let b = row(1, vec![0.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
        let diff = class_difference_db(&[&a, &b], &freqs, MU, 0, 1).unwrap();
        assert!(
            (diff[0] - 10.0).abs() < 1e-9 && diff[1].abs() < 1e-9,
            "{diff:?}"
        );
        let beta = class_difference_db(&[&a, &b], &freqs, BETA, 0, 1).unwrap();
        assert!(beta.iter().all(|d| d.abs() < 1e-9));
        assert!(class_difference_db(&[&a], &freqs, MU, 0, 1).is_none());
    }

    #[test]
    fn correlation_is_one_for_a_linear_relation_and_zero_for_a_constant() {
        assert!((correlation(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]) - 1.0).abs() < 1e-12);
        assert!((correlation(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        assert_eq!(correlation(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]), 0.0);
    }
}
