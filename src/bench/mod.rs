//! The benchmark protocols (DESIGN.md, "Benchmark protocol"): leave-subjects-out folds, each
//! fold's encoder pretrained only on the other subjects (every run they have, labelled or not);
//! for each held-out subject, every method calibrated on its calibration run and scored on its
//! test runs, which serve nothing else. Methods, side by side on the same folds:
//!
//! | column | what it is |
//! |---|---|
//! | `population` | the population model; alignment from the calibration run, labels unused |
//! | `subject_only` | logistic regression on the calibration run alone (same views) |
//! | `classical_pooled` | the pyRiemann recipe on the protocol's window (see [`classical`]) |
//! | `classical_pooled_our_window` | the same recipe on our window and first covariance band |
//! | `personalized` | `calibrate` on the calibration run |
//! | `with_encoder` | the same calibration with the encoder's embedding added (the ablation) |
//! | `kshot_<k>` | `calibrate` on the first k trials of each class |
//! | `calibration_3_4` | `calibrate` on the extra run and the calibration run |
//! | `with_unlabelled_7_11` | `calibrate` on the calibration run, the unlabelled runs aligning |

pub mod classical;
pub mod protocol;
pub mod subject_classical;
mod subject_only;
pub mod wilcoxon;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::align::RowLayout;
use crate::calibrate::{self, CalibrateError, CalibrateOptions, Calibrated, Prepared, Strategy};
use crate::features::FeatureRow;
use crate::pretrain::{
    self, Grouped, HeadChoice, LogRow, PopulationModel, PretrainConfig, PretrainError,
};

pub use protocol::Protocol;
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
    /// The protocol.
    pub protocol: Protocol,
    /// Folds; `None`: leave one subject out.
    pub folds: Option<usize>,
    /// Pretraining settings of every fold's encoder.
    pub pretrain: PretrainConfig,
    /// Calibration settings.
    pub calibrate: CalibrateOptions,
    /// Calibration trials per class of the k-shot variants.
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
    /// Accuracy of every method (see the module documentation), by column name.
    pub accuracy: BTreeMap<String, f64>,
    /// Strategy chosen for the personalized model.
    pub strategy: String,
    /// Inner cross-validation accuracy of the chosen strategy on the calibration run.
    pub inner_cv: Option<f64>,
}

impl SubjectResult {
    /// Inner-CV accuracy of the chosen candidate minus its test accuracy.
    pub fn optimism(&self) -> Option<f64> {
        Some(self.inner_cv? - self.accuracy.get(PERSONALIZED)?)
    }
}

/// The headline column.
pub const PERSONALIZED: &str = "personalized";

/// Everything the benchmark measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    /// Task name.
    pub task: String,
    /// Protocol.
    pub protocol: Protocol,
    /// Subjects held out together, per fold.
    pub folds: Vec<Vec<String>>,
    /// Subjects without the protocol's runs, used for pretraining only.
    pub pretraining_only: Vec<String>,
    /// Per subject, in subject order.
    pub subjects: Vec<SubjectResult>,
    /// Per fold, how its encoder's task heads were fitted (view penalties, the embedding's
    /// weight, held-out accuracy on the fold's validation subjects).
    pub fold_heads: Vec<Vec<HeadChoice>>,
}

/// Mean and (population) standard deviation.
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

impl BenchReport {
    /// Per-subject accuracies of every method, by column name, in subject order (a method
    /// missing for some subject, such as calibration 3+4 without run 3, lists only the others).
    pub fn methods(&self) -> BTreeMap<String, Vec<f64>> {
        let mut out: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for s in &self.subjects {
            for (name, v) in &s.accuracy {
                out.entry(name.clone()).or_default().push(*v);
            }
        }
        out
    }

