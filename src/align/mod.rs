//! Per-subject alignment without labels: every subject's feature distribution is brought to a
//! common reference using only that subject's own (unlabelled) epochs.
//!
//! - Channel tokens: each channel's features (log spectrum, log band powers, relative band
//!   powers) are centred by the subject's mean for that channel and feature, and scaled by the
//!   subject's spread of that feature (pooled over channels). What remains is how an epoch
//!   differs from the subject's usual state, which is what transfers between people.
//! - Covariances, per band: re-centred by the subject's Riemannian mean covariance `R` (as
//!   pyRiemann's re-centring; Euclidean alignment, He & Wu 2020, uses the arithmetic mean) and
//!   mapped to the tangent space at the identity, `S = logm(R^-1/2 C R^-1/2)`
//!   (Barachant et al. 2012; Zanini et al. 2018), so that an epoch's spatial structure is
//!   expressed relative to the subject's own.
//! - The evoked waveform: the subject's mean waveform is subtracted (what every epoch shares, such
//!   as the response to the cue itself) and the rest divided by the subject's spread.
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

/// Layout of a feature row: how many channels, spectrum bins, bands, covariance bands and evoked
/// samples it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowLayout {
    /// Channels.
    pub channels: usize,
    /// Spectrum bins per channel.
    pub freqs: usize,
    /// Bands per channel.
    pub bands: usize,
    /// Covariance bands.
    #[serde(default = "one")]
    pub covariance_bands: usize,
    /// Evoked samples per channel (0: none).
    #[serde(default)]
    pub evoked: usize,
}

fn one() -> usize {
    1
}

impl RowLayout {
    /// The layout of the rows of a feature table.
    pub fn of(meta: &crate::features::FeatureMeta) -> Self {
        RowLayout {
            channels: meta.channels.len(),
            freqs: meta.freqs.len(),
            bands: meta.config.bands.len(),
            covariance_bands: meta.config.covariance_bands.len(),
            evoked: meta.evoked_times.len(),
        }
    }

    /// Features per channel token: spectrum bins, log band powers, relative band powers, evoked
    /// samples.
    pub fn token_features(&self) -> usize {
        self.freqs + 2 * self.bands + self.evoked
    }

