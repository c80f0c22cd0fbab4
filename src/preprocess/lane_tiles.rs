//! 8x8 tile transposes between channel-major f32 rows and the lane filter's interleaved f64
//! samples, with AVX2 shuffles. The compiler turns the portable per-lane loops of
//! [`sosfilt_lanes`](super::sosfilt_lanes) into scalar inserts and extracts; these move a whole
//! tile in registers. Values are converted exactly as the portable code converts them (f32 to
//! f64 is exact; f64 to f32 rounds to nearest, ties to even, in both).

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::{
    __m256, _mm256_castps128_ps256, _mm256_castps256_ps128, _mm256_cvtpd_ps, _mm256_cvtps_pd,
    _mm256_extractf128_ps, _mm256_insertf128_ps, _mm256_loadu_pd, _mm256_loadu_ps,
    _mm256_permute2f128_ps, _mm256_shuffle_ps, _mm256_storeu_pd, _mm256_unpackhi_ps,
    _mm256_unpacklo_ps, _mm_setzero_ps,
};
use std::mem::MaybeUninit;

/// Side of a tile: eight channels by eight samples.
pub(super) const SIDE: usize = 8;

/// Whether this CPU runs the functions of this module.
pub(super) fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
}

/// The transpose of eight rows of eight f32: row `j` of the result is element `j` of every row.
#[inline]
#[target_feature(enable = "avx2")]
fn transpose(r: [__m256; SIDE]) -> [__m256; SIDE] {
    let t0 = _mm256_unpacklo_ps(r[0], r[1]);
    let t1 = _mm256_unpackhi_ps(r[0], r[1]);
    let t2 = _mm256_unpacklo_ps(r[2], r[3]);
    let t3 = _mm256_unpackhi_ps(r[2], r[3]);
    let t4 = _mm256_unpacklo_ps(r[4], r[5]);
    let t5 = _mm256_unpackhi_ps(r[4], r[5]);
    let t6 = _mm256_unpacklo_ps(r[6], r[7]);
    let t7 = _mm256_unpackhi_ps(r[6], r[7]);
    let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
    let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
    let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
    let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
    let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
    let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
    let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
    let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
    [
        _mm256_permute2f128_ps::<0x20>(u0, u4),
        _mm256_permute2f128_ps::<0x20>(u1, u5),
        _mm256_permute2f128_ps::<0x20>(u2, u6),
        _mm256_permute2f128_ps::<0x20>(u3, u7),
        _mm256_permute2f128_ps::<0x31>(u0, u4),
        _mm256_permute2f128_ps::<0x31>(u1, u5),
        _mm256_permute2f128_ps::<0x31>(u2, u6),
        _mm256_permute2f128_ps::<0x31>(u3, u7),
    ]
}

/// Interleaves eight channels, a tile of eight samples at a time: `out[j][c] = rows[c][j]`,
/// widened to f64, for every `j` below the returned count: the most whole tiles that every row
/// and `out` hold.
#[target_feature(enable = "avx2")]
pub(super) fn interleave(rows: [&[f32]; SIDE], out: &mut [[f64; SIDE]]) -> usize {
    let shortest = rows.iter().map(|row| row.len()).min().unwrap_or(0);
    let done = shortest.min(out.len()) / SIDE * SIDE;
    for (tile, at) in out.chunks_exact_mut(SIDE).zip((0..done).step_by(SIDE)) {
        // SAFETY: `at + 8 <= done <= len` of every row, the width of an unaligned 256-bit load.
        let loaded = rows.map(|row| unsafe { _mm256_loadu_ps(row.as_ptr().add(at)) });
        for (sample, lanes) in transpose(loaded).into_iter().zip(tile) {
            let low = _mm256_cvtps_pd(_mm256_castps256_ps128(sample));
            let high = _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(sample));
            let (first, second) = lanes.split_at_mut(SIDE / 2);
            // SAFETY: each half holds exactly four f64, the width of an unaligned 256-bit store.
            unsafe {
                _mm256_storeu_pd(first.as_mut_ptr(), low);
                _mm256_storeu_pd(second.as_mut_ptr(), high);
            }
        }
    }
    done
}

