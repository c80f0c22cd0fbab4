//! How sure an accuracy is: a confidence interval and a test against chance, both for a count of
//! correct answers out of `n` independent epochs.

/// Wilson score interval at 95% for `correct` of `n` (the normal-approximation interval misbehaves
/// at the small counts a calibration run gives). `None` when `n` is 0.
pub fn wilson_interval(correct: usize, n: usize) -> Option<(f64, f64)> {
    if n == 0 || correct > n {
        return None;
    }
    const Z: f64 = 1.959_963_984_540_054;
    let n = n as f64;
    let p = correct as f64 / n;
    let z2 = Z * Z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / (1.0 + z2 / n);
    Some(((centre - half).max(0.0), (centre + half).min(1.0)))
}

/// One-sided exact binomial p-value: the chance of `correct` or more of `n` right when each epoch
/// is right with probability `chance`. `None` when the inputs make no sense.
pub fn binomial_above_chance(correct: usize, n: usize, chance: f64) -> Option<f64> {
    if n == 0 || correct > n || !(0.0..1.0).contains(&chance) || chance == 0.0 {
        return None;
    }
    let (ln_p, ln_q) = (chance.ln(), (1.0 - chance).ln());
    let ln_choose = |k: usize| ln_factorial(n) - ln_factorial(k) - ln_factorial(n - k);
    let tail: f64 = (correct..=n)
        .map(|k| (ln_choose(k) + k as f64 * ln_p + (n - k) as f64 * ln_q).exp())
        .sum();
    Some(tail.min(1.0))
}

fn ln_factorial(k: usize) -> f64 {
    (2..=k).map(|i| (i as f64).ln()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_published_values() {
        // Newcombe (1998), table I: 81 of 263 -> 0.2553 to 0.3662; 15 of 148 -> 0.0624 to 0.1605.
        let (lo, hi) = wilson_interval(81, 263).unwrap();
        assert!(
            (lo - 0.2553).abs() < 5e-4 && (hi - 0.3662).abs() < 5e-4,
            "{lo} {hi}"
        );
        let (lo, hi) = wilson_interval(15, 148).unwrap();
        assert!(
            (lo - 0.0624).abs() < 5e-4 && (hi - 0.1605).abs() < 5e-4,
            "{lo} {hi}"
        );
        let (lo, hi) = wilson_interval(0, 10).unwrap();
        assert!(lo == 0.0 && hi > 0.25 && hi < 0.35);
        assert_eq!(wilson_interval(3, 0), None);
        assert_eq!(wilson_interval(4, 3), None);
    }

    #[test]
    fn binomial_tail_matches_direct_sums() {
        // 21 of 30 at chance 0.5: sum_{k>=21} C(30,k) / 2^30 = 0.021387...
        let p = binomial_above_chance(21, 30, 0.5).unwrap();
        assert!((p - 0.021_386_8).abs() < 1e-6, "{p}");
        assert!((binomial_above_chance(0, 30, 0.5).unwrap() - 1.0).abs() < 1e-12);
        // All 4 right at chance 1/3: (1/3)^4.
        let p = binomial_above_chance(4, 4, 1.0 / 3.0).unwrap();
        assert!((p - 1.0 / 81.0).abs() < 1e-12, "{p}");
        assert_eq!(binomial_above_chance(5, 4, 0.5), None);
        assert_eq!(binomial_above_chance(2, 4, 1.0), None);
    }
}
