//! The population encoder from many subjects' feature tables.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::PipelineError;
use crate::bench::mean_std;
use crate::features::{feature_config_hash, FeatureConfig, FeatureRow, FeatureSet};
use crate::plots::{line_chart, Series};
use crate::pretrain::{
    self, group, group_after, heads_of, population_scores, EncoderManifest, EncoderMetrics,
    Grouped, Lineage, LogRow, PretrainConfig, SubjectScore,
};
use crate::task::Task;

/// How to pretrain: the tasks, the subjects kept out, the training settings and where the encoder
/// goes.
#[derive(Debug, Clone)]
pub struct PretrainFiles {
    /// Tasks to train heads for.
    pub tasks: Vec<Task>,
    /// Feature settings the tables were made with.
    pub feature_config: FeatureConfig,
    /// Encoder folder to write.
    pub out: PathBuf,
    /// Subjects kept out of training entirely and scored at the end.
    pub subjects_holdout: Vec<String>,
    /// Leave-subjects-out cross-validation with this many folds before the final training.
    pub evaluate_folds: Option<usize>,
    /// Seed of every random choice.
    pub seed: u64,
    /// Passes of self-supervised pretraining (`None`: the layout's default).
    pub ssl_passes: Option<usize>,
    /// Most supervised passes (`None`: the layout's default).
    pub max_passes: Option<usize>,
    /// Worker threads, recorded in the manifest.
    pub threads: usize,
    /// An encoder to add the tasks to: its weights are kept (see [`crate::pretrain::extend`]).
    pub from: Option<PathBuf>,
}

/// What pretraining produced.
pub struct Pretrained {
    /// The written encoder's manifest.
    pub manifest: EncoderManifest,
    /// Population scores of the held-out subjects (no calibration).
    pub holdout: Vec<SubjectScore>,
    /// Population scores from the leave-subjects-out folds, when asked for.
    pub cross_validation: Vec<SubjectScore>,
    /// Seconds of the final training.
    pub training_seconds: f64,
}

/// Pretrains an encoder on `sets` (from [`super::load_features`], tagged with their task's head)
/// and writes it, with its training log and plots, to `request.out`. `on_pass` sees each pass
/// of each training: which training (`label`: a fold or "final"), the pass, and the most passes
/// that training may run.
pub fn pretrain_sets(
    sets: &[(usize, FeatureSet)],
    request: &PretrainFiles,
    on_pass: &mut dyn FnMut(&str, &LogRow, usize),
) -> Result<Pretrained, PipelineError> {
    if let Some(parent) = &request.from {
        return extend_sets(sets, request, parent, on_pass);
    }
    let (infos, _) = heads_of(&request.tasks)?;
    let grouped = group(sets, infos)?;
    let config = configure(PretrainConfig::for_layout(grouped.layout), request);
    let training = training_subjects(&grouped, request, 2)?;
    let cross_validation = match request.evaluate_folds {
        Some(k) => cross_validate(&grouped, &training, k, &config, on_pass)?,
        None => Vec::new(),
    };
    let (train_subjects, validation_subjects) = pretrain::split_validation(&training, config.seed);
    let t0 = Instant::now();
    let trained = pretrain::train_subjects(
        &grouped,
        &train_subjects,
        &validation_subjects,
        &config,
        &mut |row: &LogRow| on_pass("final", row, config.ssl_passes + config.supervised_passes),
    )?;
    let training_seconds = t0.elapsed().as_secs_f64();
    let holdout = population_scores(&trained.model, &grouped, &request.subjects_holdout)?;
    let training_rows: Vec<&FeatureRow> = train_subjects
        .iter()
        .filter_map(|s| grouped.subjects.get(s))
        .flat_map(|rows| rows.iter().map(|(_, r)| *r))
        .collect();
    let population_spectrum =
        crate::calibrate::diagnostics::mean_spectrum(&training_rows, grouped.layout.freqs);
    let mut manifest = EncoderManifest {
        format_version: pretrain::FORMAT_VERSION,
        crate_version: env!("CARGO_PKG_VERSION").to_string(),
        pretrain: config.clone(),
        feature_config_hash: feature_config_hash(&request.feature_config),
        feature_config: request.feature_config.clone(),
        channel_vocabulary: grouped.channels.clone(),
        tasks: grouped.tasks.clone(),
        task_definitions: request.tasks.clone(),
        training_subjects: train_subjects,
        validation_subjects,
        training_recordings: grouped.sources.clone(),
        threads: request.threads,
        metrics: metrics(&trained, holdout.clone(), training_seconds),
        log: trained.log.clone(),
        spectrum_freqs: sets
            .first()
            .map(|(_, s)| s.meta.freqs.clone())
            .unwrap_or_default(),
        population_spectrum,
        reference_sha256: None,
        weights_sha256: String::new(),
        lineage: None,
    };
    pretrain::save(&request.out, &trained.model, &mut manifest)?;
    write_training_log(&request.out, &trained.log)?;
    Ok(Pretrained {
        manifest,
        holdout,
        cross_validation,
        training_seconds,
    })
}

