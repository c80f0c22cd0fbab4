//! A subject's epochs as tensors for the encoder and the heads, after the subject's alignment.

use candle_core::{Device, Tensor};

use super::CalibrateError;
use crate::align::{RowLayout, SubjectAlignment};
use crate::encoder::{EncoderConfig, LinearViews};
use crate::features::FeatureRow;
use crate::pretrain::{make_batch, tangent_vectors, Batch, PopulationModel, Sample};

/// Aligned tokens `[channel * task features + k]` re-laid for an encoder whose tokens hold
/// `encoder_evoked` evoked samples: the spectral part kept, the evoked part set to zero.
fn zero_evoked_tokens(tokens: &[f32], layout: RowLayout, encoder_evoked: usize) -> Vec<f32> {
    let spectral = layout.freqs + 2 * layout.bands;
    let mut out = Vec::with_capacity(layout.channels * (spectral + encoder_evoked));
    for token in tokens.chunks(layout.token_features().max(1)) {
        out.extend_from_slice(token.get(..spectral).unwrap_or(token));
        out.resize(out.len() + encoder_evoked, 0.0);
    }
    out
}

/// Epochs ready for the model: encoder input, tangent vectors, labels.
pub struct Prepared {
    /// Encoder input (all channels).
    pub batch: Batch,
    /// Tangent vectors over the encoder's vocabulary `[N, P]`.
    pub tangent: Tensor,
    /// Class indices, `None` for unlabelled epochs.
    pub labels: Vec<Option<usize>>,
    /// Column range of each linear view in `tangent` (covariance bands, then the evoked
    /// waveform), for heads fitted view by view.
    pub blocks: Vec<std::ops::Range<usize>>,
}

impl Prepared {
    /// Evoked samples per channel token that the encoder reads, for epochs with `layout`: theirs
    /// when their tokens are as wide as the encoder's, else the encoder's evoked view's length
    /// (an epoch window of another length). Refused when the spectrum and band powers alone do
    /// not fit the encoder (features computed another way, or a rate that changes the spectrum).
    pub fn encoder_evoked(
        config: &EncoderConfig,
        layout: RowLayout,
    ) -> Result<usize, CalibrateError> {
        if layout.token_features() == config.n_features {
            return Ok(layout.evoked);
        }
        let spectral = layout.freqs + 2 * layout.bands;
        let evoked = config.linear_views.evoked;
        if spectral + evoked == config.n_features {
            return Ok(evoked);
        }
        Err(CalibrateError::Refused(format!(
            "the epochs give {} features per channel ({} spectrum bins, {} band powers, {} evoked \
             samples), the encoder reads {} ({} of them evoked): their spectrum differs from the \
             encoder's; compute the features with the encoder's settings",
            layout.token_features(),
            layout.freqs,
            2 * layout.bands,
            layout.evoked,
            config.n_features,
            evoked
        )))
    }

    /// The linear views of epochs with `layout` under an encoder with `config`: the encoder's,
    /// with the epochs' own evoked waveform (its length follows their window) when their window
    /// differs from the encoder's.
    pub fn task_views(config: &EncoderConfig, layout: RowLayout) -> LinearViews {
        if layout.token_features() == config.n_features {
            config.linear_views
        } else {
            LinearViews {
                evoked: layout.evoked,
                ..config.linear_views
            }
        }
    }

