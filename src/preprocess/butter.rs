//! Butterworth filter design, as `scipy.signal.butter(..., output='sos', fs=fs)`.
//!
//! Analog prototype (`buttap`), prewarping, the lowpass/highpass/bandpass transform in zpk form,
//! the bilinear transform, then [`zpk2sos`](super::zpk::zpk2sos) with scipy's pairing.

use std::f64::consts::PI;

use super::complex::C64;
use super::error::{PreprocessError, Result};
use super::zpk::{zpk2sos, Zpk};

/// Which frequencies a filter passes (edges in Hz, -3 dB points).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FilterBand {
    /// Pass below the cutoff.
    Lowpass(f64),
    /// Pass above the cutoff.
    Highpass(f64),
    /// Pass between the two edges (low, high).
    Bandpass(f64, f64),
}

/// Highest Butterworth order accepted; beyond it the design is numerically meaningless here.
pub const MAX_ORDER: usize = 16;

/// Second-order sections `[b0, b1, b2, a0, a1, a2]` of a digital Butterworth filter, as
/// `scipy.signal.butter(order, band, btype, fs=fs, output='sos')` (a band-pass of order `n` has
/// `n` sections). Errors on an order outside 1..=16 or edges outside (0, fs/2).
pub fn butter_sos(order: usize, band: FilterBand, fs: f64) -> Result<Vec<[f64; 6]>> {
    zpk2sos(&butter_zpk(order, band, fs)?)
}

fn check_freq(freq: f64, fs: f64) -> Result<()> {
    let nyquist = fs / 2.0;
    if freq.is_finite() && freq > 0.0 && freq < nyquist {
        Ok(())
    } else {
        Err(PreprocessError::FrequencyOutOfRange { freq, nyquist })
    }
}

/// Prewarped analog frequency of `freq` for the bilinear transform at scipy's fs = 2.
fn warp(freq: f64, fs: f64) -> f64 {
    let wn = 2.0 * freq / fs;
    2.0 * 2.0 * (PI * wn / 2.0).tan()
}

pub(crate) fn butter_zpk(order: usize, band: FilterBand, fs: f64) -> Result<Zpk> {
    if !(1..=MAX_ORDER).contains(&order) {
        return Err(PreprocessError::InvalidOrder { order });
    }
    if !(fs.is_finite() && fs > 0.0) {
        return Err(PreprocessError::InvalidSamplingRate { fs });
    }
    let proto = buttap(order);
    let analog = match band {
        FilterBand::Lowpass(f) => {
            check_freq(f, fs)?;
            lp2lp(proto, warp(f, fs))
        }
        FilterBand::Highpass(f) => {
            check_freq(f, fs)?;
            lp2hp(proto, warp(f, fs))
        }
        FilterBand::Bandpass(low, high) => {
            check_freq(low, fs)?;
            check_freq(high, fs)?;
            if low >= high {
                return Err(PreprocessError::InvalidBand { low, high });
            }
            let (wl, wh) = (warp(low, fs), warp(high, fs));
            lp2bp(proto, (wl * wh).sqrt(), wh - wl)
        }
    };
    Ok(bilinear(analog, 2.0))
}

/// Analog Butterworth prototype: no zeros, poles on the left unit half circle, gain 1.
fn buttap(n: usize) -> Zpk {
    let n_i = n as i64;
    let p = (0..n_i)
        .map(|i| {
            let m = (-n_i + 1 + 2 * i) as f64;
            // numpy divides the complex angle by 2N as a reciprocal product; same rounding.
            -C64::cis((PI * m) * (1.0 / (2 * n_i) as f64))
        })
        .collect();
    Zpk {
        z: Vec::new(),
        p,
        k: 1.0,
    }
}

fn relative_degree(zpk: &Zpk) -> usize {
    zpk.p.len().saturating_sub(zpk.z.len())
}

fn prod(v: &[C64]) -> C64 {
    v.iter().fold(C64::real(1.0), |acc, &c| acc * c)
}

fn lp2lp(zpk: Zpk, wo: f64) -> Zpk {
    let degree = relative_degree(&zpk);
    Zpk {
        z: zpk.z.iter().map(|&c| c * wo).collect(),
        p: zpk.p.iter().map(|&c| c * wo).collect(),
        k: zpk.k * wo.powf(degree as f64),
    }
}