    /// One channel's raw token features from a row.
    fn raw_token(&self, row: &FeatureRow, channel: usize, out: &mut Vec<f64>) {
        let psd = &row.log_psd[channel * self.freqs..(channel + 1) * self.freqs];
        let band = &row.log_band_power[channel * self.bands..(channel + 1) * self.bands];
        let rel = &row.rel_band_power[channel * self.bands..(channel + 1) * self.bands];
        out.extend_from_slice(psd);
        out.extend_from_slice(band);
        out.extend_from_slice(rel);
        if self.evoked > 0 {
            let e = self.evoked;
            out.extend_from_slice(
                row.evoked
                    .get(channel * e..(channel + 1) * e)
                    .unwrap_or(&[]),
            );
        }
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
        for c in &row.covariances {
            expect("covariance", self.channels * self.channels, c.len())?;
        }
        expect("evoked", self.channels * self.evoked, row.evoked.len())?;
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
    /// Per covariance band, `R^-1/2` of the subject's Riemannian mean covariance, row-major
    /// (empty when the rows carry no covariance).
    pub reference_inv_sqrt: Vec<Vec<f64>>,
    /// The subject's mean evoked waveform, `[channel * times + t]` (empty without one).
    #[serde(default)]
    pub evoked_mean: Vec<f64>,
    /// The subject's spread of the evoked waveform around its mean (one number).
    #[serde(default = "unit")]
    pub evoked_scale: f64,
    /// Number of epochs the statistics were computed from.
    pub epochs: usize,
}

fn unit() -> f64 {
    1.0
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
        let bands = rows.iter().map(|r| r.covariances.len()).min().unwrap_or(0);
        let reference_inv_sqrt = (0..bands)
            .map(|b| {
                let covs: Vec<&[f64]> = rows.iter().map(|r| r.covariances[b].as_slice()).collect();
                let mean = linalg::riemannian_mean(&covs, c, RELATIVE_EIGEN_FLOOR);
                linalg::spd_function(&mean, c, f64::NEG_INFINITY, |l| {
                    1.0 / l.max(f64::MIN_POSITIVE).sqrt()
                })
            })
            .collect();
        let (evoked_mean, evoked_scale) = evoked_statistics(rows, layout);
        Ok(SubjectAlignment {
            layout,
            token_mean,
            token_scale,
            reference_inv_sqrt,
            evoked_mean,
            evoked_scale,
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

    /// The row's re-centred covariance of the first band in the tangent space, row-major
    /// `channels x channels`; `None` when there is no covariance.
    pub fn tangent(&self, row: &FeatureRow) -> Result<Option<Vec<f32>>, AlignError> {
        self.layout.check(row)?;
        Ok(self.band_tangent(row, 0))
    }

    /// The row's re-centred covariances in the tangent space, one row-major
    /// `channels x channels` matrix per covariance band.
    pub fn tangents(&self, row: &FeatureRow) -> Result<Vec<Vec<f32>>, AlignError> {
        self.layout.check(row)?;
        Ok((0..self.reference_inv_sqrt.len())
            .filter_map(|b| self.band_tangent(row, b))
            .collect())
    }

    fn band_tangent(&self, row: &FeatureRow, band: usize) -> Option<Vec<f32>> {
        let (p, cov) = (
            self.reference_inv_sqrt.get(band)?,
            row.covariances.get(band)?,
        );
        let c = self.layout.channels;
        let whitened = linalg::matmul(&linalg::matmul(p, cov, c), p, c);
        let floor = max_diagonal(&whitened, c) * RELATIVE_EIGEN_FLOOR;
        let log = linalg::spd_function(&whitened, c, floor, f64::ln);
        Some(log.iter().map(|&v| v as f32).collect())
    }

    /// The row's evoked waveform minus the subject's mean, over the subject's spread,
    /// `[channel * times + t]` (empty without an evoked part).
    pub fn evoked(&self, row: &FeatureRow) -> Result<Vec<f32>, AlignError> {
        self.layout.check(row)?;
        Ok(row
            .evoked
            .iter()
            .zip(&self.evoked_mean)
            .map(|(v, m)| ((v - m) / self.evoked_scale) as f32)
            .collect())
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

use linalg::max_diagonal;

/// Mean evoked waveform and the spread around it (root mean square over channels and times).
fn evoked_statistics(rows: &[&FeatureRow], layout: RowLayout) -> (Vec<f64>, f64) {
    let width = layout.channels * layout.evoked;
    if width == 0 || rows.is_empty() {
        return (Vec::new(), 1.0);
    }
    let n = rows.len() as f64;
    let mut mean = vec![0.0; width];
    for row in rows {
        for (m, v) in mean.iter_mut().zip(&row.evoked) {
            *m += v / n;
        }
    }
    let mut sum_sq = 0.0;
    for row in rows {
        sum_sq += row
            .evoked
            .iter()
            .zip(&mean)
            .map(|(v, m)| (v - m).powi(2))
            .sum::<f64>();
    }
    let scale = (sum_sq / (n * width as f64)).sqrt();
    (mean, if scale > 0.0 { scale } else { 1.0 })
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
        evoked: pick(&row.evoked, layout.evoked),
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
            covariance_bands: 1,
            evoked: 0,
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
            evoked: Vec::new(),
        }
    }

    #[test]
    fn aligned_subject_mean_is_identity_and_tokens_centre() {
        let layout = RowLayout {
            channels: 2,
            freqs: 3,
            bands: 1,
            covariance_bands: 1,
            evoked: 0,
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
            covariance_bands: 1,
            evoked: 0,
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
            covariance_bands: 1,
            evoked: 0,
        };
        let r = row(1.0, 0.0);
        let one = select_channels(&r, layout, &[1]);
        assert_eq!(one.log_psd, vec![3.0, 4.0, 5.0]);
        assert_eq!(one.covariances[0], vec![2.0]);
    }
}
