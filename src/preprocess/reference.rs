//! Re-referencing of channel arrays: common average, or one channel as the reference.

use super::error::{PreprocessError, Result};

fn check_lengths(channels: &[Vec<f64>]) -> Result<usize> {
    let n = channels.first().map_or(0, Vec::len);
    match channels.iter().position(|c| c.len() != n) {
        Some(index) => Err(PreprocessError::LengthMismatch {
            index,
            expected: n,
            found: channels[index].len(),
        }),
        None => Ok(n),
    }
}

/// Subtracts, at each sample, the mean over all `channels` (which must have equal lengths).
/// Nothing to do for no channels.
pub fn common_average_reference(channels: &mut [Vec<f64>]) -> Result<()> {
    let n = check_lengths(channels)?;
    if channels.is_empty() {
        return Ok(());
    }
    let mean = mean_over(channels.iter().map(Vec::as_slice), n, channels.len());
    for c in channels.iter_mut() {
        for (v, m) in c.iter_mut().zip(&mean) {
            *v -= m;
        }
    }
    Ok(())
}

/// Per-sample mean of `count` channels of `n` samples each.
pub(crate) fn mean_over<'a>(
    channels: impl Iterator<Item = &'a [f64]>,
    n: usize,
    count: usize,
) -> Vec<f64> {
    let mut sum = vec![0.0; n];
    for c in channels {
        for (s, v) in sum.iter_mut().zip(c) {
            *s += v;
        }
    }
    let k = count.max(1) as f64;
    sum.into_iter().map(|s| s / k).collect()
}

/// Subtracts channel `reference` from every other channel (equal lengths); the reference
/// channel itself is left as it was.
pub fn channel_reference(channels: &mut [Vec<f64>], reference: usize) -> Result<()> {
    check_lengths(channels)?;
    let Some(reference_data) = channels.get(reference).cloned() else {
        return Err(PreprocessError::ChannelOutOfRange {
            index: reference,
            channels: channels.len(),
        });
    };
    for (i, c) in channels.iter_mut().enumerate() {
        if i != reference {
            for (v, r) in c.iter_mut().zip(&reference_data) {
                *v -= r;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn average_and_channel_reference() {
        let mut x = vec![vec![1.0, 2.0], vec![3.0, 6.0]];
        common_average_reference(&mut x).expect("equal lengths");
        assert_eq!(x, vec![vec![-1.0, -2.0], vec![1.0, 2.0]]);
        let mut x = vec![vec![1.0, 2.0], vec![3.0, 6.0], vec![0.5, 0.5]];
        channel_reference(&mut x, 2).expect("in range");
        assert_eq!(x, vec![vec![0.5, 1.5], vec![2.5, 5.5], vec![0.5, 0.5]]);
        assert!(channel_reference(&mut x, 3).is_err());
        let mut ragged = vec![vec![1.0], vec![1.0, 2.0]];
        assert!(common_average_reference(&mut ragged).is_err());
    }
}
