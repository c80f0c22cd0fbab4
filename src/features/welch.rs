//! Welch power spectral density, the way `scipy.signal.welch` computes it.
//!
//! Speed (see `benches/features.rs`): segments are transformed two at a time, one as the real
//! and one as the imaginary part of a complex FFT of the segment length. For `z = a + i b` with
//! real `a`, `b`, `A[k] = (Z[k] + conj Z[n-k]) / 2` and `B[k] = (Z[k] - conj Z[n-k]) / 2i`, so
//! `|A[k]|^2 + |B[k]|^2 = (|Z[k]|^2 + |Z[n-k]|^2) / 2`: the summed power needs no unpacking, only
//! `|Z|^2` accumulated over all `n` bins and folded once at the end. The FFTs of a batch of pairs
//! run in one call; segment means come from sums over blocks of `nperseg - noverlap` samples
//! (each block is summed once however many segments share it), batch by batch so that the
//! samples come from memory once; on x86-64 the loops around the FFT are compiled for AVX2 too
//! and chosen at run time (the same operations in the same order, so the same results).

use std::sync::Arc;

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};
use serde::{Deserialize, Serialize};

use super::FeatureError;

/// Bytes of segment pairs transformed per FFT call (to stay in the L1/L2 cache).
const BATCH_BYTES: usize = 32 * 1024;

/// Segment means come from block sums when a segment spans at most this many blocks.
const MAX_BLOCKS_PER_SEGMENT: usize = 8;

/// Welch parameters. The window is a periodic Hann window (scipy's `get_window('hann', n)`),
/// each segment's mean is removed (`detrend='constant'`), segments are averaged by their mean,
/// and the result is a one-sided density in unit^2/Hz.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WelchConfig {
    /// Samples per segment.
    pub nperseg: usize,
    /// Samples shared by consecutive segments.
    pub noverlap: usize,
}

impl WelchConfig {
    /// One-second segments with 50% overlap at the given rate (scipy's usual choice for EEG).
    pub fn one_second(fs: f64) -> Self {
        let nperseg = fs.round().max(2.0) as usize;
        WelchConfig {
            nperseg,
            noverlap: nperseg / 2,
        }
    }

    /// Frequencies of the one-sided spectrum, in Hz.
    pub fn frequencies(&self, fs: f64) -> Vec<f64> {
        (0..self.nperseg / 2 + 1)
            .map(|k| k as f64 * fs / self.nperseg as f64)
            .collect()
    }
}

/// A reusable Welch estimator for one segment length: the FFT plan, window and buffers are
/// made once and shared by every channel and epoch.
pub struct Welch {
    config: WelchConfig,
    fs: f64,
    fft: Arc<dyn Fft<f64>>,
    window: Vec<f64>,
    scale: f64,
    /// Windowed segment pairs (`a + i b`), `nperseg` values each, transformed in place.
    batch: Vec<Complex<f64>>,
    scratch: Vec<Complex<f64>>,
    /// Per bin of the complex FFT: sum of `re^2` in `re`, of `im^2` in `im`.
    power: Vec<Complex<f64>>,
    /// Means of the segments of one batch (block sums first, when blocks are used).
    means: Vec<f64>,
    /// Whether this CPU runs the AVX2 build of the loops.
    avx2: bool,
}

