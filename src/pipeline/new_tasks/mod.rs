//! The benchmark of tasks the encoder never saw (design, protocol v3): one encoder per held-out
//! subject (or group, with `folds`), pretrained on the other subjects' left/right fist runs only,
//! serves every new task of that subject: rest vs imagery and rest / left / right (run 4 ->
//! runs 8 + 12), fists vs feet (run 6 -> runs 10 + 14), eyes open / closed (first half of runs 1
//! and 2 -> second half) and left / right itself on a 0-4 s window as if it were new. Each task
//! is calibrated with a new head, scored beside what a pyRiemann user fits on the same epochs.
//!
//! Columns, all from the same folds: the new head (inner-CV choice) and each candidate alone,
//! the new head without the encoder's embedding (the ablation), k = 2 and 4 trials per class,
//! the classical subject-only tangent space + logistic regression and MDM, and for the two rest
//! tasks the label gap: the other subjects labelled for the task (`pretrain --from`, then
//! `calibrate`), the ceiling transfer without those labels tries to reach.
//!
//! The development variant (`dev`) calibrates the rest tasks and left/right on the executed run
//! 3 and scores runs 7 and 11, so that methods are chosen without reading runs 8 and 12.

mod report;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Instant;

use report::{scores, summarize, write_outputs};
pub use report::{ColumnSummary, NewTasksReport, Scores, SubjectRow, TaskResult};

use super::{keep_vocabulary, load_features, pretrain_sets, PipelineError, PretrainFiles};
use crate::align::RowLayout;
use crate::bench::subject_classical;
use crate::calibrate::{self, CalibrateOptions, CalibrationInput, Strategy};
use crate::features::{FeatureConfig, FeatureRow, FeatureSet};
use crate::pretrain::{self, LogRow, PopulationModel};
use crate::task::{eegmmidb_rest, Task};

/// The column of the approach inner cross-validation chooses (the headline).
pub const NEW_HEAD: &str = "new head";
/// The new head with the encoder's embedding as one more view (the ablation: the default new
/// head leaves it out, as chosen on the development runs).
pub const WITH_ENCODER: &str = "new head + embedding";
/// The subject's own views alone: nothing from the population or the encoder.
pub const SUBJECT_VIEWS: &str = "subject views only";
/// pyRiemann's subject-only tangent space + logistic regression.
pub const CLASSICAL: &str = "classical subject-only";
/// pyRiemann's minimum distance to the Riemannian class means.
pub const MDM: &str = "MDM";
/// The population labelled for the task (`pretrain --from`, then `calibrate`).
pub const LABEL_GAP: &str = "population labelled";
/// Wilcoxon tests need at least this many subjects.
const MIN_WILCOXON_SUBJECTS: usize = 6;

/// What to run.
#[derive(Debug, Clone)]
pub struct NewTasksFiles {
    /// EEGMMIDB folders (`S001/S001R04.edf` ...).
    pub data: Vec<PathBuf>,
    /// Folder for the feature cache, each fold's encoders and the results.
    pub out: PathBuf,
    /// Task names to run (empty: all of [`task_names`]).
    pub tasks: Vec<String>,
    /// Groups of held-out subjects (`None`: leave one subject out).
    pub folds: Option<usize>,
    /// The development variant: runs 8 and 12 never read.
    pub dev: bool,
    /// Seed of every random choice.
    pub seed: u64,
    /// Passes of self-supervised pretraining (`None`: the default).
    pub ssl_passes: Option<usize>,
    /// Most supervised pretraining passes (`None`: the default).
    pub max_passes: Option<usize>,
    /// Worker threads.
    pub threads: usize,
}

/// How a task's epochs split into calibration and test.
#[derive(Debug, Clone)]
enum Split {
    /// Calibration on one run, test on others.
    Runs { calibration: u32, test: Vec<u32> },
    /// Each run's first half of epochs calibrates, its second half tests.
    Halves { runs: Vec<u32> },
}

/// One new task of the benchmark.
#[derive(Debug, Clone)]
struct TaskSpec {
    task: Task,
    split: Split,
    /// Whether the label-gap column is run (the population labelled for the task).
    label_gap: bool,
}

/// The benchmark's task names, in the order they run.
pub fn task_names() -> [&'static str; 5] {
    [
        "eegmmidb-rest-imagery",
        "eegmmidb-rest-lr",
        "eegmmidb-ff",
        "eegmmidb-eyes",
        "eegmmidb-lr-4s",
    ]
}

