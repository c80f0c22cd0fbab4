//! Second-order-section filtering: `sosfilt`, `sosfilt_zi` and `sosfiltfilt`, as scipy.

use super::error::{PreprocessError, Result};
use super::lfilter::lfilter_zi;
use super::pad::odd_ext;

/// Refuses what scipy's `_validate_sos` refuses: no sections, `a0 != 1`, non-finite values.
pub(super) fn validate(sos: &[[f64; 6]]) -> Result<()> {
    if sos.is_empty() {
        return Err(PreprocessError::InvalidCoefficients(
            "no second-order sections".into(),
        ));
    }
    if sos.iter().any(|s| s[3] != 1.0) {
        return Err(PreprocessError::InvalidCoefficients(
            "every section's a0 (sos[:, 3]) must be 1".into(),
        ));
    }
    if sos.iter().flatten().any(|v| !v.is_finite()) {
        return Err(PreprocessError::InvalidCoefficients(
            "coefficients must be finite".into(),
        ));
    }
    Ok(())
}

/// Filters `x` through the cascade of sections, starting from the state `zi` (one pair per
/// section; zeros when `None`). Returns the output and the final state, as
/// `scipy.signal.sosfilt(sos, x, zi=zi)`.
pub fn sosfilt(
    sos: &[[f64; 6]],
    x: &[f64],
    zi: Option<&[[f64; 2]]>,
) -> Result<(Vec<f64>, Vec<[f64; 2]>)> {
    validate(sos)?;
    let mut z = match zi {
        Some(zi) if zi.len() == sos.len() => zi.to_vec(),
        Some(zi) => {
            return Err(PreprocessError::InvalidInitialConditions {
                expected: 2 * sos.len(),
                found: 2 * zi.len(),
            })
        }
        None => vec![[0.0; 2]; sos.len()],
    };
    let mut y = Vec::with_capacity(x.len());
    for &xn in x {
        let mut cur = xn;
        for (s, zs) in sos.iter().zip(z.iter_mut()) {
            let out;
            (out, zs[0], zs[1]) = section(s, cur, zs[0], zs[1]);
            cur = out;
        }
        y.push(cur);
    }
    Ok((y, z))
}

/// One second-order section (transposed direct form II, as scipy) on one sample `x` with state
/// `(z0, z1)`: returns the output and the new state. Written with fused multiply-adds, which
/// halve the arithmetic; each is exactly rounded, so every CPU gets the same bits (scipy's
/// unfused order differs in the last bit or so).
#[inline(always)]
pub(super) fn section(s: &[f64; 6], x: f64, z0: f64, z1: f64) -> (f64, f64, f64) {
    let out = s[0].mul_add(x, z0);
    let z0 = (-s[4]).mul_add(out, s[1].mul_add(x, z1));
    let z1 = (-s[5]).mul_add(out, s[2] * x);
    (out, z0, z1)
}

/// [`section`] for a section whose numerator starts and ends with exactly 1 (`s[0] == s[2] ==
/// 1.0`), as every Butterworth section after the first (the first carries the gain): the same
/// bits with one operation fewer, since `1 * x` is `x` exactly and a fused multiply-add by 1 is
/// an addition, rounded once either way.
#[inline(always)]
pub(super) fn unit_section(s: &[f64; 6], x: f64, z0: f64, z1: f64) -> (f64, f64, f64) {
    let out = x + z0;
    let z0 = (-s[4]).mul_add(out, s[1].mul_add(x, z1));
    let z1 = (-s[5]).mul_add(out, x);
    (out, z0, z1)
}

/// Whether every section after the first has a numerator that starts and ends with exactly 1,
/// so that [`unit_section`] may run them.
pub(super) fn unit_after_first(sos: &[[f64; 6]]) -> bool {
    sos.iter().skip(1).all(|s| s[0] == 1.0 && s[2] == 1.0)
}

/// Initial state of [`sosfilt`] for the steady state of a unit step, as
/// `scipy.signal.sosfilt_zi(sos)`: scale it by the first sample to start without a transient.
pub fn sosfilt_zi(sos: &[[f64; 6]]) -> Result<Vec<[f64; 2]>> {
    validate(sos)?;
    let mut scale = 1.0;
    let mut out = Vec::with_capacity(sos.len());
    for s in sos {
        let (b, a) = (&s[..3], &s[3..]);
        let zi = lfilter_zi(b, a)?;
        let (z0, z1) = (
            zi.first().copied().unwrap_or(0.0),
            zi.get(1).copied().unwrap_or(0.0),
        );
        out.push([scale * z0, scale * z1]);
        // Each section sees the previous sections' DC gain times the step.
        scale *= b.iter().sum::<f64>() / a.iter().sum::<f64>();
    }
    Ok(out)
}

