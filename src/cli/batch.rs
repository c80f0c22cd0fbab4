//! `eegadapt batch`: every subject of a manifest calibrated, scored, predicted and reported, in
//! parallel, resumable; one bad subject or file never stops the rest.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use eegadapt::batch::{self, Status, SubjectResult};
use eegadapt::pipeline::{one_line, process_subject};
use eegadapt::pretrain;

use super::features::progress_bar_of;

/// Arguments of `batch`.
#[derive(Args)]
pub struct BatchArgs {
    /// CSV manifest with columns subject, role (calibration, unlabeled, test, predict), path.
    #[arg(long)]
    manifest: PathBuf,
    /// Encoder folder (from `eegadapt pretrain`).
    #[arg(long)]
    encoder: PathBuf,
    /// Task [default: the encoder's task, when it has one].
    #[arg(long)]
    task: Option<String>,
    /// Output folder: subjects/<ID>/ per subject, summary.csv and summary.json.
    #[arg(long)]
    out: PathBuf,
    /// Withhold subject identifiers, file names and folders from the reports.
    #[arg(long)]
    deidentify: bool,
    /// Worker threads (subjects run in parallel on them).
    #[arg(long)]
    jobs: Option<usize>,
}

/// Runs the command.
pub fn run(args: &BatchArgs) -> anyhow::Result<ExitCode> {
    let jobs = super::limit_threads(args.jobs);
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build_global();
    let subjects = batch::read_manifest(&args.manifest)?;
    let encoder = pretrain::read_manifest(&args.encoder)?;
    let task = match &args.task {
        Some(task) => task.clone(),
        None => match encoder.tasks.as_slice() {
            [only] => only.name.clone(),
            tasks => anyhow::bail!(
                "{}: the encoder has heads for {:?}; say which with --task",
                args.encoder.display(),
                tasks.iter().map(|t| &t.name).collect::<Vec<_>>()
            ),
        },
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("{}: cannot create folder", args.out.display()))?;
    // What the outputs depend on besides the recordings: a change re-does every subject.
    let context = format!(
        "encoder {} task {} deidentify {}",
        encoder.weights_sha256, task, args.deidentify
    );
    eprintln!(
        "batch: {} subjects from {}, task {task}, {jobs} threads",
        subjects.len(),
        args.manifest.display()
    );
    let bar = progress_bar_of(subjects.len(), "subjects");
    let results = batch::run_subjects(
        &subjects,
        &args.out,
        &context,
        |job, dir| {
            process_subject(&args.encoder, &task, job, dir, args.deidentify)
                .map_err(|e| one_line(&e))
        },
        |result| {
            if result.status == Status::Failed {
                bar.suspend(|| {
                    eprintln!(
                        "eegadapt: subject {}: {}",
                        result.subject,
                        result.error.as_deref().unwrap_or("failed")
                    )
                });
            }
            bar.inc(1);
        },
    );
    bar.finish_and_clear();
    batch::write_summary(&args.out, &results)?;
    print_table(&results, &args.out);
    let failed = results.iter().any(|r| r.status == Status::Failed);
    Ok(super::exit_code(failed))
}

fn print_table(results: &[SubjectResult], out: &Path) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(
        stdout,
        "{:<12} {:<10} {:>6}  {:<30} {:>9}  note",
        "subject", "status", "calib", "strategy", "test acc"
    );
    for r in results {
        let o = r.outcome.clone().unwrap_or_default();
        let accuracy = o.test_accuracy.map_or("-".into(), |a| format!("{a:.3}"));
        let note = match (&r.error, o.failed_recordings.len()) {
            (Some(error), _) => error.clone(),
            (None, 0) => String::new(),
            (None, n) => format!("{n} predict recording(s) unreadable, see summary"),
        };
        let _ = writeln!(
            stdout,
            "{:<12} {:<10} {:>6}  {:<30} {:>9}  {note}",
            r.subject,
            r.status.name(),
            o.calibration_epochs,
            o.strategy,
            accuracy
        );
    }
    let count = |s: Status| results.iter().filter(|r| r.status == s).count();
    let _ = writeln!(
        stdout,
        "{} done, {} up to date, {} failed; summary: {}",
        count(Status::Done),
        count(Status::UpToDate),
        count(Status::Failed),
        out.join(batch::SUMMARY_CSV).display()
    );
}
