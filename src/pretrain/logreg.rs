//! Multinomial logistic regression solved to convergence (L-BFGS, f64), for the linear heads:
//! the same optimum as scikit-learn's `LogisticRegression(solver="lbfgs")` up to the scale of
//! the penalty, deterministic, and fast enough to refit per subject and per fold.
//!
//! Objective, for weights `W` `[K, P]` and bias `b` `[K]`:
//! `sum_i w_i CE(x_i W^T + b, y_i) / sum_i w_i + penalty / 2 * |W - A|^2`, where `A` is an
//! anchor (zero, or pretrained weights for L2-SP; Li et al. 2018). The bias is not penalised.
//! With unit sample weights, `penalty = 1 / (C N)` for scikit-learn's `C` on `N` samples.

use std::ops::Range;

use rayon::prelude::*;

/// Rows of a design matrix with labels and optional sample weights.
#[derive(Debug, Clone)]
pub struct Data<'a> {
    /// Row-major `[n, stride]`; the model reads columns `columns` of each row.
    pub x: &'a [f32],
    /// Row length of `x`.
    pub stride: usize,
    /// Columns used.
    pub columns: Range<usize>,
    /// Class index of each row.
    pub labels: &'a [u32],
    /// Weight of each row (`None`: all 1).
    pub weights: Option<&'a [f32]>,
}

impl Data<'_> {
    fn n(&self) -> usize {
        self.labels.len()
    }

    fn p(&self) -> usize {
        self.columns.len()
    }

    fn row(&self, i: usize) -> &[f32] {
        let start = i * self.stride + self.columns.start;
        self.x.get(start..start + self.p()).unwrap_or(&[])
    }

    fn weight(&self, i: usize) -> f64 {
        self.weights
            .and_then(|w| w.get(i))
            .map_or(1.0, |&w| f64::from(w))
    }
}

/// A fitted linear classifier: logits `x W^T + b`.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// Classes.
    pub k: usize,
    /// Inputs.
    pub p: usize,
    /// `[K, P]`, row-major.
    pub weight: Vec<f64>,
    /// `[K]`.
    pub bias: Vec<f64>,
}

impl Model {
    /// All zeros.
    pub fn zeros(k: usize, p: usize) -> Self {
        Model {
            k,
            p,
            weight: vec![0.0; k * p],
            bias: vec![0.0; k],
        }
    }

    /// Logits of one input row.
    pub fn logits(&self, x: &[f32], out: &mut [f64]) {
        for (c, o) in out.iter_mut().enumerate().take(self.k) {
            let w = &self.weight[c * self.p..(c + 1) * self.p];
            *o = self.bias[c] + dot(w, x);
        }
    }
}

/// Settings of the solver.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Solver {
    /// Most L-BFGS iterations.
    pub max_iterations: usize,
    /// Stop when the gradient's largest entry is below this.
    pub tolerance: f64,
    /// Correction pairs kept.
    pub memory: usize,
}

impl Default for Solver {
    fn default() -> Self {
        Solver {
            max_iterations: 500,
            tolerance: 1e-5,
            memory: 10,
        }
    }
}

/// Fits `k` classes to `data` (see the module documentation), starting at `start` (zeros when
/// `None`) and pulled toward `anchor` (zeros when `None`).
pub fn fit(
    data: &Data,
    k: usize,
    penalty: f64,
    anchor: Option<&[f64]>,
    start: Option<&Model>,
    solver: &Solver,
) -> Model {
    let p = data.p();
    let dim = k * p + k;
    let mut theta = vec![0.0; dim];
    if let Some(s) = start.filter(|s| s.k == k && s.p == p) {
        theta[..k * p].copy_from_slice(&s.weight);
        theta[k * p..].copy_from_slice(&s.bias);
    }
    let zeros = vec![0.0; k * p];
    let anchor = anchor.filter(|a| a.len() == k * p).unwrap_or(&zeros);
    let objective = |theta: &[f64], grad: &mut [f64]| -> f64 {
        loss_and_gradient(data, k, penalty, anchor, theta, grad)
    };
    lbfgs(&mut theta, objective, solver);
    Model {
        k,
        p,
        weight: theta[..k * p].to_vec(),
        bias: theta[k * p..].to_vec(),
    }
}

/// Weighted mean cross-entropy of `model` on `data` (for choosing penalties).
pub fn cross_entropy(data: &Data, model: &Model) -> f64 {
    let mut theta = model.weight.clone();
    theta.extend_from_slice(&model.bias);
    let mut grad = vec![0.0; theta.len()];
    let zeros = vec![0.0; model.weight.len()];
    loss_and_gradient(data, model.k, 0.0, &zeros, &theta, &mut grad)
}

