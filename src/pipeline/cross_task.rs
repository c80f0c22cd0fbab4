//! The cross-task benchmark row: an encoder pretrained on left/right fist runs only, and a
//! subject calibrated on a task it has no head for (imagined fists vs feet). Per subject with
//! runs 6, 10 and 14: an encoder pretrained on every other subject's left/right runs (imagined
//! and executed), calibration on run 6, scores on runs 10 and 14, for the approach inner CV
//! chooses and for each candidate on its own (the subject-only model among them).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use super::{
    calibrate_files_as, collect_inputs, load_features, predict_files, pretrain_sets,
    CalibrateFiles, PipelineError, PretrainFiles,
};
use crate::calibrate::Strategy;
use crate::features::FeatureConfig;
use crate::pretrain::LogRow;
use crate::task::{RecordingId, Task};

/// The task calibrated (no head in the encoder) and its runs.
pub const CROSS_TASK: &str = "eegmmidb-ff";
/// Calibration run of [`CROSS_TASK`].
pub const CALIBRATION_RUN: u32 = 6;
/// Scored runs of [`CROSS_TASK`].
pub const TEST_RUNS: [u32; 2] = [10, 14];
/// The column of the approach inner cross-validation chooses.
pub const CHOSEN: &str = "new head (inner-CV choice)";

/// What to run.
#[derive(Debug, Clone)]
pub struct CrossTaskFiles {
    /// EEGMMIDB folders (`S001/S001R06.edf` ...).
    pub data: Vec<PathBuf>,
    /// Folder for the feature cache, each subject's encoder and models, and the JSON result.
    pub out: PathBuf,
    /// Seed of every random choice.
    pub seed: u64,
    /// Passes of self-supervised pretraining (`None`: the default).
    pub ssl_passes: Option<usize>,
    /// Most supervised pretraining passes (`None`: the default).
    pub max_passes: Option<usize>,
    /// Worker threads.
    pub threads: usize,
}

/// One subject's row.
#[derive(Debug, Clone, Serialize)]
pub struct CrossTaskRow {
    /// Subject identifier.
    pub subject: String,
    /// Labelled calibration epochs.
    pub n_calibration: usize,
    /// Labelled test epochs.
    pub n_test: usize,
    /// The approach inner cross-validation chose.
    pub chosen: Strategy,
    /// Test accuracy per column ([`CHOSEN`], then each candidate by name).
    pub accuracy: BTreeMap<String, f64>,
    /// Seconds spent pretraining this subject's encoder.
    pub pretrain_seconds: f64,
}

/// The finished row set.
#[derive(Debug, Clone, Serialize)]
pub struct CrossTaskReport {
    /// What was measured, in words.
    pub description: String,
    /// One row per subject with runs 6, 10 and 14.
    pub subjects: Vec<CrossTaskRow>,
    /// Subjects whose left/right runs pretrained some encoder.
    pub pretraining_subjects: Vec<String>,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Crate version.
    pub crate_version: String,
}

impl CrossTaskReport {
    /// The rows as a text table: one column per approach, the chosen approach last, then the
    /// caveat that a handful of subjects proves the path, not accuracy.
    pub fn table(&self) -> String {
        use std::fmt::Write as _;
        let columns: Vec<String> = self
            .subjects
            .first()
            .map(|r| r.accuracy.keys().cloned().collect())
            .unwrap_or_default();
        let mut out = format!(
            "{}\n{:<8} {:>5} {:>5}",
            self.description, "subject", "cal", "test"
        );
        for c in &columns {
            let _ = write!(out, " {c:>28}");
        }
        out.push_str("  chosen\n");
        for r in &self.subjects {
            let _ = write!(
                out,
                "{:<8} {:>5} {:>5}",
                r.subject, r.n_calibration, r.n_test
            );
            for c in &columns {
                let a = r.accuracy.get(c).copied().unwrap_or(f64::NAN);
                let _ = write!(out, " {a:>28.3}");
            }
            let _ = writeln!(out, "  {}", r.chosen);
        }
        let _ = writeln!(
            out,
            "{} subject(s), {:.0} s: this proves the path, not an accuracy claim (chance is 0.5; \
             with 30 test epochs a 95% interval is about +-0.18)",
            self.subjects.len(),
            self.seconds
        );
        out
    }
}

/// The column name of a fixed candidate.
pub fn column_of(strategy: Strategy) -> String {
    match strategy {
        Strategy::TangentOnly { .. } => "subject-only".into(),
        Strategy::Head { .. } => "new head, frozen encoder".into(),
        Strategy::HeadLastBlock { .. } => "new head, last block tuned".into(),
        other => other.to_string(),
    }
}

