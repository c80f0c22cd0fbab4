//! `eegadapt batch`: every subject of a manifest calibrated, scored, predicted and reported, in
//! parallel, resumable; one bad subject or file never stops the rest.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use eegadapt::batch::{self, Shard, Status, SubjectJob};
use eegadapt::bids;
use eegadapt::pipeline::{batch_task, run_batch, BatchFiles};

use super::features::progress_bar_of;

/// Arguments of `batch`.
#[derive(Args)]
pub struct BatchArgs {
    /// CSV manifest with columns subject, role (calibration, unlabeled, test, predict), path.
    #[arg(long, required_unless_present = "bids")]
    manifest: Option<PathBuf>,
    /// An EEG-BIDS dataset instead of a manifest: roles from the entity filters below, outputs
    /// in BIDS-Derivatives form (default --out: DIR/derivatives/eegadapt).
    #[arg(long, value_name = "DIR", conflicts_with = "manifest")]
    bids: Option<PathBuf>,
    /// BIDS entity filter of calibration recordings, as in file names (repeatable): task-motor_run-1.
    #[arg(long, requires = "bids", value_name = "FILTER")]
    calibration: Vec<String>,
    /// BIDS entity filter of unlabelled recordings of the subject (alignment only; repeatable).
    #[arg(long, requires = "bids", value_name = "FILTER")]
    unlabeled: Vec<String>,
    /// BIDS entity filter of held-out test recordings (repeatable).
    #[arg(long, requires = "bids", value_name = "FILTER")]
    test: Vec<String>,
    /// BIDS entity filter of recordings to classify (repeatable).
    #[arg(long, requires = "bids", value_name = "FILTER")]
    predict: Vec<String>,
    /// One model per BIDS subject from all its sessions (default: one per session).
    #[arg(long, requires = "bids")]
    pool_sessions: bool,
    /// Encoder folder (from `eegadapt pretrain`).
    #[arg(long)]
    encoder: PathBuf,
    /// Task [default: the encoder's task, when it has one].
    #[arg(long)]
    task: Option<String>,
    /// Output folder: subjects/<ID>/ (BIDS: sub-<label>/) per subject, summary.csv, summary.json.
    #[arg(long, required_unless_present = "bids")]
    out: Option<PathBuf>,
    /// Withhold subject identifiers, file names and folders from the reports.
    #[arg(long)]
    deidentify: bool,
    /// Worker threads (subjects run in parallel on them); with --slurm, CPUs per array task
    /// [default there: 2].
    #[arg(long)]
    jobs: Option<usize>,
    /// Run only shard I of N (1-based): a fixed share of the subjects, whatever the manifest's
    /// order; results go to OUT/shards/ for --merge.
    #[arg(long, value_name = "I/N", conflicts_with = "merge")]
    shard: Option<Shard>,
    /// Combine the shards' results in OUT/shards/ into summary.csv, summary.json and index.html.
    #[arg(long)]
    merge: bool,
    /// Write a Slurm job array of N shards and its merge job to OUT/slurm/ (run nothing here).
    #[arg(long, value_name = "N", conflicts_with_all = ["shard", "merge"])]
    slurm: Option<usize>,
    /// With --slurm: submit both with sbatch (the merge after the array, afterany).
    #[arg(long, requires = "slurm")]
    submit: bool,
    /// With --slurm: an extra #SBATCH option for both scripts (repeatable), e.g. --time=02:00:00.
    #[arg(long, requires = "slurm", allow_hyphen_values = true)]
    sbatch_option: Vec<String>,
}

/// Runs the command.
pub fn run(args: &BatchArgs) -> anyhow::Result<ExitCode> {
    let jobs = super::limit_threads(args.jobs);
    let (subjects, out, source) = inputs(args)?;
    if let Some(shards) = args.slurm {
        return slurm(args, &out, shards);
    }
    if args.merge {
        // A subject no shard reported is failed, naming its shard.
        let merged = batch::merge(&out, &subjects)?;
        let csv = batch::write_summary(&out, &merged.results)?;
        print!("{}", batch::summary_table(&merged.results, &csv));
        let failed = merged.results.iter().any(|r| r.status == Status::Failed);
        return Ok(super::exit_code(failed));
    }
    let subjects = match args.shard {
        Some(shard) => shard.select(&subjects),
        None => subjects,
    };
    let task = batch_task(&args.encoder, args.task.as_deref())?;
    eprintln!(
        "batch: {} subjects from {source}, task {task}, {jobs} threads",
        subjects.len()
    );
    let bar = progress_bar_of(subjects.len(), "subjects");
    let request = BatchFiles {
        encoder: &args.encoder,
        task: Some(&task),
        out: &out,
        deidentify: args.deidentify,
    };
    let results = run_batch(&request, &subjects, &|result| {
        if let Some(error) = result.error.as_deref() {
            bar.suspend(|| eprintln!("eegadapt: subject {}: {error}", result.subject));
        }
        bar.inc(1);
    })?;
    bar.finish_and_clear();
    let written = match args.shard {
        Some(shard) => shard.write_results(&out, &results)?,
        None => batch::write_summary(&out, &results)?,
    };
    print!("{}", batch::summary_table(&results, &written));
    let failed = results.iter().any(|r| r.status == Status::Failed);
    Ok(super::exit_code(failed))
}

/// The jobs (from the manifest or the BIDS dataset), the output folder, and where the jobs
/// came from (for the log line).
fn inputs(args: &BatchArgs) -> anyhow::Result<(Vec<SubjectJob>, PathBuf, String)> {
    let Some(dir) = &args.bids else {
        let manifest = args
            .manifest
            .as_deref()
            .context("--manifest or --bids is required")?;
        let out = args
            .out
            .clone()
            .context("--out is required with --manifest")?;
        return Ok((
            batch::read_manifest(manifest)?,
            out,
            manifest.display().to_string(),
        ));
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| dir.join("derivatives").join("eegadapt"));
    let filters = batch::bids::RoleFilters::parse(
        &args.calibration,
        &args.unlabeled,
        &args.test,
        &args.predict,
    )?;
    let sessions = if args.pool_sessions {
        batch::bids::Sessions::Pooled
    } else {
        batch::bids::Sessions::Separate
    };
    let dataset = batch::bids::scan(dir, &filters, sessions)?;
    if !dataset.unmatched.is_empty() {
        eprintln!(
            "batch: {} recordings match no role filter (left alone)",
            dataset.unmatched.len()
        );
    }
    bids::write_derivative_description(&out)?;
    Ok((dataset.jobs, out, format!("BIDS dataset {}", dir.display())))
}

/// `--slurm N`: the job array and merge scripts, submitted with `--submit`.
fn slurm(args: &BatchArgs, out: &Path, shards: usize) -> anyhow::Result<ExitCode> {
    let argv: Vec<String> = std::env::args().collect();
    let cpus = args.jobs.unwrap_or(2);
    let plan =
        batch::slurm::SlurmPlan::for_this_batch(&argv, out, shards, cpus, &args.sbatch_option)?;
    let scripts = plan.write()?;
    println!(
        "wrote {} and {}",
        scripts.array.display(),
        scripts.merge.display()
    );
    if args.submit {
        let ids = batch::slurm::submit(&scripts)?;
        println!(
            "submitted job array {} ({shards} shards), merge job {} (afterany)",
            ids.array, ids.merge
        );
    } else {
        println!(
            "submit: jid=$(sbatch --parsable {}) && sbatch --dependency=afterany:$jid {}",
            scripts.array.display(),
            scripts.merge.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
