//! Per-subject alignment without labels: every subject's feature distribution is brought to a
//! common reference using only that subject's own (unlabelled) epochs.
//!
//! - Channel tokens: each channel's features (log spectrum, log band powers, relative band
//!   powers) are centred by the subject's mean for that channel and feature, and scaled by the
//!   subject's spread of that feature (pooled over channels). What remains is how an epoch
//!   differs from the subject's usual state, which is what transfers between people.
//! - Covariances: re-centred by the subject's log-Euclidean mean covariance `R` (as Euclidean
//!   alignment, He & Wu 2020, re-centres by the arithmetic mean) and mapped to the tangent space
//!   at the identity, `S = logm(R^-1/2 C R^-1/2)`
//!   (Barachant et al. 2012; Zanini et al. 2018), so that an epoch's spatial structure is
//!   expressed relative to the subject's own.
//!
//! The statistics come from whatever epochs the caller passes to [`SubjectAlignment::fit`];
//! the benchmark passes the calibration run only, never the test runs.

pub mod linalg;

use serde::{Deserialize, Serialize};

use crate::features::FeatureRow;

/// Floor of the standard deviation used for scaling, in feature units (log10 power is O(1)).
const MIN_SCALE: f64 = 1e-3;
/// Eigenvalues below this fraction of the largest are floored before inverse roots and logs.
const RELATIVE_EIGEN_FLOOR: f64 = 1e-9;

/// Why alignment statistics cannot be computed or applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AlignError {
    /// No epochs to compute statistics from.
    #[error("no epochs to align with for subject {0}")]
    NoEpochs(String),
    /// Feature rows of another shape than the alignment was fitted on.
    #[error("feature row has {found} values in {what}, expected {expected}")]
    Shape {
        /// Which part of the row.
        what: &'static str,
        /// Expected length.
        expected: usize,
        /// Found length.
        found: usize,
    },
}

/// Layout of a feature row: how many channels, spectrum bins and bands it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowLayout {
    /// Channels.
    pub channels: usize,
    /// Spectrum bins per channel.
    pub freqs: usize,
    /// Bands per channel.
    pub bands: usize,
}

impl RowLayout {
    /// Features per channel token: spectrum bins, log band powers, relative band powers.
    pub fn token_features(&self) -> usize {
        self.freqs + 2 * self.bands
    }

    /// One channel's raw token features from a row.
    fn raw_token(&self, row: &FeatureRow, channel: usize, out: &mut Vec<f64>) {
        let psd = &row.log_psd[channel * self.freqs..(channel + 1) * self.freqs];
        let band = &row.log_band_power[channel * self.bands..(channel + 1) * self.bands];
        let rel = &row.rel_band_power[channel * self.bands..(channel + 1) * self.bands];
        out.extend_from_slice(psd);
        out.extend_from_slice(band);
        out.extend_from_slice(rel);
    }

    fn check(&self, row: &FeatureRow) -> Result<(), AlignError> {
        let expect = |what, expected: usize, found: usize| {
            if expected == found {
                Ok(())
            } else {
                Err(AlignError::Shape {
                    what,
                    expected,
                    found,
                })
            }
        };
        expect("log_psd", self.channels * self.freqs, row.log_psd.len())?;
        expect(
            "log_band_power",
            self.channels * self.bands,
            row.log_band_power.len(),
        )?;
        expect(
            "rel_band_power",
            self.channels * self.bands,
            row.rel_band_power.len(),
        )?;
        if let Some(c) = row.covariances.first() {
            expect("covariance", self.channels * self.channels, c.len())?;
        }
        Ok(())
    }
}

/// A subject's alignment statistics for one channel set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubjectAlignment {
    /// Row layout the statistics belong to.
    pub layout: RowLayout,
    /// Mean of each channel's token features, `[channel * features + k]`.
    pub token_mean: Vec<f64>,
    /// Spread of each token feature, pooled over channels.
    pub token_scale: Vec<f64>,
    /// `R^-1/2` of the subject's log-Euclidean mean covariance (first covariance band),
    /// row-major; `None` when the rows carry no covariance.
    pub reference_inv_sqrt: Option<Vec<f64>>,
    /// Number of epochs the statistics were computed from.
    pub epochs: usize,
}