impl Welch {
    /// Plans the FFT and the window; checks the configuration.
    pub fn new(config: WelchConfig, fs: f64) -> Result<Self, FeatureError> {
        if config.nperseg < 2 || config.noverlap >= config.nperseg || fs.is_nan() || fs <= 0.0 {
            return Err(FeatureError::Config(format!(
                "Welch needs nperseg >= 2 and noverlap < nperseg at a positive rate; got nperseg {}, noverlap {}, fs {fs}",
                config.nperseg, config.noverlap
            )));
        }
        let n = config.nperseg;
        let window: Vec<f64> = (0..n)
            .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n as f64).cos())
            .collect();
        let scale = 1.0 / (fs * window.iter().map(|w| w * w).sum::<f64>());
        let fft = FftPlanner::<f64>::new().plan_fft_forward(n);
        let zero = Complex::new(0.0, 0.0);
        let pairs = (BATCH_BYTES / (n * std::mem::size_of::<Complex<f64>>())).clamp(1, 16);
        Ok(Welch {
            config,
            fs,
            scratch: vec![zero; fft.get_inplace_scratch_len()],
            fft,
            window,
            scale,
            batch: vec![zero; pairs * n],
            power: vec![zero; n],
            means: Vec::new(),
            avx2: avx2_available(),
        })
    }

    /// Number of frequency bins.
    pub fn n_freqs(&self) -> usize {
        self.config.nperseg / 2 + 1
    }

    /// Frequencies of the bins, in Hz.
    pub fn frequencies(&self) -> Vec<f64> {
        self.config.frequencies(self.fs)
    }

    /// One-sided PSD of `x` into `psd` (length [`Welch::n_freqs`]).
    pub fn psd_into(&mut self, x: &[f64], psd: &mut [f64]) -> Result<(), FeatureError> {
        let n = self.config.nperseg;
        let step = n - self.config.noverlap;
        if x.len() < n {
            return Err(FeatureError::Config(format!(
                "a signal of {} samples is shorter than one Welch segment ({n})",
                x.len()
            )));
        }
        if psd.len() != self.n_freqs() {
            return Err(FeatureError::Config(format!(
                "PSD buffer of {} bins, expected {}",
                psd.len(),
                self.n_freqs()
            )));
        }
        let segments = (x.len() - n) / step + 1;
        let parts = Parts {
            fft: &*self.fft,
            window: &self.window,
            batch: &mut self.batch,
            scratch: &mut self.scratch,
            power: &mut self.power,
            means: &mut self.means,
        };
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            // SAFETY: `avx2` is true only where the CPU reported AVX2 at run time.
            unsafe { accumulate_avx2(parts, x, step, segments) };
        } else {
            accumulate(parts, x, step, segments);
        }
        #[cfg(not(target_arch = "x86_64"))]
        accumulate(parts, x, step, segments);
        // Pairs to segments: sum over segments of |X[k]|^2 = (P[k] + P[n - k]) / 2. One-sided:
        // every bin but DC (and Nyquist for even lengths) carries both halves.
        let last = psd.len() - 1;
        let has_nyquist = n.is_multiple_of(2);
        let power = |k: usize| self.power[k].re + self.power[k].im;
        for (k, p) in psd.iter_mut().enumerate() {
            let doubled = k != 0 && !(has_nyquist && k == last);
            let folded = 0.5 * (power(k) + power((n - k) % n));
            *p = folded * (self.scale / segments as f64 * if doubled { 2.0 } else { 1.0 });
        }
        Ok(())
    }
}

/// Whether the loops around the FFT can run their AVX2 build.
fn avx2_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The buffers [`accumulate`] works in.
struct Parts<'a> {
    fft: &'a dyn Fft<f64>,
    window: &'a [f64],
    batch: &'a mut [Complex<f64>],
    scratch: &'a mut [Complex<f64>],
    power: &'a mut [Complex<f64>],
    means: &'a mut Vec<f64>,
}

/// [`accumulate`] compiled for AVX2.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn accumulate_avx2(parts: Parts<'_>, x: &[f64], step: usize, segments: usize) {
    accumulate(parts, x, step, segments);
}

/// Sum of `x` over eight interleaved partial sums (independent additions the CPU can overlap).
#[inline(always)]
fn sum(x: &[f64]) -> f64 {
    let mut lo = [0.0_f64; 4];
    let mut hi = [0.0_f64; 4];
    let mut chunks = x.chunks_exact(8);
    for chunk in &mut chunks {
        for i in 0..4 {
            lo[i] += chunk[i];
            hi[i] += chunk[i + 4];
        }
    }
    let mut total = ((lo[0] + hi[0]) + (lo[1] + hi[1])) + ((lo[2] + hi[2]) + (lo[3] + hi[3]));
    for v in chunks.remainder() {
        total += v;
    }
    total
}

