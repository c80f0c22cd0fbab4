//! `eegadapt bench eegmmidb-lr`: the benchmark protocol of the design, end to end.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;
use eegadapt::bench::{mean_std, BenchReport, Progress, Protocol};
use eegadapt::pipeline::{
    bench_files, one_line, BenchEvent, BenchFiles, PipelineError, CLASSICAL_WINDOW,
};
use eegadapt::task::Task;

use super::features::progress_bar;

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
    let request = BenchFiles {
        protocol,
        data: args.data.clone(),
        folds: args.folds,
        out: args.out.clone(),
        seed: args.seed,
        channels: args.channels.clone(),
        threads: jobs,
    };
    let bar = progress_bar(0);
    let mut on_event = |event: BenchEvent| match event {
        BenchEvent::Started { folds, passes } => bar.set_length((folds * passes) as u64),
        BenchEvent::Progress(Progress::Pretraining { fold, row }) => {
            bar.inc(1);
            bar.set_message(format!("fold {} {} pass {}", fold + 1, row.phase, row.pass));
        }
        BenchEvent::Progress(Progress::Scored(s)) => {
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
    let on_skip = |e: &PipelineError| eprintln!("eegadapt: {} (skipped)", one_line(e));
    let outcome = bench_files(&request, &on_skip, &mut on_event)?;
    bar.finish_and_clear();
    if args.json {
        writeln!(std::io::stdout().lock(), "{}", outcome.json)?;
    } else {
        print_table(&outcome.report, &outcome.tasks, outcome.seconds);
        eprintln!(
            "results in {} (bench.json, summary.svg/png, personalized_vs_classical.svg/png)",
            args.out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
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
