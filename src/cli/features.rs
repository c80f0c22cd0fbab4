//! `eegadapt features`: epochs and spectral features of many recordings, in parallel, to
//! Parquet. One bad file is reported and counted; the others go on.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;
use clap::Args;
use eegadapt::atomic::Committer;
use eegadapt::features::{config_hash, FeatureConfig};
use eegadapt::pipeline::{collect_inputs, feature_table, is_parquet, TableOutcome};
use eegadapt::task::Task;
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
    // Tables are synced and renamed on a thread of their own while the next recording is
    // computed.
    let commits = Committer::spawn().context("cannot start the thread that commits tables")?;
    let outcomes: Vec<Option<TableOutcome>> = pool.install(|| {
        files
            .par_iter()
            .map(|file| {
                let outcome = feature_table(
                    file,
                    &task,
                    &config,
                    &hash,
                    &args.out,
                    args.deidentify,
                    Some(&commits),
                );
                progress.inc(1);
                match outcome {
                    Ok(o) => Some(o),
                    Err(err) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        progress.suspend(|| {
                            eprintln!("eegadapt: {}", eegadapt::pipeline::one_line(&err))
                        });
                        None
                    }
                }
            })
            .collect()
    });
    // A table whose sync or rename failed was counted as written: it is a failure.
    let not_committed: BTreeSet<PathBuf> = commits
        .finish()
        .into_iter()
        .map(|failure| {
            progress.suspend(|| eprintln!("eegadapt: {failure}"));
            failure.path.with_extension("")
        })
        .collect();
    progress.finish_and_clear();
    let count = |f: fn(&TableOutcome) -> bool| outcomes.iter().flatten().filter(|o| f(o)).count();
    let failed = failed.load(Ordering::Relaxed) + not_committed.len();
    eprintln!(
        "{} recordings: {} written, {} up to date, {} not in task {}, {} failed; output in {}",
        files.len(),
        count(|o| matches!(o, TableOutcome::Written)).saturating_sub(not_committed.len()),
        count(|o| matches!(o, TableOutcome::UpToDate)),
        count(|o| matches!(o, TableOutcome::NotInTask)),
        task.name,
        failed,
        args.out.display()
    );
    Ok(super::exit_code(failed > 0))
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
