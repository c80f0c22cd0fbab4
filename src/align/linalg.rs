//! Small dense symmetric-matrix algebra (f64, row-major): eigen-decomposition by cyclic Jacobi
//! rotations, and functions of symmetric positive definite matrices built on it.

/// Eigenvalues and eigenvectors (columns of `vectors`, row-major `n x n`) of a symmetric matrix.
pub struct Eigen {
    /// Eigenvalues, unordered.
    pub values: Vec<f64>,
    /// Eigenvectors as columns: `vectors[i * n + k]` is entry `i` of vector `k`.
    pub vectors: Vec<f64>,
}

/// Cyclic Jacobi eigen-decomposition of the symmetric `n x n` matrix `a`. Accurate to working
/// precision for the small (<= 128) well-scaled matrices used here.
pub fn symmetric_eigen(a: &[f64], n: usize) -> Eigen {
    let mut a = a.to_vec();
    let mut v = identity(n);
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * n + j] * a[i * n + j])
            .sum();
        let scale: f64 = (0..n)
            .map(|i| a[i * n + i] * a[i * n + i])
            .sum::<f64>()
            .max(f64::MIN_POSITIVE);
        if off <= 1e-30 * scale {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq.abs() <= f64::MIN_POSITIVE {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let akp = a[k * n + p];
                    let akq = a[k * n + q];
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let apk = a[p * n + k];
                    let aqk = a[q * n + k];
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let vkp = v[k * n + p];
                    let vkq = v[k * n + q];
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    Eigen {
        values: (0..n).map(|i| a[i * n + i]).collect(),
        vectors: v,
    }
}

/// The identity matrix.
pub fn identity(n: usize) -> Vec<f64> {
    let mut m = vec![0.0; n * n];
    for i in 0..n {
        m[i * n + i] = 1.0;
    }
    m
}

/// `V f(L) V^T` for a symmetric matrix; eigenvalues are floored at `floor` first so that nearly
/// singular covariances (rank-deficient after re-referencing) stay usable.
pub fn spd_function(a: &[f64], n: usize, floor: f64, f: impl Fn(f64) -> f64) -> Vec<f64> {
    let e = symmetric_eigen(a, n);
    let fl: Vec<f64> = e.values.iter().map(|&l| f(l.max(floor))).collect();
    let mut out = vec![0.0; n * n];
    for i in 0..n {
        for j in i..n {
            let s: f64 = (0..n)
                .map(|k| e.vectors[i * n + k] * fl[k] * e.vectors[j * n + k])
                .sum();
            out[i * n + j] = s;
            out[j * n + i] = s;
        }
    }
    out
}

/// `a b` for `n x n` matrices.
pub fn matmul(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
    let mut out = vec![0.0; n * n];
    for i in 0..n {
        for k in 0..n {
            let aik = a[i * n + k];
            if aik == 0.0 {
                continue;
            }
            for j in 0..n {
                out[i * n + j] += aik * b[k * n + j];
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eigen_reconstructs_and_functions_compose() {
        let n = 4;
        let b: Vec<f64> = (0..n * n)
            .map(|i| ((i * 7 % 11) as f64 - 5.0) / 3.0)
            .collect();
        // a = b b^T + I is symmetric positive definite.
        let mut a = matmul(
            &b,
            &(0..n * n)
                .map(|i| b[(i % n) * n + i / n])
                .collect::<Vec<_>>(),
            n,
        );
        for i in 0..n {
            a[i * n + i] += 1.0;
        }
        let root = spd_function(&a, n, 1e-12, f64::sqrt);
        let back = matmul(&root, &root, n);
        assert!(a.iter().zip(&back).all(|(x, y)| (x - y).abs() < 1e-9));
        let log = spd_function(&a, n, 1e-12, f64::ln);
        let exp = spd_function(&log, n, f64::NEG_INFINITY, f64::exp);
        assert!(a.iter().zip(&exp).all(|(x, y)| (x - y).abs() < 1e-9));
    }
}
