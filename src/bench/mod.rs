//! The eegmmidb-lr benchmark protocol: leave-subjects-out folds; for each held-out subject the
//! population model, a subject-only model and the personalized model at several calibration
//! sizes, all calibrated on the subject's first run of the task and scored on the others.

mod subject_only;
pub mod wilcoxon;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::align::RowLayout;
use crate::calibrate::{self, CalibrateError, CalibrateOptions, Calibrated, Prepared, Strategy};
use crate::features::FeatureRow;
use crate::pretrain::{self, Grouped, LogRow, PopulationModel, PretrainConfig, PretrainError};

pub use subject_only::PENALTIES as SUBJECT_ONLY_PENALTIES;

/// Why the benchmark could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// Not enough subjects or folds.
    #[error("{0}")]
    Setup(String),
    /// Pretraining failed.
    #[error(transparent)]
    Pretrain(#[from] PretrainError),
    /// Calibration failed.
    #[error(transparent)]
    Calibrate(#[from] CalibrateError),
}

/// Benchmark settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchConfig {
    /// Leave-subjects-out folds.
    pub folds: usize,
    /// Pretraining settings of every fold's encoder.
    pub pretrain: PretrainConfig,
    /// Calibration settings.
    pub calibrate: CalibrateOptions,
    /// Calibration trials per class of the k-shot variants (besides "all").
    pub kshots: Vec<usize>,
}

/// One subject's accuracies on its test runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubjectResult {
    /// Subject identifier.
    pub subject: String,
    /// Fold it was held out in.
    pub fold: usize,
    /// Labelled calibration epochs.
    pub n_calibration: usize,
    /// Labelled test epochs.
    pub n_test: usize,
    /// Population model, no calibration (alignment from the calibration run, labels unused).
    pub population: f64,
    /// Trained from scratch on the calibration run.
    pub subject_only: f64,
    /// Personalized with every calibration trial.
    pub personalized: f64,
    /// Personalized with the first k trials of each class (`"all"`: every trial).
    pub kshot: BTreeMap<String, f64>,
    /// Strategy chosen for the personalized model.
    pub strategy: String,
}

/// Everything the benchmark measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    /// Task name.
    pub task: String,
    /// Folds.
    pub folds: usize,
    /// Per subject, in subject order.
    pub subjects: Vec<SubjectResult>,
}

/// Mean and (population) standard deviation.
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

impl BenchReport {
    /// Per-subject accuracies of every method, by method name (`population`, `subject_only`,
    /// `personalized`, `kshot_<k>`), in subject order.
    pub fn methods(&self) -> BTreeMap<String, Vec<f64>> {
        let mut out: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for s in &self.subjects {
            out.entry("population".into())
                .or_default()
                .push(s.population);
            out.entry("subject_only".into())
                .or_default()
                .push(s.subject_only);
            out.entry("personalized".into())
                .or_default()
                .push(s.personalized);
            for (k, v) in &s.kshot {
                out.entry(format!("kshot_{k}")).or_default().push(*v);
            }
        }
        out
    }

    /// Two-sided Wilcoxon p-values of personalized against every other method.
    pub fn wilcoxon(&self) -> BTreeMap<String, Option<f64>> {
        let methods = self.methods();
        let Some(ours) = methods.get("personalized") else {
            return BTreeMap::new();
        };
        methods
            .iter()
            .filter(|(name, _)| *name != "personalized" && *name != "kshot_all")
            .map(|(name, v)| {
                (
                    format!("personalized_vs_{name}"),
                    wilcoxon::wilcoxon(ours, v),
                )
            })
            .collect()
    }
}

/// The calibration run's epochs and the labelled test epochs of one subject: calibration is the
/// lowest-numbered run (the first recording when runs are unknown), test is everything else.
pub fn split_calibration<'a>(
    rows: &[&'a FeatureRow],
) -> (Vec<&'a FeatureRow>, Vec<&'a FeatureRow>) {
    let first_run = rows.iter().filter_map(|r| r.run).min();
    let first_recording = rows.first().map(|r| r.recording.clone());
    let is_calibration = |r: &FeatureRow| match first_run {
        Some(run) => r.run == Some(run),
        None => Some(&r.recording) == first_recording.as_ref(),
    };
    let mut calibration: Vec<&FeatureRow> =
        rows.iter().copied().filter(|r| is_calibration(r)).collect();
    calibration.sort_by(|a, b| a.onset_s.total_cmp(&b.onset_s));
    let test = rows
        .iter()
        .copied()
        .filter(|r| !is_calibration(r) && r.label.is_some())
        .collect();
    (calibration, test)
}

/// Calibration with the first `k` labelled trials of each class of `calibration` (chronological;
/// `None`: all); the run's other epochs count as unlabelled data for alignment.
pub fn personalize(
    population: &PopulationModel,
    task: usize,
    channels: &[String],
    layout: RowLayout,
    calibration: &[&FeatureRow],
    k: Option<usize>,
    options: &CalibrateOptions,
) -> Result<Calibrated, CalibrateError> {
    let mut taken: BTreeMap<usize, usize> = BTreeMap::new();
    let (mut labelled, mut unlabeled) = (Vec::new(), Vec::new());
    for &row in calibration {
        match row.label {
            Some(class) if k.is_none_or(|k| taken.get(&class).copied().unwrap_or(0) < k) => {
                *taken.entry(class).or_default() += 1;
                labelled.push(row);
            }
            _ => unlabeled.push(row),
        }
    }
    calibrate::calibrate(
        population,
        &calibrate::CalibrationInput {
            task,
            channels: channels.to_vec(),
            layout,
            labelled,
            unlabeled,
        },
        options,
    )
}