fn dot(w: &[f64], x: &[f32]) -> f64 {
    // Four accumulators so the loop vectorizes.
    let mut acc = [0.0f64; 4];
    let chunks = w.len() / 4 * 4;
    for (wc, xc) in w[..chunks]
        .chunks_exact(4)
        .zip(x[..chunks.min(x.len())].chunks_exact(4))
    {
        for l in 0..4 {
            acc[l] += wc[l] * f64::from(xc[l]);
        }
    }
    let tail: f64 = w[chunks..]
        .iter()
        .zip(x.get(chunks..).unwrap_or(&[]))
        .map(|(a, b)| a * f64::from(*b))
        .sum();
    acc.iter().sum::<f64>() + tail
}

/// Rows per parallel task.
const ROWS_PER_TASK: usize = 64;

fn loss_and_gradient(
    data: &Data,
    k: usize,
    penalty: f64,
    anchor: &[f64],
    theta: &[f64],
    grad: &mut [f64],
) -> f64 {
    let p = data.p();
    let n = data.n();
    let (weight, bias) = theta.split_at(k * p);
    let total_weight: f64 = (0..n)
        .map(|i| data.weight(i))
        .sum::<f64>()
        .max(f64::MIN_POSITIVE);
    let model = Model {
        k,
        p,
        weight: weight.to_vec(),
        bias: bias.to_vec(),
    };
    // Per chunk of rows: (loss, gradient) partial sums, reduced in chunk order (deterministic).
    let partials: Vec<(f64, Vec<f64>)> = (0..n.div_ceil(ROWS_PER_TASK))
        .into_par_iter()
        .map(|chunk| {
            let mut g = vec![0.0; k * p + k];
            let mut loss = 0.0;
            let mut logits = vec![0.0; k];
            for i in chunk * ROWS_PER_TASK..((chunk + 1) * ROWS_PER_TASK).min(n) {
                let x = data.row(i);
                model.logits(x, &mut logits);
                let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let sum: f64 = logits.iter().map(|l| (l - max).exp()).sum();
                let log_sum = max + sum.ln();
                let y = data.labels[i] as usize;
                let w = data.weight(i) / total_weight;
                loss += w * (log_sum - logits.get(y).copied().unwrap_or(0.0));
                for c in 0..k {
                    let residual = w * ((logits[c] - log_sum).exp() - f64::from(u8::from(c == y)));
                    if residual == 0.0 {
                        continue;
                    }
                    for (gj, xj) in g[c * p..(c + 1) * p].iter_mut().zip(x) {
                        *gj += residual * f64::from(*xj);
                    }
                    g[k * p + c] += residual;
                }
            }
            (loss, g)
        })
        .collect();
    grad.iter_mut().for_each(|g| *g = 0.0);
    let mut loss = 0.0;
    for (l, g) in partials {
        loss += l;
        for (a, b) in grad.iter_mut().zip(g) {
            *a += b;
        }
    }
    for j in 0..k * p {
        let d = weight[j] - anchor[j];
        loss += 0.5 * penalty * d * d;
        grad[j] += penalty * d;
    }
    loss
}

/// Minimises `f` from `x` by L-BFGS with a backtracking (Armijo) line search.
fn lbfgs(x: &mut [f64], mut f: impl FnMut(&[f64], &mut [f64]) -> f64, solver: &Solver) {
    let dim = x.len();
    let mut grad = vec![0.0; dim];
    let mut value = f(x, &mut grad);
    let mut history: Vec<(Vec<f64>, Vec<f64>, f64)> = Vec::new();
    let mut direction = vec![0.0; dim];
    let mut candidate = vec![0.0; dim];
    let mut candidate_grad = vec![0.0; dim];
    for _ in 0..solver.max_iterations {
        if grad.iter().fold(0.0f64, |m, g| m.max(g.abs())) < solver.tolerance {
            break;
        }
        // Two-loop recursion: direction = -H grad.
        direction.copy_from_slice(&grad);
        let mut alphas = Vec::with_capacity(history.len());
        for (s, y, rho) in history.iter().rev() {
            let alpha = rho * dot64(s, &direction);
            axpy(-alpha, y, &mut direction);
            alphas.push(alpha);
        }
        if let Some((s, y, _)) = history.last() {
            let gamma = dot64(s, y) / dot64(y, y).max(f64::MIN_POSITIVE);
            direction.iter_mut().for_each(|d| *d *= gamma);
        } else {
            let norm = dot64(&grad, &grad).sqrt().max(f64::MIN_POSITIVE);
            direction.iter_mut().for_each(|d| *d /= norm);
        }
        for ((s, y, rho), alpha) in history.iter().zip(alphas.iter().rev()) {
            let beta = rho * dot64(y, &direction);
            axpy(alpha - beta, s, &mut direction);
        }
        direction.iter_mut().for_each(|d| *d = -*d);
        let mut slope = dot64(&grad, &direction);
        if slope >= 0.0 {
            // Not a descent direction (curvature information gone stale): steepest descent.
            history.clear();
            for (d, g) in direction.iter_mut().zip(&grad) {
                *d = -g;
            }
            slope = -dot64(&grad, &grad);
        }
        let mut step = 1.0;
        let mut accepted = false;
        for _ in 0..40 {
            for ((c, xi), d) in candidate.iter_mut().zip(x.iter()).zip(&direction) {
                *c = xi + step * d;
            }
            let v = f(&candidate, &mut candidate_grad);
            if v <= value + 1e-4 * step * slope {
                let s: Vec<f64> = candidate.iter().zip(x.iter()).map(|(a, b)| a - b).collect();
                let y: Vec<f64> = candidate_grad
                    .iter()
                    .zip(&grad)
                    .map(|(a, b)| a - b)
                    .collect();
                let sy = dot64(&s, &y);
                if sy > 1e-12 {
                    if history.len() == solver.memory {
                        history.remove(0);
                    }
                    history.push((s, y, 1.0 / sy));
                }
                x.copy_from_slice(&candidate);
                grad.copy_from_slice(&candidate_grad);
                let improvement = value - v;
                value = v;
                accepted = true;
                if improvement <= 1e-14 * value.abs().max(1.0) {
                    return;
                }
                break;
            }
            step *= 0.5;
        }
        if !accepted {
            return;
        }
    }
}

