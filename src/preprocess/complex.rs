//! The few complex operations filter design needs (no dependency for ~40 lines).

use std::ops::{Add, Div, Mul, Neg, Sub};

/// A complex number in f64.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct C64 {
    pub re: f64,
    pub im: f64,
}

impl C64 {
    pub fn new(re: f64, im: f64) -> Self {
        Self { re, im }
    }

    pub fn real(re: f64) -> Self {
        Self { re, im: 0.0 }
    }

    pub fn abs(self) -> f64 {
        self.re.hypot(self.im)
    }

    /// |z| rounded as numpy's vectorized `np.abs` does (`larger * sqrt(fma(r, r, 1))` with
    /// `r = smaller / larger`), which can differ from `hypot` in the last bit. zpk2sos breaks
    /// near-ties between mirror-image poles by these magnitudes, so matching scipy's section
    /// order needs numpy's rounding.
    pub fn abs_numpy(self) -> f64 {
        let (a, b) = (self.re.abs(), self.im.abs());
        if a.is_nan() || b.is_nan() {
            return if a.is_infinite() || b.is_infinite() {
                f64::INFINITY
            } else {
                f64::NAN
            };
        }
        let (larger, smaller) = if a >= b { (a, b) } else { (b, a) };
        if larger == 0.0 || smaller.is_infinite() {
            return larger;
        }
        let ratio = smaller / larger;
        ratio.mul_add(ratio, 1.0).sqrt() * larger
    }

    /// z^2 rounded as numpy's vectorized complex square (fused multiply-adds), so that the
    /// band-pass transform gives scipy's poles to the bit.
    pub fn square_numpy(self) -> Self {
        Self::new(
            self.re.mul_add(self.re, -(self.im * self.im)),
            self.im.mul_add(self.re, self.re * self.im),
        )
    }

    pub fn conj(self) -> Self {
        Self::new(self.re, -self.im)
    }

    pub fn is_real(self) -> bool {
        self.im == 0.0
    }

    /// e^(i theta).
    pub fn cis(theta: f64) -> Self {
        Self::new(theta.cos(), theta.sin())
    }

    /// Principal square root (branch cut on the negative real axis, sign of -0.0 kept as numpy).
    pub fn sqrt(self) -> Self {
        if self.re == 0.0 && self.im == 0.0 {
            return Self::new(0.0, self.im);
        }
        let r = self.abs();
        if self.re >= 0.0 {
            let t = ((r + self.re) / 2.0).sqrt();
            Self::new(t, self.im / (2.0 * t))
        } else {
            let t = ((r - self.re) / 2.0).sqrt();
            Self::new(self.im.abs() / (2.0 * t), t.copysign(self.im))
        }
    }
}

impl Add for C64 {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Self::new(self.re + o.re, self.im + o.im)
    }
}

impl Sub for C64 {
    type Output = Self;
    fn sub(self, o: Self) -> Self {
        Self::new(self.re - o.re, self.im - o.im)
    }
}

impl Mul for C64 {
    type Output = Self;
    fn mul(self, o: Self) -> Self {
        Self::new(
            self.re * o.re - self.im * o.im,
            self.re * o.im + self.im * o.re,
        )
    }
}

impl Mul<f64> for C64 {
    type Output = Self;
    fn mul(self, k: f64) -> Self {
        Self::new(self.re * k, self.im * k)
    }
}

impl Div for C64 {
    type Output = Self;
    /// Smith's algorithm in numpy's form (a reciprocal, then products), to avoid overflow in
    /// |o|^2 and to round as numpy does.
    fn div(self, o: Self) -> Self {
        if o.re.abs() >= o.im.abs() {
            let rat = o.im / o.re;
            let scl = 1.0 / (o.re + o.im * rat);
            Self::new(
                (self.re + self.im * rat) * scl,
                (self.im - self.re * rat) * scl,
            )
        } else {
            let rat = o.re / o.im;
            let scl = 1.0 / (o.im + o.re * rat);
            Self::new(
                (self.re * rat + self.im) * scl,
                (self.im * rat - self.re) * scl,
            )
        }
    }
}

impl Neg for C64 {
    type Output = Self;
    fn neg(self) -> Self {
        Self::new(-self.re, -self.im)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqrt_and_division() {
        let s = C64::new(-4.0, 0.0).sqrt();
        assert_eq!((s.re, s.im), (0.0, 2.0));
        let s = C64::new(-4.0, -0.0).sqrt();
        assert_eq!((s.re, s.im), (0.0, -2.0));
        let q = C64::new(1.0, 2.0) / C64::new(3.0, -4.0);
        assert!((q.re + 0.2).abs() < 1e-15 && (q.im - 0.4).abs() < 1e-15);
    }
}