/// Means of segments `first .. last` of `x` into `means` (`means[i]` for segment `first + i`).
#[inline(always)]
fn segment_means(
    x: &[f64],
    n: usize,
    step: usize,
    first: usize,
    last: usize,
    means: &mut Vec<f64>,
) {
    let inv = 1.0 / n as f64;
    // Plain loops rather than `extend(map(..))`, so that they are inlined into (and compiled
    // with the target features of) `accumulate_avx2`.
    if n.is_multiple_of(step) && n / step <= MAX_BLOCKS_PER_SEGMENT {
        // Segment s is blocks s .. s + r of `step` samples: each block is summed once.
        let r = n / step;
        means.resize(last + r - 1 - first, 0.0);
        for (m, b) in means.iter_mut().zip(first..) {
            *m = sum(&x[b * step..(b + 1) * step]);
        }
        for i in 0..last - first {
            let total: f64 = means[i..i + r].iter().sum();
            means[i] = total * inv;
        }
        means.truncate(last - first);
    } else {
        means.resize(last - first, 0.0);
        for (m, s) in means.iter_mut().zip(first..) {
            *m = sum(&x[s * step..s * step + n]) * inv;
        }
    }
}

/// Windows the mean-removed segments two by two into the batch, transforms them and
/// accumulates `re^2` and `im^2` of every bin into `power`.
#[inline(always)]
fn accumulate(p: Parts<'_>, x: &[f64], step: usize, segments: usize) {
    let n = p.window.len();
    p.power.fill(Complex::new(0.0, 0.0));
    let pairs = segments.div_ceil(2);
    let per_batch = p.batch.len() / n;
    let mut first = 0;
    while first < pairs {
        let count = per_batch.min(pairs - first);
        let batch = &mut p.batch[..count * n];
        // The batch's means just before its windows, while its samples are in the cache.
        let s0 = 2 * first;
        segment_means(x, n, step, s0, segments.min(s0 + 2 * count), p.means);
        for (q, out) in batch.chunks_exact_mut(n).enumerate() {
            let s = s0 + 2 * q;
            let a = &x[s * step..s * step + n];
            let ma = p.means[2 * q];
            if s + 1 < segments {
                let b = &x[(s + 1) * step..(s + 1) * step + n];
                let mb = p.means[2 * q + 1];
                for (((o, &va), &vb), &w) in out.iter_mut().zip(a).zip(b).zip(p.window) {
                    *o = Complex::new((va - ma) * w, (vb - mb) * w);
                }
            } else {
                // An odd segment out: its partner is zero.
                for ((o, &va), &w) in out.iter_mut().zip(a).zip(p.window) {
                    *o = Complex::new((va - ma) * w, 0.0);
                }
            }
        }
        p.fft.process_with_scratch(batch, p.scratch);
        // Bins in blocks of L: the block's sums stay in registers across the batch's spectra.
        const L: usize = 8;
        let whole = n / L * L;
        for (j, block) in p.power[..whole].chunks_exact_mut(L).enumerate() {
            let mut acc = [Complex::new(0.0_f64, 0.0); L];
            acc.copy_from_slice(block);
            for spectrum in batch.chunks_exact(n) {
                for (a, z) in acc.iter_mut().zip(&spectrum[j * L..(j + 1) * L]) {
                    a.re += z.re * z.re;
                    a.im += z.im * z.im;
                }
            }
            block.copy_from_slice(&acc);
        }
        for spectrum in batch.chunks_exact(n) {
            for (a, z) in p.power[whole..].iter_mut().zip(&spectrum[whole..]) {
                a.re += z.re * z.re;
                a.im += z.im * z.im;
            }
        }
        first += count;
    }
}

