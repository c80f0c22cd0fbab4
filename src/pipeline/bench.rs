//! The benchmark protocol from recordings: feature tables for the protocol's runs, the classical
//! baseline on its own window, every fold, and the JSON result with its plots.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::json;

use super::{load_features, pick_channels, PipelineError};
use crate::bench::{
    self, mean_std, BenchConfig, BenchReport, ClassicalSet, Progress, Protocol, PERSONALIZED,
};
use crate::calibrate::CalibrateOptions;
use crate::features::{Band, FeatureConfig, FeatureSet};
use crate::plots;
use crate::pretrain::{group, heads_of, PretrainConfig};
use crate::task::Task;

/// The classical baseline's window, as the protocol defines it (DESIGN.md).
pub const CLASSICAL_WINDOW: (f64, f64) = (0.5, 3.5);

/// What to benchmark.
#[derive(Debug, Clone)]
pub struct BenchFiles {
    /// The protocol.
    pub protocol: Protocol,
    /// EEGMMIDB folder or feature tables.
    pub data: Vec<PathBuf>,
    /// Leave-subjects-out folds (`None`: leave one subject out).
    pub folds: Option<usize>,
    /// Folder for the feature cache, `bench.json` and the plots.
    pub out: PathBuf,
    /// Seed of every random choice.
    pub seed: u64,
    /// Keep only these channels for every method (empty: all).
    pub channels: Vec<String>,
    /// Worker threads, recorded in the result.
    pub threads: usize,
}

/// What the benchmark tells its caller while it runs.
pub enum BenchEvent<'a> {
    /// The folds are set: this many, each pretraining for at most `passes` passes.
    Started {
        /// Folds.
        folds: usize,
        /// Most pretraining passes per fold.
        passes: usize,
    },
    /// A fold's pretraining pass or a subject's scores.
    Progress(Progress<'a>),
}

/// A finished benchmark.
pub struct BenchOutcome {
    /// Every subject's scores.
    pub report: BenchReport,
    /// The JSON written to `bench.json`.
    pub json: String,
    /// The tasks whose runs were used (the first is the evaluated one).
    pub tasks: Vec<Task>,
    /// Wall time, seconds.
    pub seconds: f64,
}

/// Runs the benchmark and writes `bench.json` and its plots under `request.out`. A recording
/// that fails is passed to `on_skip` and left out.
pub fn bench_files(
    request: &BenchFiles,
    on_skip: &(dyn Fn(&PipelineError) + Sync),
    on_event: &mut dyn FnMut(BenchEvent),
) -> Result<BenchOutcome, PipelineError> {
    let started = Instant::now();
    let protocol = &request.protocol;
    // The head's own imagined runs and the executed runs, which train the same head.
    let tasks = vec![
        Task::resolve("eegmmidb-lr")?,
        Task::resolve("eegmmidb-lr-executed")?,
    ];
    let (heads, _) = heads_of(&tasks)?;
    let keep = |sets: Vec<(usize, FeatureSet)>| -> Result<Vec<(usize, FeatureSet)>, PipelineError> {
        sets.into_iter()
            .map(|(t, mut set)| {
                set.rows.retain(|r| protocol.keeps(r.run));
                if !request.channels.is_empty() {
                    pick_channels(&mut set, &request.channels)?;
                }
                Ok((t, set))
            })
            .filter(|r| r.as_ref().map_or(true, |(_, set)| !set.rows.is_empty()))
            .collect()
    };
    let cache = request.out.join("features");
    let sets = keep(load_features(
        &request.data,
        &tasks,
        &FeatureConfig::default(),
        &cache,
        on_skip,
    )?)?;
    let classical_tasks: Vec<Task> = tasks.iter().map(classical_task).collect();
    let classical_config = FeatureConfig {
        covariance_bands: vec![Band::new("mu_beta", 8.0, 30.0)],
        evoked: None,
        ..FeatureConfig::default()
    };
    let classical_sets = keep(load_features(
        &request.data,
        &classical_tasks,
        &classical_config,
        &cache,
        on_skip,
    )?)?;
    let grouped = group(&sets, heads.clone())?;
    let classical_grouped = group(&classical_sets, heads)?;
    let classical = vec![
        ClassicalSet::new("classical_pooled", &classical_grouped, 0, protocol)?,
        ClassicalSet::new("classical_pooled_our_window", &grouped, 0, protocol)?,
    ];
    let mut pretrain = PretrainConfig::for_layout(grouped.layout);
    pretrain.seed = request.seed;
    let config = BenchConfig {
        protocol: protocol.clone(),
        folds: request.folds,
        pretrain,
        calibrate: CalibrateOptions::default(),
        kshots: vec![2, 4, 8],
    };
    let (evaluated, _) = bench::evaluated_subjects(&grouped, &config.protocol);
    on_event(BenchEvent::Started {
        folds: config.folds.unwrap_or(evaluated.len()),
        passes: config.pretrain.ssl_passes + config.pretrain.supervised_passes,
    });
    let report = bench::run(&grouped, &classical, &config, &mut |p| {
        on_event(BenchEvent::Progress(p))
    })?;
    let seconds = started.elapsed().as_secs_f64();
    let out = &request.out;
    std::fs::create_dir_all(out).map_err(|e| PipelineError::io(out, "cannot create folder", e))?;
    let value = bench_json(
        &report,
        &config,
        &tasks,
        &request.channels,
        seconds,
        request.threads,
    );
    let json = serde_json::to_string_pretty(&value)
        .map_err(|e| PipelineError::Refused(format!("cannot encode the result: {e}")))?;
    let path = out.join("bench.json");
    crate::atomic::write_atomically(&path, |f| f.write_all(json.as_bytes()), |_, e| e)
        .map_err(|e| PipelineError::io(&path, "cannot write", e))?;
    write_bench_plots(&report, out)?;
    Ok(BenchOutcome {
        report,
        json,
        tasks,
        seconds,
    })
}

