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
    if n == 0 || t == 0 {
        return vec![0.0; n * n];
    }
    let centred: Vec<Vec<f64>> = x
        .iter()
        .map(|row| {
            let mean = row.iter().sum::<f64>() / t as f64;
            row.iter().map(|v| v - mean).collect()
        })
        .collect();
    let mut cov = vec![0.0; n * n];
    for i in 0..n {
        for j in i..n {
            let s: f64 = centred[i]
                .iter()
                .zip(&centred[j])
                .map(|(a, b)| a * b)
                .sum::<f64>()
                / t as f64;
            cov[i * n + j] = s;
            cov[j * n + i] = s;
        }
    }
    let shrinkage = match estimator {
        Estimator::Scm => return cov,
        Estimator::Lwf => ledoit_wolf_shrinkage(&centred, &cov),
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

/// scikit-learn's `ledoit_wolf_shrinkage` on centred data.
fn ledoit_wolf_shrinkage(centred: &[Vec<f64>], cov: &[f64]) -> f64 {
    let n = centred.len();
    let t = centred[0].len() as f64;
    let squared: Vec<Vec<f64>> = centred
        .iter()
        .map(|r| r.iter().map(|v| v * v).collect())
        .collect();
    let trace_terms: Vec<f64> = squared.iter().map(|r| r.iter().sum::<f64>() / t).collect();
    let mu = trace_terms.iter().sum::<f64>() / n as f64;
    let mut beta_sum = 0.0;
    let mut delta_sum = 0.0;
    for i in 0..n {
        for j in 0..n {
            beta_sum += squared[i]
                .iter()
                .zip(&squared[j])
                .map(|(a, b)| a * b)
                .sum::<f64>();
            let c = cov[i * n + j] * t; // (X^T X)_ij
            delta_sum += c * c;
        }
    }
    let delta_sum = delta_sum / (t * t);
    let beta = (beta_sum / t - delta_sum) / (n as f64 * t);
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
