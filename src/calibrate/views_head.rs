//! A new head from one subject's epochs alone: one logistic regression per linear view (each
//! covariance band's tangent vectors, the evoked waveform, and the encoder's embedding when it
//! is used), each with its own L2 strength chosen by nested cross-validation log-loss, classes
//! weighted to balance, logits averaged over the views that beat chance.
//!
//! Why this shape: a single penalty over the concatenated views suits none of them (the 8-30 Hz
//! tangent space wants a weak one, the slow views a strong one), and a strength chosen by
//! log-loss rather than accuracy keeps the probabilities honest on a few dozen epochs. A view
//! whose best nested log-loss is no better than predicting the class frequencies is dropped, so
//! a view that cannot be read for this subject cannot make the head confidently wrong.

use std::ops::Range;

use candle_core::Tensor;
use rayon::prelude::*;

use super::{folds, CalibrateError};
use crate::pretrain::logistic::Linear;
use crate::pretrain::logreg::{self, Data, Model, Solver};
use crate::pretrain::views;

/// L2 strengths tried per view (on the weighted mean cross-entropy; scikit-learn's `C` is about
/// `1 / (penalty * n)`, so with 30-45 epochs these span C = 0.01 to 10), strongest first: ties
/// go to the stronger.
pub const PENALTIES: [f64; 6] = [3.0, 1.0, 0.3, 0.1, 0.03, 0.01];
/// Folds of the nested cross-validation that picks each view's strength.
const NESTED_FOLDS: usize = 3;

/// Per-sample weights that give every class the same total weight, summing to `labels.len()`
/// (scikit-learn's `class_weight="balanced"`).
pub fn balanced_weights(labels: &[u32], k: usize) -> Vec<f32> {
    let n = labels.len() as f64;
    let mut counts = vec![0usize; k];
    for &l in labels {
        if let Some(c) = counts.get_mut(l as usize) {
            *c += 1;
        }
    }
    labels
        .iter()
        .map(|&l| {
            let c = counts.get(l as usize).copied().unwrap_or(1).max(1) as f64;
            (n / (k as f64 * c)) as f32
        })
        .collect()
}

/// Fits the head on `x` (`[n, width]`: the views side by side) with `k` classes; `blocks` are the
/// views' column ranges, and each of `derived` (a linear map over the whole width, such as a
/// population task head) gives one more view: its outputs. Returns one linear map over the whole
/// width (a derived view folded in through its map; columns of no kept view weigh zero) and the
/// penalty chosen per view, blocks first (`None`: the view was dropped).
pub fn fit(
    x: &Tensor,
    labels: &[u32],
    k: usize,
    blocks: &[Range<usize>],
    derived: &[Linear],
) -> Result<(Linear, Vec<Option<f64>>), CalibrateError> {
    let (n, width) = x.dims2()?;
    // Derived views are appended as extra columns: [x | z_1 | z_2 ...].
    let mut columns = vec![x.clone()];
    let mut all_blocks = blocks.to_vec();
    let mut end = width;
    for map in derived {
        let z = map.logits(x)?;
        let w = z.dim(1)?;
        columns.push(z);
        all_blocks.push(end..end + w);
        end += w;
    }
    let x = &Tensor::cat(&columns, 1)?;
    let blocks = &all_blocks[..];
    let full_width = end;
    let (linear, chosen) = fit_blocks(x, labels, k, blocks, n)?;
    if derived.is_empty() {
        return Ok((linear, chosen));
    }
    // Fold each derived view back onto the original columns: w (M x + c) = (w M) x + w c.
    let weight = linear.weight.narrow(1, 0, width)?;
    let mut weight = weight.to_dtype(candle_core::DType::F32)?;
    let mut bias = linear.bias.clone();
    let mut start = width;
    for map in derived {
        let w = map.weight.dim(0)?;
        let on_z = linear.weight.narrow(1, start, w)?;
        weight = (weight + on_z.matmul(&map.weight)?)?;
        bias = (bias + on_z.matmul(&map.bias.unsqueeze(1)?)?.squeeze(1)?)?;
        start += w;
    }
    debug_assert_eq!(start, full_width);
    Ok((
        Linear {
            weight: weight.detach(),
            bias: bias.detach(),
        },
        chosen,
    ))
}