/// The same task on the classical recipe's window.
pub fn classical_task(task: &Task) -> Task {
    Task {
        name: format!("classical-{}", task.name),
        tmin: CLASSICAL_WINDOW.0,
        tmax: CLASSICAL_WINDOW.1,
        head: Some(task.head_name().to_string()),
        ..task.clone()
    }
}

/// Writes `summary.svg/png` (mean accuracy per column) and `personalized_vs_classical.svg/png`
/// (one point per subject) under `out`.
pub fn write_bench_plots(report: &BenchReport, out: &Path) -> Result<(), PipelineError> {
    let means: Vec<(String, f64)> = report
        .methods()
        .iter()
        .map(|(name, v)| (name.clone(), mean_std(v).0))
        .collect();
    plots::bar_chart(
        &out.join("summary"),
        &format!(
            "{}: mean accuracy over {} subjects",
            report.protocol.name,
            report.subjects.len()
        ),
        "accuracy",
        &means,
        Some((0.0, 1.0)),
    )?;
    let points: Vec<(f64, f64)> = report
        .subjects
        .iter()
        .filter_map(|s| {
            Some((
                *s.accuracy.get("classical_pooled")?,
                *s.accuracy.get(PERSONALIZED)?,
            ))
        })
        .collect();
    plots::paired_scatter(
        &out.join("personalized_vs_classical"),
        "One point per subject: above the line, personalized scored higher",
        "classical pooled accuracy",
        "personalized accuracy",
        &points,
    )?;
    Ok(())
}

