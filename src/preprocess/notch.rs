//! Second-order IIR notch, as `scipy.signal.iirnotch`.

use std::f64::consts::PI;

use super::error::{PreprocessError, Result};

/// Numerator and denominator `(b, a)` of a notch at `f0` Hz with quality factor `q` (-3 dB
/// width `f0 / q`), as `scipy.signal.iirnotch(f0, q, fs)`. Apply it with
/// [`filtfilt`](super::filtfilt) for zero phase. Errors on `f0` outside (0, fs/2) or a
/// non-positive `q`.
pub fn iirnotch(f0: f64, q: f64, fs: f64) -> Result<([f64; 3], [f64; 3])> {
    if !(fs.is_finite() && fs > 0.0) {
        return Err(PreprocessError::InvalidSamplingRate { fs });
    }
    if !(f0.is_finite() && f0 > 0.0 && f0 < fs / 2.0) {
        return Err(PreprocessError::FrequencyOutOfRange {
            freq: f0,
            nyquist: fs / 2.0,
        });
    }
    if !(q.is_finite() && q > 0.0) {
        return Err(PreprocessError::InvalidQuality { q });
    }
    let w0 = 2.0 * f0 / fs;
    let bw = w0 / q * PI;
    let w0 = w0 * PI;
    // Orfanidis eq. 11.3.4 with a -3 dB gain at the band edges: beta = tan(bw / 2).
    let beta = (bw / 2.0).tan();
    let gain = 1.0 / (1.0 + beta);
    let b = [gain, gain * (-2.0 * w0.cos()), gain];
    let a = [1.0, -2.0 * gain * w0.cos(), 2.0 * gain - 1.0];
    Ok((b, a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_at_the_notch_frequency() {
        let (b, a) = iirnotch(50.0, 30.0, 250.0).expect("valid");
        // |H(e^{jw0})| = 0: the numerator vanishes at w0.
        let w = 2.0 * PI * 50.0 / 250.0;
        let re = b[0] + b[1] * w.cos() + b[2] * (2.0 * w).cos();
        let im = b[1] * w.sin() + b[2] * (2.0 * w).sin();
        assert!(re.hypot(im) < 1e-12);
        assert_eq!(a[0], 1.0);
        assert!(iirnotch(125.0, 30.0, 250.0).is_err());
        assert!(iirnotch(50.0, 0.0, 250.0).is_err());
    }
}
