//! `eegadapt report`: a subject model's report as one self-contained HTML page, with the model's
//! scores on held-out recordings when they are given.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;
use eegadapt::calibrate;
use eegadapt::features::SourceFile;
use eegadapt::predict::Scores;
use eegadapt::report::{self, HeldOut, ReportOptions};
use eegadapt::store::sha256_file;

use super::predict::{predict_files, PredictReport};

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
    let jobs = super::limit_threads(args.jobs);
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build_global();
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
    held_out_of(predict_files(&subject, &args.test)?, &args.test)
}

/// The held-out part of a report from `predict`'s results on `files`. Every file must have been
/// scored, or the figure would describe fewer recordings than the report lists.
pub fn held_out_of(predicted: PredictReport, files: &[PathBuf]) -> anyhow::Result<HeldOut> {
    if let Some(failure) = predicted.failed.first() {
        bail!("{failure}");
    }
    let (Some(accuracy), Some(balanced_accuracy), Some(kappa), Some(confusion)) = (
        predicted.accuracy,
        predicted.balanced_accuracy,
        predicted.kappa,
        predicted.confusion,
    ) else {
        bail!(
            "the held-out recordings carry no labels of task {}: nothing to score",
            predicted.task
        );
    };
    let recordings = files
        .iter()
        .map(|path| {
            Ok(SourceFile {
                name: path
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
                sha256: sha256_file(path).with_context(|| path.display().to_string())?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(HeldOut {
        recordings,
        scores: Scores {
            n_epochs: predicted.n_epochs,
            accuracy,
            balanced_accuracy,
            kappa,
            confusion,
        },
    })
}
