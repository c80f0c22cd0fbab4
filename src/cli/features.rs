//! `eegadapt features`: epochs and spectral features of many recordings, in parallel, to
//! Parquet. One bad file is reported and counted; the others go on.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;
use clap::Args;
use eegadapt::features::{config_hash, features_from_file, FeatureConfig};
use eegadapt::store;
use eegadapt::task::{RecordingId, Task};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;

/// Arguments of `features`.
#[derive(Args)]
pub struct FeaturesArgs {
    /// EDF/BDF files, or folders searched recursively for *.edf and *.bdf.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Task: eegmmidb-lr, eegmmidb-ff, eegmmidb-eyes, or a task .toml file.
    #[arg(long)]
    task: String,
    /// Output folder (one <recording>.parquet + <recording>.json per recording).
    #[arg(long)]
    out: PathBuf,
    /// Recordings processed at once (default: all cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Resample every recording to this rate first (Hz).
    #[arg(long)]
    resample: Option<f64>,
    /// Notch out this line frequency first (Hz), e.g. 50 or 60.
    #[arg(long)]
    notch: Option<f64>,
    /// Re-reference EEG to the common average first.
    #[arg(long)]
    car: bool,
    /// Drop epochs whose peak-to-peak amplitude exceeds this, in the channels' unit (e.g. uV).
    #[arg(long)]
    reject: Option<f64>,
    /// Replace subject and recording names by pseudonyms, in the table and in file names.
    #[arg(long)]
    deidentify: bool,
}

enum Outcome {
    Written,
    UpToDate,
    NotInTask,
}

/// Runs the command.
pub fn run(args: &FeaturesArgs) -> anyhow::Result<ExitCode> {
    let task = Task::resolve(&args.task)?;
    let config = FeatureConfig {
        resample_hz: args.resample,
        notch_hz: args.notch,
        average_reference: args.car,
        reject: eegadapt::epochs::Reject {
            max_ptp: args.reject,
            min_ptp: None,
        },
        ..FeatureConfig::default()
    };
    let mut files = collect_inputs(&args.inputs)?;
    files.retain(|f| !is_parquet(f));
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("{}: cannot create output folder", args.out.display()))?;
    let jobs = super::limit_threads(args.jobs);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs).build()?;
    let hash = config_hash(&config, &task);
    let progress = progress_bar(files.len());
    let failed = AtomicUsize::new(0);
    let outcomes: Vec<Option<Outcome>> = pool.install(|| {
        files
            .par_iter()
            .map(|file| {
                let outcome = process(file, &task, &config, &hash, args);
                progress.inc(1);
                match outcome {
                    Ok(o) => Some(o),
                    Err(err) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        progress.suspend(|| eprintln!("eegadapt: {}", super::one_line(&err)));
                        None
                    }
                }
            })
            .collect()
    });
    progress.finish_and_clear();
    let count = |f: fn(&Outcome) -> bool| outcomes.iter().flatten().filter(|o| f(o)).count();
    let failed = failed.load(Ordering::Relaxed);
    eprintln!(
        "{} recordings: {} written, {} up to date, {} not in task {}, {} failed; output in {}",
        files.len(),
        count(|o| matches!(o, Outcome::Written)),
        count(|o| matches!(o, Outcome::UpToDate)),
        count(|o| matches!(o, Outcome::NotInTask)),
        task.name,
        failed,
        args.out.display()
    );
    Ok(if failed > 0 {
        ExitCode::from(super::EXIT_SOME_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

fn process(
    file: &Path,
    task: &Task,
    config: &FeatureConfig,
    hash: &str,
    args: &FeaturesArgs,
) -> anyhow::Result<Outcome> {
    let id = RecordingId::from_path(file);
    if !task.includes(&id) {
        return Ok(Outcome::NotInTask);
    }
    let sha = store::sha256_file(file)?;
    let stem = if args.deidentify {
        format!("rec-{}", &sha[..16])
    } else {
        id.recording.clone()
    };
    let parquet = args.out.join(format!("{stem}.parquet"));
    if store::is_up_to_date(&parquet, hash, &sha) {
        return Ok(Outcome::UpToDate);
    }
    let mut set = features_from_file(file, &sha, task, config)?;
    if args.deidentify {
        store::deidentify(&mut set);
    }
    store::write_feature_set(&parquet, &set)?;
    Ok(Outcome::Written)
}

/// True for feature tables (inputs that `pretrain` reads instead of recomputing).
pub(super) fn is_parquet(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
}

pub(super) fn progress_bar(len: usize) -> ProgressBar {
    progress_bar_of(len, "recordings")
}

/// A progress bar on stderr counting `len` things called `what`; hidden when stderr is not a
/// terminal.
pub(super) fn progress_bar_of(len: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    if std::io::stderr().is_terminal() {
        let template = format!("{{bar:40}} {{pos}}/{{len}} {what} {{elapsed}} (eta {{eta}})");
        if let Ok(style) = ProgressStyle::with_template(&template) {
            bar.set_style(style);
        }
    } else {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar
}

/// Files as given, folders searched recursively for EDF/BDF; the same stem twice is refused,
/// since both would write the same output file.
pub(super) fn collect_inputs(inputs: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            walk(input, &mut files)
                .with_context(|| format!("{}: cannot list folder", input.display()))?;
        } else {
            files.push(input.clone());
        }
    }
    files.sort();
    files.dedup();
    let mut seen: HashMap<String, &Path> = HashMap::new();
    for f in &files {
        let stem = RecordingId::from_path(f).recording;
        if let Some(previous) = seen.insert(stem.clone(), f) {
            anyhow::bail!(
                "{} and {} share the name {stem:?} and would overwrite each other's features",
                previous.display(),
                f.display()
            );
        }
    }
    Ok(files)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if path.extension().is_some_and(|e| {
            e.eq_ignore_ascii_case("edf")
                || e.eq_ignore_ascii_case("bdf")
                || e.eq_ignore_ascii_case("parquet")
        }) {
            out.push(path);
        }
    }
    Ok(())
}

/// Features of each file for `task` (in parallel), each result naming its file on error.
pub(super) fn features_of(
    files: &[PathBuf],
    task: &Task,
    config: &FeatureConfig,
) -> Vec<anyhow::Result<eegadapt::features::FeatureSet>> {
    files
        .par_iter()
        .map(|file| {
            let sha = store::sha256_file(file)?;
            let set = features_from_file(file, &sha, task, config)
                .with_context(|| format!("{}", file.display()))?;
            Ok(set)
        })
        .collect()
}