/// Splits interleaved samples back into eight channels, a tile of eight samples at a time,
/// rounded through f32: `rows[c][j] = samples[j][c] as f32 as f64`, for every `j` below the
/// returned count: the most whole tiles that `samples` and every row hold.
#[target_feature(enable = "avx2")]
pub(super) fn deinterleave_rounded(
    samples: &[[f64; SIDE]],
    rows: [&mut [MaybeUninit<f64>]; SIDE],
) -> usize {
    let shortest = rows.iter().map(|row| row.len()).min().unwrap_or(0);
    let done = shortest.min(samples.len()) / SIDE * SIDE;
    let mut rows = rows;
    for (tile, at) in samples.chunks_exact(SIDE).zip((0..done).step_by(SIDE)) {
        let mut narrowed = [_mm256_castps128_ps256(_mm_setzero_ps()); SIDE];
        for (lanes, slot) in tile.iter().zip(&mut narrowed) {
            let (first, second) = lanes.split_at(SIDE / 2);
            // SAFETY: each half holds exactly four f64, the width of an unaligned 256-bit load.
            let (low, high) = unsafe {
                (
                    _mm256_cvtpd_ps(_mm256_loadu_pd(first.as_ptr())),
                    _mm256_cvtpd_ps(_mm256_loadu_pd(second.as_ptr())),
                )
            };
            *slot = _mm256_insertf128_ps::<1>(_mm256_castps128_ps256(low), high);
        }
        for (channel, row) in transpose(narrowed).into_iter().zip(rows.iter_mut()) {
            let low = _mm256_cvtps_pd(_mm256_castps256_ps128(channel));
            let high = _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(channel));
            // SAFETY: `at + 8 <= done <= len` of every row (`MaybeUninit<f64>` has the layout of
            // f64): two unaligned 256-bit stores of four f64 each.
            unsafe {
                let at = row.as_mut_ptr().add(at).cast::<f64>();
                _mm256_storeu_pd(at, low);
                _mm256_storeu_pd(at.add(SIDE / 2), high);
            }
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> [[f32; SIDE]; SIDE] {
        std::array::from_fn(|c| std::array::from_fn(|j| (c * 10 + j) as f32 + 0.1 * j as f32))
    }

    #[test]
    fn interleave_is_a_widening_transpose() {
        if !available() {
            eprintln!("skipped: no AVX2 on this CPU");
            return;
        }
        let rows = values();
        let mut out = [[0.0; SIDE]; SIDE];
        // SAFETY: AVX2 was detected above.
        let done = unsafe { interleave(std::array::from_fn(|c| &rows[c][..]), &mut out) };
        assert_eq!(done, SIDE);
        for (j, lanes) in out.iter().enumerate() {
            for (c, &v) in lanes.iter().enumerate() {
                assert_eq!(v, f64::from(rows[c][j]));
            }
        }
    }

    #[test]
    fn only_whole_tiles_that_every_row_holds_are_moved() {
        if !available() {
            eprintln!("skipped: no AVX2 on this CPU");
            return;
        }
        // Rows of 8 to 23 samples: two whole tiles fit the shortest but one (row 3, 15 long).
        let rows: Vec<Vec<f32>> = (0..SIDE)
            .map(|c| {
                (0..23 - (c == 3) as usize * 8)
                    .map(|j| (c * 100 + j) as f32)
                    .collect()
            })
            .collect();
        let mut out = vec![[-1.0; SIDE]; 30];
        // SAFETY: AVX2 was detected above.
        let done = unsafe { interleave(std::array::from_fn(|c| &rows[c][..]), &mut out) };
        assert_eq!(done, SIDE);
        assert!(out[SIDE..].iter().flatten().all(|&v| v == -1.0));
        let mut slots = vec![[MaybeUninit::new(-1.0); 20]; SIDE];
        let targets: [&mut [MaybeUninit<f64>]; SIDE] = {
            let mut it = slots.iter_mut().map(|r| &mut r[..]);
            std::array::from_fn(|_| it.next().unwrap_or_default())
        };
        // SAFETY: AVX2 was detected above.
        let done = unsafe { deinterleave_rounded(&out[..17], targets) };
        assert_eq!(done, 16);
        for (c, row) in slots.iter().enumerate() {
            // SAFETY: every slot was initialised, before and by the calls.
            let row: Vec<f64> = row.iter().map(|v| unsafe { v.assume_init() }).collect();
            let expected: Vec<f64> = (0..20)
                .map(|j| if j < SIDE { (c * 100 + j) as f64 } else { -1.0 })
                .collect();
            assert_eq!(row, expected, "row {c}");
        }
    }

    #[test]
    fn deinterleave_rounds_as_a_cast_does() {
        if !available() {
            eprintln!("skipped: no AVX2 on this CPU");
            return;
        }
        // Values between floats, exactly halfway ones (ties to even) and large ones.
        let tile: [[f64; SIDE]; SIDE] = std::array::from_fn(|j| {
            std::array::from_fn(|c| {
                let base = (j * SIDE + c) as f64;
                match c % 3 {
                    0 => base / 3.0,
                    1 => 1.0 + (2 * j + 1) as f64 * f64::from(f32::EPSILON) / 2.0,
                    _ => -base * 1e30,
                }
            })
        });
        let mut rows = [[MaybeUninit::new(0.0); SIDE]; SIDE];
        // SAFETY: AVX2 was detected above.
        let done = unsafe { deinterleave_rounded(&tile, rows.each_mut().map(|r| &mut r[..])) };
        assert_eq!(done, SIDE);
        for (c, row) in rows.iter().enumerate() {
            for (j, v) in row.iter().enumerate() {
                // SAFETY: every slot was written, before and by the call.
                let v = unsafe { v.assume_init() };
                assert_eq!(v.to_bits(), f64::from(tile[j][c] as f32).to_bits());
            }
        }
    }
}
