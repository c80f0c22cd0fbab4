//! Welch power spectral density, the way `scipy.signal.welch` computes it.

use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};
use serde::{Deserialize, Serialize};

use super::FeatureError;

/// Welch parameters. The window is a periodic Hann window (scipy's `get_window('hann', n)`),
/// each segment's mean is removed (`detrend='constant'`), segments are averaged by their mean,
/// and the result is a one-sided density in unit^2/Hz.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WelchConfig {
    /// Samples per segment.
    pub nperseg: usize,
    /// Samples shared by consecutive segments.
    pub noverlap: usize,
}

impl WelchConfig {
    /// One-second segments with 50% overlap at the given rate (scipy's usual choice for EEG).
    pub fn one_second(fs: f64) -> Self {
        let nperseg = fs.round().max(2.0) as usize;
        WelchConfig {
            nperseg,
            noverlap: nperseg / 2,
        }
    }

    /// Frequencies of the one-sided spectrum, in Hz.
    pub fn frequencies(&self, fs: f64) -> Vec<f64> {
        (0..self.nperseg / 2 + 1)
            .map(|k| k as f64 * fs / self.nperseg as f64)
            .collect()
    }
}

/// A reusable Welch estimator for one segment length: the FFT plan, window and buffers are
/// made once and shared by every channel and epoch.
pub struct Welch {
    config: WelchConfig,
    fs: f64,
    fft: Arc<dyn RealToComplex<f64>>,
    window: Vec<f64>,
    scale: f64,
    segment: Vec<f64>,
    spectrum: Vec<realfft::num_complex::Complex<f64>>,
    scratch: Vec<realfft::num_complex::Complex<f64>>,
}

impl Welch {
    /// Plans the FFT and the window; checks the configuration.
    pub fn new(config: WelchConfig, fs: f64) -> Result<Self, FeatureError> {
        if config.nperseg < 2 || config.noverlap >= config.nperseg || fs.is_nan() || fs <= 0.0 {
            return Err(FeatureError::Config(format!(
                "Welch needs nperseg >= 2 and noverlap < nperseg at a positive rate; got nperseg {}, noverlap {}, fs {fs}",
                config.nperseg, config.noverlap
            )));
        }
        let n = config.nperseg;
        let window: Vec<f64> = (0..n)
            .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n as f64).cos())
            .collect();
        let scale = 1.0 / (fs * window.iter().map(|w| w * w).sum::<f64>());
        let fft = RealFftPlanner::<f64>::new().plan_fft_forward(n);
        let spectrum = fft.make_output_vec();
        let scratch = fft.make_scratch_vec();
        Ok(Welch {
            config,
            fs,
            segment: vec![0.0; n],
            fft,
            window,
            scale,
            spectrum,
            scratch,
        })
    }

    /// Number of frequency bins.
    pub fn n_freqs(&self) -> usize {
        self.config.nperseg / 2 + 1
    }

    /// Frequencies of the bins, in Hz.
    pub fn frequencies(&self) -> Vec<f64> {
        self.config.frequencies(self.fs)
    }

    /// One-sided PSD of `x` into `psd` (length [`Welch::n_freqs`]).
    pub fn psd_into(&mut self, x: &[f64], psd: &mut [f64]) -> Result<(), FeatureError> {
        let n = self.config.nperseg;
        let step = n - self.config.noverlap;
        if x.len() < n {
            return Err(FeatureError::Config(format!(
                "a signal of {} samples is shorter than one Welch segment ({n})",
                x.len()
            )));
        }
        if psd.len() != self.n_freqs() {
            return Err(FeatureError::Config(format!(
                "PSD buffer of {} bins, expected {}",
                psd.len(),
                self.n_freqs()
            )));
        }
        psd.fill(0.0);
        let segments = (x.len() - n) / step + 1;
        for s in 0..segments {
            let chunk = &x[s * step..s * step + n];
            let mean = chunk.iter().sum::<f64>() / n as f64;
            for ((out, v), w) in self.segment.iter_mut().zip(chunk).zip(&self.window) {
                *out = (v - mean) * w;
            }
            self.fft
                .process_with_scratch(&mut self.segment, &mut self.spectrum, &mut self.scratch)
                .map_err(|e| FeatureError::Config(format!("FFT failed: {e}")))?;
            for (p, c) in psd.iter_mut().zip(&self.spectrum) {
                *p += c.norm_sqr();
            }
        }
        // One-sided: every bin but DC (and Nyquist for even lengths) carries both halves.
        let last = psd.len() - 1;
        let has_nyquist = n % 2 == 0;
        for (k, p) in psd.iter_mut().enumerate() {
            let doubled = k != 0 && !(has_nyquist && k == last);
            *p *= self.scale / segments as f64 * if doubled { 2.0 } else { 1.0 };
        }
        Ok(())
    }
}

/// One-sided Welch PSD of `x` (pure function; see [`Welch`] to reuse the plan).
pub fn welch(
    x: &[f64],
    fs: f64,
    config: WelchConfig,
) -> Result<(Vec<f64>, Vec<f64>), FeatureError> {
    let mut w = Welch::new(config, fs)?;
    let mut psd = vec![0.0; w.n_freqs()];
    w.psd_into(x, &mut psd)?;
    Ok((w.frequencies(), psd))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sine_power_lands_in_its_bin_and_parseval_holds() {
        let fs = 160.0;
        let x: Vec<f64> = (0..1600)
            .map(|i| 3.0 * (2.0 * std::f64::consts::PI * 10.0 * i as f64 / fs).sin())
            .collect();
        let (f, p) = welch(&x, fs, WelchConfig::one_second(fs)).unwrap();
        let peak = p
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0;
        assert_eq!(f[peak], 10.0);
        // Total power (integral of the density) equals the variance, 3^2 / 2.
        let power: f64 = p.iter().sum::<f64>() * (f[1] - f[0]);
        assert!((power - 4.5).abs() < 0.05, "{power}");
    }

    #[test]
    fn bad_configurations_are_refused() {
        assert!(Welch::new(
            WelchConfig {
                nperseg: 10,
                noverlap: 10
            },
            160.0
        )
        .is_err());
        assert!(welch(&[0.0; 5], 160.0, WelchConfig::one_second(160.0)).is_err());
    }
}
