//! `eegadapt bench eegmmidb-lr`: the benchmark protocol of the design, end to end.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use eegadapt::align::{select_channels, RowLayout};
use eegadapt::bench::{
    self, mean_std, BenchConfig, BenchReport, ClassicalSet, Progress, Protocol, PERSONALIZED,
};
use eegadapt::calibrate::CalibrateOptions;
use eegadapt::features::{Band, FeatureConfig, FeatureSet};
use eegadapt::plots;
use eegadapt::pretrain::{group, heads_of, PretrainConfig};
use eegadapt::task::Task;
use serde_json::json;

use super::features::progress_bar;
use super::pretrain::load_features;

/// The classical baseline's window, as the protocol defines it (DESIGN.md).
const CLASSICAL_WINDOW: (f64, f64) = (0.5, 3.5);

/// Arguments of `bench`.
#[derive(Args)]
pub struct BenchArgs {
    /// Protocol: eegmmidb-lr (calibrate on imagined run 4, score runs 8 + 12) or eegmmidb-lr-dev
    /// (for choosing methods: calibrate on executed run 3, score runs 7 + 11; runs 8 and 12
    /// never read).
    protocol: String,
    /// EEGMMIDB folder (S001/S001R04.edf ...), or feature tables.
    #[arg(long, required = true, num_args = 1..)]
    data: Vec<PathBuf>,
    /// Leave-subjects-out folds (default: leave one subject out); each fold's encoder never sees
    /// its subjects.
    #[arg(long)]
    folds: Option<usize>,
    /// Folder for the feature cache, the JSON result and the plots.
    #[arg(long, default_value = "bench-eegmmidb-lr")]
    out: PathBuf,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Print one JSON object on stdout instead of the table.
    #[arg(long)]
    json: bool,
    /// Worker threads.
    #[arg(long)]
    jobs: Option<usize>,
    /// Keep only these channels (comma-separated standard names), for every method: for
    /// example the sensorimotor strip `FC5,FC3,FC1,FCz,FC2,FC4,FC6,C5,C3,C1,Cz,C2,C4,C6,CP5,CP3,
    /// CP1,CPz,CP2,CP4,CP6`, far from the eyes.
    #[arg(long, value_delimiter = ',')]
    channels: Vec<String>,
}

