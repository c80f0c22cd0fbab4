//! Linear task head on the aligned tangent-space covariance, over a fixed channel vocabulary.

use candle_core::{Module, Tensor};
use candle_nn::{linear, Linear, VarBuilder};

use super::Result;

/// Number of distinct entries (upper triangle with diagonal) of a symmetric `n x n` matrix.
pub fn n_pairs(n: usize) -> usize {
    n * (n + 1) / 2
}

/// Where each entry of a `C x C` tangent matrix goes in the vocabulary's upper-triangular vector,
/// and with which weight (1 on the diagonal, sqrt 2 off it, so the vector's Euclidean norm is the
/// matrix's Frobenius norm, as in pyRiemann's `TangentSpace`).
#[derive(Debug, Clone, PartialEq)]
pub struct PairMap {
    n_vocabulary: usize,
    /// Per entry `i * C + j` with `i <= j` and both channels in the vocabulary: (pair, weight).
    entries: Vec<(usize, usize, f32)>,
}

impl PairMap {
    /// The map for channels whose vocabulary indices are `vocabulary_index` (`None`: not in the
    /// vocabulary, ignored by the head).
    pub fn new(vocabulary_index: &[Option<usize>], n_vocabulary: usize) -> Self {
        let c = vocabulary_index.len();
        let mut entries = Vec::new();
        for i in 0..c {
            for j in i..c {
                let (Some(a), Some(b)) = (vocabulary_index[i], vocabulary_index[j]) else {
                    continue;
                };
                let (a, b) = (a.min(b), a.max(b));
                let Some(pair) = pair_index(a, b, n_vocabulary) else {
                    continue;
                };
                let weight = if i == j {
                    1.0
                } else {
                    std::f32::consts::SQRT_2
                };
                entries.push((i * c + j, pair, weight));
            }
        }
        PairMap {
            n_vocabulary,
            entries,
        }
    }

    /// Length of the vectors this map writes.
    pub fn len(&self) -> usize {
        n_pairs(self.n_vocabulary)
    }

    /// True when the vocabulary is empty.
    pub fn is_empty(&self) -> bool {
        self.n_vocabulary == 0
    }

    /// Appends the vector of one row-major tangent matrix (zeros for pairs not measured: the
    /// re-centred tangent space is centred on the subject, so zero means "as usual").
    pub fn vectorize(&self, tangent: &[f32], out: &mut Vec<f32>) {
        let start = out.len();
        out.resize(start + self.len(), 0.0);
        for &(entry, pair, weight) in &self.entries {
            if let (Some(v), Some(slot)) = (tangent.get(entry), out.get_mut(start + pair)) {
                *slot = v * weight;
            }
        }
    }
}

/// Row-major upper-triangular index of the pair `(a, b)`, `a <= b < n`.
fn pair_index(a: usize, b: usize, n: usize) -> Option<usize> {
    (a <= b && b < n).then(|| a * n - a * (a + 1) / 2 + b)
}

/// Linear map from a tangent vector over the vocabulary's channel pairs to class logits: the
/// logistic regression of tangent-space BCI pipelines, as a head beside the encoder's.
///
/// Weights: `weight` `[n_classes, n_pairs(n_vocabulary)]`, `bias` `[n_classes]` under the
/// caller's prefix (for example `tangent_heads.<task>`).
#[derive(Debug, Clone)]
pub struct TangentHead {
    linear: Linear,
}

impl TangentHead {
    /// A head over the pairs of `n_vocabulary` channels.
    pub fn new(n_vocabulary: usize, n_classes: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            linear: linear(n_pairs(n_vocabulary), n_classes, vb)?,
        })
    }

    /// The weight `[n_classes, n_pairs]`.
    pub fn weight(&self) -> &Tensor {
        self.linear.weight()
    }

    /// The bias `[n_classes]`.
    pub fn bias(&self) -> Option<&Tensor> {
        self.linear.bias()
    }
}

impl Module for TangentHead {
    /// Tangent vectors `[B, n_pairs]` to logits `[B, n_classes]`.
    fn forward(&self, vectors: &Tensor) -> candle_core::Result<Tensor> {
        self.linear.forward(vectors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_indices_cover_the_upper_triangle_once() {
        let n = 5;
        let mut seen = vec![false; n_pairs(n)];
        for a in 0..n {
            for b in a..n {
                let p = pair_index(a, b, n).unwrap();
                assert!(!seen[p], "pair ({a}, {b}) collides");
                seen[p] = true;
            }
        }
        assert!(seen.iter().all(|&s| s));
        assert_eq!(pair_index(3, 2, n), None);
    }

    #[test]
    fn vector_norm_is_frobenius_norm_and_order_free() {
        // Channels given in another order than the vocabulary, one of them unknown.
        let map = PairMap::new(&[Some(2), None, Some(0)], 3);
        let t = [1.0f32, 9.0, 0.5, 9.0, 9.0, 9.0, 0.5, 9.0, 2.0];
        let mut v = Vec::new();
        map.vectorize(&t, &mut v);
        assert_eq!(v.len(), 6);
        // Vocabulary pairs: (0,0)=2.0, (0,2)=0.5*sqrt2, (2,2)=1.0; the rest zero.
        assert_eq!(v[pair_index(0, 0, 3).unwrap()], 2.0);
        assert_eq!(v[pair_index(2, 2, 3).unwrap()], 1.0);
        assert!((v[pair_index(0, 2, 3).unwrap()] - 0.5 * std::f32::consts::SQRT_2).abs() < 1e-6);
        let norm2: f32 = v.iter().map(|x| x * x).sum();
        assert!((norm2 - (4.0 + 1.0 + 2.0 * 0.25)).abs() < 1e-5);
    }
}