    /// Two-sided Wilcoxon p-values of personalized against every other method, over the
    /// subjects that have both.
    pub fn wilcoxon(&self) -> BTreeMap<String, Option<f64>> {
        let names: Vec<String> = self.methods().into_keys().collect();
        names
            .iter()
            .filter(|n| n.as_str() != PERSONALIZED)
            .map(|name| {
                let (ours, theirs): (Vec<f64>, Vec<f64>) = self
                    .subjects
                    .iter()
                    .filter_map(|s| Some((*s.accuracy.get(PERSONALIZED)?, *s.accuracy.get(name)?)))
                    .unzip();
                (
                    format!("personalized_vs_{name}"),
                    wilcoxon::wilcoxon(&ours, &theirs),
                )
            })
            .collect()
    }

    /// Mean selection optimism over subjects (inner-CV accuracy of the chosen candidate minus
    /// its test accuracy).
    pub fn optimism(&self) -> Option<f64> {
        let values: Vec<f64> = self
            .subjects
            .iter()
            .filter_map(SubjectResult::optimism)
            .collect();
        (!values.is_empty()).then(|| mean_std(&values).0)
    }
}

/// Calibration with `labelled` epochs (the first `k` of each class when `k` is set; the others
/// then only align) and `unlabeled` epochs (labels ignored).
#[allow(clippy::too_many_arguments)]
pub fn personalize(
    population: &PopulationModel,
    task: usize,
    channels: &[String],
    layout: RowLayout,
    labelled: &[&FeatureRow],
    unlabeled: &[&FeatureRow],
    k: Option<usize>,
    options: &CalibrateOptions,
) -> Result<Calibrated, CalibrateError> {
    let mut taken: BTreeMap<usize, usize> = BTreeMap::new();
    let (mut used, mut aligning) = (Vec::new(), Vec::new());
    for &row in labelled {
        match row.label {
            Some(class) if k.is_none_or(|k| taken.get(&class).copied().unwrap_or(0) < k) => {
                *taken.entry(class).or_default() += 1;
                used.push(row);
            }
            _ => aligning.push(row),
        }
    }
    let stripped: Vec<FeatureRow> = unlabeled
        .iter()
        .map(|r| FeatureRow {
            label: None,
            ..(*r).clone()
        })
        .collect();
    aligning.extend(stripped.iter());
    calibrate::calibrate(
        population,
        &calibrate::CalibrationInput {
            task,
            channels: channels.to_vec(),
            layout,
            labelled: used,
            unlabeled: aligning,
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
        .filter(|(p, row)| row.label == Some(crate::predict::argmax(p)))
        .count();
    Ok(correct as f64 / test.len().max(1) as f64)
}

/// The classical baseline's inputs for one fold: every subject's rows of one feature set.
pub struct ClassicalSet<'a> {
    /// Column name.
    pub column: &'static str,
    /// The feature set's rows, by subject.
    pub subjects: BTreeMap<String, Vec<&'a FeatureRow>>,
    /// Band and layout read.
    pub band: classical::Band,
    /// Pool subjects' vectors (each aligned on all of its own epochs), computed once.
    pub pool: BTreeMap<String, classical::Vectors>,
}

impl<'a> ClassicalSet<'a> {
    /// Prepares the baseline over `grouped` (rows the protocol keeps), reading `band`.
    pub fn new(
        column: &'static str,
        grouped: &Grouped<'a>,
        band: usize,
        protocol: &Protocol,
    ) -> Result<Self, BenchError> {
        let subjects: BTreeMap<String, Vec<&FeatureRow>> = grouped
            .subjects
            .iter()
            .map(|(s, rows)| {
                (
                    s.clone(),
                    rows.iter()
                        .map(|(_, r)| *r)
                        .filter(|r| protocol.keeps(r.run))
                        .collect(),
                )
            })
            .collect();
        let band = classical::Band {
            index: band,
            layout: grouped.layout,
        };
        let pool = classical::pool_vectors(&subjects, band)?;
        Ok(ClassicalSet {
            column,
            subjects,
            band,
            pool,
        })
    }

    fn score(
        &self,
        target: &str,
        protocol: &Protocol,
        k: usize,
    ) -> Result<Option<f64>, BenchError> {
        let Some(rows) = self.subjects.get(target) else {
            return Ok(None);
        };
        let Some(runs) = protocol.split(rows) else {
            return Ok(None);
        };
        let pool: Vec<&classical::Vectors> = self
            .pool
            .iter()
            .filter(|(s, _)| s.as_str() != target)
            .map(|(_, v)| v)
            .collect();
        let width = crate::encoder::n_pairs(self.band.layout.channels);
        let c = classical::choose_c(&pool, width, k);
        let calibration =
            classical::vectors(target, &runs.calibration, &runs.calibration, self.band)?;
        let test = classical::vectors(target, &runs.calibration, &runs.test, self.band)?;
        Ok(Some(classical::score(
            &pool,
            &calibration,
            &test,
            c,
            k,
            self.band.layout.channels,
        )))
    }
}

/// Scores one held-out subject with a population model that never saw it.
pub fn score_subject(
    population: &PopulationModel,
    grouped: &Grouped,
    classical: &[ClassicalSet],
    subject: &str,
    fold: usize,
    config: &BenchConfig,
) -> Result<Option<SubjectResult>, BenchError> {
    let task = 0;
    let protocol = &config.protocol;
    let Some(rows) = grouped.subjects.get(subject) else {
        return Ok(None);
    };
    let rows: Vec<&FeatureRow> = rows
        .iter()
        .filter(|(t, r)| *t == task && protocol.keeps(r.run))
        .map(|(_, r)| *r)
        .collect();
    let Some(runs) = protocol.split(&rows) else {
        return Ok(None);
    };
    let channels = &grouped.channels;
    let layout = grouped.layout;
    let n_classes = grouped.tasks.first().map_or(2, |t| t.classes.len());
    let with_encoder = config.calibrate.with_encoder();
    let run = |labelled: &[&FeatureRow], unlabeled: &[&FeatureRow], k, options| {
        personalize(
            population, task, channels, layout, labelled, unlabeled, k, options,
        )
    };
    let mut scores = BTreeMap::new();
    let population_only = CalibrateOptions {
        candidates: vec![Strategy::Population],
        ..config.calibrate.clone()
    };
    let population_model = run(&runs.calibration, &[], None, &population_only)?;
    scores.insert(
        "population".to_string(),
        accuracy(population, &population_model, &runs.test)?,
    );
    let personalized = run(&runs.calibration, &[], None, &config.calibrate)?;
    scores.insert(
        PERSONALIZED.to_string(),
        accuracy(population, &personalized, &runs.test)?,
    );
    let ablation = run(&runs.calibration, &[], None, &with_encoder)?;
    scores.insert(
        "with_encoder".into(),
        accuracy(population, &ablation, &runs.test)?,
    );
    for &k in &config.kshots {
        let model = run(&runs.calibration, &[], Some(k), &config.calibrate)?;
        scores.insert(
            format!("kshot_{k}"),
            accuracy(population, &model, &runs.test)?,
        );
    }
    if let (Some(extra), false) = (protocol.extra_calibration_run, runs.extra.is_empty()) {
        let mut both = runs.extra.clone();
        both.extend(runs.calibration.iter().copied());
        let model = run(&both, &[], None, &config.calibrate)?;
        scores.insert(
            format!("calibration_{extra}_{}", protocol.calibration_run),
            accuracy(population, &model, &runs.test)?,
        );
    }
    if !runs.unlabelled.is_empty() {
        let model = run(&runs.calibration, &runs.unlabelled, None, &config.calibrate)?;
        let name = protocol
            .unlabelled_runs
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join("_");
        scores.insert(
            format!("with_unlabelled_{name}"),
            accuracy(population, &model, &runs.test)?,
        );
    }
    let labelled: Vec<&FeatureRow> = runs
        .calibration
        .iter()
        .copied()
        .filter(|r| r.label.is_some())
        .collect();
    let subject_only = {
        let data = Prepared::new(
            population,
            &personalized.alignment,
            &labelled,
            channels,
            layout,
        )?;
        let blocks = population
            .encoder
            .config()
            .linear_views
            .blocks(population.vocabulary.len());
        let (model, _) = subject_only::fit(&data, n_classes, &blocks, config.calibrate.max_folds)?;
        let test_data = Prepared::new(
            population,
            &personalized.alignment,
            &runs.test,
            channels,
            layout,
        )?;
        let (_, acc) = pretrain::logistic::score(
            &model.logits(&test_data.tangent)?,
            &test_data.label_tensor()?,
        )?;
        acc
    };
    scores.insert("subject_only".into(), subject_only);
    for set in classical {
        if let Some(acc) = set.score(subject, protocol, n_classes)? {
            scores.insert(set.column.to_string(), acc);
        }
    }
    let inner_cv = personalized
        .inner_cv
        .iter()
        .find(|s| s.strategy == personalized.strategy)
        .map(|s| s.accuracy);
    Ok(Some(SubjectResult {
        subject: subject.to_string(),
        fold,
        n_calibration: labelled.len(),
        n_test: runs.test.len(),
        accuracy: scores,
        strategy: personalized.strategy.to_string(),
        inner_cv,
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

/// Subjects the protocol can score (calibration and test runs labelled), and the others.
pub fn evaluated_subjects(grouped: &Grouped, protocol: &Protocol) -> (Vec<String>, Vec<String>) {
    grouped.subject_ids().into_iter().partition(|s| {
        grouped.subjects.get(s).is_some_and(|rows| {
            let rows: Vec<&FeatureRow> = rows
                .iter()
                .filter(|(t, r)| *t == 0 && protocol.keeps(r.run))
                .map(|(_, r)| *r)
                .collect();
            protocol.split(&rows).is_some()
        })
    })
}

/// Runs the protocol over every subject of `grouped` (first task is scored; every subject and
/// task may pretrain). `classical` holds the classical baselines' feature sets.
pub fn run(
    grouped: &Grouped,
    classical: &[ClassicalSet],
    config: &BenchConfig,
    on_progress: &mut dyn FnMut(Progress),
) -> Result<BenchReport, BenchError> {
    let task = grouped
        .tasks
        .first()
        .ok_or_else(|| BenchError::Setup("no task".into()))?;
    let (evaluated, pretraining_only) = evaluated_subjects(grouped, &config.protocol);
    let k = config.folds.unwrap_or(evaluated.len());
    if k < 2 || k > evaluated.len() {
        return Err(BenchError::Setup(format!(
            "{k} folds for {} evaluated subjects: need 2 to {} folds",
            evaluated.len(),
            evaluated.len()
        )));
    }
    let folds: Vec<Vec<String>> = (0..k)
        .map(|f| evaluated.iter().skip(f).step_by(k).cloned().collect())
        .collect();
    let mut results = Vec::new();
    let mut fold_heads = Vec::new();
    for (fold, held_out) in folds.iter().enumerate() {
        let rest: Vec<String> = grouped
            .subject_ids()
            .into_iter()
            .filter(|s| !held_out.contains(s))
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
        fold_heads.push(trained.heads.clone());
        for subject in held_out {
            if let Some(result) =
                score_subject(&trained.model, grouped, classical, subject, fold, config)?
            {
                on_progress(Progress::Scored(&result));
                results.push(result);
            }
        }
    }
    results.sort_by(|a, b| a.subject.cmp(&b.subject));
    Ok(BenchReport {
        task: task.name.clone(),
        protocol: config.protocol.clone(),
        folds,
        pretraining_only,
        subjects: results,
        fold_heads,
    })
}