/// Runs the command.
pub fn run(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    let Some(protocol) = Protocol::named(&args.protocol) else {
        bail!(
            "unknown benchmark {:?}; available: eegmmidb-lr, eegmmidb-lr-dev",
            args.protocol
        );
    };
    let jobs = super::limit_threads(args.jobs);
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build_global();
    let started = Instant::now();
    // The head's own imagined runs and the executed runs, which train the same head.
    let tasks = vec![
        Task::resolve("eegmmidb-lr")?,
        Task::resolve("eegmmidb-lr-executed")?,
    ];
    let (heads, _) = heads_of(&tasks)?;
    let feature_config = FeatureConfig::default();
    let keep = |sets: Vec<(usize, FeatureSet)>| -> anyhow::Result<Vec<(usize, FeatureSet)>> {
        sets.into_iter()
            .map(|(t, mut set)| {
                set.rows.retain(|r| protocol.keeps(r.run));
                if !args.channels.is_empty() {
                    pick_channels(&mut set, &args.channels)?;
                }
                Ok((t, set))
            })
            .filter(|r| r.as_ref().map_or(true, |(_, set)| !set.rows.is_empty()))
            .collect()
    };
    let sets = keep(load_features(
        &args.data,
        &tasks,
        &feature_config,
        &args.out.join("features"),
    )?)?;
    let classical_tasks: Vec<Task> = tasks.iter().map(classical_task).collect();
    let classical_config = FeatureConfig {
        covariance_bands: vec![Band::new("mu_beta", 8.0, 30.0)],
        evoked: None,
        ..FeatureConfig::default()
    };
    let classical_sets = keep(load_features(
        &args.data,
        &classical_tasks,
        &classical_config,
        &args.out.join("features"),
    )?)?;
    let grouped = group(&sets, heads.clone())?;
    let classical_grouped = group(&classical_sets, heads)?;
    let classical = vec![
        ClassicalSet::new("classical_pooled", &classical_grouped, 0, &protocol)?,
        ClassicalSet::new("classical_pooled_our_window", &grouped, 0, &protocol)?,
    ];
    let mut pretrain = PretrainConfig::for_layout(grouped.layout);
    pretrain.seed = args.seed;
    let config = BenchConfig {
        protocol,
        folds: args.folds,
        pretrain,
        calibrate: CalibrateOptions::default(),
        kshots: vec![2, 4, 8],
    };
    let (evaluated, _) = bench::evaluated_subjects(&grouped, &config.protocol);
    let n_folds = config.folds.unwrap_or(evaluated.len());
    let passes = config.pretrain.ssl_passes + config.pretrain.supervised_passes;
    let bar = progress_bar(passes * n_folds);
    let mut on_progress = |p: Progress| match p {
        Progress::Pretraining { fold, row } => {
            bar.inc(1);
            bar.set_message(format!("fold {} {} pass {}", fold + 1, row.phase, row.pass));
        }
        Progress::Scored(s) => {
            let line = format!(
                "{}: {}",
                s.subject,
                s.accuracy
                    .iter()
                    .map(|(k, v)| format!("{k} {v:.3}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            // A hidden bar (output not a terminal) drops its lines: a log still gets them.
            if bar.is_hidden() {
                eprintln!("{line}");
            } else {
                bar.println(line);
            }
        }
    };
    let report = bench::run(&grouped, &classical, &config, &mut on_progress)?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("{}: cannot create", args.out.display()))?;
    let value = to_json(&report, &config, &tasks, &args.channels, seconds, jobs);
    let text = serde_json::to_string_pretty(&value)?;
    let path = args.out.join("bench.json");
    eegadapt::atomic::write_atomically(&path, |f| f.write_all(text.as_bytes()), |_, e| e)
        .with_context(|| format!("{}: cannot write", path.display()))?;
    plot(&report, &args.out)?;
    if args.json {
        writeln!(std::io::stdout().lock(), "{text}")?;
    } else {
        print_table(&report, &tasks, seconds);
        eprintln!(
            "results in {} (bench.json, summary.svg/png, personalized_vs_classical.svg/png)",
            args.out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Keeps only `names` (standard names, any case) of a feature set, in the set's order.
fn pick_channels(set: &mut FeatureSet, names: &[String]) -> anyhow::Result<()> {
    let layout = RowLayout::of(&set.meta);
    let keep: Vec<usize> = (0..set.meta.channels.len())
        .filter(|&i| {
            names
                .iter()
                .any(|n| n.trim().eq_ignore_ascii_case(&set.meta.channels[i]))
        })
        .collect();
    if keep.len() != names.len() {
        let missing: Vec<&String> = names
            .iter()
            .filter(|n| {
                !set.meta
                    .channels
                    .iter()
                    .any(|c| c.eq_ignore_ascii_case(n.trim()))
            })
            .collect();
        bail!(
            "{}: no channel {missing:?}",
            set.meta
                .sources
                .first()
                .map_or("a feature table", |s| s.name.as_str())
        );
    }
    for row in &mut set.rows {
        *row = select_channels(row, layout, &keep);
    }
    set.meta.channels = keep.iter().map(|&i| set.meta.channels[i].clone()).collect();
    Ok(())
}

/// The same task on the classical recipe's window.
fn classical_task(task: &Task) -> Task {
    Task {
        name: format!("classical-{}", task.name),
        tmin: CLASSICAL_WINDOW.0,
        tmax: CLASSICAL_WINDOW.1,
        head: Some(task.head_name().to_string()),
        ..task.clone()
    }
}

fn plot(report: &BenchReport, out: &std::path::Path) -> anyhow::Result<()> {
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

fn to_json(
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

fn print_table(report: &BenchReport, tasks: &[Task], seconds: f64) {
    let mut out = std::io::stdout().lock();
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
