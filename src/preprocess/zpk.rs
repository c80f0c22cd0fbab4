//! Zeros, poles and gain of an IIR filter, and scipy's conversion to second-order sections.
//!
//! A port of `scipy.signal.zpk2sos` with the default `pairing='nearest'` (digital), so that the
//! sections come out in scipy's order and with scipy's coefficients.

use std::cmp::Ordering;

use super::complex::C64;
use super::error::{PreprocessError, Result};

/// A filter as zeros, poles and gain.
#[derive(Debug, Clone)]
pub(crate) struct Zpk {
    pub z: Vec<C64>,
    pub p: Vec<C64>,
    pub k: f64,
}

/// Orders as numpy's sorts do: -0.0 equals 0.0 (NaN never reaches here).
fn cmp_f64(a: f64, b: f64) -> Ordering {
    a.partial_cmp(&b).unwrap_or(Ordering::Equal)
}

/// scipy's `_cplxreal`: conjugate pairs (one per pair, positive imaginary part, sorted by real
/// part then imaginary magnitude, averaged) followed by the real values (sorted).
fn cplxreal(z: &[C64]) -> Result<Vec<C64>> {
    let tol = 100.0 * f64::EPSILON;
    let mut z = z.to_vec();
    // Stable, like numpy's lexsort: by real part, then |imag|.
    z.sort_by(|a, b| cmp_f64(a.re, b.re).then_with(|| cmp_f64(a.im.abs(), b.im.abs())));
    let is_real = |c: &C64| c.im.abs() <= tol * c.abs_numpy();
    let reals: Vec<C64> = z
        .iter()
        .filter(|c| is_real(c))
        .map(|c| C64::real(c.re))
        .collect();
    let mut pos: Vec<C64> = z
        .iter()
        .filter(|c| !is_real(c) && c.im > 0.0)
        .copied()
        .collect();
    let mut neg: Vec<C64> = z
        .iter()
        .filter(|c| !is_real(c) && c.im < 0.0)
        .copied()
        .collect();
    let unpaired = || {
        PreprocessError::InvalidCoefficients("complex value without a matching conjugate".into())
    };
    if pos.len() != neg.len() {
        return Err(unpaired());
    }
    // Runs of (nearly) equal real part are ordered by imaginary magnitude.
    let mut start = 0;
    while start < pos.len() {
        let mut stop = start + 1;
        while stop < pos.len() && pos[stop].re - pos[stop - 1].re <= tol * pos[stop - 1].abs_numpy()
        {
            stop += 1;
        }
        for half in [&mut pos, &mut neg] {
            if let Some(run) = half.get_mut(start..stop) {
                run.sort_by(|a, b| cmp_f64(a.im.abs(), b.im.abs()));
            }
        }
        start = stop;
    }
    let mut out = Vec::with_capacity(pos.len() + reals.len());
    for (p, n) in pos.iter().zip(&neg) {
        if (*p - n.conj()).abs_numpy() > tol * n.abs_numpy() {
            return Err(unpaired());
        }
        let avg = *p + n.conj();
        out.push(C64::new(avg.re / 2.0, avg.im / 2.0));
    }
    out.extend(reals);
    Ok(out)
}

/// Index of the pole closest to the unit circle (first on ties, like `argmin`).
fn idx_worst(p: &[C64]) -> Option<usize> {
    let dist = |c: &C64| (1.0 - c.abs_numpy()).abs();
    let mut best: Option<(usize, f64)> = None;
    for (i, c) in p.iter().enumerate() {
        let d = dist(c);
        if best.is_none_or(|(_, b)| d < b) {
            best = Some((i, d));
        }
    }
    best.map(|(i, _)| i)
}

#[derive(Clone, Copy, PartialEq)]
enum Which {
    Real,
    Complex,
    Any,
}

/// scipy's `_nearest_real_complex_idx`: nearest element of `fro` to `to` of the given kind.
fn nearest_idx(fro: &[C64], to: C64, which: Which) -> Option<usize> {
    let mut order: Vec<usize> = (0..fro.len()).collect();
    order.sort_by(|&a, &b| cmp_f64((fro[a] - to).abs_numpy(), (fro[b] - to).abs_numpy()));
    order.into_iter().find(|&i| match which {
        Which::Any => true,
        Which::Real => fro[i].is_real(),
        Which::Complex => !fro[i].is_real(),
    })
}

fn take_with(v: &mut Vec<C64>, pick: impl FnOnce(&[C64]) -> Option<usize>) -> Result<C64> {
    let idx = pick(v);
    take(v, idx)
}

fn take(v: &mut Vec<C64>, idx: Option<usize>) -> Result<C64> {
    match idx {
        Some(i) if i < v.len() => Ok(v.remove(i)),
        _ => Err(PreprocessError::InvalidCoefficients(
            "zeros and poles cannot be paired into sections".into(),
        )),
    }
}