fn dot64(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn axpy(alpha: f64, x: &[f64], y: &mut [f64]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> (Vec<f32>, Vec<u32>) {
        // Two overlapping classes along the first input; the second input is noise.
        let x = vec![
            1.0, 0.3, 0.8, -0.2, 1.5, 0.1, -0.2, 0.4, -1.0, -0.3, -0.7, 0.2, -1.4, 0.0, 0.3, -0.1,
        ];
        let y = vec![0, 0, 0, 0, 1, 1, 1, 1];
        (x, y)
    }

    #[test]
    fn optimum_has_zero_gradient_and_matches_a_known_solution() {
        let (x, y) = toy();
        let data = Data {
            x: &x,
            stride: 2,
            columns: 0..2,
            labels: &y,
            weights: None,
        };
        let m = fit(&data, 2, 0.1, None, None, &Solver::default());
        let mut theta = m.weight.clone();
        theta.extend_from_slice(&m.bias);
        let mut grad = vec![0.0; theta.len()];
        loss_and_gradient(&data, 2, 0.1, &[0.0; 4], &theta, &mut grad);
        assert!(grad.iter().all(|g| g.abs() < 1e-5), "{grad:?}");
        // Symmetric classes: the two weight rows are opposite, class 0 leans to positive x.
        assert!((m.weight[0] + m.weight[2]).abs() < 1e-6);
        assert!(
            m.weight[0] > 0.0 && m.weight[0] > 2.0 * m.weight[1].abs(),
            "{m:?}"
        );
    }

    #[test]
    fn sample_weights_equal_repeated_rows_and_the_anchor_pulls() {
        let (x, y) = toy();
        let mut w = vec![1f32; 8];
        w[4] = 3.0;
        let weighted = Data {
            x: &x,
            stride: 2,
            columns: 0..2,
            labels: &y,
            weights: Some(&w),
        };
        let mut xr = x.clone();
        xr.extend_from_slice(&x[8..10]);
        xr.extend_from_slice(&x[8..10]);
        let mut yr = y.clone();
        yr.extend_from_slice(&[1, 1]);
        let repeated = Data {
            x: &xr,
            stride: 2,
            columns: 0..2,
            labels: &yr,
            weights: None,
        };
        let a = fit(&weighted, 2, 0.05, None, None, &Solver::default());
        let b = fit(&repeated, 2, 0.05, None, None, &Solver::default());
        assert!(a
            .weight
            .iter()
            .zip(&b.weight)
            .all(|(p, q)| (p - q).abs() < 1e-4));
        let anchor = [-2.0, 1.0, 2.0, -1.0];
        let pulled = fit(&weighted, 2, 1e3, Some(&anchor), None, &Solver::default());
        assert!(pulled
            .weight
            .iter()
            .zip(anchor)
            .all(|(p, q)| (p - q).abs() < 0.01));
    }

    #[test]
    fn column_ranges_read_a_block_of_each_row() {
        let (x, y) = toy();
        let second = Data {
            x: &x,
            stride: 2,
            columns: 1..2,
            labels: &y,
            weights: None,
        };
        let m = fit(&second, 2, 0.1, None, None, &Solver::default());
        assert_eq!(m.p, 1);
        assert!(
            cross_entropy(&second, &m) > 0.5,
            "the noise column explains little"
        );
    }
}