impl SubjectAlignment {
    /// Computes the statistics from a subject's epochs (labels are not looked at).
    pub fn fit(subject: &str, rows: &[&FeatureRow], layout: RowLayout) -> Result<Self, AlignError> {
        if rows.is_empty() {
            return Err(AlignError::NoEpochs(subject.to_string()));
        }
        let f = layout.token_features();
        let c = layout.channels;
        let mut sum = vec![0.0; c * f];
        let mut sum_sq = vec![0.0; c * f];
        let mut token = Vec::with_capacity(f);
        for row in rows {
            layout.check(row)?;
            for ch in 0..c {
                token.clear();
                layout.raw_token(row, ch, &mut token);
                for (k, v) in token.iter().enumerate() {
                    sum[ch * f + k] += v;
                    sum_sq[ch * f + k] += v * v;
                }
            }
        }
        let n = rows.len() as f64;
        let token_mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
        let token_scale = (0..f)
            .map(|k| {
                let var: f64 = (0..c)
                    .map(|ch| (sum_sq[ch * f + k] / n - token_mean[ch * f + k].powi(2)).max(0.0))
                    .sum::<f64>()
                    / c as f64;
                var.sqrt().max(MIN_SCALE)
            })
            .collect();
        let reference_inv_sqrt = if rows.iter().all(|r| !r.covariances.is_empty()) {
            // Log-Euclidean mean R = expm(mean logm C): unlike the arithmetic mean, it leaves the
            // subject's tangent vectors centred at zero (exactly when the matrices commute), so
            // subjects with more or less spread land on the same reference.
            let mut mean_log = vec![0.0; c * c];
            for row in rows {
                let cov = &row.covariances[0];
                let floor = max_diagonal(cov, c) * RELATIVE_EIGEN_FLOOR;
                let log = linalg::spd_function(cov, c, floor, f64::ln);
                for (m, v) in mean_log.iter_mut().zip(log) {
                    *m += v / n;
                }
            }
            Some(linalg::spd_function(&mean_log, c, f64::NEG_INFINITY, |l| {
                (-0.5 * l).exp()
            }))
        } else {
            None
        };
        Ok(SubjectAlignment {
            layout,
            token_mean,
            token_scale,
            reference_inv_sqrt,
            epochs: rows.len(),
        })
    }

    /// The row's aligned channel tokens, `[channel * features + k]`.
    pub fn tokens(&self, row: &FeatureRow) -> Result<Vec<f32>, AlignError> {
        self.layout.check(row)?;
        let f = self.layout.token_features();
        let mut out = Vec::with_capacity(self.layout.channels * f);
        let mut token = Vec::with_capacity(f);
        for ch in 0..self.layout.channels {
            token.clear();
            self.layout.raw_token(row, ch, &mut token);
            out.extend(
                token
                    .iter()
                    .enumerate()
                    .map(|(k, v)| ((v - self.token_mean[ch * f + k]) / self.token_scale[k]) as f32),
            );
        }
        Ok(out)
    }

    /// The row's re-centred covariance in the tangent space, row-major `channels x channels`;
    /// `None` when there is no covariance.
    pub fn tangent(&self, row: &FeatureRow) -> Result<Option<Vec<f32>>, AlignError> {
        self.layout.check(row)?;
        let (Some(p), Some(cov)) = (&self.reference_inv_sqrt, row.covariances.first()) else {
            return Ok(None);
        };
        let c = self.layout.channels;
        let whitened = linalg::matmul(&linalg::matmul(p, cov, c), p, c);
        let floor = max_diagonal(&whitened, c) * RELATIVE_EIGEN_FLOOR;
        let log = linalg::spd_function(&whitened, c, floor, f64::ln);
        Ok(Some(log.iter().map(|&v| v as f32).collect()))
    }
}

/// The row's covariance in the tangent space at the identity, `logm(C)`, without re-centring:
/// where the epoch lies before alignment (for diagnostics). `None` without a covariance.
pub fn unaligned_tangent(row: &FeatureRow, channels: usize) -> Option<Vec<f32>> {
    let cov = row.covariances.first()?;
    if cov.len() != channels * channels {
        return None;
    }
    let floor = max_diagonal(cov, channels) * RELATIVE_EIGEN_FLOOR;
    let log = linalg::spd_function(cov, channels, floor, f64::ln);
    Some(log.iter().map(|&v| v as f32).collect())
}

fn max_diagonal(m: &[f64], n: usize) -> f64 {
    (0..n)
        .map(|i| m[i * n + i])
        .fold(f64::MIN_POSITIVE, f64::max)
}

