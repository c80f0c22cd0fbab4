//! A subject's epochs as tensors for the encoder and the heads, after the subject's alignment.

use candle_core::{Device, Tensor};

use super::CalibrateError;
use crate::align::{RowLayout, SubjectAlignment};
use crate::features::FeatureRow;
use crate::pretrain::{make_batch, tangent_vectors, Batch, PopulationModel, Sample};

/// Epochs ready for the model: encoder input, tangent vectors, labels.
pub struct Prepared {
    /// Encoder input (all channels).
    pub batch: Batch,
    /// Tangent vectors over the encoder's vocabulary `[N, P]`.
    pub tangent: Tensor,
    /// Class indices, `None` for unlabelled epochs.
    pub labels: Vec<Option<usize>>,
}

impl Prepared {
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
        let samples = rows
            .iter()
            .map(|row| {
                let mut tangents = alignment.tangents(row)?.into_iter();
                Ok(Sample {
                    tokens: alignment.tokens(row)?,
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
        let mut batch = make_batch(&refs, layout, channels, &keep)?;
        // Labels live in `labels`; the batch's own (set only when all are labelled) is unused.
        batch.labels = None;
        let tangent = tangent_vectors(&refs, channels.len(), &keep, &model.pair_map(&names))?;
        Ok(Prepared {
            batch,
            tangent,
            labels: rows.iter().map(|r| r.label).collect(),
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