fn lp2hp(zpk: Zpk, wo: f64) -> Zpk {
    let degree = relative_degree(&zpk);
    let w = C64::real(wo);
    let mut z: Vec<C64> = zpk.z.iter().map(|&c| w / c).collect();
    z.extend(std::iter::repeat_n(C64::real(0.0), degree));
    let neg = |v: &[C64]| v.iter().map(|&c| -c).collect::<Vec<_>>();
    let k = zpk.k * (prod(&neg(&zpk.z)) / prod(&neg(&zpk.p))).re;
    Zpk {
        z,
        p: zpk.p.iter().map(|&c| w / c).collect(),
        k,
    }
}

fn lp2bp(zpk: Zpk, wo: f64, bw: f64) -> Zpk {
    let degree = relative_degree(&zpk);
    // Each root moves to the two roots of s^2 - 2 r s + wo^2 (r scaled by bw / 2).
    let shift = |v: &[C64]| {
        let scaled: Vec<C64> = v
            .iter()
            .map(|&c| C64::new(c.re * bw / 2.0, c.im * bw / 2.0))
            .collect();
        let root = |c: C64| (c.square_numpy() - C64::real(wo * wo)).sqrt();
        let mut out: Vec<C64> = scaled.iter().map(|&c| c + root(c)).collect();
        out.extend(scaled.iter().map(|&c| c - root(c)));
        out
    };
    let mut z = shift(&zpk.z);
    z.extend(std::iter::repeat_n(C64::real(0.0), degree));
    Zpk {
        z,
        p: shift(&zpk.p),
        k: zpk.k * bw.powf(degree as f64),
    }
}

/// Bilinear transform with prewarped frequencies (scipy's `bilinear_zpk`).
fn bilinear(zpk: Zpk, fs: f64) -> Zpk {
    let degree = relative_degree(&zpk);
    let fs2 = C64::real(2.0 * fs);
    let map = |v: &[C64]| v.iter().map(|&c| (fs2 + c) / (fs2 - c)).collect::<Vec<_>>();
    let mut z = map(&zpk.z);
    z.extend(std::iter::repeat_n(C64::real(-1.0), degree));
    let num: Vec<C64> = zpk.z.iter().map(|&c| fs2 - c).collect();
    let den: Vec<C64> = zpk.p.iter().map(|&c| fs2 - c).collect();
    Zpk {
        z,
        p: map(&zpk.p),
        k: zpk.k * (prod(&num) / prod(&den)).re,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_inputs() {
        assert!(matches!(
            butter_sos(4, FilterBand::Lowpass(80.0), 160.0),
            Err(PreprocessError::FrequencyOutOfRange { .. })
        ));
        assert!(matches!(
            butter_sos(0, FilterBand::Lowpass(10.0), 160.0),
            Err(PreprocessError::InvalidOrder { order: 0 })
        ));
        assert!(matches!(
            butter_sos(17, FilterBand::Lowpass(10.0), 160.0),
            Err(PreprocessError::InvalidOrder { order: 17 })
        ));
        assert!(matches!(
            butter_sos(4, FilterBand::Bandpass(30.0, 8.0), 160.0),
            Err(PreprocessError::InvalidBand { .. })
        ));
        assert!(matches!(
            butter_sos(4, FilterBand::Highpass(1.0), f64::NAN),
            Err(PreprocessError::InvalidSamplingRate { .. })
        ));
    }

    /// Signs of b1 (and a1) per section, as scipy 1.17.1 gives them. These bands are symmetric
    /// about fs/4, so poles come in mirror pairs whose magnitudes differ by an ulp at most:
    /// the order rests on rounding like numpy's (|z|, complex square, angle division).
    #[test]
    fn mirror_symmetric_bands_pair_as_scipy() {
        let cases = [(8, 20.0, 30.0, "-+-++--+"), (12, 5.0, 45.0, "+--+-+-++--+")];
        for (order, low, high, want) in cases {
            let sos = butter_sos(order, FilterBand::Bandpass(low, high), 100.0).expect("design");
            let sign = |v: f64| if v > 0.0 { '+' } else { '-' };
            let b1: String = sos.iter().map(|s| sign(s[1])).collect();
            let a1: String = sos.iter().map(|s| sign(s[4])).collect();
            assert_eq!((b1.as_str(), a1.as_str()), (want, want), "order {order}");
        }
    }

    #[test]
    fn section_counts() {
        for order in 1..=MAX_ORDER {
            let lp = butter_sos(order, FilterBand::Lowpass(10.0), 100.0).expect("lowpass");
            assert_eq!(lp.len(), order.div_ceil(2));
            let hp = butter_sos(order, FilterBand::Highpass(10.0), 100.0).expect("highpass");
            assert_eq!(hp.len(), order.div_ceil(2));
            let bp = butter_sos(order, FilterBand::Bandpass(5.0, 20.0), 100.0).expect("bandpass");
            assert_eq!(bp.len(), order);
        }
    }
}
