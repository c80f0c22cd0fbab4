//! Kaiser window and windowed-sinc low-pass FIR design (`scipy.signal.firwin`).

use std::f64::consts::PI;

use super::error::{PreprocessError, Result};

/// Modified Bessel function of the first kind, order zero, by its power series (all terms
/// positive, so no cancellation; converges quickly for the arguments windows use).
pub fn bessel_i0(x: f64) -> f64 {
    let q = (x / 2.0) * (x / 2.0);
    let mut term = 1.0;
    let mut sum = 1.0;
    for k in 1..1000 {
        let kf = k as f64;
        term *= q / (kf * kf);
        sum += term;
        if term <= sum * 1e-17 {
            break;
        }
    }
    sum
}

/// Symmetric Kaiser window of `m` points with shape `beta`, as
/// `scipy.signal.windows.kaiser(m, beta, sym=True)`.
pub fn kaiser(m: usize, beta: f64) -> Vec<f64> {
    if m <= 1 {
        return vec![1.0; m];
    }
    let alpha = (m - 1) as f64 / 2.0;
    let denom = bessel_i0(beta);
    (0..m)
        .map(|n| {
            let r = (n as f64 - alpha) / alpha;
            bessel_i0(beta * (1.0 - r * r).max(0.0).sqrt()) / denom
        })
        .collect()
}

/// `sin(pi x) / (pi x)`, 1 at 0 (numpy's `sinc`).
fn sinc(x: f64) -> f64 {
    let y = PI * if x == 0.0 { 1.0e-20 } else { x };
    y.sin() / y
}

/// Low-pass FIR of `numtaps` taps with cutoff `cutoff` (a fraction of the Nyquist frequency,
/// in (0, 1)) and a Kaiser window of shape `beta`, scaled to unit gain at DC, as
/// `scipy.signal.firwin(numtaps, cutoff, window=('kaiser', beta))`.
pub fn firwin_kaiser(numtaps: usize, cutoff: f64, beta: f64) -> Result<Vec<f64>> {
    if numtaps == 0 {
        return Err(PreprocessError::InvalidCoefficients(
            "a FIR filter needs at least one tap".into(),
        ));
    }
    if !(cutoff.is_finite() && cutoff > 0.0 && cutoff < 1.0) {
        return Err(PreprocessError::FrequencyOutOfRange {
            freq: cutoff,
            nyquist: 1.0,
        });
    }
    let alpha = 0.5 * (numtaps - 1) as f64;
    let win = kaiser(numtaps, beta);
    let h: Vec<f64> = (0..numtaps)
        .zip(&win)
        .map(|(i, w)| cutoff * sinc(cutoff * (i as f64 - alpha)) * w)
        .collect();
    let dc: f64 = h.iter().sum();
    Ok(h.into_iter().map(|v| v / dc).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn i0_and_window_values() {
        // scipy.special.i0(5.0) = 27.239871823604442
        assert!((bessel_i0(5.0) - 27.239871823604442).abs() < 1e-12);
        assert_eq!(bessel_i0(0.0), 1.0);
        let w = kaiser(5, 5.0);
        assert!((w[2] - 1.0).abs() < 1e-15);
        assert!((w[0] - 1.0 / bessel_i0(5.0)).abs() < 1e-15);
        assert_eq!(w[1], w[3]);
    }

    #[test]
    fn firwin_has_unit_dc_gain() {
        let h = firwin_kaiser(101, 0.2, 5.0).expect("valid");
        assert!((h.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(firwin_kaiser(11, 1.0, 5.0).is_err());
    }
}