fn spec(name: &str, dev: bool) -> Result<Option<TaskSpec>, PipelineError> {
    let (imagery, calibration, test) = if dev {
        ([3, 7, 11], 3, vec![7, 11])
    } else {
        ([4, 8, 12], 4, vec![8, 12])
    };
    let runs = || Split::Runs {
        calibration,
        test: test.clone(),
    };
    Ok(Some(match name {
        "eegmmidb-rest-imagery" => TaskSpec {
            task: eegmmidb_rest(name, imagery, ["rest", "imagery", "imagery"]),
            split: runs(),
            label_gap: true,
        },
        "eegmmidb-rest-lr" => TaskSpec {
            task: eegmmidb_rest(name, imagery, ["rest", "left", "right"]),
            split: runs(),
            label_gap: true,
        },
        "eegmmidb-lr-4s" => TaskSpec {
            task: Task {
                name: name.into(),
                tmin: 0.0,
                tmax: 4.0,
                runs: Some(imagery.to_vec()),
                ..Task::resolve("eegmmidb-lr")?
            },
            split: runs(),
            label_gap: false,
        },
        // Their only runs are test runs of the evaluated subjects: not for choosing methods.
        "eegmmidb-ff" | "eegmmidb-eyes" if dev => return Ok(None),
        "eegmmidb-ff" => TaskSpec {
            task: Task::resolve(name)?,
            split: Split::Runs {
                calibration: 6,
                test: vec![10, 14],
            },
            label_gap: false,
        },
        "eegmmidb-eyes" => TaskSpec {
            task: Task::resolve(name)?,
            split: Split::Halves { runs: vec![1, 2] },
            label_gap: false,
        },
        other => {
            return Err(PipelineError::Refused(format!(
                "unknown new task {other:?}; available: {}",
                task_names().join(", ")
            )))
        }
    }))
}

/// A subject's epochs of one task, grouped by run.
type ByRun<'a> = BTreeMap<u32, Vec<&'a FeatureRow>>;

/// A subject's labelled epochs of one task by run, and one of its feature sets (whose metadata
/// every one of its sets shares) for conforming them to an encoder.
struct SubjectEpochs<'a> {
    runs: ByRun<'a>,
    template: &'a FeatureSet,
}

