//! `eegadapt calibrate`: a subject's personalized model from an encoder and a few minutes of the
//! subject's labelled recordings (plus any unlabelled ones).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use eegadapt::pipeline::{calibrate_files, CalibrateFiles, CalibrationSummary};

/// Arguments of `calibrate`.
#[derive(Args)]
pub struct CalibrateArgs {
    /// Encoder folder (from `eegadapt pretrain`).
    #[arg(long)]
    encoder: PathBuf,
    /// Task: one the encoder has a head for (e.g. eegmmidb-lr, or its .toml file).
    #[arg(long)]
    task: String,
    /// Subject identifier written in the model (use a pseudonym for de-identified output).
    #[arg(long)]
    subject: String,
    /// Labelled calibration recordings (EDF/BDF) of this subject.
    #[arg(long, required = true, num_args = 1..)]
    calibration: Vec<PathBuf>,
    /// Further recordings of this subject; their labels, if any, are never used (alignment only).
    #[arg(long, num_args = 1..)]
    unlabeled: Vec<PathBuf>,
    /// Subject model folder to write (model.safetensors, subject.json, plots/).
    #[arg(long)]
    out: PathBuf,
    /// Worker threads.
    #[arg(long)]
    jobs: Option<usize>,
}

/// Runs the command.
pub fn run(args: &CalibrateArgs) -> anyhow::Result<ExitCode> {
    super::limit_threads(args.jobs);
    let summary = calibrate_files(&CalibrateFiles {
        encoder: args.encoder.clone(),
        task: args.task.clone(),
        subject: args.subject.clone(),
        calibration: args.calibration.clone(),
        unlabeled: args.unlabeled.clone(),
        out: args.out.clone(),
    })?;
    if !summary.ignored_channels.is_empty() {
        eprintln!(
            "eegadapt: warning: channels ignored (not EEG, or unknown to the encoder): {}",
            summary.ignored_channels.join(", ")
        );
    }
    print_summary(&summary, &args.out);
    Ok(ExitCode::SUCCESS)
}

/// Prints what was chosen and why.
pub fn print_summary(summary: &CalibrationSummary, out: &Path) {
    let m = &summary.subject.manifest;
    let mut stdout = std::io::stdout().lock();
    let per_class: Vec<String> = m
        .classes()
        .iter()
        .zip(&m.calibration.per_class)
        .map(|(c, n)| format!("{n} {c}"))
        .collect();
    let _ = writeln!(
        stdout,
        "subject {}: {} labelled epochs ({}), {} unlabelled; {} inner folds",
        m.subject,
        m.calibration.per_class.iter().sum::<usize>(),
        per_class.join(", "),
        m.calibration.unlabeled_epochs,
        m.inner_cv_folds
    );
    if m.new_head {
        let _ = writeln!(
            stdout,
            "task {}: {}; a new head is trained on this subject alone",
            m.task.name,
            m.new_head_reason
                .as_deref()
                .unwrap_or("the encoder has no head for it")
        );
    }
    for score in &m.inner_cv {
        let mark = if score.strategy == m.strategy {
            "*"
        } else {
            " "
        };
        let _ = writeln!(
            stdout,
            "  {mark} {:<36} inner-CV accuracy {:.3}  balanced {:.3}  loss {:.3}",
            score.strategy.to_string(),
            score.accuracy,
            score.balanced_accuracy,
            score.loss
        );
    }
    if m.inner_cv_folds > 0 && eegadapt::calibrate::at_chance(&m.inner_cv_confusion) {
        eprintln!(
            "eegadapt: warning: the chosen model's inner cross-validation is at chance (no better \
             than always answering the most frequent class, binomial p >= 0.05): its predictions \
             for {} may be no better than guessing; record more calibration data or check the \
             task's labels",
            m.subject
        );
    }
    let _ = writeln!(
        stdout,
        "chosen: {}; model written to {} in {:.1} s (plots in {})",
        m.strategy,
        out.display(),
        summary.seconds,
        out.join("plots").display()
    );
}