    /// Aligns `rows` with `alignment` and stacks them.
    pub fn new(
        model: &PopulationModel,
        alignment: &SubjectAlignment,
        rows: &[&FeatureRow],
        channels: &[String],
        layout: RowLayout,
    ) -> Result<Self, CalibrateError> {
        if rows.is_empty() {
            return Err(CalibrateError::NoEpochs("no epochs to prepare".into()));
        }
        let config = model.encoder.config();
        let encoder_evoked = Self::encoder_evoked(config, layout)?;
        // A window of another length than the encoder's gives another evoked length: the encoder
        // reads a zero evoked part, which after the subject's alignment is the subject's mean
        // waveform, i.e. no time-locked deviation (never a waveform warped to fit); the epochs'
        // own waveform goes to the linear views, which the head (a new one) reads.
        let other_window = encoder_evoked != layout.evoked;
        let token_layout = RowLayout {
            evoked: encoder_evoked,
            ..layout
        };
        let samples = rows
            .iter()
            .map(|row| {
                let mut tangents = alignment.tangents(row)?.into_iter();
                let tokens = alignment.tokens(row)?;
                Ok(Sample {
                    tokens: if other_window {
                        zero_evoked_tokens(&tokens, layout, encoder_evoked)
                    } else {
                        tokens
                    },
                    tangent: tangents.next(),
                    extra_tangents: tangents.collect(),
                    evoked: alignment.evoked(row)?,
                    label: row.label,
                    task: 0,
                    run: row.run,
                })
            })
            .collect::<Result<Vec<_>, CalibrateError>>()?;
        let refs: Vec<&Sample> = samples.iter().collect();
        let keep: Vec<usize> = (0..channels.len()).collect();
        let names: Vec<&str> = channels.iter().map(String::as_str).collect();
        let mut batch = make_batch(&refs, token_layout, channels, &keep)?;
        // Labels live in `labels`; the batch's own (set only when all are labelled) is unused.
        batch.labels = None;
        let views = Self::task_views(config, layout);
        let tangent = tangent_vectors(
            &refs,
            channels.len(),
            &keep,
            &model.pair_map_with(&names, views),
        )?;
        let blocks = views.blocks(model.vocabulary.len());
        Ok(Prepared {
            batch,
            tangent,
            labels: rows.iter().map(|r| r.label).collect(),
            blocks,
        })
    }