/// Coefficients of the monic polynomial with roots `r` (1 or 2 of them), real part (the roots
/// are real or conjugate pairs), padded at the front to three.
fn poly2(r: &[C64]) -> [f64; 3] {
    match r {
        [a] => [0.0, 1.0, -a.re],
        [a, b] => {
            let s = -*a + -*b;
            let p = (-*a) * (-*b);
            [1.0, s.re, p.re]
        }
        _ => [0.0, 0.0, 1.0],
    }
}

fn section(z: &[C64], p: &[C64]) -> [f64; 6] {
    let b = poly2(z);
    let a = poly2(p);
    [b[0], b[1], b[2], a[0], a[1], a[2]]
}

/// Second-order sections of a digital filter, as `scipy.signal.zpk2sos(z, p, k)`.
pub(crate) fn zpk2sos(zpk: &Zpk) -> Result<Vec<[f64; 6]>> {
    let (mut z, mut p) = (zpk.z.clone(), zpk.p.clone());
    if z.is_empty() && p.is_empty() {
        return Ok(vec![[zpk.k, 0.0, 0.0, 1.0, 0.0, 0.0]]);
    }
    // Same number of poles and zeros, and an even count (extra pole and zero at the origin).
    while p.len() < z.len() {
        p.push(C64::real(0.0));
    }
    while z.len() < p.len() {
        z.push(C64::real(0.0));
    }
    let n_sections = p.len().div_ceil(2);
    if p.len() % 2 == 1 {
        p.push(C64::real(0.0));
        z.push(C64::real(0.0));
    }
    let mut z = cplxreal(&z)?;
    let mut p = cplxreal(&p)?;
    let mut sos = vec![[0.0; 6]; n_sections];
    // Filled from the end so that the poles closest to the unit circle come last.
    for si in (0..n_sections).rev() {
        let p1 = take_with(&mut p, idx_worst)?;
        let real_poles_left = p.iter().filter(|c| c.is_real()).count();
        let s = if p1.is_real() && real_poles_left == 0 {
            // Last real pole: a first-order section padded with a pole and zero at 0.
            let z1 = take_with(&mut z, |v| nearest_idx(v, p1, Which::Real))?;
            section(&[z1, C64::real(0.0)], &[p1, C64::real(0.0)])
        } else if p.len() + 1 == z.len()
            && !p1.is_real()
            && real_poles_left == 1
            && z.iter().filter(|c| c.is_real()).count() == 1
        {
            // One real pole and zero remain: this complex pole must take a complex zero.
            let z1 = take_with(&mut z, |v| nearest_idx(v, p1, Which::Complex))?;
            section(&[z1, z1.conj()], &[p1, p1.conj()])
        } else {
            let p2 = if p1.is_real() {
                let real_idx: Vec<usize> = (0..p.len()).filter(|&i| p[i].is_real()).collect();
                let reals: Vec<C64> = real_idx.iter().map(|&i| p[i]).collect();
                let at = idx_worst(&reals).and_then(|j| real_idx.get(j).copied());
                take(&mut p, at)?
            } else {
                p1.conj()
            };
            if z.is_empty() {
                section(&[], &[p1, p2])
            } else {
                let z1 = take_with(&mut z, |v| nearest_idx(v, p1, Which::Any))?;
                if !z1.is_real() {
                    section(&[z1, z1.conj()], &[p1, p2])
                } else if z.is_empty() {
                    section(&[z1], &[p1, p2])
                } else {
                    let z2 = take_with(&mut z, |v| nearest_idx(v, p1, Which::Real))?;
                    section(&[z1, z2], &[p1, p2])
                }
            }
        };
        if let Some(slot) = sos.get_mut(si) {
            *slot = s;
        }
    }
    if let Some(first) = sos.first_mut() {
        for c in first.iter_mut().take(3) {
            *c *= zpk.k;
        }
    }
    Ok(sos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scipy_docstring_example() {
        // zpk2sos([-1, -0.5-0.5j, -0.5+0.5j], [0.75, 0.8+0.1j, 0.8-0.1j], 1)
        let zpk = Zpk {
            z: vec![C64::real(-1.0), C64::new(-0.5, -0.5), C64::new(-0.5, 0.5)],
            p: vec![C64::real(0.75), C64::new(0.8, 0.1), C64::new(0.8, -0.1)],
            k: 1.0,
        };
        let sos = zpk2sos(&zpk).expect("pairs");
        let want = [
            [1.0, 1.0, 0.5, 1.0, -0.75, 0.0],
            [1.0, 1.0, 0.0, 1.0, -1.6, 0.65],
        ];
        for (got, want) in sos.iter().zip(&want) {
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() < 1e-12, "{sos:?}");
            }
        }
    }
}
