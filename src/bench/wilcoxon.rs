//! Wilcoxon signed-rank test for paired samples (two-sided), as `scipy.stats.wilcoxon` computes
//! it by default (SciPy 1.17): zero differences dropped, average ranks for ties, the exact
//! null distribution of the statistic given those ranks when at most 50 pairs remain, else the
//! normal approximation with the tie correction and no continuity correction.

/// Two-sided p-value of the Wilcoxon signed-rank test of `x - y`; `None` when no pair differs.
pub fn wilcoxon(x: &[f64], y: &[f64]) -> Option<f64> {
    let diffs: Vec<f64> = x
        .iter()
        .zip(y)
        .map(|(a, b)| a - b)
        .filter(|d| d.is_finite() && *d != 0.0)
        .collect();
    let n = diffs.len();
    if n == 0 {
        return None;
    }
    let ranks = average_ranks(&diffs.iter().map(|d| d.abs()).collect::<Vec<_>>());
    let r_plus: f64 = diffs
        .iter()
        .zip(&ranks)
        .filter(|(d, _)| **d > 0.0)
        .map(|(_, r)| r)
        .sum();
    let r_minus: f64 = ranks.iter().sum::<f64>() - r_plus;
    let statistic = r_plus.min(r_minus);
    if n <= 50 {
        return Some(exact_p(&ranks, statistic));
    }
    let nf = n as f64;
    let mean = nf * (nf + 1.0) / 4.0;
    let tie_term: f64 = tie_sizes(&ranks)
        .iter()
        .map(|&t| {
            let t = t as f64;
            t * t * t - t
        })
        .sum();
    let var = nf * (nf + 1.0) * (2.0 * nf + 1.0) / 24.0 - tie_term / 48.0;
    if var <= 0.0 {
        return Some(1.0);
    }
    let z = (statistic - mean) / var.sqrt();
    Some((2.0 * normal_cdf(z)).min(1.0))
}

/// Ranks 1..n of `values`, ties sharing their average rank.
fn average_ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && values[order[j + 1]] == values[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            ranks[k] = rank;
        }
        i = j + 1;
    }
    ranks
}

/// Sizes of the groups of equal ranks.
fn tie_sizes(ranks: &[f64]) -> Vec<usize> {
    let mut sorted = ranks.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mut sizes = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let j = sorted[i..].iter().take_while(|&&r| r == sorted[i]).count();
        sizes.push(j);
        i += j;
    }
    sizes
}

/// Exact two-sided p-value, `2 P(T <= t)`, where under the null T is the sum of the ranks of a
/// random subset (each sign equally likely). Average ranks are halves, so doubled they count.
fn exact_p(ranks: &[f64], statistic: f64) -> f64 {
    let doubled: Vec<usize> = ranks.iter().map(|r| (r * 2.0).round() as usize).collect();
    let max: usize = doubled.iter().sum();
    // counts[s] = number of subsets whose doubled ranks sum to s.
    let mut counts = vec![0f64; max + 1];
    counts[0] = 1.0;
    for &r in &doubled {
        for s in (r..=max).rev() {
            counts[s] += counts[s - r];
        }
    }
    let total = 2f64.powi(ranks.len() as i32);
    let t = (statistic * 2.0).round() as usize;
    let below: f64 = counts.iter().take(t + 1).sum();
    (2.0 * below / total).min(1.0)
}

/// Standard normal CDF (Abramowitz-Stegun 7.1.26 through erfc; |error| < 1.5e-7).
fn normal_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

fn erfc(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.5 * x.abs());
    // Numerical Recipes' erfc approximation (fractional error < 1.2e-7).
    let poly = -x * x - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_average_ties() {
        assert_eq!(
            average_ranks(&[3.0, 1.0, 3.0, 2.0]),
            vec![3.5, 1.0, 3.5, 2.0]
        );
        assert_eq!(tie_sizes(&[3.5, 1.0, 3.5, 2.0]), vec![1, 1, 2]);
    }

    /// Reference p-values from `scipy.stats.wilcoxon(x, y).pvalue`, SciPy 1.17.1.
    #[test]
    fn matches_scipy() {
        let close = |got: Option<f64>, want: f64, tol: f64| {
            let got = got.expect("a p-value");
            assert!((got - want).abs() < tol, "p = {got}, scipy {want}");
        };
        let x = [0.7, 0.633, 0.8, 0.567, 0.9, 0.6, 0.733, 0.5];
        let y = [0.6, 0.6, 0.7, 0.6, 0.75, 0.55, 0.7, 0.45];
        close(wilcoxon(&x, &y), 0.03125, 1e-12);
        // Ties and a zero difference: exact conditional distribution.
        let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, -2.0, 3.0, 0.0];
        let y = [0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0];
        close(wilcoxon(&x, &y), 0.0078125, 1e-12);
        close(
            wilcoxon(&[0.1, 0.2, -0.3, 0.4, 0.5, -0.6, 0.7], &[0.0; 7]),
            0.46875,
            1e-12,
        );
        // 60 pairs in steps of 1/30 (ties, zeros): normal approximation.
        let x: Vec<f64> = [
            19, 8, 1, 0, 24, 27, 18, 22, 16, 28, 24, 0, 26, 1, 22, 5, 26, 16, 9, 13, 1, 4, 20, 19,
            18, 12, 30, 29, 21, 20, 21, 12, 4, 22, 16, 9, 15, 27, 28, 11, 17, 10, 18, 10, 12, 27,
            7, 19, 3, 25, 24, 7, 26, 2, 10, 5, 14, 24, 7, 2,
        ]
        .iter()
        .map(|&v| f64::from(v) / 30.0)
        .collect();
        let y: Vec<f64> = [
            12, 6, 3, 17, 9, 20, 6, 28, 11, 3, 19, 28, 13, 29, 15, 13, 19, 30, 28, 14, 23, 15, 16,
            24, 12, 22, 21, 28, 3, 22, 28, 29, 0, 26, 29, 29, 4, 29, 27, 25, 14, 7, 24, 28, 8, 16,
            13, 28, 1, 22, 18, 1, 22, 0, 23, 15, 28, 2, 25, 2,
        ]
        .iter()
        .map(|&v| f64::from(v) / 30.0)
        .collect();
        close(wilcoxon(&x, &y), 0.265_512_077_265_057_77, 2e-6);
    }

    #[test]
    fn identical_samples_have_no_test() {
        assert_eq!(wilcoxon(&[0.5, 0.6], &[0.5, 0.6]), None);
    }

    #[test]
    fn normal_cdf_is_accurate() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(1.959_963_985) - 0.975).abs() < 1e-6);
        assert!((normal_cdf(-3.0) - 0.001_349_898).abs() < 1e-6);
    }
}
