//! Band powers from a power spectral density.

use serde::{Deserialize, Serialize};

/// A frequency band, `lo <= f < hi` in Hz.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Band {
    /// Short name (`delta`, `theta`, `alpha`, `beta`, `gamma`).
    pub name: String,
    /// Lower edge, included.
    pub lo: f64,
    /// Upper edge, excluded.
    pub hi: f64,
}

impl Band {
    /// A named band.
    pub fn new(name: &str, lo: f64, hi: f64) -> Self {
        Band {
            name: name.to_string(),
            lo,
            hi,
        }
    }

    fn contains(&self, f: f64) -> bool {
        self.lo <= f && f < self.hi
    }
}

/// The classic EEG bands: delta 1-4, theta 4-8, alpha/mu 8-13, beta 13-30, gamma 30-45 Hz.
pub fn default_bands() -> Vec<Band> {
    vec![
        Band::new("delta", 1.0, 4.0),
        Band::new("theta", 4.0, 8.0),
        Band::new("alpha", 8.0, 13.0),
        Band::new("beta", 13.0, 30.0),
        Band::new("gamma", 30.0, 45.0),
    ]
}

/// Absolute band power: the mean PSD over the bins inside the band (unit^2/Hz). NaN for a band
/// holding no bin.
pub fn band_power(freqs: &[f64], psd: &[f64], band: &Band) -> f64 {
    let (sum, n) = freqs
        .iter()
        .zip(psd)
        .filter(|(f, _)| band.contains(**f))
        .fold((0.0, 0usize), |(s, n), (_, p)| (s + p, n + 1));
    if n == 0 {
        f64::NAN
    } else {
        sum / n as f64
    }
}

/// Absolute and relative power of each band. Relative power is the band's share of the power
/// summed over all the given bands' bins (so relative powers of disjoint bands add up to 1).
pub fn band_powers(freqs: &[f64], psd: &[f64], bands: &[Band]) -> (Vec<f64>, Vec<f64>) {
    let sums: Vec<f64> = bands
        .iter()
        .map(|b| {
            freqs
                .iter()
                .zip(psd)
                .filter(|(f, _)| b.contains(**f))
                .map(|(_, p)| p)
                .sum()
        })
        .collect();
    let total: f64 = sums.iter().sum();
    let absolute = bands.iter().map(|b| band_power(freqs, psd, b)).collect();
    let relative = sums
        .iter()
        .map(|s| if total > 0.0 { s / total } else { f64::NAN })
        .collect();
    (absolute, relative)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn band_power_is_mean_of_bins_in_half_open_band() {
        let freqs: Vec<f64> = (0..10).map(f64::from).collect();
        let psd: Vec<f64> = (0..10).map(|i| f64::from(i) * 2.0).collect();
        assert_eq!(band_power(&freqs, &psd, &Band::new("x", 4.0, 8.0)), 11.0);
        let (_, rel) = band_powers(
            &freqs,
            &psd,
            &[Band::new("a", 1.0, 4.0), Band::new("b", 4.0, 8.0)],
        );
        assert!((rel.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(band_power(&freqs, &psd, &Band::new("none", 20.0, 30.0)).is_nan());
    }
}
