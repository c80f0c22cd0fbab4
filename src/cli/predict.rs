//! `eegadapt predict`: a subject model applied to new recordings of that subject.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use eegadapt::calibrate::{self, LoadedSubject};
use eegadapt::predict::{conform, predict_rows, scores, EpochPrediction, Scores};
use serde::Serialize;

use super::features::features_of;

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

/// Everything `predict --json` prints.
#[derive(Serialize)]
pub struct PredictReport {
    /// Subject of the model.
    pub subject: String,
    /// Task name.
    pub task: String,
    /// Class names, in probability order.
    pub classes: Vec<String>,
    /// Labelled epochs scored.
    pub n_epochs: usize,
    /// Accuracy over labelled epochs (`null` without labels).
    pub accuracy: Option<f64>,
    /// Balanced accuracy.
    pub balanced_accuracy: Option<f64>,
    /// Cohen's kappa.
    pub kappa: Option<f64>,
    /// Confusion counts `[true][predicted]`.
    pub confusion: Option<Vec<Vec<usize>>>,
    /// Every epoch.
    pub epochs: Vec<EpochPrediction>,
    /// Recordings that could not be scored, each with why.
    pub failed: Vec<String>,
}

/// Runs the command.
pub fn run(args: &PredictArgs) -> anyhow::Result<ExitCode> {
    let jobs = super::limit_threads(args.jobs);
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build_global();
    let subject = calibrate::load(&args.model, args.encoder.as_deref())?;
    let report = predict_files(&subject, &args.files)?;
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
    Ok(if report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::EXIT_SOME_FAILED)
    })
}

/// Predicts every epoch of `files` and scores the labelled ones; a recording that cannot be read
/// or scored is listed in `failed` and the others go on.
pub fn predict_files(subject: &LoadedSubject, files: &[PathBuf]) -> anyhow::Result<PredictReport> {
    let manifest = &subject.manifest;
    let mut epochs = Vec::new();
    let mut failed = Vec::new();
    for (file, set) in
        files
            .iter()
            .zip(features_of(files, &manifest.task, &manifest.feature_config))
    {
        let predicted = set.and_then(|set| {
            let rows = conform(&set, manifest)?;
            predict_rows(subject, &file_name(file), &rows)
                .with_context(|| format!("{}", file.display()))
        });
        match predicted {
            Ok(p) => epochs.extend(p),
            Err(e) => failed.push(super::one_line(&e)),
        }
    }
    let classes = manifest.classes().to_vec();
    let index = |name: &str| classes.iter().position(|c| c == name);
    let pairs: Vec<(usize, usize)> = epochs
        .iter()
        .filter_map(|e| Some((index(e.label.as_deref()?)?, index(&e.predicted)?)))
        .collect();
    let s: Option<Scores> = scores(&pairs, classes.len());
    Ok(PredictReport {
        subject: manifest.subject.clone(),
        task: manifest.task.name.clone(),
        classes,
        n_epochs: pairs.len(),
        accuracy: s.as_ref().map(|s| s.accuracy),
        balanced_accuracy: s.as_ref().map(|s| s.balanced_accuracy),
        kappa: s.as_ref().map(|s| s.kappa),
        confusion: s.map(|s| s.confusion),
        epochs,
        failed,
    })
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn print_table(report: &PredictReport) {
    let mut out = std::io::stdout().lock();
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
