//! [`sosfiltfilt`](super::sosfiltfilt) of many channels at once.
//!
//! One channel's recursion waits on its previous sample at every section, so a filter run
//! channel by channel leaves the vector units idle. Here a block of [`LANES`] channels goes
//! through the cascade side by side, one SIMD lane per channel. Each lane does the arithmetic of
//! the one-channel code in the same order, with the same fused multiply-adds, so the results are
//! the same bit for bit; a fused multiply-add is exactly rounded by definition, so they are also
//! the same on every CPU, with or without FMA instructions (without, slowly).

use std::mem::MaybeUninit;

use super::error::{PreprocessError, Result};
#[cfg(target_arch = "x86_64")]
use super::lane_tiles;
use super::sosfilt::{
    section, sosfilt_zi, sosfiltfilt_padlen, unit_after_first, unit_section, validate,
};

/// Channels filtered side by side: one AVX-512 register of f64, two of AVX2.
const LANES: usize = 8;

/// One sample of every channel in a block.
type Lanes = [f64; LANES];

/// Forward-backward filtering of every channel through the sections, as
/// `scipy.signal.sosfiltfilt(sos, x)` per channel (see [`sosfiltfilt`](super::sosfiltfilt)):
/// f32 samples in and out, f64 arithmetic. All channels must be equally long, and longer than
/// [`sosfiltfilt_padlen`].
pub fn sosfiltfilt_channels(sos: &[[f64; 6]], channels: &[&[f32]]) -> Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(channels.len());
    filter_blocks(
        sos,
        channels,
        #[inline(always)]
        |body, lanes| out.extend(unpack(body, lanes)),
    )?;
    Ok(out)
}

/// The windows `starts[w]..starts[w] + n_samples` of every channel filtered as
/// [`sosfiltfilt_channels`] (rounded to f32 as it rounds), cut straight from the filter's
/// buffer: window `w` is channel-major, `out[w][c * n_samples + s]`, in f64. A window that does
/// not fit the channels is an error.
pub fn sosfiltfilt_windows(
    sos: &[[f64; 6]],
    channels: &[&[f32]],
    starts: &[usize],
    n_samples: usize,
) -> Result<Vec<Vec<f64>>> {
    let len = channels.first().map_or(0, |c| c.len());
    if let Some(&start) = starts.iter().find(|&&s| s + n_samples > len) {
        return Err(PreprocessError::WindowOutOfRange {
            start,
            n_samples,
            len,
        });
    }
    let mut out: Vec<Vec<f64>> = starts
        .iter()
        .map(|_| Vec::with_capacity(channels.len() * n_samples))
        .collect();
    filter_blocks(
        sos,
        channels,
        #[inline(always)]
        |body, lanes| {
            for (window, &start) in out.iter_mut().zip(starts) {
                // Every window fits (checked above): none is skipped.
                let Some(samples) = body.get(start..start + n_samples) else {
                    continue;
                };
                let offset = window.len();
                if let Some(rows) = window.spare_capacity_mut().get_mut(..lanes * n_samples) {
                    cut_rows(samples, rows, n_samples);
                    // SAFETY: `cut_rows` wrote all `lanes * n_samples` values past the old
                    // length (`lanes` rows of `samples.len() == n_samples` each), which fit the
                    // capacity (`get_mut` above).
                    unsafe { window.set_len(offset + lanes * n_samples) };
                }
            }
        },
    )?;
    Ok(out)
}

/// Writes lane `l` of `samples` (rounded to f32) into row `l` of `rows` (`samples.len()` values
/// per row, one row per lane used), a tile of samples at a time so that the transposition stays
/// in registers.
#[inline(always)]
fn cut_rows(samples: &[Lanes], rows: &mut [MaybeUninit<f64>], n_samples: usize) {
    let rounded = |v: f64| MaybeUninit::new(f64::from(v as f32));
    let mut rows: Vec<&mut [MaybeUninit<f64>]> = rows.chunks_exact_mut(n_samples.max(1)).collect();
    let mut at = 0;
    #[cfg(target_arch = "x86_64")]
    if let (Ok(full), true) = (
        <&mut [&mut [MaybeUninit<f64>]; LANES]>::try_from(rows.as_mut_slice()),
        lane_tiles::available(),
    ) {
        let rows = full.each_mut().map(|row| &mut **row);
        // SAFETY: the CPU has AVX2 (checked above).
        at = unsafe { lane_tiles::deinterleave_rounded(samples, rows) };
    }
    let rest = samples.get(at..).unwrap_or_default();
    let mut tiles = rest.chunks_exact(TILE);
    for tile in &mut tiles {
        for (lane, row) in rows.iter_mut().enumerate() {
            if let Some(out) = row.get_mut(at..at + TILE) {
                for (o, s) in out.iter_mut().zip(tile) {
                    *o = rounded(s[lane % LANES]);
                }
            }
        }
        at += TILE;
    }
    for (lane, row) in rows.iter_mut().enumerate() {
        if let Some(out) = row.get_mut(at..) {
            for (o, s) in out.iter_mut().zip(tiles.remainder()) {
                *o = rounded(s[lane % LANES]);
            }
        }
    }
}

