//! `eegadapt bench eegmmidb-lr`: the benchmark protocol of the design, end to end.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use eegadapt::bench::{self, mean_std, BenchConfig, BenchReport, Progress};
use eegadapt::calibrate::CalibrateOptions;
use eegadapt::features::FeatureConfig;
use eegadapt::plots;
use eegadapt::pretrain::{group, PretrainConfig, TaskInfo};
use eegadapt::task::Task;
use serde_json::json;

use super::features::progress_bar;
use super::pretrain::load_features;

/// Arguments of `bench`.
#[derive(Args)]
pub struct BenchArgs {
    /// Benchmark: eegmmidb-lr (imagined left vs right fist; runs 4 -> 8 + 12).
    protocol: String,
    /// EEGMMIDB folder (S001/S001R04.edf ...), or feature tables.
    #[arg(long, required = true, num_args = 1..)]
    data: Vec<PathBuf>,
    /// Leave-subjects-out folds; each fold's encoder never sees its subjects.
    #[arg(long, default_value_t = 4)]
    folds: usize,
    /// Folder for the feature cache, the JSON result and the summary plot.
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
}

/// Runs the command.
pub fn run(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    if args.protocol != "eegmmidb-lr" {
        bail!(
            "unknown benchmark {:?}; available: eegmmidb-lr",
            args.protocol
        );
    }
    let jobs = super::limit_threads(args.jobs);
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build_global();
    let started = Instant::now();
    let task = Task::resolve("eegmmidb-lr")?;
    let feature_config = FeatureConfig::default();
    let sets = load_features(
        &args.data,
        std::slice::from_ref(&task),
        &feature_config,
        &args.out.join("features"),
    )?;
    let info = TaskInfo {
        name: task.name.clone(),
        classes: task.classes.clone(),
    };
    let grouped = group(&sets, vec![info])?;
    let mut pretrain = PretrainConfig::new(grouped.layout.token_features());
    pretrain.seed = args.seed;
    let config = BenchConfig {
        folds: args.folds,
        pretrain,
        calibrate: CalibrateOptions::default(),
        kshots: vec![2, 4, 8],
    };
    let passes = config.pretrain.ssl_passes + config.pretrain.supervised_passes;
    let bar = progress_bar(passes * config.folds);
    let mut on_progress = |p: Progress| match p {
        Progress::Pretraining { fold, row } => {
            bar.inc(1);
            bar.set_message(format!("fold {} {} pass {}", fold + 1, row.phase, row.pass));
        }
        Progress::Scored(s) => bar.println(format!(
            "{}: population {:.3}, subject-only {:.3}, personalized {:.3} ({})",
            s.subject, s.population, s.subject_only, s.personalized, s.strategy
        )),
    };
    let report = bench::run(&grouped, &config, &mut on_progress)?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("{}: cannot create", args.out.display()))?;
    let value = to_json(&report, &config, seconds, jobs);
    let text = serde_json::to_string_pretty(&value)?;
    let path = args.out.join("bench.json");
    eegadapt::atomic::write_atomically(&path, |f| f.write_all(text.as_bytes()), |_, e| e)
        .with_context(|| format!("{}: cannot write", path.display()))?;
    let means: Vec<(String, f64)> = report
        .methods()
        .iter()
        .map(|(name, v)| (name.clone(), mean_std(v).0))
        .collect();
    plots::bar_chart(
        &args.out.join("summary"),
        &format!(
            "{}: mean accuracy over {} subjects",
            report.task,
            report.subjects.len()
        ),
        "accuracy",
        &means,
        Some((0.0, 1.0)),
    )?;
    if args.json {
        writeln!(std::io::stdout().lock(), "{text}")?;
    } else {
        print_table(&report, seconds);
        eprintln!(
            "results in {} (bench.json, summary.svg/png)",
            args.out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn to_json(
    report: &BenchReport,
    config: &BenchConfig,
    seconds: f64,
    jobs: usize,
) -> serde_json::Value {
    let mut summary = serde_json::Map::new();
    for (name, values) in report.methods() {
        let (mean, std) = mean_std(&values);
        summary.insert(name, json!({ "mean": mean, "std": std }));
    }
    summary.insert("wilcoxon".into(), json!(report.wilcoxon()));
    json!({
        "benchmark": "eegmmidb-lr",
        "protocol": "calibration = run 4, test = runs 8 and 12; window 0.5-3.5 s after onset; leave-subjects-out folds",
        "folds": report.folds,
        "kshots": config.kshots,
        "threads": jobs,
        "wall_seconds": seconds,
        "crate_version": env!("CARGO_PKG_VERSION"),
        "subjects": report.subjects,
        "summary": summary,
    })
}

fn print_table(report: &BenchReport, seconds: f64) {
    let mut out = std::io::stdout().lock();
    let methods = report.methods();
    let names: Vec<&String> = methods.keys().collect();
    let _ = write!(out, "{:<8}", "subject");
    for n in &names {
        let _ = write!(out, " {n:>13}");
    }
    let _ = writeln!(out, "  strategy");
    for (i, s) in report.subjects.iter().enumerate() {
        let _ = write!(out, "{:<8}", s.subject);
        for n in &names {
            let _ = write!(
                out,
                " {:>13.3}",
                methods[*n].get(i).copied().unwrap_or(f64::NAN)
            );
        }
        let _ = writeln!(out, "  {}", s.strategy);
    }
    let _ = write!(out, "{:<8}", "mean");
    for n in &names {
        let _ = write!(out, " {:>13.3}", mean_std(&methods[*n]).0);
    }
    let _ = writeln!(out);
    let _ = write!(out, "{:<8}", "std");
    for n in &names {
        let _ = write!(out, " {:>13.3}", mean_std(&methods[*n]).1);
    }
    let _ = writeln!(out);
    for (name, p) in report.wilcoxon() {
        let p = p.map_or("n/a (no differences)".to_string(), |p| format!("{p:.4}"));
        let _ = writeln!(out, "Wilcoxon {name}: p = {p}");
    }
    let _ = writeln!(
        out,
        "{} subjects, {} folds, {:.0} s",
        report.subjects.len(),
        report.folds,
        seconds
    );
}