fn fit_blocks(
    x: &Tensor,
    labels: &[u32],
    k: usize,
    blocks: &[Range<usize>],
    n: usize,
) -> Result<(Linear, Vec<Option<f64>>), CalibrateError> {
    let width = x.dim(1)?;
    if n != labels.len() || n == 0 {
        return Err(CalibrateError::NoEpochs(format!(
            "{n} epochs for {} labels",
            labels.len()
        )));
    }
    let flat = views::flatten(x)?;
    let weights = balanced_weights(labels, k);
    let labels_usize: Vec<usize> = labels.iter().map(|&l| l as usize).collect();
    let nested = folds::stratified_folds(&labels_usize, k, NESTED_FOLDS);
    let chance = prior_log_loss(labels, &weights, k);
    let data = |rows: &[usize]| Subset::new(&flat, width, labels, &weights, rows);
    let all: Vec<usize> = (0..n).collect();
    let everything = data(&all);
    // Views are independent: fitted side by side.
    let fitted: Vec<Option<(Model, f64)>> = blocks
        .par_iter()
        .map(|block| {
            let (penalty, loss) = if nested.is_empty() {
                (PENALTIES[1], f64::NEG_INFINITY)
            } else {
                best_penalty(&nested, n, k, block, &data)
            };
            (loss < chance).then(|| (fit_one(&everything, k, block, penalty), penalty))
        })
        .collect();
    let mut kept_models = Vec::new();
    let mut kept_blocks = Vec::new();
    let mut chosen = Vec::with_capacity(blocks.len());
    for (block, f) in blocks.iter().zip(fitted) {
        match f {
            Some((model, penalty)) => {
                kept_models.push(model);
                kept_blocks.push(block.clone());
                chosen.push(Some(penalty));
            }
            None => chosen.push(None),
        }
    }
    if kept_models.is_empty() {
        // No view beats chance: keep them all at the strongest penalty, so the head stays near
        // the class frequencies rather than failing.
        for block in blocks {
            kept_models.push(fit_one(&everything, k, block, PENALTIES[0]));
            kept_blocks.push(block.clone());
        }
        chosen = vec![None; blocks.len()];
    }
    let mut linear = views::combine(&kept_models, &kept_blocks, width)?;
    linear.weight = linear.weight.detach();
    Ok((linear, chosen))
}

/// Rows of the design matrix, copied out with their labels and weights.
struct Subset {
    x: Vec<f32>,
    width: usize,
    labels: Vec<u32>,
    weights: Vec<f32>,
}

impl Subset {
    fn new(flat: &[f32], width: usize, labels: &[u32], weights: &[f32], rows: &[usize]) -> Self {
        let mut x = Vec::with_capacity(rows.len() * width);
        for &i in rows {
            x.extend_from_slice(flat.get(i * width..(i + 1) * width).unwrap_or(&[]));
        }
        Subset {
            x,
            width,
            labels: rows
                .iter()
                .filter_map(|&i| labels.get(i).copied())
                .collect(),
            weights: rows
                .iter()
                .filter_map(|&i| weights.get(i).copied())
                .collect(),
        }
    }

    fn row(&self, i: usize, block: &Range<usize>) -> &[f32] {
        let start = i * self.width + block.start;
        self.x.get(start..start + block.len()).unwrap_or(&[])
    }
}

/// An orthonormal basis of the span of a view's training rows. An L2-penalised linear model's
/// weights lie in that span (the gradient of the data term is a combination of the rows, the
/// bias being unpenalised), so fitting on the rows' coordinates in it gives exactly the same
/// model, with at most as many inputs as rows instead of thousands of tangent-space entries.
struct Span {
    /// Width of the view.
    p: usize,
    /// Basis vectors, each `p` long, one after the other.
    basis: Vec<f64>,
}

impl Span {
    fn of(subset: &Subset, block: &Range<usize>) -> Span {
        let n = subset.labels.len();
        let p = block.len();
        let rows: Vec<&[f32]> = (0..n).map(|i| subset.row(i, block)).collect();
        let mut gram = vec![0.0; n * n];
        for i in 0..n {
            for j in i..n {
                let d: f64 = rows[i]
                    .iter()
                    .zip(rows[j])
                    .map(|(a, b)| f64::from(*a) * f64::from(*b))
                    .sum();
                gram[i * n + j] = d;
                gram[j * n + i] = d;
            }
        }
        let eigen = crate::align::linalg::symmetric_eigen(&gram, n);
        let largest = eigen.values.iter().copied().fold(0.0, f64::max);
        let mut basis = Vec::new();
        for (k, &value) in eigen.values.iter().enumerate() {
            // Directions of (numerically) zero variance carry no row: left out.
            if value <= largest * 1e-10 || value <= 0.0 {
                continue;
            }
            let scale = 1.0 / value.sqrt();
            let start = basis.len();
            basis.resize(start + p, 0.0);
            for (i, row) in rows.iter().enumerate() {
                let u = eigen.vectors[i * n + k] * scale;
                for (b, &x) in basis[start..].iter_mut().zip(row.iter()) {
                    *b += u * f64::from(x);
                }
            }
        }
        Span { p, basis }
    }

