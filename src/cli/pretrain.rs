//! `eegadapt pretrain`: the population encoder from many subjects' recordings or feature tables.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use eegadapt::features::FeatureConfig;
use eegadapt::pipeline::{
    load_features, one_line, pick_channels, pretrain_sets, scores_table, PretrainFiles,
};
use eegadapt::pretrain::{read_manifest, LogRow};
use eegadapt::task::Task;

use super::features::progress_bar_of;

/// Arguments of `pretrain`.
#[derive(Args)]
pub struct PretrainArgs {
    /// EDF/BDF recordings or feature tables (.parquet), or folders holding them.
    #[arg(long, required = true, num_args = 1..)]
    data: Vec<PathBuf>,
    /// Task(s) to train heads for: eegmmidb-lr, eegmmidb-ff, eegmmidb-eyes or a task .toml file.
    #[arg(long = "task", required = true)]
    tasks: Vec<String>,
    /// Encoder folder to write (model.safetensors, encoder.json, training_log.csv, plots/).
    #[arg(long)]
    out: PathBuf,
    /// Subjects kept out of training entirely and scored at the end (comma-separated).
    #[arg(long, value_delimiter = ',')]
    subjects_holdout: Vec<String>,
    /// Leave-subjects-out cross-validation with K folds before the final training: population
    /// accuracy of encoders that never saw the scored subjects.
    #[arg(long)]
    evaluate_folds: Option<usize>,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Passes of self-supervised masked-channel pretraining (0 to skip).
    #[arg(long)]
    ssl_passes: Option<usize>,
    /// Most supervised passes (early stopping on held-out subjects usually ends sooner).
    #[arg(long)]
    max_passes: Option<usize>,
    /// Worker threads (feature extraction and training).
    #[arg(long)]
    jobs: Option<usize>,
    /// Add the tasks to this encoder instead of training one from scratch: its weights and heads
    /// are kept, and only the new tasks' heads train (the encoder frozen unless --ssl-passes
    /// continues its self-supervised training on the new data).
    #[arg(long, value_name = "ENCODER_DIR")]
    from: Option<PathBuf>,
    /// Train on these channels only (comma-separated standard names, e.g. the sensorimotor
    /// FC/C/CP strip, to keep eye movements out); `calibrate` and `predict` then read only them.
    #[arg(long, value_delimiter = ',', conflicts_with = "from")]
    channels: Vec<String>,
}

/// Runs the command.
pub fn run(args: &PretrainArgs) -> anyhow::Result<ExitCode> {
    let jobs = super::limit_threads(args.jobs);
    let tasks: Vec<Task> = args
        .tasks
        .iter()
        .map(|t| Task::resolve(t))
        .collect::<Result<_, _>>()?;
    // Features for an encoder that grows must be the ones it reads.
    let feature_config = match &args.from {
        Some(parent) => read_manifest(parent)?.feature_config,
        None => FeatureConfig::default(),
    };
    let started = Instant::now();
    let mut sets = load_features(
        &args.data,
        &tasks,
        &feature_config,
        &args.out.join("features"),
        &|e| eprintln!("eegadapt: {} (skipped)", one_line(e)),
    )?;
    if !args.channels.is_empty() {
        for (_, set) in &mut sets {
            pick_channels(set, &args.channels)?;
        }
    }
    eprintln!(
        "features: {} tables in {:.1} s",
        sets.len(),
        started.elapsed().as_secs_f64()
    );
    let request = PretrainFiles {
        tasks,
        feature_config,
        out: args.out.clone(),
        subjects_holdout: args.subjects_holdout.clone(),
        evaluate_folds: args.evaluate_folds,
        seed: args.seed,
        ssl_passes: args.ssl_passes,
        max_passes: args.max_passes,
        threads: jobs,
        from: args.from.clone(),
    };
    let bar = progress_bar_of(0, "passes");
    let mut training = String::new();
    let mut on_pass = |label: &str, row: &LogRow, passes: usize| {
        if training != label {
            training = label.to_string();
            bar.reset();
            bar.set_length(passes as u64);
        }
        bar.inc(1);
        bar.set_message(format!(
            "{label} {} pass {}: loss {:.3}, held-out {:.3}",
            row.phase, row.pass, row.train_loss, row.validation_loss
        ));
    };
    let pretrained = pretrain_sets(&sets, &request, &mut on_pass)?;
    bar.finish_and_clear();
    let mut out = std::io::stdout().lock();
    if let Some(k) = args.evaluate_folds {
        let title = format!("leave-subjects-out, {k} folds (population model, no calibration)");
        write!(
            out,
            "{}",
            scores_table(&title, &pretrained.cross_validation)
        )?;
    }
    let title = "held-out subjects (population model, no calibration)";
    write!(out, "{}", scores_table(title, &pretrained.holdout))?;
    let manifest = &pretrained.manifest;
    if let Some(lineage) = &manifest.lineage {
        eprintln!("{lineage}");
    }
    eprintln!(
        "encoder written to {} ({} subjects, {:.1} s training, {:.1} s in all; best pass {}, validation accuracy {:.3})",
        args.out.display(),
        manifest.training_subjects.len(),
        pretrained.training_seconds,
        started.elapsed().as_secs_f64(),
        manifest.metrics.best_pass,
        manifest.metrics.validation_accuracy.unwrap_or(f64::NAN)
    );
    Ok(ExitCode::SUCCESS)
}
