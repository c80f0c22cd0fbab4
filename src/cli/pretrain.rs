//! `eegadapt pretrain`: the population encoder from many subjects' recordings or feature tables.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use eegadapt::features::{
    config_hash, feature_config_hash, features_from_file, FeatureConfig, FeatureSet,
};
use eegadapt::plots::{line_chart, Series};
use eegadapt::pretrain::{
    self, group, heads_of, population_scores, EncoderManifest, EncoderMetrics, Grouped, LogRow,
    PretrainConfig, SubjectScore,
};
use eegadapt::store;
use eegadapt::task::{RecordingId, Task};
use rayon::prelude::*;

use super::features::{collect_inputs, is_parquet, progress_bar};

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
    let feature_config = FeatureConfig::default();
    let started = Instant::now();
    let sets = load_features(
        &args.data,
        &tasks,
        &feature_config,
        &args.out.join("features"),
    )?;
    eprintln!(
        "features: {} tables in {:.1} s",
        sets.len(),
        started.elapsed().as_secs_f64()
    );
    let (infos, _) = heads_of(&tasks)?;
    let grouped = group(&sets, infos)?;
    let mut config = PretrainConfig::for_layout(grouped.layout);
    config.seed = args.seed;
    if let Some(n) = args.ssl_passes {
        config.ssl_passes = n;
    }
    if let Some(n) = args.max_passes {
        config.supervised_passes = n;
    }
    let all = grouped.subject_ids();
    for s in &args.subjects_holdout {
        if !all.contains(s) {
            bail!(
                "--subjects-holdout {s}: no such subject in the data (have {})",
                all.join(", ")
            );
        }
    }
    let training: Vec<String> = all
        .iter()
        .filter(|s| !args.subjects_holdout.contains(s))
        .cloned()
        .collect();
    if training.len() < 2 {
        bail!(
            "need at least two training subjects (one for early stopping), have {}",
            training.len()
        );
    }
    if let Some(k) = args.evaluate_folds {
        cross_validate(&grouped, &training, k, &config)?;
    }
    let (train_subjects, validation_subjects) = pretrain::split_validation(&training, config.seed);
    let t0 = Instant::now();
    let trained = fit(
        &grouped,
        &train_subjects,
        &validation_subjects,
        &config,
        "final",
    )?;
    let training_seconds = t0.elapsed().as_secs_f64();
    let holdout = population_scores(&trained.model, &grouped, &args.subjects_holdout)?;
    print_scores(
        "held-out subjects (population model, no calibration)",
        &holdout,
    );
    let best = trained
        .log
        .iter()
        .filter(|r| r.phase == "supervised")
        .find(|r| r.pass == trained.best_pass);
    let training_rows: Vec<&eegadapt::features::FeatureRow> = train_subjects
        .iter()
        .filter_map(|s| grouped.subjects.get(s))
        .flat_map(|rows| rows.iter().map(|(_, r)| *r))
        .collect();
    let population_spectrum =
        eegadapt::calibrate::diagnostics::mean_spectrum(&training_rows, grouped.layout.freqs);
    let mut manifest = EncoderManifest {
        format_version: pretrain::FORMAT_VERSION,
        crate_version: env!("CARGO_PKG_VERSION").to_string(),
        pretrain: config.clone(),
        feature_config_hash: feature_config_hash(&feature_config),
        feature_config,
        channel_vocabulary: grouped.channels.clone(),
        tasks: grouped.tasks.clone(),
        task_definitions: tasks,
        training_subjects: train_subjects,
        validation_subjects,
        training_recordings: grouped.sources.clone(),
        threads: jobs,
        metrics: EncoderMetrics {
            best_pass: trained.best_pass,
            validation_loss: best.map(|r| r.validation_loss).filter(|l| l.is_finite()),
            validation_accuracy: best.and_then(|r| r.validation_accuracy),
            holdout,
            training_seconds,
            heads: trained.heads.clone(),
        },
        log: trained.log.clone(),
        spectrum_freqs: sets
            .first()
            .map(|(_, s)| s.meta.freqs.clone())
            .unwrap_or_default(),
        population_spectrum,
        reference_sha256: None,
        weights_sha256: String::new(),
    };
    pretrain::save(&args.out, &trained.model, &mut manifest)?;
    write_log(&args.out, &trained.log)?;
    eprintln!(
        "encoder written to {} ({} subjects, {:.1} s training, {:.1} s in all; best pass {}, validation accuracy {:.3})",
        args.out.display(),
        manifest.training_subjects.len(),
        training_seconds,
        started.elapsed().as_secs_f64(),
        trained.best_pass,
        manifest.metrics.validation_accuracy.unwrap_or(f64::NAN)
    );
    Ok(ExitCode::SUCCESS)
}

fn fit(
    grouped: &Grouped,
    train: &[String],
    validation: &[String],
    config: &PretrainConfig,
    label: &str,
) -> anyhow::Result<pretrain::Trained> {
    let bar = progress_bar(config.ssl_passes + config.supervised_passes);
    let mut on_pass = |row: &LogRow| {
        bar.inc(1);
        bar.set_message(format!(
            "{label} {} pass {}: loss {:.3}, held-out {:.3}",
            row.phase, row.pass, row.train_loss, row.validation_loss
        ));
    };
    let trained = pretrain::train_subjects(grouped, train, validation, config, &mut on_pass)?;
    bar.finish_and_clear();
    Ok(trained)
}

