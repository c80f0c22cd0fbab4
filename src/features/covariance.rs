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
        let mean = pairwise_sum(row) / t as f64;
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

/// The sum of `x` in numpy's order (`pairwise_sum` of `numpy/_core/src/umath/loops_utils.h`):
/// eight running sums over blocks of up to 128 values, halves added recursively above that. Its
/// rounding error grows with log(n) rather than n, and the eight sums run side by side.
fn pairwise_sum(x: &[f64]) -> f64 {
    const BLOCK: usize = 128;
    if x.len() < 8 {
        return x.iter().fold(0.0, |sum, &v| sum + v);
    }
    if x.len() <= BLOCK {
        let mut sums = [0.0; 8];
        let mut chunks = x.chunks_exact(8);
        for chunk in &mut chunks {
            for (s, &v) in sums.iter_mut().zip(chunk) {
                *s += v;
            }
        }
        let total = ((sums[0] + sums[1]) + (sums[2] + sums[3]))
            + ((sums[4] + sums[5]) + (sums[6] + sums[7]));
        return chunks.remainder().iter().fold(total, |sum, &v| sum + v);
    }
    let half = x.len() / 2;
    let (left, right) = x.split_at(half - half % 8);
    pairwise_sum(left) + pairwise_sum(right)
}

/// Rows per block of [`gram`]: the product is computed for the blocks on and above the diagonal
/// only (3 of 4 for 64 channels), and mirrored: 32 rows per block was the fastest of 16, 24,
/// 32, 48 and one whole product on a 2-core AMD EPYC (AVX2).
const GRAM_BLOCK: usize = 32;

/// `scale * x x^T` of the row-major `n x t` matrix `x` (`x.len() == n * t`), exactly symmetric:
/// matrix products through the gemm crate for the blocks of the upper triangle, copied onto the
/// lower one.
fn gram(x: &[f64], n: usize, t: usize, scale: f64) -> Vec<f64> {
    let mut out = vec![0.0; n * n];
    if x.len() != n * t || n == 0 || t == 0 {
        return out;
    }
    let signed = |v: usize| v as isize;
    for top in (0..n).step_by(GRAM_BLOCK) {
        let rows = GRAM_BLOCK.min(n - top);
        for left in (top..n).step_by(GRAM_BLOCK) {
            let columns = GRAM_BLOCK.min(n - left);
            // SAFETY: `x` holds n rows of t values (checked above). The left operand is rows
            // `top..top + rows` of x (reads x[(top + i) * t + k]), the right one rows
            // `left..left + columns` of x transposed (reads x[(left + j) * t + k]), for i < rows,
            // j < columns, k < t, with top + rows <= n and left + columns <= n. The result is the
            // block at row `top`, column `left` of `out` (n x n, row stride n), a separate
            // allocation from `x`.
            unsafe {
                gemm::gemm(
                    rows,
                    columns,
                    t,
                    out.as_mut_ptr().add(top * n + left),
                    1,
                    signed(n),
                    false,
                    x.as_ptr().add(top * t),
                    1,
                    signed(t),
                    x.as_ptr().add(left * t),
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
        }
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
    fn pairwise_sum_is_exact_on_integers_and_accurate_on_long_sums() {
        for n in [0, 1, 7, 8, 9, 127, 128, 129, 1000] {
            let x: Vec<f64> = (0..n).map(|i| f64::from(i % 13) - 6.0).collect();
            assert_eq!(pairwise_sum(&x), x.iter().sum::<f64>(), "n = {n}");
        }
        // A million tenths: a running sum drifts by about 1e-6, the pairwise sum stays within
        // a few units in the last place of 1e5.
        let tenths = vec![0.1; 1_000_000];
        let naive: f64 = tenths.iter().sum();
        assert!((naive - 1e5).abs() > 1e-8);
        assert!((pairwise_sum(&tenths) - 1e5).abs() < 1e-9);
    }

    #[test]
    fn gram_blocks_equal_the_plain_product() {
        for n in [1, 15, 16, 17, 40, 64] {
            let t = 37;
            let x: Vec<f64> = (0..n * t).map(|i| ((i * 7) % 23) as f64 - 11.0).collect();
            let g = gram(&x, n, t, 0.5);
            for i in 0..n {
                for j in 0..n {
                    let dot: f64 = (0..t).map(|k| x[i * t + k] * x[j * t + k]).sum();
                    assert_eq!(g[i * n + j], 0.5 * dot, "n = {n}, ({i}, {j})");
                }
            }
        }
    }

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
