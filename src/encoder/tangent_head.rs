//! Linear task head on the aligned tangent-space covariance, over a fixed channel vocabulary.

use candle_core::{Module, Tensor};
use candle_nn::{linear, Linear, VarBuilder};
use serde::{Deserialize, Serialize};

use super::Result;

/// Number of distinct entries (upper triangle with diagonal) of a symmetric `n x n` matrix.
pub fn n_pairs(n: usize) -> usize {
    n * (n + 1) / 2
}

/// What the linear head reads, in this order: per covariance band, the tangent vector over the
/// vocabulary's channel pairs; then, when the features carry it, the evoked waveform of every
/// vocabulary channel (`evoked` samples each). Each block is one view of the epoch; the head's
/// logits are the sum of one linear model per view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinearViews {
    /// Covariance bands.
    pub covariance_bands: usize,
    /// Evoked samples per channel (0: no evoked view).
    pub evoked: usize,
}

impl Default for LinearViews {
    /// One covariance band, no evoked view (encoders written before views existed).
    fn default() -> Self {
        LinearViews {
            covariance_bands: 1,
            evoked: 0,
        }
    }
}

impl LinearViews {
    /// Length of the head's input for a vocabulary of `n_vocabulary` channels.
    pub fn width(&self, n_vocabulary: usize) -> usize {
        self.blocks(n_vocabulary).last().map_or(0, |b| b.end)
    }

    /// The input range of each view, in order.
    pub fn blocks(&self, n_vocabulary: usize) -> Vec<std::ops::Range<usize>> {
        let pairs = n_pairs(n_vocabulary);
        let mut out: Vec<std::ops::Range<usize>> = (0..self.covariance_bands)
            .map(|b| b * pairs..(b + 1) * pairs)
            .collect();
        if self.evoked > 0 {
            let start = self.covariance_bands * pairs;
            out.push(start..start + self.evoked * n_vocabulary);
        }
        out
    }
}

/// Where each entry of a `C x C` tangent matrix goes in the vocabulary's upper-triangular vector,
/// and with which weight (1 on the diagonal, sqrt 2 off it, so the vector's Euclidean norm is the
/// matrix's Frobenius norm, as in pyRiemann's `TangentSpace`).
#[derive(Debug, Clone, PartialEq)]
pub struct PairMap {
    n_vocabulary: usize,
    /// Vocabulary index of each channel.
    channel_index: Vec<Option<usize>>,
    /// The views the vectors hold.
    views: LinearViews,
    /// Per entry `i * C + j` with `i <= j` and both channels in the vocabulary: (pair, weight).
    entries: Vec<(usize, usize, f32)>,
}

impl PairMap {
    /// The map for channels whose vocabulary indices are `vocabulary_index` (`None`: not in the
    /// vocabulary, ignored by the head).
    pub fn new(vocabulary_index: &[Option<usize>], n_vocabulary: usize) -> Self {
        Self::with_views(vocabulary_index, n_vocabulary, LinearViews::default())
    }

    /// [`Self::new`] for vectors holding every view of `views`.
    pub fn with_views(
        vocabulary_index: &[Option<usize>],
        n_vocabulary: usize,
        views: LinearViews,
    ) -> Self {
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
            channel_index: vocabulary_index.to_vec(),
            views,
            entries,
        }
    }

    /// Length of the vectors [`Self::vectorize_views`] writes.
    pub fn len(&self) -> usize {
        self.views.width(self.n_vocabulary)
    }

    /// True when the vocabulary is empty.
    pub fn is_empty(&self) -> bool {
        self.n_vocabulary == 0
    }

    /// Appends the vector of one row-major tangent matrix (zeros for pairs not measured: the
    /// re-centred tangent space is centred on the subject, so zero means "as usual").
    pub fn vectorize(&self, tangent: &[f32], out: &mut Vec<f32>) {
        let start = out.len();
        out.resize(start + n_pairs(self.n_vocabulary), 0.0);
        for &(entry, pair, weight) in &self.entries {
            if let (Some(v), Some(slot)) = (tangent.get(entry), out.get_mut(start + pair)) {
                *slot = v * weight;
            }
        }
    }
}

impl PairMap {
    /// Appends one epoch's input to the linear head: each band's tangent matrix (missing bands
    /// and pairs stay zero: the re-centred tangent space is centred on the subject, so zero
    /// means "as usual"), then the evoked waveform (`[channel * evoked + t]`, channels in the
    /// map's order) placed at each channel's vocabulary slot.
    pub fn vectorize_views(&self, tangents: &[&[f32]], evoked: &[f32], out: &mut Vec<f32>) {
        for band in 0..self.views.covariance_bands {
            match tangents.get(band) {
                Some(t) => self.vectorize(t, out),
                None => out.resize(out.len() + n_pairs(self.n_vocabulary), 0.0),
            }
        }
        let e = self.views.evoked;
        if e == 0 {
            return;
        }
        let start = out.len();
        out.resize(start + e * self.n_vocabulary, 0.0);
        for (channel, slot) in self.channel_index.iter().enumerate() {
            let (Some(v), Some(values)) = (slot, evoked.get(channel * e..(channel + 1) * e)) else {
                continue;
            };
            if let Some(target) = out.get_mut(start + v * e..start + (v + 1) * e) {
                target.copy_from_slice(values);
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
    /// A head over inputs of length `width` (see [`LinearViews::width`]).
    pub fn new(width: usize, n_classes: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            linear: linear(width, n_classes, vb)?,
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

    #[test]
    fn views_stack_bands_then_evoked_at_vocabulary_slots() {
        let views = LinearViews {
            covariance_bands: 2,
            evoked: 2,
        };
        // Row channels: vocabulary 1, unknown; vocabulary of 2 channels.
        let map = PairMap::with_views(&[Some(1), None], 2, views);
        assert_eq!(map.len(), 2 * 3 + 2 * 2);
        assert_eq!(views.blocks(2), vec![0..3, 3..6, 6..10]);
        let band = [1.0f32, 7.0, 7.0, 7.0];
        let other = [2.0f32, 7.0, 7.0, 7.0];
        let evoked = [0.5f32, -0.5, 9.0, 9.0];
        let mut v = Vec::new();
        map.vectorize_views(&[&band, &other], &evoked, &mut v);
        assert_eq!(v.len(), map.len());
        // Pair (1, 1) of each band; evoked of vocabulary channel 1 only.
        assert_eq!(&v[..6], &[0.0, 0.0, 1.0, 0.0, 0.0, 2.0]);
        assert_eq!(&v[6..], &[0.0, 0.0, 0.5, -0.5]);
    }
}
