//! `eegadapt bench eegmmidb-lr`: the benchmark protocol of the design, end to end.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;
use eegadapt::bench::{Progress, Protocol};
use eegadapt::pipeline::{
    bench_files, new_task_names, new_tasks_files, one_line, BenchEvent, BenchFiles, NewTasksFiles,
    PipelineError, SubjectRow, NEW_HEAD,
};
use eegadapt::pretrain::LogRow;

use super::features::progress_bar;

/// Arguments of `bench`.
#[derive(Args)]
pub struct BenchArgs {
    /// Protocol: eegmmidb-lr (calibrate on imagined run 4, score runs 8 + 12), eegmmidb-lr-dev
    /// (for choosing methods: calibrate on executed run 3, score runs 7 + 11; runs 8 and 12
    /// never read), new-tasks (tasks the encoder never saw, each with a new head: rest vs
    /// imagery, rest / left / right, fists vs feet, eyes open / closed, left / right at 0-4 s),
    /// new-tasks-dev (the same on runs 3 -> 7 + 11, runs 8 and 12 never read) or eegmmidb-ff
    /// (new-tasks with fists vs feet only).
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
    /// Self-supervised pretraining passes of each encoder (new tasks only).
    #[arg(long)]
    ssl_passes: Option<usize>,
    /// Most supervised pretraining passes of each encoder (new tasks only).
    #[arg(long)]
    max_passes: Option<usize>,
    /// New tasks to run (repeatable; default all): eegmmidb-rest-imagery, eegmmidb-rest-lr,
    /// eegmmidb-ff, eegmmidb-eyes, eegmmidb-lr-4s.
    #[arg(long = "task")]
    tasks: Vec<String>,
}

/// Runs the command.
pub fn run(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    let jobs = super::limit_threads(args.jobs);
    match args.protocol.as_str() {
        "new-tasks" => return new_tasks(args, jobs, false, args.tasks.clone()),
        "new-tasks-dev" => return new_tasks(args, jobs, true, args.tasks.clone()),
        "eegmmidb-ff" => return new_tasks(args, jobs, false, vec!["eegmmidb-ff".into()]),
        _ => {}
    }
    if !args.tasks.is_empty() {
        bail!("--task applies to new-tasks only");
    }
    let Some(protocol) = Protocol::named(&args.protocol) else {
        bail!(
            "unknown benchmark {:?}; available: eegmmidb-lr, eegmmidb-lr-dev, new-tasks, \
             new-tasks-dev, eegmmidb-ff",
            args.protocol
        );
    };
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
            print_above(&bar, line);
        }
    };
    let on_skip = |e: &PipelineError| eprintln!("eegadapt: {} (skipped)", one_line(e));
    let outcome = bench_files(&request, &on_skip, &mut on_event)?;
    bar.finish_and_clear();
    if args.json {
        writeln!(std::io::stdout().lock(), "{}", outcome.json)?;
    } else {
        write!(std::io::stdout().lock(), "{}", outcome.table())?;
        eprintln!(
            "results in {} (bench.json, summary.svg/png, personalized_vs_classical.svg/png)",
            args.out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `bench new-tasks`: tasks the encoder never saw (see [`eegadapt::pipeline::new_tasks_files`]).
fn new_tasks(
    args: &BenchArgs,
    jobs: usize,
    dev: bool,
    tasks: Vec<String>,
) -> anyhow::Result<ExitCode> {
    if !args.channels.is_empty() {
        bail!("--channels does not apply to the new-task benchmark");
    }
    if let Some(bad) = tasks
        .iter()
        .find(|t| !new_task_names().contains(&t.as_str()))
    {
        bail!(
            "unknown new task {bad:?}; available: {}",
            new_task_names().join(", ")
        );
    }
    let request = NewTasksFiles {
        data: args.data.clone(),
        out: args.out.clone(),
        tasks,
        folds: args.folds,
        dev,
        seed: args.seed,
        ssl_passes: args.ssl_passes,
        max_passes: args.max_passes,
        threads: jobs,
    };
    let bar = progress_bar(0);
    let mut on_pass = |label: &str, row: &LogRow, passes: usize| {
        bar.set_length(passes as u64);
        bar.set_position(row.pass as u64);
        bar.set_message(format!("{label}: encoder {} pass {}", row.phase, row.pass));
    };
    let on_skip = |e: &PipelineError| eprintln!("eegadapt: {} (skipped)", one_line(e));
    let mut on_row = |task: &str, r: &SubjectRow| {
        let line = format!(
            "{task} {}: {}",
            r.subject,
            r.columns
                .iter()
                .filter(|(k, _)| !k.starts_with("candidate"))
                .map(|(k, v)| format!("{k} {:.3}", v.balanced_accuracy))
                .collect::<Vec<_>>()
                .join(", ")
        );
        print_above(&bar, line);
    };
    let report = new_tasks_files(&request, &on_skip, &mut on_pass, &mut on_row)?;
    bar.finish_and_clear();
    if args.json {
        writeln!(
            std::io::stdout().lock(),
            "{}",
            serde_json::to_string(&report)?
        )?;
    } else {
        write!(std::io::stdout().lock(), "{}", report.table())?;
        eprintln!(
            "results in {} (bench_new_tasks.json, <task>_new_head_vs_classical.svg/png; \
             headline column: {NEW_HEAD})",
            args.out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A line above the progress bar; a hidden bar (output not a terminal) drops its lines, so a log
/// gets them on stderr instead.
fn print_above(bar: &indicatif::ProgressBar, line: String) {
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}
