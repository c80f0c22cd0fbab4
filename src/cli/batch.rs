//! `eegadapt batch`: every subject of a manifest calibrated, scored, predicted and reported, in
//! parallel, resumable; one bad subject or file never stops the rest.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use eegadapt::batch::{self, Shard, Status};
use eegadapt::pipeline::{one_line, process_subject};
use eegadapt::pretrain;

use super::features::progress_bar_of;

/// Arguments of `batch`.
#[derive(Args)]
pub struct BatchArgs {
    /// CSV manifest with columns subject, role (calibration, unlabeled, test, predict), path.
    #[arg(long)]
    manifest: PathBuf,
    /// Encoder folder (from `eegadapt pretrain`).
    #[arg(long)]
    encoder: PathBuf,
    /// Task [default: the encoder's task, when it has one].
    #[arg(long)]
    task: Option<String>,
    /// Output folder: subjects/<ID>/ per subject, summary.csv and summary.json.
    #[arg(long)]
    out: PathBuf,
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
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build_global();
    let subjects = batch::read_manifest(&args.manifest)?;
    if let Some(shards) = args.slurm {
        return slurm(args, shards);
    }
    if args.merge {
        // A subject no shard reported is failed, naming its shard.
        let merged = batch::merge(&args.out, &subjects)?;
        let csv = batch::write_summary(&args.out, &merged.results)?;
        print!("{}", batch::summary_table(&merged.results, &csv));
        let failed = merged.results.iter().any(|r| r.status == Status::Failed);
        return Ok(super::exit_code(failed));
    }
    let subjects = match args.shard {
        Some(shard) => shard.select(&subjects),
        None => subjects,
    };
    let encoder = pretrain::read_manifest(&args.encoder)?;
    let task = match &args.task {
        Some(task) => task.clone(),
        None => match encoder.tasks.as_slice() {
            [only] => only.name.clone(),
            tasks => anyhow::bail!(
                "{}: the encoder has heads for {:?}; say which with --task",
                args.encoder.display(),
                tasks.iter().map(|t| &t.name).collect::<Vec<_>>()
            ),
        },
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("{}: cannot create folder", args.out.display()))?;
    // What the outputs depend on besides the recordings: a change re-does every subject.
    let context = format!(
        "encoder {} task {} deidentify {}",
        encoder.weights_sha256, task, args.deidentify
    );
    eprintln!(
        "batch: {} subjects from {}, task {task}, {jobs} threads",
        subjects.len(),
        args.manifest.display()
    );
    let bar = progress_bar_of(subjects.len(), "subjects");
    let results = batch::run_subjects(
        &subjects,
        &args.out,
        &context,
        |job, dir| {
            process_subject(&args.encoder, &task, job, dir, args.deidentify)
                .map_err(|e| one_line(&e))
        },
        |result| {
            if result.status == Status::Failed {
                bar.suspend(|| {
                    eprintln!(
                        "eegadapt: subject {}: {}",
                        result.subject,
                        result.error.as_deref().unwrap_or("failed")
                    )
                });
            }
            bar.inc(1);
        },
    );
    bar.finish_and_clear();
    let written = match args.shard {
        Some(shard) => shard.write_results(&args.out, &results)?,
        None => batch::write_summary(&args.out, &results)?,
    };
    print!("{}", batch::summary_table(&results, &written));
    let failed = results.iter().any(|r| r.status == Status::Failed);
    Ok(super::exit_code(failed))
}

/// `--slurm N`: the job array and merge scripts, submitted with `--submit`.
fn slurm(args: &BatchArgs, shards: usize) -> anyhow::Result<ExitCode> {
    let plan = batch::slurm::SlurmPlan::for_batch(
        batch::slurm::BatchPaths {
            manifest: &args.manifest,
            encoder: &args.encoder,
            out: &args.out,
            task: args.task.as_deref(),
            deidentify: args.deidentify,
        },
        shards,
        args.jobs.unwrap_or(2),
        &args.sbatch_option,
    )?;
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
