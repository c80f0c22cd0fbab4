//! Matrix products on slices, through the gemm crate that candle's CPU matmul uses.
//!
//! The block kernels call products on strided views (one head's columns of the stacked queries,
//! keys and values; a transposed gradient) and write into views of larger buffers, so nothing is
//! copied, zero-filled or allocated around a product. Every view is bounds-checked here, which
//! keeps the one `unsafe` call sound.

use candle_core::Result;
pub(super) use gemm::Parallelism;

use super::Real;

/// A read-only matrix view: element (i, j) is `data[i * rs + j * cs]`.
#[derive(Clone, Copy)]
pub(super) struct Mat<'a, T> {
    data: &'a [T],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a, T> Mat<'a, T> {
    /// `rows x cols`, row-major with row stride `rs`, starting at `data[0]`.
    pub(super) fn new(data: &'a [T], rows: usize, cols: usize, rs: usize) -> Self {
        Self {
            data,
            rows,
            cols,
            rs,
            cs: 1,
        }
    }

    /// A dense row-major `rows x cols` matrix.
    pub(super) fn dense(data: &'a [T], rows: usize, cols: usize) -> Self {
        Self::new(data, rows, cols, cols)
    }

    /// The transpose (a view; nothing moves).
    pub(super) fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }

    fn fits(&self) -> bool {
        fits(self.data.len(), self.rows, self.cols, self.rs, self.cs)
    }
}

/// A writable row-major matrix view: element (i, j) is `data[i * rs + j]`.
pub(super) struct MatMut<'a, T> {
    data: &'a mut [T],
    rows: usize,
    cols: usize,
    rs: usize,
}

impl<'a, T> MatMut<'a, T> {
    /// `rows x cols`, row-major with row stride `rs`, starting at `data[0]`.
    pub(super) fn new(data: &'a mut [T], rows: usize, cols: usize, rs: usize) -> Self {
        Self {
            data,
            rows,
            cols,
            rs,
        }
    }

    /// A dense row-major `rows x cols` matrix.
    pub(super) fn dense(data: &'a mut [T], rows: usize, cols: usize) -> Self {
        Self::new(data, rows, cols, cols)
    }
}

fn fits(len: usize, rows: usize, cols: usize, rs: usize, cs: usize) -> bool {
    rows == 0 || cols == 0 || (rows - 1) * rs + (cols - 1) * cs < len
}

/// `dst = scale * a b`, or `dst += scale * a b` when `accumulate`.
pub(super) fn matmul<T: Real>(
    dst: MatMut<'_, T>,
    a: Mat<'_, T>,
    b: Mat<'_, T>,
    scale: T,
    accumulate: bool,
    parallelism: Parallelism,
) -> Result<()> {
    let shapes_agree = a.cols == b.rows && dst.rows == a.rows && dst.cols == b.cols;
    if !shapes_agree
        || !a.fits()
        || !b.fits()
        || !fits(dst.data.len(), dst.rows, dst.cols, dst.rs, 1)
    {
        candle_core::bail!(
            "matmul: {}x{} times {}x{} into {}x{} (or a view outside its slice)",
            a.rows,
            a.cols,
            b.rows,
            b.cols,
            dst.rows,
            dst.cols
        )
    }
    if dst.rows == 0 || dst.cols == 0 {
        return Ok(());
    }
    if a.cols == 0 {
        if !accumulate {
            for row in dst.data.chunks_mut(dst.rs.max(1)).take(dst.rows) {
                row.iter_mut().take(dst.cols).for_each(|v| *v = T::zero());
            }
        }
        return Ok(());
    }
    let signed = |v: usize| v as isize;
    // SAFETY: every element gemm reads or writes lies inside the views' slices (checked above
    // with the same strides), `dst` is borrowed mutably so it aliases neither input, and the
    // only `Real` types, f32 and f64, are types gemm supports.
    unsafe {
        gemm::gemm(
            dst.rows,
            dst.cols,
            a.cols,
            dst.data.as_mut_ptr(),
            1,
            signed(dst.rs),
            accumulate,
            a.data.as_ptr(),
            signed(a.cs),
            signed(a.rs),
            b.data.as_ptr(),
            signed(b.cs),
            signed(b.rs),
            T::one(),
            scale,
            false,
            false,
            false,
            parallelism,
        );
    }
    Ok(())
}

/// Parallelism for a product over all rows of a batch: rayon's threads, when there are several.
pub(super) fn across_threads() -> Parallelism {
    match rayon::current_num_threads() {
        0 | 1 => Parallelism::None,
        n => Parallelism::Rayon(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The product by the definition, for checking.
    fn naive(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        out
    }

    #[test]
    fn products_of_views_match_the_definition() -> Result<()> {
        let (m, k, n) = (7, 5, 3);
        let a: Vec<f64> = (0..m * k).map(|v| (v as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..k * n).map(|v| (v as f64 * 0.91).cos()).collect();
        let want = naive(&a, &b, m, k, n);
        // Plain, then transposed inputs (b^T a^T = (a b)^T), then into a strided view.
        let mut got = vec![0.0; m * n];
        matmul(
            MatMut::dense(&mut got, m, n),
            Mat::dense(&a, m, k),
            Mat::dense(&b, k, n),
            1.0,
            false,
            Parallelism::None,
        )?;
        assert!(got.iter().zip(&want).all(|(x, y)| (x - y).abs() < 1e-12));
        let mut got_t = vec![0.0; n * m];
        matmul(
            MatMut::dense(&mut got_t, n, m),
            Mat::dense(&b, k, n).t(),
            Mat::dense(&a, m, k).t(),
            1.0,
            false,
            Parallelism::None,
        )?;
        for i in 0..m {
            for j in 0..n {
                assert!((got_t[j * m + i] - want[i * n + j]).abs() < 1e-12);
            }
        }
        // Columns 2..5 of a 7-wide buffer, accumulated twice with scale 0.5: equals a b.
        let mut wide = vec![1.0; m * 7];
        for _ in 0..2 {
            matmul(
                MatMut::new(&mut wide[2..], m, n, 7),
                Mat::dense(&a, m, k),
                Mat::dense(&b, k, n),
                0.5,
                true,
                Parallelism::None,
            )?;
        }
        for i in 0..m {
            for j in 0..7 {
                let expected = if (2..5).contains(&j) {
                    1.0 + want[i * n + j - 2]
                } else {
                    1.0
                };
                assert!((wide[i * 7 + j] - expected).abs() < 1e-12);
            }
        }
        Ok(())
    }

    #[test]
    fn views_outside_their_slice_are_refused() {
        let a = vec![0.0f64; 6];
        let mut out = vec![0.0f64; 4];
        let result = matmul(
            MatMut::dense(&mut out, 2, 2),
            Mat::dense(&a, 2, 4),
            Mat::dense(&a, 4, 2),
            1.0,
            false,
            Parallelism::None,
        );
        assert!(result.is_err());
    }
}
