//! `eegadapt predict`: a subject model applied to new recordings of that subject.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use eegadapt::calibrate;
use eegadapt::pipeline::{predict_files, PredictReport};

/// Arguments of `predict`.
#[derive(Args)]
pub struct PredictArgs {
    /// Subject model folder (from `eegadapt calibrate`).
    #[arg(long)]
    model: PathBuf,
    /// Recordings (EDF/BDF) of the same subject.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Encoder folder, when it moved since calibration (its weights must be the same).
    #[arg(long)]
    encoder: Option<PathBuf>,
    /// One JSON object on stdout instead of the table.
    #[arg(long)]
    json: bool,
    /// Worker threads.
    #[arg(long)]
    jobs: Option<usize>,
}

/// Runs the command.
pub fn run(args: &PredictArgs) -> anyhow::Result<ExitCode> {
    super::limit_threads(args.jobs);
    let subject = calibrate::load(&args.model, args.encoder.as_deref())?;
    let report = predict_files(&subject, &args.files);
    for failure in &report.failed {
        eprintln!("eegadapt: {failure}");
    }
    if report.failed.len() == args.files.len() {
        anyhow::bail!("no recording could be scored");
    }
    if args.json {
        let json = serde_json::to_string_pretty(&report)?;
        writeln!(std::io::stdout().lock(), "{json}")?;
    } else {
        print_table(&report);
    }
    Ok(super::exit_code(!report.failed.is_empty()))
}

fn print_table(report: &PredictReport) {
    let mut out = std::io::stdout().lock();
    if report.new_head {
        let _ = writeln!(
            out,
            "task {}: a new head ({}), trained on this subject",
            report.task,
            report
                .new_head_reason
                .as_deref()
                .unwrap_or("the encoder had none for it")
        );
    }
    let _ = writeln!(
        out,
        "{:<16} {:>9}  {:<10} {:<10} probabilities ({})",
        "file",
        "onset (s)",
        "predicted",
        "label",
        report.classes.join(", ")
    );
    for e in &report.epochs {
        let p: Vec<String> = e.probabilities.iter().map(|p| format!("{p:.2}")).collect();
        let _ = writeln!(
            out,
            "{:<16} {:>9.2}  {:<10} {:<10} {}",
            e.file,
            e.onset_s,
            e.predicted,
            e.label.as_deref().unwrap_or("-"),
            p.join(" ")
        );
    }
    if let (Some(acc), Some(bal), Some(kappa)) =
        (report.accuracy, report.balanced_accuracy, report.kappa)
    {
        let _ = writeln!(
            out,
            "{} labelled epochs: accuracy {acc:.3}, balanced accuracy {bal:.3}, Cohen's kappa {kappa:.3}",
            report.n_epochs
        );
        if let Some(confusion) = &report.confusion {
            let _ = writeln!(
                out,
                "confusion (rows: true, columns: predicted; {}):",
                report.classes.join(", ")
            );
            for (class, row) in report.classes.iter().zip(confusion) {
                let cells: Vec<String> = row.iter().map(|v| format!("{v:>5}")).collect();
                let _ = writeln!(out, "  {class:<10}{}", cells.join(""));
            }
        }
    } else {
        let _ = writeln!(
            out,
            "{} epochs; the recordings carry no labels of the task",
            report.epochs.len()
        );
    }
}