/// One-sided Welch PSD of `x` (pure function; see [`Welch`] to reuse the plan).
pub fn welch(
    x: &[f64],
    fs: f64,
    config: WelchConfig,
) -> Result<(Vec<f64>, Vec<f64>), FeatureError> {
    let mut w = Welch::new(config, fs)?;
    let mut psd = vec![0.0; w.n_freqs()];
    w.psd_into(x, &mut psd)?;
    Ok((w.frequencies(), psd))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sine_power_lands_in_its_bin_and_parseval_holds() {
        let fs = 160.0;
        let x: Vec<f64> = (0..1600)
            .map(|i| 3.0 * (2.0 * std::f64::consts::PI * 10.0 * i as f64 / fs).sin())
            .collect();
        let (f, p) = welch(&x, fs, WelchConfig::one_second(fs)).unwrap();
        let peak = p
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0;
        assert_eq!(f[peak], 10.0);
        // Total power (integral of the density) equals the variance, 3^2 / 2.
        let power: f64 = p.iter().sum::<f64>() * (f[1] - f[0]);
        assert!((power - 4.5).abs() < 0.05, "{power}");
    }

    /// Welch by the definition: a plain DFT of every windowed, mean-removed segment.
    fn naive(x: &[f64], fs: f64, n: usize, noverlap: usize) -> Vec<f64> {
        let w: Vec<f64> = (0..n)
            .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n as f64).cos())
            .collect();
        let scale = 1.0 / (fs * w.iter().map(|v| v * v).sum::<f64>());
        let step = n - noverlap;
        let segments = (x.len() - n) / step + 1;
        let mut psd = vec![0.0; n / 2 + 1];
        for s in 0..segments {
            let seg = &x[s * step..s * step + n];
            let mean = seg.iter().sum::<f64>() / n as f64;
            for (k, p) in psd.iter_mut().enumerate() {
                let (mut re, mut im) = (0.0, 0.0);
                for (j, (&v, &wj)) in seg.iter().zip(&w).enumerate() {
                    let angle = -2.0 * std::f64::consts::PI * ((j * k) % n) as f64 / n as f64;
                    re += (v - mean) * wj * angle.cos();
                    im += (v - mean) * wj * angle.sin();
                }
                let doubled = k != 0 && !(n.is_multiple_of(2) && k == n / 2);
                *p += (re * re + im * im) * if doubled { 2.0 } else { 1.0 };
            }
        }
        psd.iter().map(|p| p * scale / segments as f64).collect()
    }

    #[test]
    fn pairs_batches_and_blocks_match_the_definition() {
        let fs = 100.0;
        let mut level = 0.0_f64;
        let x: Vec<f64> = (0..3001)
            .map(|i| {
                level = 0.9 * level + ((i * 7919) % 101) as f64 / 50.0 - 1.0;
                40.0 + level + (0.31 * i as f64).sin()
            })
            .collect();
        // Even and odd lengths, odd and even segment counts, blocks (step divides nperseg) and
        // not, one segment, more pairs than one batch holds.
        for (n, noverlap, len) in [
            (160, 80, 3000),
            (160, 80, 2960),
            (100, 50, 3001),
            (64, 0, 3000),
            (101, 50, 3001),
            (33, 30, 400),
            (250, 125, 250),
            (7, 3, 3001),
            (512, 256, 3000),
        ] {
            let (_, got) = welch(
                &x[..len],
                fs,
                WelchConfig {
                    nperseg: n,
                    noverlap,
                },
            )
            .unwrap();
            let want = naive(&x[..len], fs, n, noverlap);
            for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g - w).abs() <= 1e-10 * w.abs() + 1e-14,
                    "nperseg {n}, noverlap {noverlap}, {len} samples, bin {k}: {g} vs {w}"
                );
            }
        }
    }

    #[test]
    fn bad_configurations_are_refused() {
        assert!(Welch::new(
            WelchConfig {
                nperseg: 10,
                noverlap: 10
            },
            160.0
        )
        .is_err());
        assert!(welch(&[0.0; 5], 160.0, WelchConfig::one_second(160.0)).is_err());
    }
}
