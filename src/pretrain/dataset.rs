//! Feature tables to training samples: per-subject alignment, channel tokens, tangent-space
//! covariances, labels per task.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::PretrainError;
use crate::align::{RowLayout, SubjectAlignment};
use crate::features::{FeatureRow, FeatureSet, SourceFile};

/// A task the encoder has a head for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskInfo {
    /// Task name.
    pub name: String,
    /// Class names in index order.
    pub classes: Vec<String>,
}

/// The heads that `tasks` train, in order of first appearance, and each task's head index.
/// Tasks that name another's head (see [`crate::task::Task::head`]) share it and must have its
/// classes.
pub fn heads_of(tasks: &[crate::task::Task]) -> Result<(Vec<TaskInfo>, Vec<usize>), PretrainError> {
    let mut heads: Vec<TaskInfo> = Vec::new();
    let mut index = Vec::with_capacity(tasks.len());
    for task in tasks {
        let name = task.head_name();
        match heads.iter().position(|h| h.name == name) {
            Some(i) => {
                if heads[i].classes != task.classes {
                    return Err(PretrainError::Mismatch(format!(
                        "task {} trains head {name} but has classes {:?}, the head has {:?}",
                        task.name, task.classes, heads[i].classes
                    )));
                }
                index.push(i);
            }
            None => {
                heads.push(TaskInfo {
                    name: name.to_string(),
                    classes: task.classes.clone(),
                });
                index.push(heads.len() - 1);
            }
        }
    }
    Ok((heads, index))
}

/// One epoch ready for the encoder.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Aligned channel tokens `[channel * features + k]`.
    pub tokens: Vec<f32>,
    /// Aligned tangent-space covariance of the first band `[i * channels + j]`, when the
    /// features carry one.
    pub tangent: Option<Vec<f32>>,
    /// The same for the further covariance bands.
    pub extra_tangents: Vec<Vec<f32>>,
    /// Aligned evoked waveform `[channel * times + t]` (empty without one).
    pub evoked: Vec<f32>,
    /// Class index within its task (`None`: unlabelled).
    pub label: Option<usize>,
    /// Index of its task in [`Dataset::tasks`].
    pub task: usize,
    /// Run number of its recording, when known.
    pub run: Option<u32>,
}

/// One subject's samples.
#[derive(Debug, Clone)]
pub struct SubjectData {
    /// Subject identifier.
    pub subject: String,
    /// Epochs.
    pub samples: Vec<Sample>,
}

/// Everything the trainer needs, with the provenance that goes into the encoder's manifest.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Channel names (one montage for the whole dataset).
    pub channels: Vec<String>,
    /// Layout of the feature rows.
    pub layout: RowLayout,
    /// Tasks, in head order.
    pub tasks: Vec<TaskInfo>,
    /// Subjects, sorted by identifier.
    pub subjects: Vec<SubjectData>,
    /// Source recordings.
    pub sources: Vec<SourceFile>,
}

/// Rows grouped by subject, with the task index of each, before alignment.
pub struct Grouped<'a> {
    /// Channel names.
    pub channels: Vec<String>,
    /// Row layout.
    pub layout: RowLayout,
    /// Tasks.
    pub tasks: Vec<TaskInfo>,
    /// Per subject: (task index, row).
    pub subjects: BTreeMap<String, Vec<(usize, &'a FeatureRow)>>,
    /// Source recordings.
    pub sources: Vec<SourceFile>,
}

/// Checks that every feature set shares one montage and feature layout, and groups the rows.
/// `sets` pairs each feature set with the index of its task in `tasks`.
pub fn group<'a>(
    sets: &'a [(usize, FeatureSet)],
    tasks: Vec<TaskInfo>,
) -> Result<Grouped<'a>, PretrainError> {
    group_after(sets, &[], tasks)
}

/// [`group`] for tasks added to an encoder that has `parent` tasks already: the groups' tasks
/// are `parent` then `tasks`, and each set's index (into `tasks`) is shifted past the parent's.
pub fn group_after<'a>(
    sets: &'a [(usize, FeatureSet)],
    parent: &[TaskInfo],
    tasks: Vec<TaskInfo>,
) -> Result<Grouped<'a>, PretrainError> {
    let offset = parent.len();
    let tasks: Vec<TaskInfo> = parent.iter().cloned().chain(tasks).collect();
    let (_, first) = sets.first().ok_or(PretrainError::NoData)?;
    let channels = first.meta.channels.clone();
    let layout = RowLayout::of(&first.meta);
    let mut subjects: BTreeMap<String, Vec<(usize, &FeatureRow)>> = BTreeMap::new();
    let mut sources = Vec::new();
    for (task, set) in sets {
        let name = || {
            set.meta
                .sources
                .first()
                .map_or_else(|| "a feature table".to_string(), |s| s.name.clone())
        };
        if set.meta.channels != channels {
            return Err(PretrainError::Mismatch(format!(
                "{} has channels {:?}, the first table has {:?}; one montage per encoder run",
                name(),
                set.meta.channels,
                channels
            )));
        }
        if RowLayout::of(&set.meta) != layout {
            return Err(PretrainError::Mismatch(format!(
                "{} has another spectrum, band, covariance or evoked layout",
                name()
            )));
        }
        sources.extend(set.meta.sources.iter().cloned());
        for row in &set.rows {
            subjects
                .entry(row.subject.clone())
                .or_default()
                .push((task + offset, row));
        }
    }
    Ok(Grouped {
        channels,
        layout,
        tasks,
        subjects,
        sources,
    })
}

/// Turns rows into samples with an alignment fitted on `fit_rows` (labels are not used).
pub fn samples(
    subject: &str,
    fit_rows: &[&FeatureRow],
    rows: &[(usize, &FeatureRow)],
    layout: RowLayout,
) -> Result<(SubjectAlignment, Vec<Sample>), PretrainError> {
    let alignment = SubjectAlignment::fit(subject, fit_rows, layout)?;
    let samples = rows
        .iter()
        .map(|(task, row)| {
            let mut tangents = alignment.tangents(row)?.into_iter();
            Ok(Sample {
                tokens: alignment.tokens(row)?,
                tangent: tangents.next(),
                extra_tangents: tangents.collect(),
                evoked: alignment.evoked(row)?,
                label: row.label,
                task: *task,
                run: row.run,
            })
        })
        .collect::<Result<Vec<_>, PretrainError>>()?;
    Ok((alignment, samples))
}

impl Grouped<'_> {
    /// The pretraining dataset: each subject aligned on all of its own epochs, labelled or not.
    pub fn for_pretraining(&self, subjects: &[String]) -> Result<Dataset, PretrainError> {
        let mut out = Vec::new();
        for subject in subjects {
            let rows = self
                .subjects
                .get(subject)
                .ok_or_else(|| PretrainError::UnknownSubject(subject.clone()))?;
            let fit: Vec<&FeatureRow> = rows.iter().map(|(_, r)| *r).collect();
            let (_, samples) = samples(subject, &fit, rows, self.layout)?;
            out.push(SubjectData {
                subject: subject.clone(),
                samples,
            });
        }
        Ok(Dataset {
            channels: self.channels.clone(),
            layout: self.layout,
            tasks: self.tasks.clone(),
            subjects: out,
            sources: self.sources.clone(),
        })
    }

    /// All subject identifiers, sorted.
    pub fn subject_ids(&self) -> Vec<String> {
        self.subjects.keys().cloned().collect()
    }
}