/// Keeps only some channels of a feature row (e.g. the 19 channels of the 10-20 system).
pub fn select_channels(row: &FeatureRow, layout: RowLayout, keep: &[usize]) -> FeatureRow {
    let pick = |values: &[f64], width: usize| -> Vec<f64> {
        keep.iter()
            .flat_map(|&c| {
                values
                    .get(c * width..(c + 1) * width)
                    .unwrap_or(&[])
                    .iter()
                    .copied()
            })
            .collect()
    };
    let n = layout.channels;
    FeatureRow {
        log_psd: pick(&row.log_psd, layout.freqs),
        log_band_power: pick(&row.log_band_power, layout.bands),
        rel_band_power: pick(&row.rel_band_power, layout.bands),
        covariances: row
            .covariances
            .iter()
            .map(|cov| {
                keep.iter()
                    .flat_map(|&i| {
                        keep.iter()
                            .map(move |&j| cov.get(i * n + j).copied().unwrap_or(0.0))
                    })
                    .collect()
            })
            .collect(),
        ..row.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(scale: f64, shift: f64) -> FeatureRow {
        let layout = RowLayout {
            channels: 2,
            freqs: 3,
            bands: 1,
        };
        FeatureRow {
            subject: "s".into(),
            recording: "r".into(),
            run: None,
            epoch: 0,
            onset_s: 0.0,
            label: None,
            log_psd: (0..layout.channels * layout.freqs)
                .map(|i| i as f64 * scale + shift)
                .collect(),
            log_band_power: vec![shift, 2.0 * shift],
            rel_band_power: vec![0.5, 0.5],
            covariances: vec![vec![4.0 * scale, 1.0, 1.0, 2.0 * scale]],
        }
    }

    #[test]
    fn aligned_subject_mean_is_identity_and_tokens_centre() {
        let layout = RowLayout {
            channels: 2,
            freqs: 3,
            bands: 1,
        };
        let rows = [row(1.0, 0.0), row(2.0, 1.0), row(3.0, 2.0)];
        let refs: Vec<&FeatureRow> = rows.iter().collect();
        let a = SubjectAlignment::fit("s", &refs, layout).unwrap();
        let tokens: Vec<Vec<f32>> = rows.iter().map(|r| a.tokens(r).unwrap()).collect();
        for k in 0..tokens[0].len() {
            let mean: f32 = tokens.iter().map(|t| t[k]).sum::<f32>() / 3.0;
            assert!(mean.abs() < 1e-5);
        }
        // The tangent vectors of the subject's own epochs average to about zero.
        let mut mean = [0.0f64; 4];
        for r in &rows {
            let t = a.tangent(r).unwrap().unwrap();
            for (m, v) in mean.iter_mut().zip(t) {
                *m += f64::from(v) / 3.0;
            }
        }
        assert!(mean.iter().all(|m| m.abs() < 0.05), "{mean:?}");
        let wrong = FeatureRow {
            log_psd: vec![0.0; 5],
            ..rows[0].clone()
        };
        assert!(a.tokens(&wrong).is_err());
    }

    #[test]
    fn commuting_covariances_centre_exactly_and_scale_drops_out() {
        let layout = RowLayout {
            channels: 2,
            freqs: 3,
            bands: 1,
        };
        let diagonal = |a: f64, b: f64| FeatureRow {
            covariances: vec![vec![a, 0.0, 0.0, b]],
            ..row(1.0, 0.0)
        };
        let rows = [diagonal(1.0, 8.0), diagonal(4.0, 2.0), diagonal(0.5, 1.0)];
        let refs: Vec<&FeatureRow> = rows.iter().collect();
        let a = SubjectAlignment::fit("s", &refs, layout).unwrap();
        let mut mean = [0.0f64; 4];
        for r in &rows {
            let t = a.tangent(r).unwrap().unwrap();
            for (m, v) in mean.iter_mut().zip(t) {
                *m += f64::from(v) / 3.0;
            }
        }
        assert!(mean.iter().all(|m| m.abs() < 1e-6), "{mean:?}");
        // The same subject recorded with 10x the gain aligns to the same tangent vectors.
        let louder: Vec<FeatureRow> = rows
            .iter()
            .map(|r| FeatureRow {
                covariances: vec![r.covariances[0].iter().map(|v| v * 10.0).collect()],
                ..r.clone()
            })
            .collect();
        let louder_refs: Vec<&FeatureRow> = louder.iter().collect();
        let b = SubjectAlignment::fit("s", &louder_refs, layout).unwrap();
        for (r, l) in rows.iter().zip(&louder) {
            let (x, y) = (
                a.tangent(r).unwrap().unwrap(),
                b.tangent(l).unwrap().unwrap(),
            );
            assert!(x.iter().zip(&y).all(|(p, q)| (p - q).abs() < 1e-5));
        }
    }

    #[test]
    fn channel_selection_keeps_blocks() {
        let layout = RowLayout {
            channels: 2,
            freqs: 3,
            bands: 1,
        };
        let r = row(1.0, 0.0);
        let one = select_channels(&r, layout, &[1]);
        assert_eq!(one.log_psd, vec![3.0, 4.0, 5.0]);
        assert_eq!(one.covariances[0], vec![2.0]);
    }
}