/// Filters `channels` block by block (see [`sosfiltfilt_channels`] for the requirements) and
/// hands each block's filtered samples (without the padding) and its number of channels to
/// `sink`, in channel order.
#[inline(always)]
fn filter_blocks(
    sos: &[[f64; 6]],
    channels: &[&[f32]],
    mut sink: impl FnMut(&[Lanes], usize),
) -> Result<()> {
    validate(sos)?;
    let Some(len) = channels.first().map(|c| c.len()) else {
        return Ok(());
    };
    if let Some((index, c)) = channels.iter().enumerate().find(|(_, c)| c.len() != len) {
        return Err(PreprocessError::LengthMismatch {
            index,
            expected: len,
            found: c.len(),
        });
    }
    let padlen = sosfiltfilt_padlen(sos);
    if len <= padlen {
        return Err(PreprocessError::SignalTooShort { len, padlen });
    }
    let zi = sosfilt_zi(sos)?;
    let mut buffer = vec![[0.0; LANES]; len + 2 * padlen];
    for block in channels.chunks(LANES) {
        filter_block(sos, &zi, block, padlen, &mut buffer, &mut sink);
    }
    Ok(())
}

/// Samples a tile of the interleaved buffer moves at once: one cache line of f64 per sample.
const TILE: usize = 8;
#[cfg(target_arch = "x86_64")]
const _: () = assert!(TILE == lane_tiles::SIDE && LANES == lane_tiles::SIDE);

/// The first `lanes` channels of `samples`, each as its own f32 vector.
#[inline(always)]
fn unpack(samples: &[Lanes], lanes: usize) -> Vec<Vec<f32>> {
    let mut out: Vec<Vec<f32>> = (0..lanes)
        .map(|_| Vec::with_capacity(samples.len()))
        .collect();
    // `lane % LANES` equals `lane` (lanes <= LANES); it lets the compiler drop the bounds check.
    let mut tiles = samples.chunks_exact(TILE);
    for tile in &mut tiles {
        for (lane, y) in out.iter_mut().enumerate() {
            y.extend(tile.iter().map(|s| s[lane % LANES] as f32));
        }
    }
    for (lane, y) in out.iter_mut().enumerate() {
        y.extend(tiles.remainder().iter().map(|s| s[lane % LANES] as f32));
    }
    out
}

/// Fills `buffer` (`len + 2 * n` samples) with the block's channels, side by side, each with
/// scipy's odd extension of `n` samples (see [`super::pad`]); unused lanes are zero. The caller
/// checked that every channel holds `len > n` samples.
#[inline(always)]
fn odd_extend(block: &[&[f32]], n: usize, buffer: &mut [Lanes]) {
    let len = buffer.len() - 2 * n;
    let at = |lane: usize, i: usize| {
        block
            .get(lane)
            .and_then(|x| x.get(i))
            .map_or(0.0, |&v| f64::from(v))
    };
    let (head, rest) = buffer.split_at_mut(n);
    let (body, tail) = rest.split_at_mut(len);
    for (i, slot) in head.iter_mut().enumerate() {
        *slot = std::array::from_fn(|lane| 2.0 * at(lane, 0) - at(lane, n - i));
    }
    for (i, slot) in tail.iter_mut().enumerate() {
        *slot = std::array::from_fn(|lane| 2.0 * at(lane, len - 1) - at(lane, len - 2 - i));
    }
    let mut start = 0;
    #[cfg(target_arch = "x86_64")]
    if let (Ok(&full), true) = (<&[&[f32]; LANES]>::try_from(block), lane_tiles::available()) {
        // SAFETY: the CPU has AVX2 (checked above).
        start = unsafe { lane_tiles::interleave(full, body) };
    }
    if let (0, Ok(full)) = (start, <&[&[f32]; LANES]>::try_from(block)) {
        // The common case, a whole block: tiles of every channel, copied without per-sample
        // checks.
        let mut sources = full.map(|x| x.chunks_exact(TILE));
        for slots in body.chunks_exact_mut(TILE) {
            let tiles = sources
                .each_mut()
                .map(|s| s.next().and_then(|t| <&[f32; TILE]>::try_from(t).ok()));
            if tiles.iter().any(Option::is_none) {
                break;
            }
            let tiles = tiles.map(|t| t.unwrap_or(&[0.0; TILE]));
            for (j, slot) in slots.iter_mut().enumerate() {
                *slot = std::array::from_fn(|lane| f64::from(tiles[lane][j % TILE]));
            }
            start += TILE;
        }
    }
    for (i, slot) in body.iter_mut().enumerate().skip(start) {
        *slot = std::array::from_fn(|lane| at(lane, i));
    }
}