fn cross_validate(
    grouped: &Grouped,
    subjects: &[String],
    k: usize,
    config: &PretrainConfig,
) -> anyhow::Result<()> {
    if k < 2 || k > subjects.len() {
        bail!("--evaluate-folds {k}: need 2 to {} folds", subjects.len());
    }
    let mut scores = Vec::new();
    for fold in 0..k {
        let test: Vec<String> = subjects.iter().skip(fold).step_by(k).cloned().collect();
        let rest: Vec<String> = subjects
            .iter()
            .filter(|s| !test.contains(s))
            .cloned()
            .collect();
        let (train, validation) = pretrain::split_validation(&rest, config.seed);
        let trained = fit(
            grouped,
            &train,
            &validation,
            config,
            &format!("fold {}/{k}", fold + 1),
        )?;
        scores.extend(population_scores(&trained.model, grouped, &test)?);
    }
    print_scores(
        &format!("leave-subjects-out, {k} folds (population model, no calibration)"),
        &scores,
    );
    Ok(())
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

fn write_log(dir: &Path, log: &[LogRow]) -> anyhow::Result<()> {
    let mut csv = String::from("phase,pass,train_loss,validation_loss,validation_accuracy\n");
    for r in log {
        let accuracy = r
            .validation_accuracy
            .map_or(String::new(), |a| a.to_string());
        csv.push_str(&format!(
            "{},{},{},{},{accuracy}\n",
            r.phase, r.pass, r.train_loss, r.validation_loss
        ));
    }
    let path = dir.join("training_log.csv");
    eegadapt::atomic::write_atomically(&path, |f| f.write_all(csv.as_bytes()), |_, e| e)
        .with_context(|| format!("{}: cannot write", path.display()))?;
    let plots = dir.join("plots");
    std::fs::create_dir_all(&plots)
        .with_context(|| format!("{}: cannot create", plots.display()))?;
    for phase in ["ssl", "supervised"] {
        let rows: Vec<&LogRow> = log.iter().filter(|r| r.phase == phase).collect();
        if rows.is_empty() {
            continue;
        }
        let series = vec![
            Series {
                name: "training loss".into(),
                points: rows.iter().map(|r| (r.pass as f64, r.train_loss)).collect(),
            },
            Series {
                name: "held-out loss".into(),
                points: rows
                    .iter()
                    .map(|r| (r.pass as f64, r.validation_loss))
                    .collect(),
            },
            Series {
                name: "held-out accuracy".into(),
                points: rows
                    .iter()
                    .filter_map(|r| Some((r.pass as f64, r.validation_accuracy?)))
                    .collect(),
            },
        ];
        let title = if phase == "ssl" {
            "Masked-channel pretraining"
        } else {
            "Supervised heads"
        };
        line_chart(
            &plots.join(format!("loss_{phase}")),
            title,
            "pass",
            "loss / accuracy",
            &series,
        )?;
    }
    Ok(())
}

/// Feature tables for every task: read from .parquet inputs, or computed from EDF/BDF (cached
/// under `<cache_root>/<task>/`, reused when up to date).
pub(super) fn load_features(
    data: &[PathBuf],
    tasks: &[Task],
    config: &FeatureConfig,
    cache_root: &Path,
) -> anyhow::Result<Vec<(usize, FeatureSet)>> {
    let files = collect_inputs(data)?;
    let (_, head_index) = heads_of(tasks)?;
    let mut sets = Vec::new();
    for (t, task) in tasks.iter().enumerate() {
        let hash = config_hash(config, task);
        let cache = cache_root.join(&task.name);
        std::fs::create_dir_all(&cache)
            .with_context(|| format!("{}: cannot create", cache.display()))?;
        let results: Vec<anyhow::Result<Option<FeatureSet>>> = files
            .par_iter()
            .map(|file| -> anyhow::Result<Option<FeatureSet>> {
                if is_parquet(file) {
                    let meta = store::read_meta(file)?;
                    if meta.task.name != task.name {
                        return Ok(None);
                    }
                    return Ok(Some(store::read_feature_set_expecting(file, &hash)?));
                }
                let id = RecordingId::from_path(file);
                if !task.includes(&id) {
                    return Ok(None);
                }
                let sha = store::sha256_file(file)?;
                let cached = cache.join(format!("{}.parquet", id.recording));
                if store::is_up_to_date(&cached, &hash, &sha) {
                    return Ok(Some(store::read_feature_set(&cached)?));
                }
                let set = features_from_file(file, &sha, task, config)?;
                store::write_feature_set(&cached, &set)?;
                Ok(Some(set))
            })
            .collect();
        for r in results {
            match r {
                Ok(Some(set)) if !set.rows.is_empty() => sets.push((head_index[t], set)),
                Ok(_) => {}
                Err(e) => eprintln!("eegadapt: {} (skipped)", super::one_line(&e)),
            }
        }
    }
    if sets.is_empty() {
        bail!(
            "no recordings of tasks {:?} in {:?}",
            tasks.iter().map(|t| &t.name).collect::<Vec<_>>(),
            data.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
        );
    }
    Ok(sets)
}