/// `base` with the request's seed and pass counts.
fn configure(mut config: PretrainConfig, request: &PretrainFiles) -> PretrainConfig {
    config.seed = request.seed;
    if let Some(n) = request.ssl_passes {
        config.ssl_passes = n;
    }
    if let Some(n) = request.max_passes {
        config.supervised_passes = n;
    }
    config
}

/// The subjects that train (all but `--subjects-holdout`), at least `least` of them.
fn training_subjects(
    grouped: &Grouped,
    request: &PretrainFiles,
    least: usize,
) -> Result<Vec<String>, PipelineError> {
    let all = grouped.subject_ids();
    if let Some(s) = request.subjects_holdout.iter().find(|s| !all.contains(s)) {
        return Err(PipelineError::Refused(format!(
            "--subjects-holdout {s}: no such subject in the data (have {})",
            all.join(", ")
        )));
    }
    let training: Vec<String> = all
        .into_iter()
        .filter(|s| !request.subjects_holdout.contains(s))
        .collect();
    if training.len() < least {
        return Err(PipelineError::Refused(format!(
            "need at least {least} training subject(s){}, have {}",
            if least > 1 {
                " (one for early stopping)"
            } else {
                ""
            },
            training.len()
        )));
    }
    Ok(training)
}

fn metrics(
    trained: &pretrain::Trained,
    holdout: Vec<SubjectScore>,
    seconds: f64,
) -> EncoderMetrics {
    let best = trained
        .log
        .iter()
        .filter(|r| r.phase == "supervised")
        .find(|r| r.pass == trained.best_pass);
    EncoderMetrics {
        best_pass: trained.best_pass,
        validation_loss: best.map(|r| r.validation_loss).filter(|l| l.is_finite()),
        validation_accuracy: best.and_then(|r| r.validation_accuracy),
        holdout,
        training_seconds: seconds,
        heads: trained.heads.clone(),
    }
}

/// `pretrain --from`: the parent encoder's weights and heads kept, the request's tasks added.
fn extend_sets(
    sets: &[(usize, FeatureSet)],
    request: &PretrainFiles,
    parent_dir: &Path,
    on_pass: &mut dyn FnMut(&str, &LogRow, usize),
) -> Result<Pretrained, PipelineError> {
    if request.evaluate_folds.is_some() {
        return Err(PipelineError::Refused(
            "--evaluate-folds trains encoders from scratch; it cannot be combined with --from"
                .into(),
        ));
    }
    let hash = feature_config_hash(&request.feature_config);
    let (parent, parent_manifest) = pretrain::load(parent_dir, Some(&hash))?;
    let (infos, _) = heads_of(&request.tasks)?;
    if let Some(t) = infos
        .iter()
        .find(|t| parent.tasks.iter().any(|p| p.name == t.name))
    {
        return Err(PipelineError::Refused(format!(
            "{} already has a head for {}; pretrain from scratch to retrain it",
            parent_dir.display(),
            t.name
        )));
    }
    let added: Vec<String> = infos.iter().map(|t| t.name.clone()).collect();
    let grouped = group_after(sets, &parent.tasks, infos)?;
    let mut config = parent_manifest.pretrain.clone();
    // The encoder stays as it is unless more self-supervision is asked for.
    config.ssl_passes = 0;
    let config = configure(config, request);
    let training = training_subjects(&grouped, request, 1)?;
    let (train_subjects, validation_subjects) = pretrain::split_validation(&training, config.seed);
    let t0 = Instant::now();
    let train_set = grouped.for_pretraining(&train_subjects)?;
    let validation_set = grouped.for_pretraining(&validation_subjects)?;
    let trained = pretrain::extend(&parent, &train_set, &validation_set, &config, &mut |row| {
        on_pass("final", row, config.ssl_passes + config.supervised_passes)
    })?;
    let training_seconds = t0.elapsed().as_secs_f64();
    let holdout = population_scores(&trained.model, &grouped, &request.subjects_holdout)?;
    let mut metrics = metrics(&trained, holdout.clone(), training_seconds);
    metrics.heads = parent_manifest
        .metrics
        .heads
        .iter()
        .cloned()
        .chain(metrics.heads)
        .collect();
    let parent_sha = crate::store::sha256_file(&parent_dir.join(pretrain::MANIFEST))?;
    let p = parent_manifest;
    let mut ancestors: Vec<String> = p
        .lineage
        .as_ref()
        .map(|l| {
            std::iter::once(l.parent_weights_sha256.clone())
                .chain(l.ancestors.iter().cloned())
                .collect()
        })
        .unwrap_or_default();
    ancestors.dedup();
    let mut training_subjects = p.training_subjects.clone();
    training_subjects.extend(train_subjects.iter().cloned());
    training_subjects.sort();
    training_subjects.dedup();
    let mut manifest = EncoderManifest {
        format_version: pretrain::FORMAT_VERSION,
        crate_version: env!("CARGO_PKG_VERSION").to_string(),
        pretrain: config.clone(),
        feature_config_hash: hash,
        feature_config: p.feature_config.clone(),
        channel_vocabulary: p.channel_vocabulary.clone(),
        tasks: grouped.tasks.clone(),
        task_definitions: p
            .task_definitions
            .iter()
            .chain(&request.tasks)
            .cloned()
            .collect(),
        training_subjects,
        validation_subjects,
        training_recordings: p
            .training_recordings
            .iter()
            .chain(&grouped.sources)
            .cloned()
            .collect(),
        threads: request.threads,
        metrics,
        log: trained.log.clone(),
        spectrum_freqs: p.spectrum_freqs.clone(),
        population_spectrum: p.population_spectrum.clone(),
        reference_sha256: None,
        weights_sha256: String::new(),
        lineage: Some(Lineage {
            parent_weights_sha256: p.weights_sha256.clone(),
            parent_manifest_sha256: parent_sha,
            ancestors,
            parent_tasks: p.tasks.iter().map(|t| t.name.clone()).collect(),
            parent_training_subjects: p.training_subjects.clone(),
            added_tasks: added,
            continued_ssl_passes: config.ssl_passes,
        }),
    };
    pretrain::save(&request.out, &trained.model, &mut manifest)?;
    write_training_log(&request.out, &trained.log)?;
    Ok(Pretrained {
        manifest,
        holdout,
        cross_validation: Vec::new(),
        training_seconds,
    })
}