/// The block's channels filtered both ways: laid out side by side in `buffer` (`len + 2 *
/// padlen` samples), filtered in place, and handed to `sink`. Compiled for the widest vector
/// instructions the CPU has, which also turns the layout changes into vector shuffles.
fn filter_block<S: FnMut(&[Lanes], usize)>(
    sos: &[[f64; 6]],
    zi: &[[f64; 2]],
    block: &[&[f32]],
    padlen: usize,
    buffer: &mut [Lanes],
    sink: &mut S,
) {
    #[inline(always)]
    fn body<S: FnMut(&[Lanes], usize)>(
        sos: &[[f64; 6]],
        zi: &[[f64; 2]],
        block: &[&[f32]],
        padlen: usize,
        buffer: &mut [Lanes],
        sink: &mut S,
    ) {
        odd_extend(block, padlen, buffer);
        both_ways(sos, zi, buffer);
        let len = buffer.len() - 2 * padlen;
        sink(&buffer[padlen..padlen + len], block.len());
    }
    /// Runs `body` compiled for the features in `$enable` when the CPU has every one of
    /// `$detect`.
    #[cfg(target_arch = "x86_64")]
    macro_rules! body_when_cpu_has {
        ([$($detect:tt),+], $enable:literal) => {
            if $(std::arch::is_x86_feature_detected!($detect))&&+ {
                #[target_feature(enable = $enable)]
                fn wide<S: FnMut(&[Lanes], usize)>(
                    sos: &[[f64; 6]],
                    zi: &[[f64; 2]],
                    block: &[&[f32]],
                    padlen: usize,
                    buffer: &mut [Lanes],
                    sink: &mut S,
                ) {
                    body(sos, zi, block, padlen, buffer, sink)
                }
                // SAFETY: a function compiled for these features needs only a CPU that has
                // them, checked just above.
                return unsafe { wide(sos, zi, block, padlen, buffer, sink) };
            }
        };
    }
    #[cfg(target_arch = "x86_64")]
    {
        body_when_cpu_has!(["avx512f", "fma"], "avx512f,fma");
        body_when_cpu_has!(["avx2", "fma"], "avx2,fma");
    }
    body(sos, zi, block, padlen, buffer, sink)
}

#[inline(always)]
fn both_ways(sos: &[[f64; 6]], zi: &[[f64; 2]], buffer: &mut [Lanes]) {
    // With the number of sections fixed, the compiler unrolls the cascade and keeps its state in
    // registers; Butterworth designs of order up to 8 have at most 8 sections.
    match sos.len() {
        1 => fixed::<1>(sos, zi, buffer),
        2 => fixed::<2>(sos, zi, buffer),
        3 => fixed::<3>(sos, zi, buffer),
        4 => fixed::<4>(sos, zi, buffer),
        5 => fixed::<5>(sos, zi, buffer),
        6 => fixed::<6>(sos, zi, buffer),
        7 => fixed::<7>(sos, zi, buffer),
        8 => fixed::<8>(sos, zi, buffer),
        _ => any_length(sos, zi, buffer),
    }
}

#[inline(always)]
fn fixed<const N: usize>(sos: &[[f64; 6]], zi: &[[f64; 2]], buffer: &mut [Lanes]) {
    match (
        <&[[f64; 6]; N]>::try_from(sos),
        <&[[f64; 2]; N]>::try_from(zi),
    ) {
        (Ok(sos), Ok(zi)) if unit_after_first(sos) => {
            run::<_, true>(sos, |v| zi.map(|z| scaled(z, v)), buffer)
        }
        (Ok(sos), Ok(zi)) => run::<_, false>(sos, |v| zi.map(|z| scaled(z, v)), buffer),
        _ => any_length(sos, zi, buffer),
    }
}

#[inline(always)]
fn any_length(sos: &[[f64; 6]], zi: &[[f64; 2]], buffer: &mut [Lanes]) {
    run::<_, false>(
        sos,
        |v| zi.iter().map(|&z| scaled(z, v)).collect::<Vec<_>>(),
        buffer,
    )
}

