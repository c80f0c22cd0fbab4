//! Signal extension for forward-backward filtering (scipy's `odd_ext`).

use super::error::{PreprocessError, Result};

/// `x` with `n` samples of odd extension on each side: `2*x[0] - x[n..0]` before and
/// `2*x[-1] - x[-2..-(n+2)]` after, as scipy's `odd_ext`. The signal must be longer than `n`.
pub(crate) fn odd_ext(x: &[f64], n: usize) -> Result<Vec<f64>> {
    let (Some(&first), Some(&last)) = (x.first(), x.last()) else {
        return Err(PreprocessError::SignalTooShort { len: 0, padlen: n });
    };
    if x.len() <= n {
        return Err(PreprocessError::SignalTooShort {
            len: x.len(),
            padlen: n,
        });
    }
    let len = x.len();
    let mut out = Vec::with_capacity(len + 2 * n);
    out.extend(x[1..=n].iter().rev().map(|&v| 2.0 * first - v));
    out.extend_from_slice(x);
    out.extend(
        x[len - 1 - n..len - 1]
            .iter()
            .rev()
            .map(|&v| 2.0 * last - v),
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_scipy_odd_ext() {
        // scipy: odd_ext([1, 2, 3, 5], 2) == [-1, 0, 1, 2, 3, 5, 7, 8]
        let ext = odd_ext(&[1.0, 2.0, 3.0, 5.0], 2).expect("long enough");
        assert_eq!(ext, vec![-1.0, 0.0, 1.0, 2.0, 3.0, 5.0, 7.0, 8.0]);
        assert!(odd_ext(&[1.0, 2.0], 2).is_err());
    }
}