/// Runs the benchmark and writes `bench_new_tasks.json` and the plots under `request.out`.
/// `on_pass` sees each pretraining pass (fold label, pass, most passes); `on_row` each finished
/// subject row of a task.
pub fn new_tasks_files(
    request: &NewTasksFiles,
    on_skip: &(dyn Fn(&PipelineError) + Sync),
    on_pass: &mut dyn FnMut(&str, &LogRow, usize),
    on_row: &mut dyn FnMut(&str, &SubjectRow),
) -> Result<NewTasksReport, PipelineError> {
    let started = Instant::now();
    let names: Vec<String> = if request.tasks.is_empty() {
        task_names().iter().map(|s| s.to_string()).collect()
    } else {
        request.tasks.clone()
    };
    let mut specs = Vec::new();
    for name in &names {
        if let Some(s) = spec(name, request.dev)? {
            specs.push(s);
        }
    }
    if specs.is_empty() {
        return Err(PipelineError::Refused(
            "no task to run (fists vs feet and eyes have no development runs)".into(),
        ));
    }
    let feature_config = FeatureConfig::default();
    let cache = request.out.join("features");
    // The encoders' data: left/right runs only, imagined and executed.
    let source_tasks = vec![
        Task::resolve("eegmmidb-lr")?,
        Task::resolve("eegmmidb-lr-executed")?,
    ];
    let source_sets = load_features(
        &request.data,
        &source_tasks,
        &feature_config,
        &cache,
        on_skip,
    )?;
    let mut task_sets = Vec::new();
    for s in &specs {
        // A recording that fails is reported through `on_skip`; the only error left is "no
        // recording of this task at all" (no runs 1 and 2 for the eyes, say): the task then has
        // no subject and its table stays empty.
        let sets = load_features(
            &request.data,
            std::slice::from_ref(&s.task),
            &feature_config,
            &cache,
            on_skip,
        )
        .unwrap_or_default();
        task_sets.push(sets);
    }
    // Per task, per subject: the epochs by run, for the subjects that have every run it needs.
    let per_task: Vec<BTreeMap<String, SubjectEpochs>> = specs
        .iter()
        .zip(&task_sets)
        .map(|(s, sets)| targets(s, sets))
        .collect();
    let evaluated: BTreeSet<String> = per_task.iter().flat_map(|t| t.keys().cloned()).collect();
    let folds = make_folds(&evaluated, request.folds);
    let pretraining: BTreeSet<String> = source_sets
        .iter()
        .flat_map(|(_, s)| s.rows.iter().map(|r| r.subject.clone()))
        .collect();
    let mut results: Vec<TaskResult> = specs
        .iter()
        .map(|s| TaskResult {
            task: s.task.name.clone(),
            classes: s.task.classes.clone(),
            window_s: window_of(&s.task),
            split: describe_split(&s.split),
            subjects: Vec::new(),
            summary: BTreeMap::new(),
            selection_optimism: None,
            seconds: 0.0,
        })
        .collect();
    let mut pretrain_seconds = 0.0;
    for (f, fold) in folds.iter().enumerate() {
        let label = format!("fold {}/{} ({})", f + 1, folds.len(), fold.join(","));
        let dir = request.out.join(format!("fold-{}", fold.join("-")));
        let encoder_dir = dir.join("encoder");
        let t0 = Instant::now();
        pretrain_sets(
            &source_sets,
            &pretrain_request(request, &source_tasks, &feature_config, fold, &encoder_dir),
            &mut |_, row, passes| on_pass(&label, row, passes),
        )?;
        pretrain_seconds += t0.elapsed().as_secs_f64();
        let (population, _) = pretrain::load(&encoder_dir, None)?;
        for (i, s) in specs.iter().enumerate() {
            let subjects: Vec<&String> = fold
                .iter()
                .filter(|x| per_task[i].contains_key(*x))
                .collect();
            if subjects.is_empty() {
                continue;
            }
            let gap = if s.label_gap {
                let t0 = Instant::now();
                let child = dir.join(format!("label-gap-{}", s.task.name));
                let mut request = pretrain_request(request, &[], &feature_config, fold, &child);
                request.tasks = vec![s.task.clone()];
                request.from = Some(encoder_dir.clone());
                let tagged: Vec<(usize, FeatureSet)> = task_sets[i]
                    .iter()
                    .map(|(_, set)| (0, set.clone()))
                    .collect();
                pretrain_sets(&tagged, &request, &mut |_, row, passes| {
                    on_pass(&format!("{label} label gap {}", s.task.name), row, passes)
                })?;
                pretrain_seconds += t0.elapsed().as_secs_f64();
                Some(pretrain::load(&child, None)?.0)
            } else {
                None
            };
            let t0 = Instant::now();
            for subject in subjects {
                let Some(epochs) = per_task[i].get(subject) else {
                    continue;
                };
                let row = score_subject(subject, s, epochs, &population, gap.as_ref())?;
                on_row(&s.task.name, &row);
                results[i].subjects.push(row);
            }
            results[i].seconds += t0.elapsed().as_secs_f64();
        }
    }
    for r in &mut results {
        r.subjects.sort_by(|a, b| a.subject.cmp(&b.subject));
        summarize(r);
    }
    let report = NewTasksReport {
        description: format!(
            "tasks the encoder never saw: each held-out subject's encoder pretrained on the other \
             subjects' left/right fist runs only (imagined and executed), each task calibrated \
             with a new head; {}",
            if request.dev {
                "development runs (calibration on executed run 3, test on runs 7 + 11; runs 8 and \
                 12 never read)"
            } else {
                "test runs (rest tasks and left/right: run 4 -> runs 8 + 12)"
            }
        ),
        protocol: if request.dev { "development" } else { "test" }.into(),
        tasks: results,
        folds,
        pretraining_subjects: pretraining.into_iter().collect(),
        pretrain_seconds,
        seconds: started.elapsed().as_secs_f64(),
        threads: request.threads,
        crate_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    write_outputs(&report, &request.out)?;
    Ok(report)
}

fn pretrain_request(
    request: &NewTasksFiles,
    tasks: &[Task],
    feature_config: &FeatureConfig,
    fold: &[String],
    out: &std::path::Path,
) -> PretrainFiles {
    PretrainFiles {
        tasks: tasks.to_vec(),
        feature_config: feature_config.clone(),
        out: out.to_path_buf(),
        subjects_holdout: fold.to_vec(),
        evaluate_folds: None,
        seed: request.seed,
        ssl_passes: request.ssl_passes,
        max_passes: request.max_passes,
        threads: request.threads,
        from: None,
    }
}

/// Held-out groups: one subject each, or `folds` groups dealt in identifier order.
fn make_folds(subjects: &BTreeSet<String>, folds: Option<usize>) -> Vec<Vec<String>> {
    let n = folds
        .unwrap_or(subjects.len())
        .clamp(1, subjects.len().max(1));
    let mut out = vec![Vec::new(); n];
    for (i, s) in subjects.iter().enumerate() {
        out[i % n].push(s.clone());
    }
    out.retain(|f| !f.is_empty());
    out
}

fn window_of(task: &Task) -> (f64, f64) {
    match &task.fixed {
        Some(f) if task.events.is_empty() => (0.0, f.length_s),
        _ => (task.tmin, task.tmax),
    }
}

fn describe_split(split: &Split) -> String {
    match split {
        Split::Runs { calibration, test } => format!(
            "calibration run {calibration}, test runs {}",
            test.iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(" + ")
        ),
        Split::Halves { runs } => format!(
            "runs {}: first half of each calibrates, second half tests",
            runs.iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Subjects with every run the task's split needs, with their labelled epochs by run.
fn targets<'a>(
    spec: &TaskSpec,
    sets: &'a [(usize, FeatureSet)],
) -> BTreeMap<String, SubjectEpochs<'a>> {
    let mut by_subject: BTreeMap<String, SubjectEpochs<'a>> = BTreeMap::new();
    for (_, set) in sets {
        for row in &set.rows {
            if let (Some(run), Some(_)) = (row.run, row.label) {
                by_subject
                    .entry(row.subject.clone())
                    .or_insert_with(|| SubjectEpochs {
                        runs: BTreeMap::new(),
                        template: set,
                    })
                    .runs
                    .entry(run)
                    .or_default()
                    .push(row);
            }
        }
    }
    let needed: Vec<u32> = match &spec.split {
        Split::Runs { calibration, test } => std::iter::once(*calibration)
            .chain(test.iter().copied())
            .collect(),
        Split::Halves { runs } => runs.clone(),
    };
    by_subject.retain(|_, e| needed.iter().all(|r| e.runs.contains_key(r)));
    for e in by_subject.values_mut() {
        e.runs.retain(|r, _| needed.contains(r));
        for rows in e.runs.values_mut() {
            rows.sort_by(|a, b| a.onset_s.total_cmp(&b.onset_s));
        }
    }
    by_subject
}

/// Calibration and test epochs of one subject.
fn split_rows<'a>(split: &Split, runs: &ByRun<'a>) -> (Vec<&'a FeatureRow>, Vec<&'a FeatureRow>) {
    match split {
        Split::Runs { calibration, test } => (
            runs.get(calibration).cloned().unwrap_or_default(),
            test.iter()
                .flat_map(|r| runs.get(r).cloned().unwrap_or_default())
                .collect(),
        ),
        Split::Halves { runs: which } => {
            let (mut cal, mut test) = (Vec::new(), Vec::new());
            for r in which {
                let rows = runs.get(r).cloned().unwrap_or_default();
                let half = rows.len() / 2;
                cal.extend_from_slice(&rows[..half]);
                test.extend_from_slice(&rows[half..]);
            }
            (cal, test)
        }
    }
}

/// The subject's rows restricted to the encoder's vocabulary, as owned rows with their layout
/// and channel names.
fn conformed(
    rows: &[&FeatureRow],
    template: &FeatureSet,
    vocabulary: &[String],
) -> Result<(Vec<FeatureRow>, Vec<String>, RowLayout), PipelineError> {
    let mut set = FeatureSet {
        meta: template.meta.clone(),
        rows: rows.iter().map(|r| (*r).clone()).collect(),
    };
    keep_vocabulary(&mut set, vocabulary)?;
    let layout = RowLayout::of(&set.meta);
    Ok((set.rows, set.meta.channels, layout))
}

fn score_subject(
    subject: &str,
    spec: &TaskSpec,
    epochs: &SubjectEpochs,
    population: &PopulationModel,
    gap: Option<&PopulationModel>,
) -> Result<SubjectRow, PipelineError> {
    let refuse = |what: &str| PipelineError::Refused(format!("{subject}: {what}"));
    let (cal_rows, test_rows) = split_rows(&spec.split, &epochs.runs);
    let template = epochs.template;
    let (cal, channels, layout) = conformed(&cal_rows, template, &population.vocabulary)?;
    let (test, _, _) = conformed(&test_rows, template, &population.vocabulary)?;
    let cal: Vec<&FeatureRow> = cal.iter().collect();
    let test: Vec<&FeatureRow> = test.iter().collect();
    let k = spec.task.classes.len();
    let truth: Vec<usize> = test.iter().filter_map(|r| r.label).collect();
    let input = |labelled, task| calibration_input(labelled, task, &channels, layout);
    let new_task = population.tasks.len();
    let options = CalibrateOptions::default();
    let candidates = Strategy::new_head_candidates();
    let mut columns = BTreeMap::new();
    let mut score = |name: String, probabilities: &[Vec<f64>]| {
        columns.insert(name, scores(probabilities, &truth, k));
    };
    // The headline: inner CV chooses among the candidates.
    let chosen = calibrate::calibrate_new_head_with(
        population,
        &input(cal.clone(), new_task),
        k,
        &options,
        candidates.clone(),
    )?;
    score(NEW_HEAD.into(), &chosen.probabilities(population, &test)?);
    for c in &candidates {
        let name = format!("candidate: {c}");
        if *c == chosen.strategy {
            let p = chosen.probabilities(population, &test)?;
            score(name, &p);
            continue;
        }
        let alone = calibrate::calibrate_new_head_with(
            population,
            &input(cal.clone(), new_task),
            k,
            &options,
            vec![*c],
        )?;
        score(name, &alone.probabilities(population, &test)?);
    }
    // What the subject's own views give with nothing learnt from the population.
    let own = calibrate::calibrate_new_head_with(
        population,
        &input(cal.clone(), new_task),
        k,
        &options.without_encoder(),
        vec![Strategy::Views {
            embedding: false,
            population: false,
        }],
    )?;
    score(SUBJECT_VIEWS.into(), &own.probabilities(population, &test)?);
    let ablation = calibrate::calibrate_new_head_with(
        population,
        &input(cal.clone(), new_task),
        k,
        &options.with_encoder(),
        candidates.clone(),
    )?;
    score(
        WITH_ENCODER.into(),
        &ablation.probabilities(population, &test)?,
    );
    for per_class in [2, 4] {
        let few = first_per_class(&cal, per_class, k);
        let model = calibrate::calibrate_new_head_with(
            population,
            &input(few, new_task),
            k,
            &options,
            candidates.clone(),
        )?;
        score(
            format!("{NEW_HEAD} k={per_class}"),
            &model.probabilities(population, &test)?,
        );
    }
    let (classical, classical_c) =
        subject_classical::tangent_lr(&cal, &test, 0, layout.channels, k)?;
    score(CLASSICAL.into(), &classical);
    score(
        MDM.into(),
        &subject_classical::mdm(&cal, &test, 0, layout.channels, k)?,
    );
    if let Some(child) = gap {
        let task = child
            .tasks
            .iter()
            .position(|t| t.name == spec.task.name)
            .ok_or_else(|| refuse("the label-gap encoder has no head for the task"))?;
        let model = calibrate::calibrate(child, &input(cal.clone(), task), &options)?;
        score(LABEL_GAP.into(), &model.probabilities(child, &test)?);
    }
    let chosen_score = chosen
        .inner_cv
        .iter()
        .find(|s| s.strategy == chosen.strategy)
        .map_or(f64::NAN, |s| s.balanced_accuracy);
    Ok(SubjectRow {
        subject: subject.to_string(),
        n_calibration: cal.len(),
        n_test: truth.len(),
        chosen: chosen.strategy,
        chosen_inner_cv: chosen_score,
        at_chance: calibrate::at_chance(&chosen.confusion),
        classical_c,
        columns,
    })
}

fn calibration_input<'r>(
    labelled: Vec<&'r FeatureRow>,
    task: usize,
    channels: &[String],
    layout: RowLayout,
) -> CalibrationInput<'r> {
    CalibrationInput {
        task,
        channels: channels.to_vec(),
        layout,
        labelled,
        unlabeled: Vec::new(),
    }
}

/// The first `per_class` epochs of each class, in recording order.
fn first_per_class<'a>(rows: &[&'a FeatureRow], per_class: usize, k: usize) -> Vec<&'a FeatureRow> {
    let mut taken = vec![0usize; k];
    rows.iter()
        .copied()
        .filter(|r| {
            r.label.and_then(|l| taken.get_mut(l)).is_some_and(|t| {
                *t += 1;
                *t <= per_class
            })
        })
        .collect()
}