    fn rank(&self) -> usize {
        self.basis.len().checked_div(self.p).unwrap_or(0)
    }

    /// Coordinates of each row of `subset`'s view in the basis, row-major `[n, rank]`.
    fn project(&self, subset: &Subset, block: &Range<usize>) -> Vec<f32> {
        let r = self.rank();
        let mut out = Vec::with_capacity(subset.labels.len() * r);
        for i in 0..subset.labels.len() {
            let row = subset.row(i, block);
            for v in self.basis.chunks_exact(self.p) {
                let d: f64 = v.iter().zip(row).map(|(a, b)| a * f64::from(*b)).sum();
                out.push(d as f32);
            }
        }
        out
    }

    /// A model on the coordinates as a model on the view: `w = sum_j a_j v_j`.
    fn lift(&self, model: &Model) -> Model {
        let r = self.rank();
        let mut weight = vec![0.0; model.k * self.p];
        for c in 0..model.k {
            let w = &mut weight[c * self.p..(c + 1) * self.p];
            for (j, v) in self.basis.chunks_exact(self.p).enumerate() {
                let a = model.weight.get(c * r + j).copied().unwrap_or(0.0);
                for (wi, vi) in w.iter_mut().zip(v) {
                    *wi += a * vi;
                }
            }
        }
        Model {
            k: model.k,
            p: self.p,
            weight,
            bias: model.bias.clone(),
        }
    }
}

/// One view's rows in span coordinates, with their labels and weights.
struct Projected<'a> {
    z: Vec<f32>,
    rank: usize,
    subset: &'a Subset,
}

impl Projected<'_> {
    fn data(&self) -> Data<'_> {
        Data {
            x: &self.z,
            stride: self.rank,
            columns: 0..self.rank,
            labels: &self.subset.labels,
            weights: Some(&self.subset.weights),
        }
    }
}

fn fit_projected(projected: &Projected, k: usize, penalty: f64, start: Option<&Model>) -> Model {
    logreg::fit(
        &projected.data(),
        k,
        penalty,
        None,
        start,
        &Solver::default(),
    )
}

fn fit_one(subset: &Subset, k: usize, block: &Range<usize>, penalty: f64) -> Model {
    let span = Span::of(subset, block);
    let projected = Projected {
        z: span.project(subset, block),
        rank: span.rank(),
        subset,
    };
    span.lift(&fit_projected(&projected, k, penalty, None))
}

/// The strength with the lowest weighted log-loss over the nested folds, and that loss.
fn best_penalty(
    nested: &[Vec<usize>],
    n: usize,
    k: usize,
    block: &Range<usize>,
    data: &(dyn Fn(&[usize]) -> Subset + Sync),
) -> (f64, f64) {
    let splits: Vec<(Subset, Subset)> = nested
        .iter()
        .map(|held_out| (data(&folds::complement(n, held_out)), data(held_out)))
        .collect();
    let spans: Vec<Span> = splits.iter().map(|(t, _)| Span::of(t, block)).collect();
    let projected: Vec<(Projected, Projected)> = splits
        .iter()
        .zip(&spans)
        .map(|((train, val), span)| {
            let of = |s| Projected {
                z: span.project(s, block),
                rank: span.rank(),
                subset: s,
            };
            (of(train), of(val))
        })
        .collect();
    let mut best = (PENALTIES[0], f64::INFINITY);
    // Strongest to weakest, each fold's fit starting at its previous optimum (nearby).
    let mut previous: Vec<Option<Model>> = vec![None; splits.len()];
    for penalty in PENALTIES {
        let (mut loss, mut total) = (0.0, 0.0);
        for ((train, val), start) in projected.iter().zip(previous.iter_mut()) {
            let model = fit_projected(train, k, penalty, start.as_ref());
            let w: f64 = val.subset.weights.iter().map(|&w| f64::from(w)).sum();
            loss += logreg::cross_entropy(&val.data(), &model) * w;
            total += w;
            *start = Some(model);
        }
        let loss = loss / total.max(f64::MIN_POSITIVE);
        if loss < best.1 - 1e-9 {
            best = (penalty, loss);
        }
    }
    best
}