fn accuracy(
    population: &PopulationModel,
    model: &Calibrated,
    test: &[&FeatureRow],
) -> Result<f64, CalibrateError> {
    let probabilities = model.probabilities(population, test)?;
    let correct = probabilities
        .iter()
        .zip(test)
        .filter(|(p, row)| {
            let best = crate::predict::argmax(p);
            row.label == Some(best)
        })
        .count();
    Ok(correct as f64 / test.len().max(1) as f64)
}

/// Scores one held-out subject with a population model that never saw it.
pub fn score_subject(
    population: &PopulationModel,
    grouped: &Grouped,
    subject: &str,
    fold: usize,
    config: &BenchConfig,
) -> Result<Option<SubjectResult>, BenchError> {
    let task = 0;
    let Some(rows) = grouped.subjects.get(subject) else {
        return Ok(None);
    };
    let rows: Vec<&FeatureRow> = rows
        .iter()
        .filter(|(t, _)| *t == task)
        .map(|(_, r)| *r)
        .collect();
    let (calibration, test) = split_calibration(&rows);
    if test.is_empty() || calibration.iter().all(|r| r.label.is_none()) {
        return Ok(None);
    }
    let channels = &grouped.channels;
    let layout = grouped.layout;
    let run = |k: Option<usize>, options: &CalibrateOptions| {
        personalize(population, task, channels, layout, &calibration, k, options)
    };
    let population_only = CalibrateOptions {
        candidates: vec![Strategy::Population],
        ..config.calibrate.clone()
    };
    let population_model = run(None, &population_only)?;
    let personalized = run(None, &config.calibrate)?;
    let mut kshot = BTreeMap::new();
    for &k in &config.kshots {
        let model = run(Some(k), &config.calibrate)?;
        kshot.insert(k.to_string(), accuracy(population, &model, &test)?);
    }
    let personalized_accuracy = accuracy(population, &personalized, &test)?;
    kshot.insert("all".to_string(), personalized_accuracy);
    let subject_only = {
        let labelled: Vec<&FeatureRow> = calibration
            .iter()
            .copied()
            .filter(|r| r.label.is_some())
            .collect();
        let data = Prepared::new(
            population,
            &personalized.alignment,
            &labelled,
            channels,
            layout,
        )?;
        let n_classes = grouped.tasks.first().map_or(2, |t| t.classes.len());
        let (model, _) = subject_only::fit(&data, n_classes, config.calibrate.max_folds)?;
        let test_data =
            Prepared::new(population, &personalized.alignment, &test, channels, layout)?;
        let (_, acc) = pretrain::logistic::score(
            &model.logits(&test_data.tangent)?,
            &test_data.label_tensor()?,
        )?;
        acc
    };
    Ok(Some(SubjectResult {
        subject: subject.to_string(),
        fold,
        n_calibration: calibration.iter().filter(|r| r.label.is_some()).count(),
        n_test: test.len(),
        population: accuracy(population, &population_model, &test)?,
        subject_only,
        personalized: personalized_accuracy,
        kshot,
        strategy: personalized.strategy.to_string(),
    }))
}

/// Progress of a benchmark run.
pub enum Progress<'a> {
    /// A fold's encoder is training.
    Pretraining {
        /// Fold number, from 0.
        fold: usize,
        /// The pass just finished.
        row: &'a LogRow,
    },
    /// A subject was scored.
    Scored(&'a SubjectResult),
}

/// Runs the protocol over every subject of `grouped` (first task).
pub fn run(
    grouped: &Grouped,
    config: &BenchConfig,
    on_progress: &mut dyn FnMut(Progress),
) -> Result<BenchReport, BenchError> {
    let subjects = grouped.subject_ids();
    let k = config.folds;
    if k < 2 || k > subjects.len() {
        return Err(BenchError::Setup(format!(
            "{k} folds for {} subjects: need 2 to {} folds",
            subjects.len(),
            subjects.len()
        )));
    }
    let task = grouped
        .tasks
        .first()
        .ok_or_else(|| BenchError::Setup("no task".into()))?;
    let mut results = Vec::new();
    for fold in 0..k {
        let held_out: Vec<String> = subjects.iter().skip(fold).step_by(k).cloned().collect();
        let rest: Vec<String> = subjects
            .iter()
            .filter(|s| !held_out.contains(s))
            .cloned()
            .collect();
        if rest.len() < 2 {
            return Err(BenchError::Setup(
                "each fold needs at least two training subjects".into(),
            ));
        }
        let (train, validation) = pretrain::split_validation(&rest, config.pretrain.seed);
        let mut on_pass = |row: &LogRow| on_progress(Progress::Pretraining { fold, row });
        let trained =
            pretrain::train_subjects(grouped, &train, &validation, &config.pretrain, &mut on_pass)?;
        for subject in &held_out {
            if let Some(result) = score_subject(&trained.model, grouped, subject, fold, config)? {
                on_progress(Progress::Scored(&result));
                results.push(result);
            }
        }
    }
    results.sort_by(|a, b| a.subject.cmp(&b.subject));
    Ok(BenchReport {
        task: task.name.clone(),
        folds: k,
        subjects: results,
    })
}
