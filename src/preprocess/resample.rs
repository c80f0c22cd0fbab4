//! Polyphase resampling, as `scipy.signal.resample_poly` with its defaults.

use super::error::{PreprocessError, Result};
use super::window::firwin_kaiser;

/// Largest up or down factor [`resample_factors`] accepts.
pub const MAX_FACTOR: usize = 1000;

/// Kaiser shape of scipy's default window `('kaiser', 5.0)`.
const KAISER_BETA: f64 = 5.0;

/// Greatest common divisor (Euclid).
pub(crate) fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Resamples `x` by `up / down` (reduced by their gcd) with a zero-phase Kaiser-windowed FIR,
/// as `scipy.signal.resample_poly(x, up, down)` (window `('kaiser', 5.0)`, zero padding).
/// The output has `ceil(len(x) * up / down)` samples.
pub fn resample_poly(x: &[f64], up: usize, down: usize) -> Result<Vec<f64>> {
    if up == 0 || down == 0 {
        return Err(PreprocessError::InvalidResampleFactors { up, down });
    }
    let g = gcd(up, down);
    let (up, down) = (up / g, down / g);
    if up == 1 && down == 1 {
        return Ok(x.to_vec());
    }
    let n_in = x.len();
    let n_out = (n_in * up).div_ceil(down);
    let max_rate = up.max(down);
    let half_len = 10 * max_rate;
    let h: Vec<f64> = firwin_kaiser(2 * half_len + 1, 1.0 / max_rate as f64, KAISER_BETA)?
        .into_iter()
        .map(|v| v * up as f64)
        .collect();
    // scipy pads the filter in front so that output samples land on the filter's centre, then
    // drops the first n_pre_remove outputs of upfirdn.
    let n_pre_pad = down - half_len % down;
    let n_pre_remove = (half_len + n_pre_pad) / down;
    let mut y = Vec::with_capacity(n_out);
    for m in n_pre_remove..n_pre_remove + n_out {
        // Full convolution of the zero-stuffed input with the padded filter, at m * down:
        // taps j of the unpadded filter meet input samples i with i * up = t - j.
        let t = m * down - n_pre_pad;
        let mut acc = 0.0;
        let mut j = t % up;
        while j < h.len() && j <= t {
            let i = (t - j) / up;
            if let (Some(hj), Some(xi)) = (h.get(j), x.get(i)) {
                acc += hj * xi;
            }
            j += up;
        }
        y.push(acc);
    }
    Ok(y)
}

/// `(up, down)`, the reduced fraction `to_hz / from_hz`, as used by [`resample_to`]. Errors if
/// either term would exceed [`MAX_FACTOR`] (rates like 128, 160, 250, 256 and 512 Hz all map
/// onto each other within it).
pub fn resample_factors(from_hz: f64, to_hz: f64) -> Result<(usize, usize)> {
    for fs in [from_hz, to_hz] {
        if !(fs.is_finite() && fs > 0.0) {
            return Err(PreprocessError::InvalidSamplingRate { fs });
        }
    }
    let ratio = to_hz / from_hz;
    let too_complex = PreprocessError::RatioTooComplex { from_hz, to_hz };
    // Continued-fraction convergents: the first within 1e-9 is the reduced fraction.
    let (mut p0, mut q0, mut p1, mut q1) = (0_u64, 1_u64, 1_u64, 0_u64);
    let mut v = ratio;
    for _ in 0..64 {
        let a = v.floor();
        if a > MAX_FACTOR as f64 {
            return Err(too_complex);
        }
        let a = a as u64;
        let (p2, q2) = (a * p1 + p0, a * q1 + q0);
        if p2 > MAX_FACTOR as u64 || q2 > MAX_FACTOR as u64 {
            return Err(too_complex);
        }
        if p2 > 0 && ((p2 as f64 / q2 as f64) - ratio).abs() <= 1e-9 * ratio {
            return Ok((p2 as usize, q2 as usize));
        }
        let frac = v - a as f64;
        if frac <= 0.0 {
            break;
        }
        v = 1.0 / frac;
        (p0, q0, p1, q1) = (p1, q1, p2, q2);
    }
    Err(too_complex)
}

/// Resamples `x` from `from_hz` to `to_hz` with [`resample_poly`] and the factors of
/// [`resample_factors`].
pub fn resample_to(x: &[f64], from_hz: f64, to_hz: f64) -> Result<Vec<f64>> {
    let (up, down) = resample_factors(from_hz, to_hz)?;
    resample_poly(x, up, down)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factors_are_reduced_fractions() {
        assert_eq!(resample_factors(160.0, 128.0), Ok((4, 5)));
        assert_eq!(resample_factors(250.0, 128.0), Ok((64, 125)));
        assert_eq!(resample_factors(512.0, 250.0), Ok((125, 256)));
        assert_eq!(resample_factors(100.0, 100.0), Ok((1, 1)));
        assert_eq!(resample_factors(100.0, 300.0), Ok((3, 1)));
        assert!(matches!(
            resample_factors(1000.0, 1001.0 * 1.000_000_7),
            Err(PreprocessError::RatioTooComplex { .. })
        ));
        assert!(resample_factors(0.0, 128.0).is_err());
    }

    #[test]
    fn output_lengths_and_identity() {
        let x: Vec<f64> = (0..101).map(|i| (i as f64 * 0.1).sin()).collect();
        assert_eq!(resample_poly(&x, 4, 5).expect("ok").len(), 81);
        assert_eq!(resample_poly(&x, 3, 1).expect("ok").len(), 303);
        assert_eq!(resample_poly(&x, 2, 2).expect("ok"), x);
        assert!(resample_poly(&x, 0, 2).is_err());
        assert!(resample_poly(&[], 4, 5).expect("empty").is_empty());
    }
}
