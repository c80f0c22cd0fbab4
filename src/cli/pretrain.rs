//! `eegadapt pretrain`: the population encoder from many subjects' recordings or feature tables.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use eegadapt::features::FeatureConfig;
use eegadapt::pipeline::{load_features, one_line, pretrain_sets, PretrainFiles};
use eegadapt::pretrain::{read_manifest, LogRow, SubjectScore};
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
}

/// Runs the command.
pub fn run(args: &PretrainArgs) -> anyhow::Result<ExitCode> {
    let jobs = super::limit_threads(args.jobs);
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build_global();
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
    let sets = load_features(
        &args.data,
        &tasks,
        &feature_config,
        &args.out.join("features"),
        &|e| eprintln!("eegadapt: {} (skipped)", one_line(e)),
    )?;
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
    if let Some(k) = args.evaluate_folds {
        print_scores(
            &format!("leave-subjects-out, {k} folds (population model, no calibration)"),
            &pretrained.cross_validation,
        );
    }
    print_scores(
        "held-out subjects (population model, no calibration)",
        &pretrained.holdout,
    );
    let manifest = &pretrained.manifest;
    if let Some(lineage) = &manifest.lineage {
        eprintln!(
            "added {} to the encoder of {} (weights {}; encoder {})",
            lineage.added_tasks.join(", "),
            lineage.parent_tasks.join(", "),
            short(&lineage.parent_weights_sha256),
            if lineage.continued_ssl_passes == 0 {
                "frozen".to_string()
            } else {
                format!(
                    "{} more self-supervised passes",
                    lineage.continued_ssl_passes
                )
            }
        );
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

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

fn print_scores(title: &str, scores: &[SubjectScore]) {
    if scores.is_empty() {
        return;
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{title}");
    let _ = writeln!(
        out,
        "  {:<10} {:<14} {:>6} {:>9} {:>12}",
        "subject", "task", "epochs", "accuracy", "10-20 only"
    );
    for s in scores {
        let a19 = s
            .accuracy_1020
            .map_or("-".to_string(), |a| format!("{a:.3}"));
        let _ = writeln!(
            out,
            "  {:<10} {:<14} {:>6} {:>9.3} {:>12}",
            s.subject, s.task, s.n_test, s.accuracy, a19
        );
    }
    let (m, sd) = mean_std(&scores.iter().map(|s| s.accuracy).collect::<Vec<_>>());
    let a19: Vec<f64> = scores.iter().filter_map(|s| s.accuracy_1020).collect();
    let (m19, sd19) = mean_std(&a19);
    let _ = writeln!(out, "  mean +- std: {m:.3} +- {sd:.3} (all channels), {m19:.3} +- {sd19:.3} (10-20 only), {} subjects", scores.len());
}