    /// Number of epochs.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no epochs.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The epochs at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Result<Prepared, CalibrateError> {
        let ids = Tensor::from_vec(
            indices.iter().map(|&i| i as u32).collect::<Vec<_>>(),
            indices.len(),
            &Device::Cpu,
        )?;
        let pick = |t: &Tensor| t.index_select(&ids, 0);
        let input = &self.batch.input;
        Ok(Prepared {
            batch: Batch {
                input: crate::encoder::EncoderInput {
                    tokens: pick(&input.tokens)?,
                    positions: input.positions.clone(),
                    covariance: input.covariance.as_ref().map(pick).transpose()?,
                    mask: None,
                },
                target: pick(&self.batch.target)?,
                labels: None,
            },
            tangent: pick(&self.tangent)?,
            labels: indices
                .iter()
                .map(|&i| self.labels.get(i).copied().flatten())
                .collect(),
            blocks: self.blocks.clone(),
        })
    }

    /// Labels as a u32 tensor; an error when an epoch is unlabelled.
    pub fn label_tensor(&self) -> Result<Tensor, CalibrateError> {
        let labels = self
            .labels
            .iter()
            .map(|l| l.map(|v| v as u32))
            .collect::<Option<Vec<u32>>>()
            .ok_or_else(|| CalibrateError::NoEpochs("an epoch has no label".into()))?;
        Ok(Tensor::from_vec(labels, self.labels.len(), &Device::Cpu)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pretrain::TaskInfo;

    const ENCODER_EVOKED: usize = 2;

    fn layout(evoked: usize) -> RowLayout {
        RowLayout {
            channels: 2,
            freqs: 3,
            bands: 1,
            covariance_bands: 1,
            evoked,
        }
    }

    /// A small encoder whose tokens hold `ENCODER_EVOKED` evoked samples, over C3 and C4.
    fn model() -> PopulationModel {
        let spectral = 3 + 2;
        let config = EncoderConfig {
            d_model: 8,
            n_heads: 2,
            n_layers: 1,
            d_ff: 16,
            linear_views: LinearViews {
                covariance_bands: 1,
                evoked: ENCODER_EVOKED,
            },
            ..EncoderConfig::new(spectral + ENCODER_EVOKED)
        };
        let task = TaskInfo {
            name: "t".into(),
            classes: vec!["a".into(), "b".into()],
        };
        PopulationModel::new(&config, &[task], &["C3".into(), "C4".into()], 7).unwrap()
    }

    fn rows(evoked: usize) -> Vec<FeatureRow> {
        (0..4)
            .map(|i| {
                let x = i as f64;
                FeatureRow {
                    subject: "s".into(),
                    recording: "r".into(),
                    run: None,
                    epoch: i,
                    onset_s: x,
                    label: Some(i % 2),
                    log_psd: (0..6).map(|k| k as f64 + x * 0.3).collect(),
                    log_band_power: vec![x, 1.0 - x],
                    rel_band_power: vec![0.4 + 0.1 * x, 0.6 - 0.1 * x],
                    covariances: vec![vec![2.0 + x, 0.5, 0.5, 3.0 - 0.5 * x]],
                    evoked: (0..2 * evoked)
                        .map(|t| (t as f64 * (x + 1.0)).sin())
                        .collect(),
                }
            })
            .collect()
    }

    fn prepare(evoked: usize) -> (Prepared, SubjectAlignment, Vec<FeatureRow>) {
        let rows = rows(evoked);
        let refs: Vec<&FeatureRow> = rows.iter().collect();
        let alignment = SubjectAlignment::fit("s", &refs, layout(evoked)).unwrap();
        let channels = ["C3".to_string(), "C4".to_string()];
        let prepared =
            Prepared::new(&model(), &alignment, &refs, &channels, layout(evoked)).unwrap();
        (prepared, alignment, rows)
    }

    #[test]
    fn another_window_gives_encoder_tokens_with_a_zero_evoked_part_and_its_own_evoked_view() {
        let task_evoked = 4;
        let (prepared, alignment, rows) = prepare(task_evoked);
        // The encoder reads tokens of its own width, the evoked part zero.
        let tokens = &prepared.batch.input.tokens;
        assert_eq!(tokens.dims(), &[4, 2, 5 + ENCODER_EVOKED]);
        let tokens: Vec<Vec<Vec<f32>>> = tokens.to_vec3().unwrap();
        for (epoch, row) in tokens.iter().zip(&rows) {
            let aligned = alignment.tokens(row).unwrap();
            for (c, token) in epoch.iter().enumerate() {
                let own = &aligned[c * (5 + task_evoked)..][..5];
                assert_eq!(&token[..5], own);
                assert!(token[5..].iter().all(|&v| v == 0.0));
            }
        }
        // The views carry the task's evoked waveform: 3 pairs, then 4 samples per channel.
        assert_eq!(prepared.blocks, vec![0..3, 3..3 + 2 * task_evoked]);
        assert_eq!(prepared.tangent.dims(), &[4, 3 + 2 * task_evoked]);
        let tangent: Vec<Vec<f32>> = prepared.tangent.to_vec2().unwrap();
        for (vector, row) in tangent.iter().zip(&rows) {
            assert_eq!(&vector[3..], alignment.evoked(row).unwrap().as_slice());
        }
    }

    #[test]
    fn the_encoder_window_is_read_as_is() {
        let (prepared, alignment, rows) = prepare(ENCODER_EVOKED);
        let tokens: Vec<Vec<Vec<f32>>> = prepared.batch.input.tokens.to_vec3().unwrap();
        let flat: Vec<f32> = tokens[1].concat();
        assert_eq!(flat, alignment.tokens(&rows[1]).unwrap());
        assert_eq!(prepared.blocks, vec![0..3, 3..3 + 2 * ENCODER_EVOKED]);
        assert_eq!(prepared.tangent.dims(), &[4, 3 + 2 * ENCODER_EVOKED]);
    }

    #[test]
    fn a_spectrum_the_encoder_cannot_read_is_refused() {
        let config = model().encoder.config().clone();
        let other = RowLayout {
            freqs: 9,
            ..layout(4)
        };
        assert!(matches!(
            Prepared::encoder_evoked(&config, other),
            Err(CalibrateError::Refused(_))
        ));
        assert_eq!(Prepared::encoder_evoked(&config, layout(4)).unwrap(), 2);
        assert_eq!(Prepared::task_views(&config, layout(4)).evoked, 4);
    }
}
