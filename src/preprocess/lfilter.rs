//! Transfer-function filtering: `lfilter`, `lfilter_zi` and `filtfilt`, as scipy.

use super::error::{PreprocessError, Result};
use super::linalg::solve;
use super::pad::odd_ext;

/// `b` and `a` divided by `a[0]`, zero-padded to one length (leading zeros of `a` dropped).
fn normalize(b: &[f64], a: &[f64]) -> Result<(Vec<f64>, Vec<f64>)> {
    let start = a.iter().position(|&v| v != 0.0).ok_or_else(|| {
        PreprocessError::InvalidCoefficients("denominator is empty or all zero".into())
    })?;
    let a = &a[start..];
    if b.is_empty() {
        return Err(PreprocessError::InvalidCoefficients(
            "numerator is empty".into(),
        ));
    }
    if b.iter().chain(a).any(|v| !v.is_finite()) {
        return Err(PreprocessError::InvalidCoefficients(
            "coefficients must be finite".into(),
        ));
    }
    let n = a.len().max(b.len());
    let a0 = a[0];
    let mut bn: Vec<f64> = b.iter().map(|v| v / a0).collect();
    let mut an: Vec<f64> = a.iter().map(|v| v / a0).collect();
    bn.resize(n, 0.0);
    an.resize(n, 0.0);
    Ok((bn, an))
}

/// Filters `x` with the transfer function `b / a` (direct form II transposed), starting from
/// the state `zi` (`max(len(a), len(b)) - 1` values; zeros when `None`). Returns the output and
/// the final state, as `scipy.signal.lfilter(b, a, x, zi=zi)`.
pub fn lfilter(
    b: &[f64],
    a: &[f64],
    x: &[f64],
    zi: Option<&[f64]>,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let (b, a) = normalize(b, a)?;
    let order = b.len() - 1;
    let mut z = match zi {
        Some(zi) if zi.len() == order => zi.to_vec(),
        Some(zi) => {
            return Err(PreprocessError::InvalidInitialConditions {
                expected: order,
                found: zi.len(),
            })
        }
        None => vec![0.0; order],
    };
    let mut y = Vec::with_capacity(x.len());
    for &xn in x {
        let yn = b[0] * xn + z.first().copied().unwrap_or(0.0);
        for i in 0..order {
            let next = z.get(i + 1).copied().unwrap_or(0.0);
            z[i] = b[i + 1] * xn - a[i + 1] * yn + next;
        }
        y.push(yn);
    }
    Ok((y, z))
}

/// Initial state of [`lfilter`] for the steady state of a unit step, as
/// `scipy.signal.lfilter_zi(b, a)`: scale it by the first sample to start without a transient.
pub fn lfilter_zi(b: &[f64], a: &[f64]) -> Result<Vec<f64>> {
    let (b, a) = normalize(b, a)?;
    let n = b.len();
    if n < 2 {
        return Ok(Vec::new());
    }
    // (I - companion(a).T) zi = b[1:] - a[1:] * b[0]
    let m = n - 1;
    let mut lhs = vec![vec![0.0; m]; m];
    for (i, row) in lhs.iter_mut().enumerate() {
        row[0] = a[i + 1];
        row[i] += 1.0;
        if i + 1 < m {
            row[i + 1] -= 1.0;
        }
    }
    let rhs = (1..n).map(|i| b[i] - a[i] * b[0]).collect();
    solve(lhs, rhs)
}

/// Forward-backward filtering with `b / a`, as `scipy.signal.filtfilt(b, a, x)` with its
/// defaults: odd extension of `3 * max(len(a), len(b))` samples each side, and both passes
/// started from [`lfilter_zi`] scaled by the first sample. Zero phase; the magnitude response is
/// squared. Errors if `x` is not longer than the padding.
pub fn filtfilt(b: &[f64], a: &[f64], x: &[f64]) -> Result<Vec<f64>> {
    let padlen = 3 * a.len().max(b.len());
    let ext = odd_ext(x, padlen)?;
    let zi = lfilter_zi(b, a)?;
    let start = |v: f64| zi.iter().map(|z| z * v).collect::<Vec<_>>();
    let x0 = ext.first().copied().unwrap_or(0.0);
    let (mut y, _) = lfilter(b, a, &ext, Some(&start(x0)))?;
    y.reverse();
    let y0 = y.first().copied().unwrap_or(0.0);
    let (mut y, _) = lfilter(b, a, &y, Some(&start(y0)))?;
    y.reverse();
    Ok(y[padlen..y.len() - padlen].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_response_starts_in_steady_state() {
        let (b, a) = ([0.2, 0.3, 0.1], [1.0, -0.5, 0.2]);
        let zi = lfilter_zi(&b, &a).expect("stable");
        let (y, _) = lfilter(&b, &a, &[1.0; 20], Some(&zi)).expect("filters");
        let gain: f64 = b.iter().sum::<f64>() / a.iter().sum::<f64>();
        assert!(y.iter().all(|v| (v - gain).abs() < 1e-12), "{y:?}");
    }

    #[test]
    fn normalizes_by_a0_and_checks_state() {
        let (y1, _) = lfilter(&[2.0], &[2.0, -1.0], &[1.0, 0.0, 0.0], None).expect("ok");
        assert_eq!(y1, vec![1.0, 0.5, 0.25]);
        assert!(lfilter(&[1.0, 1.0], &[1.0], &[1.0], Some(&[0.0, 0.0])).is_err());
        assert!(lfilter(&[1.0], &[0.0], &[1.0], None).is_err());
        assert!(matches!(
            filtfilt(&[1.0, 1.0], &[1.0, 0.5], &[1.0; 6]),
            Err(PreprocessError::SignalTooShort { len: 6, padlen: 6 })
        ));
    }
}