/// Padding `scipy.signal.sosfiltfilt` uses by default: 3 x the effective number of taps.
pub fn sosfiltfilt_padlen(sos: &[[f64; 6]]) -> usize {
    let zero_b2 = sos.iter().filter(|s| s[2] == 0.0).count();
    let zero_a2 = sos.iter().filter(|s| s[5] == 0.0).count();
    3 * (2 * sos.len() + 1 - zero_b2.min(zero_a2))
}

/// Forward-backward filtering through second-order sections, as
/// `scipy.signal.sosfiltfilt(sos, x)` with its defaults: odd extension of
/// [`sosfiltfilt_padlen`] samples each side, both passes started from [`sosfilt_zi`] scaled by
/// the first sample. Zero phase; the magnitude response is squared. Errors if `x` is not longer
/// than the padding.
pub fn sosfiltfilt(sos: &[[f64; 6]], x: &[f64]) -> Result<Vec<f64>> {
    validate(sos)?;
    let padlen = sosfiltfilt_padlen(sos);
    let ext = odd_ext(x, padlen)?;
    let zi = sosfilt_zi(sos)?;
    let start = |v: f64| zi.iter().map(|z| [z[0] * v, z[1] * v]).collect::<Vec<_>>();
    let x0 = ext.first().copied().unwrap_or(0.0);
    let (mut y, _) = sosfilt(sos, &ext, Some(&start(x0)))?;
    y.reverse();
    let y0 = y.first().copied().unwrap_or(0.0);
    let (mut y, _) = sosfilt(sos, &y, Some(&start(y0)))?;
    y.reverse();
    Ok(y[padlen..y.len() - padlen].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_passes_a_lowpass_unchanged() {
        let sos =
            crate::preprocess::butter_sos(4, crate::preprocess::FilterBand::Lowpass(10.0), 100.0)
                .expect("design");
        let y = sosfiltfilt(&sos, &[3.0; 100]).expect("long enough");
        assert!(y.iter().all(|v| (v - 3.0).abs() < 1e-9));
        assert_eq!(sosfiltfilt_padlen(&sos), 15);
        assert!(matches!(
            sosfiltfilt(&sos, &[1.0; 15]),
            Err(PreprocessError::SignalTooShort {
                len: 15,
                padlen: 15
            })
        ));
        let mut bad = sos.clone();
        bad[0][3] = 2.0;
        assert!(sosfilt(&bad, &[1.0], None).is_err());
        assert!(sosfilt(&sos, &[1.0], Some(&[[0.0; 2]])).is_err());
    }

    #[test]
    fn butterworth_sections_after_the_first_have_unit_numerators() {
        use crate::preprocess::{butter_sos, FilterBand};
        // Odd orders hold a first-order section ([1, 1, 0]) or, in a band-pass, a zero at 1
        // paired with one at -1 ([1, 0, -1]): they run the general sections.
        for order in (2..=crate::preprocess::MAX_ORDER).step_by(2) {
            for band in [
                FilterBand::Bandpass(8.0, 30.0),
                FilterBand::Bandpass(1.0, 8.0),
                FilterBand::Lowpass(10.0),
                FilterBand::Highpass(1.0),
            ] {
                let sos = butter_sos(order, band, 160.0).expect("design");
                assert!(unit_after_first(&sos), "order {order}, {band:?}: {sos:?}");
            }
        }
        let mut gain_later = butter_sos(4, FilterBand::Lowpass(10.0), 160.0).expect("design");
        gain_later.swap(0, 1);
        assert!(!unit_after_first(&gain_later));
    }

    #[test]
    fn unit_section_gives_the_bits_of_section() {
        let sos = crate::preprocess::butter_sos(
            4,
            crate::preprocess::FilterBand::Bandpass(8.0, 30.0),
            160.0,
        )
        .expect("design");
        // A deterministic spread of magnitudes and signs, subnormal-free.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        };
        for s in &sos[1..] {
            for _ in 0..10_000 {
                let (x, z0, z1) = (next() * 1e3, next() * 10.0, next() * 1e-2);
                let (a, b) = (section(s, x, z0, z1), unit_section(s, x, z0, z1));
                assert_eq!(
                    (a.0.to_bits(), a.1.to_bits(), a.2.to_bits()),
                    (b.0.to_bits(), b.1.to_bits(), b.2.to_bits())
                );
            }
        }
    }
}
