//! Channel covariance estimators: sample (SCM), Ledoit-Wolf and OAS shrinkage, computed as
//! pyriemann computes them (`scm`, `lwf`, `oas`; the shrinkage formulas of scikit-learn).

use serde::{Deserialize, Serialize};

/// Which covariance estimator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Estimator {
    /// Sample covariance of the centred data, divided by N.
    Scm,
    /// Ledoit-Wolf shrinkage toward a scaled identity.
    Lwf,
    /// Oracle Approximating Shrinkage toward a scaled identity.
    Oas,
}

/// Row-major `n x n` covariance of `x` (`x[channel][sample]`, all channels equally long, at
/// least one sample), with the chosen estimator.
pub fn covariance(x: &[Vec<f64>], estimator: Estimator) -> Vec<f64> {
    let n = x.len();
    let t = x.first().map_or(0, Vec::len);
    if x.iter().any(|row| row.len() != t) {
        return vec![f64::NAN; n * n];
    }
    covariance_of_rows(x.concat(), n, t, estimator)
}

/// [`covariance`] of `n` channels of `t` samples stored one after another in `x` (`x[c * t + s]`),
/// which it centres in place. NaN everywhere when `x` does not hold `n * t` values.
pub fn covariance_of_rows(mut x: Vec<f64>, n: usize, t: usize, estimator: Estimator) -> Vec<f64> {
    if x.len() != n * t {
        return vec![f64::NAN; n * n];
    }
    if n == 0 || t == 0 {
        return vec![0.0; n * n];
    }
    for row in x.chunks_exact_mut(t) {
        let mean = row.iter().sum::<f64>() / t as f64;
        row.iter_mut().for_each(|v| *v -= mean);
    }
    let mut cov = gram(&x, n, t, 1.0 / t as f64);
    let shrinkage = match estimator {
        Estimator::Scm => return cov,
        Estimator::Lwf => ledoit_wolf_shrinkage(&x, n, t, &cov),
        Estimator::Oas => oas_shrinkage(&cov, n, t),
    };
    let mu = (0..n).map(|i| cov[i * n + i]).sum::<f64>() / n as f64;
    for i in 0..n {
        for j in 0..n {
            cov[i * n + j] *= 1.0 - shrinkage;
            if i == j {
                cov[i * n + j] += shrinkage * mu;
            }
        }
    }
    cov
}

/// `scale * x x^T` of the row-major `n x t` matrix `x` (`x.len() == n * t`), exactly symmetric:
/// one matrix product through the gemm crate, the upper triangle copied onto the lower.
fn gram(x: &[f64], n: usize, t: usize, scale: f64) -> Vec<f64> {
    let mut out = vec![0.0; n * n];
    if x.len() != n * t || n == 0 || t == 0 {
        return out;
    }
    let signed = |v: usize| v as isize;
    // SAFETY: `x` holds n rows of t values (checked above): the left operand reads x[i * t + k]
    // and the right one (x transposed) x[j * t + k], for i, j < n and k < t; `out` holds the
    // n x n result with row stride n, and is a separate allocation from `x`.
    unsafe {
        gemm::gemm(
            n,
            n,
            t,
            out.as_mut_ptr(),
            1,
            signed(n),
            false,
            x.as_ptr(),
            1,
            signed(t),
            x.as_ptr(),
            signed(t),
            1,
            0.0,
            scale,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
    for i in 0..n {
        for j in 0..i {
            out[i * n + j] = out[j * n + i];
        }
    }
    out
}

/// scikit-learn's `ledoit_wolf_shrinkage` on the centred rows of `x` (`n x t`, row-major).
fn ledoit_wolf_shrinkage(x: &[f64], n: usize, t: usize, cov: &[f64]) -> f64 {
    let tf = t as f64;
    let trace_terms: Vec<f64> = x
        .chunks_exact(t)
        .map(|r| r.iter().map(|v| v * v).sum::<f64>() / tf)
        .collect();
    let mu = trace_terms.iter().sum::<f64>() / n as f64;
    // sum over i, j of <x_i^2, x_j^2> is the sum over samples of (sum over channels of x^2)^2.
    let mut column_sums = vec![0.0; t];
    for row in x.chunks_exact(t) {
        for (s, v) in column_sums.iter_mut().zip(row) {
            *s += v * v;
        }
    }
    let beta_sum: f64 = column_sums.iter().map(|s| s * s).sum();
    // sum over i, j of (X^T X)_ij^2, from the covariance (X^T X / t).
    let delta_sum = cov.iter().map(|c| (c * tf) * (c * tf)).sum::<f64>() / (tf * tf);
    let beta = (beta_sum / tf - delta_sum) / (n as f64 * tf);
    let delta =
        (delta_sum - 2.0 * mu * trace_terms.iter().sum::<f64>() + n as f64 * mu * mu) / n as f64;
    let beta = beta.min(delta);
    if beta == 0.0 {
        0.0
    } else {
        beta / delta
    }
}

/// scikit-learn's `oas` shrinkage (the corrected formula of scikit-learn >= 1.3).
fn oas_shrinkage(cov: &[f64], n: usize, t: usize) -> f64 {
    let alpha = cov.iter().map(|c| c * c).sum::<f64>() / (n * n) as f64;
    let mu = (0..n).map(|i| cov[i * n + i]).sum::<f64>() / n as f64;
    let mu2 = mu * mu;
    let num = alpha + mu2;
    let den = (t as f64 + 1.0) * (alpha - mu2 / n as f64);
    if den == 0.0 {
        1.0
    } else {
        (num / den).min(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scm_of_two_channels() {
        let x = vec![vec![1.0, 2.0, 3.0, 4.0], vec![2.0, 4.0, 6.0, 8.0]];
        let c = covariance(&x, Estimator::Scm);
        assert!(
            (c[0] - 1.25).abs() < 1e-12 && (c[1] - 2.5).abs() < 1e-12 && (c[3] - 5.0).abs() < 1e-12
        );
    }

    #[test]
    fn shrinkage_keeps_trace_and_moves_toward_identity() {
        let x: Vec<Vec<f64>> = (0..4)
            .map(|c| {
                (0..50)
                    .map(|i| ((i * (c + 3)) as f64 * 0.37).sin() + c as f64)
                    .collect()
            })
            .collect();
        let scm = covariance(&x, Estimator::Scm);
        for e in [Estimator::Lwf, Estimator::Oas] {
            let s = covariance(&x, e);
            let trace = |m: &[f64]| (0..4).map(|i| m[i * 4 + i]).sum::<f64>();
            assert!((trace(&s) - trace(&scm)).abs() < 1e-9);
            assert!(s[1].abs() <= scm[1].abs() + 1e-12);
        }
    }
}
