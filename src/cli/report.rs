//! `eegadapt report`: a subject model's report as one self-contained HTML page, with the model's
//! scores on held-out recordings when they are given.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use eegadapt::calibrate;
use eegadapt::pipeline::{held_out_of, predict_files};
use eegadapt::report::{self, HeldOut, ReportOptions};

/// Arguments of `report`.
#[derive(Args)]
pub struct ReportArgs {
    /// Subject model folder (from `eegadapt calibrate`).
    #[arg(long)]
    model: PathBuf,
    /// Labelled recordings of this subject not used for calibration, scored into the report.
    #[arg(long, num_args = 1..)]
    test: Vec<PathBuf>,
    /// Withhold the subject identifier, file names and folders (hashes stay).
    #[arg(long)]
    deidentify: bool,
    /// Where to write the page [default: MODEL/report.html].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Encoder folder, when it moved since calibration (needed with --test only).
    #[arg(long)]
    encoder: Option<PathBuf>,
    /// Worker threads.
    #[arg(long)]
    jobs: Option<usize>,
}

/// Runs the command.
pub fn run(args: &ReportArgs) -> anyhow::Result<ExitCode> {
    super::limit_threads(args.jobs);
    let held_out = if args.test.is_empty() {
        None
    } else {
        Some(held_out_scores(args)?)
    };
    let options = ReportOptions {
        deidentify: args.deidentify,
    };
    let html = report::render(&args.model, held_out.as_ref(), &options)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.model.join(report::REPORT));
    report::write(&out, &html)?;
    println!("report: {}", out.display());
    Ok(ExitCode::SUCCESS)
}

/// Scores of the model on `--test`.
fn held_out_scores(args: &ReportArgs) -> anyhow::Result<HeldOut> {
    let subject = calibrate::load(&args.model, args.encoder.as_deref())?;
    Ok(held_out_of(
        predict_files(&subject, &args.test),
        &args.test,
    )?)
}