/// Weighted log-loss of predicting the weighted class frequencies (with balanced weights: ln k).
fn prior_log_loss(labels: &[u32], weights: &[f32], k: usize) -> f64 {
    let mut mass = vec![0.0f64; k];
    for (&l, &w) in labels.iter().zip(weights) {
        if let Some(m) = mass.get_mut(l as usize) {
            *m += f64::from(w);
        }
    }
    let total: f64 = mass.iter().sum();
    let mut loss = 0.0;
    for (&l, &w) in labels.iter().zip(weights) {
        let p = mass.get(l as usize).copied().unwrap_or(0.0) / total.max(f64::MIN_POSITIVE);
        loss -= f64::from(w) * p.max(1e-12).ln();
    }
    loss / total.max(f64::MIN_POSITIVE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn fitting_in_the_rows_span_gives_the_full_model() {
        // 6 rows in 10 dimensions: the span fit equals the direct fit on all columns.
        let (n, p) = (6, 10);
        let x: Vec<f32> = (0..n * p)
            .map(|i| ((i * 7919 % 23) as f32 - 11.0) / 7.0)
            .collect();
        let labels = vec![0, 1, 2, 0, 1, 2];
        let weights = balanced_weights(&labels, 3);
        let all: Vec<usize> = (0..n).collect();
        let subset = Subset::new(&x, p, &labels, &weights, &all);
        let block = 0..p;
        let lifted = fit_one(&subset, 3, &block, 0.1);
        let direct = logreg::fit(
            &Data {
                x: &x,
                stride: p,
                columns: block.clone(),
                labels: &labels,
                weights: Some(&weights),
            },
            3,
            0.1,
            None,
            None,
            &Solver {
                tolerance: 1e-9,
                ..Solver::default()
            },
        );
        for (a, b) in lifted.weight.iter().zip(&direct.weight) {
            assert!((a - b).abs() < 1e-3, "{a} {b}");
        }
    }

    #[test]
    fn balanced_weights_give_each_class_the_same_mass() {
        let w = balanced_weights(&[0, 0, 0, 1], 2);
        let mass0: f32 = w[..3].iter().sum();
        assert!((mass0 - w[3]).abs() < 1e-6, "{w:?}");
        assert!((w.iter().sum::<f32>() - 4.0).abs() < 1e-5);
    }

    #[test]
    fn a_noise_view_is_dropped_and_a_signal_view_kept() -> Result<(), CalibrateError> {
        // Column 0 carries the class; columns 1-2 are pseudo-random noise of their own.
        let n = 40;
        let mut x = Vec::new();
        let mut y = Vec::new();
        // splitmix64: well mixed, so the noise has no period-2 structure to share with labels.
        let mut state = 12345u64;
        let mut uniform = move || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        for i in 0..n {
            let label = (i % 2) as u32;
            let signal = label as f32 * 2.0 - 1.0 + 0.3 * uniform();
            x.extend([signal, uniform(), uniform()]);
            y.push(label);
        }
        let x = Tensor::from_vec(x, (n, 3), &Device::Cpu)?;
        let (linear, chosen) = fit(&x, &y, 2, &[0..1, 1..3], &[])?;
        assert!(chosen[0].is_some(), "{chosen:?}");
        assert!(chosen[1].is_none(), "{chosen:?}");
        let w: Vec<Vec<f32>> = linear.weight.to_vec2()?;
        assert_eq!(w[0][1], 0.0);
        let logits: Vec<Vec<f32>> = linear.logits(&x)?.to_vec2()?;
        let correct = logits
            .iter()
            .zip(&y)
            .filter(|(l, &t)| (l[1] > l[0]) == (t == 1))
            .count();
        assert_eq!(correct, n);
        Ok(())
    }

    #[test]
    fn a_derived_view_folds_back_onto_the_inputs() -> Result<(), CalibrateError> {
        // Only the derived view (column 0 minus column 1) separates the classes.
        let n = 24;
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..n {
            let label = (i % 2) as u32;
            let base = (i / 2) as f32 * 0.1;
            let d = if label == 1 { 1.0 } else { -1.0 };
            x.extend([base + d, base]);
            y.push(label);
        }
        let x = Tensor::from_vec(x, (n, 2), &Device::Cpu)?;
        let map = Linear {
            weight: Tensor::new(&[[1f32, -1.0]], &Device::Cpu)?,
            bias: Tensor::new(&[0.5f32], &Device::Cpu)?,
        };
        let (folded, chosen) = fit(&x, &y, 2, &[], std::slice::from_ref(&map))?;
        assert!(chosen[0].is_some());
        // Refit on explicit [x | z] columns: the folded head gives the same logits.
        let z = map.logits(&x)?;
        let only_z = [Range { start: 2, end: 3 }];
        let (explicit, _) = fit(&Tensor::cat(&[&x, &z], 1)?, &y, 2, &only_z, &[])?;
        let a: Vec<Vec<f32>> = folded.logits(&x)?.to_vec2()?;
        let b: Vec<Vec<f32>> = explicit.logits(&Tensor::cat(&[&x, &z], 1)?)?.to_vec2()?;
        for (p, q) in a.iter().flatten().zip(b.iter().flatten()) {
            assert!((p - q).abs() < 1e-4, "{p} {q}");
        }
        Ok(())
    }
}