/// A section's initial state `z` scaled by each lane's value in `v`, as `sosfiltfilt` does.
#[inline(always)]
fn scaled(z: [f64; 2], v: Lanes) -> [Lanes; 2] {
    [v.map(|x| z[0] * x), v.map(|x| z[1] * x)]
}

/// The forward then the backward pass, each started from `start` of its first sample. With
/// `UNIT`, the caller checked [`unit_after_first`].
#[inline(always)]
fn run<Z: AsMut<[[Lanes; 2]]>, const UNIT: bool>(
    sos: &[[f64; 6]],
    start: impl Fn(Lanes) -> Z,
    buffer: &mut [Lanes],
) {
    let Some(&first) = buffer.first() else {
        return;
    };
    pass::<Z, UNIT>(sos, start(first), buffer.iter_mut());
    let Some(&last) = buffer.last() else {
        return;
    };
    pass::<Z, UNIT>(sos, start(last), buffer.iter_mut().rev());
}

/// One pass of the cascade over `samples`, in place, from the state `z`: the loop of
/// [`sosfilt`](super::sosfilt) with a lane per channel. With `UNIT`, the sections after the
/// first run as [`unit_section`]s (same bits, one operation fewer each).
#[inline(always)]
fn pass<'a, Z: AsMut<[[Lanes; 2]]>, const UNIT: bool>(
    sos: &[[f64; 6]],
    mut z: Z,
    samples: impl Iterator<Item = &'a mut Lanes>,
) {
    let z = z.as_mut();
    for sample in samples {
        let mut cur = *sample;
        for (i, (s, zs)) in sos.iter().zip(z.iter_mut()).enumerate() {
            let step = if UNIT && i > 0 { unit_section } else { section };
            let mut out = [0.0; LANES];
            for l in 0..LANES {
                (out[l], zs[0][l], zs[1][l]) = step(s, cur[l], zs[0][l], zs[1][l]);
            }
            cur = out;
        }
        *sample = cur;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preprocess::{butter_sos, sosfiltfilt, FilterBand};

    #[test]
    fn equals_one_channel_filtering_bit_for_bit() {
        let sos = butter_sos(4, FilterBand::Bandpass(8.0, 30.0), 160.0).expect("design");
        // 11 channels: one full block of lanes and a partial one.
        let channels: Vec<Vec<f32>> = (0..11)
            .map(|c| {
                (0..500)
                    .map(|i| ((i * (c + 2)) as f32 * 0.13).sin() * 20.0 + c as f32)
                    .collect()
            })
            .collect();
        let views: Vec<&[f32]> = channels.iter().map(Vec::as_slice).collect();
        let together = sosfiltfilt_channels(&sos, &views).expect("long enough");
        for (x, y) in channels.iter().zip(&together) {
            let x64: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
            let alone: Vec<f32> = sosfiltfilt(&sos, &x64)
                .expect("long enough")
                .into_iter()
                .map(|v| v as f32)
                .collect();
            assert_eq!(&alone, y);
        }
        assert!(matches!(
            sosfiltfilt_channels(&sos, &[&[1.0; 10]]),
            Err(PreprocessError::SignalTooShort { len: 10, .. })
        ));
        assert!(sosfiltfilt_channels(&sos, &[&[1.0; 100], &[1.0; 99]]).is_err());
        assert!(sosfiltfilt_channels(&sos, &[])
            .expect("nothing to do")
            .is_empty());
    }

    #[test]
    fn windows_equal_the_cut_filtered_channels() {
        let sos = butter_sos(4, FilterBand::Bandpass(1.0, 8.0), 160.0).expect("design");
        let channels: Vec<Vec<f32>> = (0..11)
            .map(|c| {
                (0..700)
                    .map(|i| ((i * (c + 3)) as f32 * 0.07).cos() * 9.0)
                    .collect()
            })
            .collect();
        let views: Vec<&[f32]> = channels.iter().map(Vec::as_slice).collect();
        let whole = sosfiltfilt_channels(&sos, &views).expect("long enough");
        // Windows anywhere, overlapping, with lengths that are not a whole number of tiles.
        let (starts, n) = ([0, 13, 200, 650], 50);
        let windows = sosfiltfilt_windows(&sos, &views, &starts, n).expect("they fit");
        for (window, &start) in windows.iter().zip(&starts) {
            let expected: Vec<f64> = whole
                .iter()
                .flat_map(|c| c[start..start + n].iter().map(|&v| f64::from(v)))
                .collect();
            assert_eq!(window, &expected);
        }
        assert!(matches!(
            sosfiltfilt_windows(&sos, &views, &[651], n),
            Err(PreprocessError::WindowOutOfRange { start: 651, .. })
        ));
    }
}