/// The benchmark's JSON result: every column per subject, the summary with Wilcoxon tests and
/// the selection optimism, the folds and the wall time.
pub fn bench_json(
    report: &BenchReport,
    config: &BenchConfig,
    tasks: &[Task],
    channels: &[String],
    seconds: f64,
    jobs: usize,
) -> serde_json::Value {
    let mut summary = serde_json::Map::new();
    for (name, values) in report.methods() {
        let (mean, std) = mean_std(&values);
        summary.insert(name, json!({ "mean": mean, "std": std, "n": values.len() }));
    }
    summary.insert("wilcoxon".into(), json!(report.wilcoxon()));
    summary.insert("selection_optimism".into(), json!(report.optimism()));
    let subjects: Vec<serde_json::Value> = report
        .subjects
        .iter()
        .map(|s| {
            let mut v = json!(s);
            v["optimism"] = json!(s.optimism());
            v
        })
        .collect();
    json!({
        "benchmark": report.protocol.name,
        "protocol": report.protocol,
        "window_s": tasks.first().map(|t| [t.tmin, t.tmax]),
        "classical_window_s": [CLASSICAL_WINDOW.0, CLASSICAL_WINDOW.1],
        "folds": report.folds,
        "pretraining_only": report.pretraining_only,
        "kshots": config.kshots,
        "candidates": config.calibrate.candidates.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "channels": if channels.is_empty() { json!("all") } else { json!(channels) },
        "threads": jobs,
        "wall_seconds": seconds,
        "crate_version": env!("CARGO_PKG_VERSION"),
        "subjects": subjects,
        "fold_heads": report.fold_heads,
        "summary": summary,
    })
}

impl BenchOutcome {
    /// The result as the terminal table `bench` prints: one column per method, mean and std,
    /// the Wilcoxon tests, the selection's optimism and the run's size.
    pub fn table(&self) -> String {
        use std::fmt::Write as _;
        let (report, tasks, seconds) = (&self.report, &self.tasks, self.seconds);
        let mut out = String::new();
        let methods = report.methods();
        let names: Vec<&String> = methods.keys().collect();
        let _ = writeln!(out, "{}", report.protocol.description);
        let _ = write!(out, "{:<8}", "subject");
        for n in &names {
            let _ = write!(out, " {:>w$}", short(n), w = WIDTH);
        }
        let _ = writeln!(out, "  strategy");
        for s in &report.subjects {
            let _ = write!(out, "{:<8}", s.subject);
            for n in &names {
                match s.accuracy.get(*n) {
                    Some(v) => write!(out, " {v:>w$.3}", w = WIDTH),
                    None => write!(out, " {:>w$}", "-", w = WIDTH),
                }
                .ok();
            }
            let _ = writeln!(out, "  {}", s.strategy);
        }
        for (label, pick) in [("mean", 0), ("std", 1)] {
            let _ = write!(out, "{label:<8}");
            for n in &names {
                let (m, sd) = mean_std(&methods[*n]);
                let _ = write!(out, " {:>w$.3}", if pick == 0 { m } else { sd }, w = WIDTH);
            }
            let _ = writeln!(out);
        }
        for (name, p) in report.wilcoxon() {
            let p = p.map_or("n/a (no differences)".to_string(), |p| format!("{p:.4}"));
            let _ = writeln!(out, "Wilcoxon {name}: p = {p}");
        }
        if let Some(o) = report.optimism() {
            let _ = writeln!(
            out,
            "selection optimism (inner-CV accuracy of the chosen candidate minus its test accuracy): {o:+.3}"
        );
        }
        if !report.pretraining_only.is_empty() {
            let _ = writeln!(
                out,
                "pretraining only (no {} and {:?}): {}",
                report.protocol.calibration_run,
                report.protocol.test_runs,
                report.pretraining_only.join(", ")
            );
        }
        let window = tasks
            .first()
            .map_or(String::new(), |t| format!("{}-{} s", t.tmin, t.tmax));
        let _ = writeln!(
            out,
            "{} subjects, {} folds, window {window} (classical {}-{} s), {:.0} s",
            report.subjects.len(),
            report.folds.len(),
            CLASSICAL_WINDOW.0,
            CLASSICAL_WINDOW.1,
            seconds
        );
        out
    }
}

const WIDTH: usize = 9;

/// Column names shortened for the terminal table (full names in the JSON).
fn short(name: &str) -> String {
    match name {
        "classical_pooled" => "classical".into(),
        "classical_pooled_our_window" => "class.win".into(),
        "personalized" => "personal".into(),
        "population" => "populat.".into(),
        "subject_only" => "subj.only".into(),
        "with_encoder" => "w.encod.".into(),
        other if other.starts_with("calibration_") => format!("cal{}", &other[12..]),
        other if other.starts_with("with_unlabelled_") => format!("unl{}", &other[16..]),
        other => other.replace("kshot_", "k="),
    }
}