fn cross_validate(
    grouped: &Grouped,
    subjects: &[String],
    k: usize,
    config: &PretrainConfig,
    on_pass: &mut dyn FnMut(&str, &LogRow, usize),
) -> Result<Vec<SubjectScore>, PipelineError> {
    if k < 2 || k > subjects.len() {
        return Err(PipelineError::Refused(format!(
            "--evaluate-folds {k}: need 2 to {} folds",
            subjects.len()
        )));
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
        let label = format!("fold {}/{k}", fold + 1);
        let trained =
            pretrain::train_subjects(grouped, &train, &validation, config, &mut |row: &LogRow| {
                on_pass(&label, row, config.ssl_passes + config.supervised_passes)
            })?;
        scores.extend(population_scores(&trained.model, grouped, &test)?);
    }
    Ok(scores)
}

/// Writes `training_log.csv` and the loss curves (`plots/loss_ssl`, `plots/loss_supervised`)
/// of a training log under `dir`.
pub fn write_training_log(dir: &Path, log: &[LogRow]) -> Result<(), PipelineError> {
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
    crate::atomic::write_atomically(&path, |f| f.write_all(csv.as_bytes()), |_, e| e)
        .map_err(|e| PipelineError::io(&path, "cannot write", e))?;
    let plots = dir.join("plots");
    std::fs::create_dir_all(&plots)
        .map_err(|e| PipelineError::io(&plots, "cannot create folder", e))?;
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

/// Population scores as a text table under `title`, with their mean and standard deviation
/// (empty without scores).
pub fn scores_table(title: &str, scores: &[SubjectScore]) -> String {
    use std::fmt::Write as _;
    if scores.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "{title}\n  {:<10} {:<14} {:>6} {:>9} {:>12}\n",
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
    let all: Vec<f64> = scores.iter().map(|s| s.accuracy).collect();
    let ten_twenty: Vec<f64> = scores.iter().filter_map(|s| s.accuracy_1020).collect();
    let (m, sd) = mean_std(&all);
    let _ = write!(out, "  mean +- std: {m:.3} +- {sd:.3} (all channels), ");
    if !ten_twenty.is_empty() {
        let (m19, sd19) = mean_std(&ten_twenty);
        let _ = write!(out, "{m19:.3} +- {sd19:.3} (10-20 only), ");
    }
    let _ = writeln!(out, "{} subjects", scores.len());
    out
}
