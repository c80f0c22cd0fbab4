//! `eegadapt calibrate`: a subject's personalized model from an encoder and a few minutes of the
//! subject's labelled recordings (plus any unlabelled ones).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use eegadapt::calibrate::{
    self, diagnostics, CalibrateOptions, CalibrationInput, EncoderReference, LoadedSubject,
    Provenance, SubjectManifest,
};
use eegadapt::features::{feature_config_hash, FeatureRow, FeatureSet};
use eegadapt::pretrain;
use eegadapt::task::Task;

use super::features::features_of;

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

/// What a calibration did, for the terminal and the demo, with the model it wrote (ready to
/// predict without reading it back).
pub struct CalibrationSummary {
    /// The subject model written, with its manifest.
    pub subject: LoadedSubject,
    /// Wall time, seconds.
    pub seconds: f64,
}

/// Runs the command.
pub fn run(args: &CalibrateArgs) -> anyhow::Result<ExitCode> {
    let jobs = super::limit_threads(args.jobs);
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build_global();
    let summary = calibrate_files(
        &args.encoder,
        &args.task,
        &args.subject,
        &args.calibration,
        &args.unlabeled,
        &args.out,
    )?;
    print_summary(&summary, &args.out);
    Ok(ExitCode::SUCCESS)
}

fn sets_of(
    files: &[PathBuf],
    task: &Task,
    encoder: &pretrain::EncoderManifest,
) -> anyhow::Result<Vec<FeatureSet>> {
    let mut sets = Vec::new();
    for (file, result) in files
        .iter()
        .zip(features_of(files, task, &encoder.feature_config))
    {
        let set = result?;
        if set.rows.is_empty() {
            bail!(
                "{}: no epochs of task {} in this recording",
                file.display(),
                task.name
            );
        }
        sets.push(set);
    }
    Ok(sets)
}

/// Calibrates from recordings and writes the subject model to `out`.
pub fn calibrate_files(
    encoder_dir: &Path,
    task_name: &str,
    subject: &str,
    calibration: &[PathBuf],
    unlabeled: &[PathBuf],
    out: &Path,
) -> anyhow::Result<CalibrationSummary> {
    let started = Instant::now();
    let encoder_manifest = pretrain::read_manifest(encoder_dir)?;
    let (population, encoder_manifest) = pretrain::load(
        encoder_dir,
        Some(&feature_config_hash(&encoder_manifest.feature_config)),
    )?;
    let task = Task::resolve(task_name)?;
    let task_index = encoder_manifest
        .tasks
        .iter()
        .position(|t| t.name == task.head_name())
        .with_context(|| {
            format!(
                "{}: the encoder has heads for {:?}, not {}; pretrain with --task {}",
                encoder_dir.display(),
                encoder_manifest
                    .tasks
                    .iter()
                    .map(|t| &t.name)
                    .collect::<Vec<_>>(),
                task.name,
                task.name
            )
        })?;
    let labelled_sets = sets_of(calibration, &task, &encoder_manifest)?;
    let mut unlabeled_sets = sets_of(unlabeled, &task, &encoder_manifest)?;
    for set in &mut unlabeled_sets {
        for row in &mut set.rows {
            row.label = None;
        }
    }
    let first = labelled_sets.first().context("no calibration recordings")?;
    let channels = first.meta.channels.clone();
    for (set, file) in labelled_sets
        .iter()
        .chain(&unlabeled_sets)
        .zip(calibration.iter().chain(unlabeled))
    {
        if set.meta.channels != channels || set.meta.freqs != first.meta.freqs {
            bail!(
                "{}: channels or sampling differ from {} (all of a subject's recordings must share a montage)",
                file.display(),
                calibration.first().map_or(String::new(), |p| p.display().to_string())
            );
        }
    }
    let layout = eegadapt::align::RowLayout {
        channels: channels.len(),
        ..eegadapt::align::RowLayout::of(&first.meta)
    };
    let mut labelled: Vec<&FeatureRow> = labelled_sets
        .iter()
        .flat_map(|s| s.rows.iter())
        .filter(|r| r.label.is_some())
        .collect();
    // Chronological within the calibration, so that inner folds mix early and late trials.
    labelled.sort_by(|a, b| {
        (&a.recording, a.onset_s)
            .partial_cmp(&(&b.recording, b.onset_s))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let unlabeled_rows: Vec<&FeatureRow> =
        unlabeled_sets.iter().flat_map(|s| s.rows.iter()).collect();
    let input = CalibrationInput {
        task: task_index,
        channels: channels.clone(),
        layout,
        labelled,
        unlabeled: unlabeled_rows,
    };
    let calibrated = calibrate::calibrate(&population, &input, &CalibrateOptions::default())?;
    let encoder_path =
        std::fs::canonicalize(encoder_dir).unwrap_or_else(|_| encoder_dir.to_path_buf());
    let sources = |sets: &[FeatureSet]| sets.iter().flat_map(|s| s.meta.sources.clone()).collect();
    let mut manifest = SubjectManifest::new(
        &calibrated,
        Provenance {
            subject: subject.to_string(),
            task: task.clone(),
            encoder: EncoderReference {
                dir: encoder_path.display().to_string(),
                weights_sha256: encoder_manifest.weights_sha256.clone(),
            },
            feature_config: encoder_manifest.feature_config.clone(),
            sfreq: first.meta.sfreq,
            recordings: sources(&labelled_sets),
            unlabeled_recordings: sources(&unlabeled_sets),
        },
    );
    calibrate::save(out, &calibrated, &mut manifest)?;
    let all_rows: Vec<&FeatureRow> = input
        .labelled
        .iter()
        .chain(&input.unlabeled)
        .copied()
        .collect();
    diagnostics::write_plots(
        &out.join("plots"),
        &population,
        &encoder_manifest,
        &calibrated,
        &manifest,
        &all_rows,
        &first.meta.freqs,
    )?;
    Ok(CalibrationSummary {
        subject: LoadedSubject {
            manifest,
            population,
            calibrated,
        },
        seconds: started.elapsed().as_secs_f64(),
    })
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
    for score in &m.inner_cv {
        let mark = if score.strategy == m.strategy {
            "*"
        } else {
            " "
        };
        let _ = writeln!(
            stdout,
            "  {mark} {:<36} inner-CV accuracy {:.3}  loss {:.3}",
            score.strategy.to_string(),
            score.accuracy,
            score.loss
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