/// Runs the row and writes `bench_cross_task.json` under `request.out`. `on_pass` sees each
/// pretraining pass (subject, pass, most passes); `on_subject` each finished row.
pub fn cross_task_files(
    request: &CrossTaskFiles,
    on_skip: &(dyn Fn(&PipelineError) + Sync),
    on_pass: &mut dyn FnMut(&str, &LogRow, usize),
    on_subject: &mut dyn FnMut(&CrossTaskRow),
) -> Result<CrossTaskReport, PipelineError> {
    let started = Instant::now();
    let files = collect_inputs(&request.data)?;
    let targets = targets(&files);
    if targets.is_empty() {
        return Err(PipelineError::Refused(format!(
            "no subject in the data has runs {CALIBRATION_RUN}, {} and {} ({CROSS_TASK})",
            TEST_RUNS[0], TEST_RUNS[1]
        )));
    }
    let source_tasks = vec![
        Task::resolve("eegmmidb-lr")?,
        Task::resolve("eegmmidb-lr-executed")?,
    ];
    let feature_config = FeatureConfig::default();
    let sets = load_features(
        &request.data,
        &source_tasks,
        &feature_config,
        &request.out.join("features"),
        on_skip,
    )?;
    let pretraining: BTreeSet<String> = sets
        .iter()
        .flat_map(|(_, s)| s.rows.iter().map(|r| r.subject.clone()))
        .collect();
    let mut rows = Vec::new();
    for (subject, runs) in &targets {
        let dir = request.out.join(subject);
        let encoder = dir.join("encoder");
        let t0 = Instant::now();
        // The subject's own left/right runs never train its encoder.
        pretrain_sets(
            &sets,
            &PretrainFiles {
                tasks: source_tasks.clone(),
                feature_config: feature_config.clone(),
                out: encoder.clone(),
                subjects_holdout: if pretraining.contains(subject) {
                    vec![subject.clone()]
                } else {
                    Vec::new()
                },
                evaluate_folds: None,
                seed: request.seed,
                ssl_passes: request.ssl_passes,
                max_passes: request.max_passes,
                threads: request.threads,
                from: None,
            },
            &mut |_, row, passes| on_pass(subject, row, passes),
        )?;
        let pretrain_seconds = t0.elapsed().as_secs_f64();
        let row = score_subject(subject, runs, &encoder, &dir, pretrain_seconds)?;
        on_subject(&row);
        rows.push(row);
    }
    let report = CrossTaskReport {
        description: format!(
            "cross-task: encoder pretrained on the other subjects' left/right fist runs \
             (imagined and executed); {CROSS_TASK} calibrated on run {CALIBRATION_RUN} with a \
             new head, scored on runs {} and {}",
            TEST_RUNS[0], TEST_RUNS[1]
        ),
        subjects: rows,
        pretraining_subjects: pretraining.into_iter().collect(),
        seconds: started.elapsed().as_secs_f64(),
        crate_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let path = request.out.join("bench_cross_task.json");
    let json = serde_json::to_vec_pretty(&report)
        .map_err(|e| PipelineError::Refused(format!("cannot encode the result: {e}")))?;
    crate::atomic::write_atomically(&path, |f| f.write_all(&json), |_, e| e)
        .map_err(|e| PipelineError::io(&path, "cannot write", e))?;
    Ok(report)
}

/// Subjects with the calibration and both test runs, with those recordings in run order.
fn targets(files: &[PathBuf]) -> BTreeMap<String, Vec<PathBuf>> {
    let mut by_subject: BTreeMap<String, BTreeMap<u32, PathBuf>> = BTreeMap::new();
    for file in files {
        let id = RecordingId::from_path(file);
        if let Some(run) = id
            .run
            .filter(|r| *r == CALIBRATION_RUN || TEST_RUNS.contains(r))
        {
            by_subject
                .entry(id.subject)
                .or_default()
                .insert(run, file.clone());
        }
    }
    by_subject
        .into_iter()
        .filter(|(_, runs)| runs.len() == 1 + TEST_RUNS.len())
        .map(|(s, runs)| (s, runs.into_values().collect()))
        .collect()
}

fn score_subject(
    subject: &str,
    runs: &[PathBuf],
    encoder: &Path,
    dir: &Path,
    pretrain_seconds: f64,
) -> Result<CrossTaskRow, PipelineError> {
    let (calibration, test) = runs
        .split_first()
        .ok_or_else(|| PipelineError::Refused(format!("{subject}: no calibration run")))?;
    let mut accuracy = BTreeMap::new();
    let mut chosen = None;
    let (mut n_calibration, mut n_test) = (0, 0);
    let variants =
        std::iter::once(None).chain(Strategy::new_head_candidates().into_iter().map(Some));
    for only in variants {
        let column = only.map_or_else(|| CHOSEN.to_string(), column_of);
        // A folder name from the column: lower-case words joined by dashes.
        let slug: Vec<String> = column
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_ascii_lowercase)
            .collect();
        let out = dir.join(slug.join("-"));
        let summary = calibrate_files_as(
            &CalibrateFiles {
                encoder: encoder.to_path_buf(),
                task: CROSS_TASK.to_string(),
                subject: subject.to_string(),
                calibration: vec![calibration.clone()],
                unlabeled: Vec::new(),
                out,
            },
            only,
        )?;
        let predicted = predict_files(&summary.subject, test);
        if let Some(failure) = predicted.failed.first() {
            return Err(PipelineError::Refused(failure.clone()));
        }
        let manifest = &summary.subject.manifest;
        if only.is_none() {
            chosen = Some(manifest.strategy);
        }
        n_calibration = manifest.calibration.per_class.iter().sum();
        n_test = predicted.n_epochs;
        accuracy.insert(column, predicted.accuracy.unwrap_or(f64::NAN));
    }
    Ok(CrossTaskRow {
        subject: subject.to_string(),
        n_calibration,
        n_test,
        chosen: chosen.unwrap_or(Strategy::Population),
        accuracy,
        pretrain_seconds,
    })
}
