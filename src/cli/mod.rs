//! Argument parsing and dispatch to one module per command.

mod batch;
mod bench;
mod calibrate;
mod demo;
mod features;
mod inspect;
mod predict;
mod pretrain;
mod report;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code when some input files failed but the run went on.
pub const EXIT_SOME_FAILED: u8 = 1;

/// [`EXIT_SOME_FAILED`] when some inputs failed, else success.
pub fn exit_code(some_failed: bool) -> ExitCode {
    if some_failed {
        ExitCode::from(EXIT_SOME_FAILED)
    } else {
        ExitCode::SUCCESS
    }
}

#[derive(Parser)]
#[command(
    name = "eegadapt",
    version,
    about = "EEG recordings to personalized models: read EDF/EDF+/BDF, extract features, calibrate per subject",
    after_help = "Examples:\n  eegadapt inspect data/eegmmidb/S001/S001R04.edf\n  eegadapt inspect --json recordings/*.edf"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Header, channels, segments and gaps, annotations and warnings of EDF/EDF+/BDF files.
    #[command(
        after_help = "Examples:\n  eegadapt inspect data/eegmmidb/S001/S001R04.edf\n  eegadapt inspect --json a.edf b.bdf | jq .format\n\n\
                      A file that cannot be read gets a one-line error on stderr; the others are still\n\
                      inspected and the exit code is 1. Patient and recording identification are\n\
                      withheld unless --show-identity is given."
    )]
    Inspect(inspect::InspectArgs),
    /// Epochs and spectral features of recordings for a task, one Parquet file per recording.
    #[command(
        after_help = "Examples:\n  eegadapt features data/eegmmidb/S001/S001R04.edf --task eegmmidb-lr --out features/\n  \
                      eegadapt features /data/eegmmidb --task eegmmidb-lr --out features/ --jobs 2\n  \
                      eegadapt features clinic/*.edf --task my_task.toml --out features/ --notch 50 --deidentify\n\n\
                      A file that fails gets one line on stderr; the others go on and the exit code is 1.\n\
                      Reruns skip recordings whose table was built from the same file with the same settings."
    )]
    Features(features::FeaturesArgs),
    /// Train the population encoder on many subjects (self-supervised, then task heads).
    #[command(
        after_help = "Examples:\n  eegadapt pretrain --data /data/eegmmidb --task eegmmidb-lr --out encoder/\n  \
                      eegadapt pretrain --data /data/eegmmidb --task eegmmidb-lr --out encoder/ --subjects-holdout S011,S012\n  \
                      eegadapt pretrain --data features/ --task eegmmidb-lr --out encoder/ --evaluate-folds 4\n  \
                      eegadapt pretrain --data /data/eegmmidb --task eegmmidb-lr --out encoder-sensorimotor/ \
                      --channels FC3,FC1,FCz,FC2,FC4,C3,C1,Cz,C2,C4,CP3,CP1,CPz,CP2,CP4\n\n\
                      EDF/BDF inputs are turned into features first (cached under OUT/features/); feature tables\n\
                      (.parquet from `eegadapt features`) are used as they are."
    )]
    Pretrain(pretrain::PretrainArgs),
    /// Personalize an encoder to one subject from labelled calibration recordings.
    #[command(
        after_help = "Examples:\n  eegadapt calibrate --encoder encoder/ --task eegmmidb-lr --subject S001 \\\n      --calibration data/eegmmidb/S001/S001R04.edf --out subjects/S001\n  \
                      eegadapt calibrate --encoder encoder/ --task eegmmidb-lr --subject P17 \\\n      --calibration p17_cal.edf --unlabeled p17_rest.edf --out subjects/P17\n\n\
                      Alignment statistics come from the calibration and unlabelled recordings only. The\n\
                      fine-tuning strategy is chosen by inner cross-validation on the calibration epochs."
    )]
    Calibrate(calibrate::CalibrateArgs),
    /// Classify the epochs of new recordings with a subject model (and score them if labelled).
    #[command(
        after_help = "Examples:\n  eegadapt predict --model subjects/S001 data/eegmmidb/S001/S001R08.edf\n  \
                      eegadapt predict --model subjects/S001 S001R08.edf S001R12.edf --json | jq .accuracy\n\n\
                      A recording is refused when it lacks channels the model was calibrated with or its\n\
                      sampling cannot give the model's spectra."
    )]
    Predict(predict::PredictArgs),
    /// Write a subject model's report: one HTML page readable without the tool.
    #[command(after_help = "Examples:\n  eegadapt report --model subjects/S001\n  \
                      eegadapt report --model subjects/S001 --test S001R08.edf S001R12.edf\n  \
                      eegadapt report --model subjects/P17 --deidentify --out p17_report.html\n\n\
                      --test scores the model on labelled recordings that calibration never saw; a\n\
                      calibration recording given there is refused. --deidentify withholds the subject\n\
                      identifier, file names and folders (SHA-256 hashes stay).")]
    Report(report::ReportArgs),
    /// Calibrate, score, predict and report every subject of a manifest or BIDS dataset, resumably.
    #[command(
        after_help = "Examples:\n  eegadapt batch --manifest clinic.csv --encoder encoder/ --out results/ --jobs 2\n\n\
                      clinic.csv (paths relative to the manifest's folder):\n    \
                      subject,role,path\n    P17,calibration,p17/run1.edf\n    P17,unlabeled,p17/rest.edf\n    \
                      P17,test,p17/run2.edf\n    P17,predict,p17/night.edf\n\n\
                      Writes results/subjects/<ID>/ (the subject model, plots, report.html, predictions.json)\n\
                      and results/summary.csv and summary.json. A subject that fails gets one line on stderr\n\
                      and in the summary; the others go on and the exit code is 1. Reruns skip subjects whose\n\
                      inputs (file bytes, encoder, task) are unchanged since they last finished.\n\n\
                      An EEG-BIDS dataset, roles by entity filters, outputs in DIR/derivatives/eegadapt/:\n  \
                      eegadapt batch --bids DIR --encoder encoder/ --calibration task-motor_run-1 --test run-2\n\
                      On a Slurm cluster: --slurm 8 [--submit] writes (and submits) a job array of shards\n\
                      and a merge job; --shard I/N and --merge do the same by hand."
    )]
    Batch(batch::BatchArgs),
    /// Run the eegmmidb-lr benchmark protocol (population, subject-only, personalized, k-shot).
    #[command(
        after_help = "Examples:\n  eegadapt bench eegmmidb-lr --data /data/eegmmidb\n  \
                      eegadapt bench eegmmidb-lr --data /data/eegmmidb --folds 4 --json > bench.json"
    )]
    Bench(bench::BenchArgs),
    /// Calibrate subject S001 of data/ with the shipped encoder and predict its runs 8 and 12.
    #[command(after_help = "Example:\n  cargo run --release -- demo")]
    Demo(demo::DemoArgs),
}

/// The worker-thread count, applied to every thread pool (see
/// [`eegadapt::pipeline::use_threads`]).
pub fn limit_threads(jobs: Option<usize>) -> usize {
    eegadapt::pipeline::use_threads(jobs)
}

/// Parses the command line and runs the command.
pub fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Inspect(args) => inspect::run(&args),
        Command::Features(args) => features::run(&args),
        Command::Pretrain(args) => pretrain::run(&args),
        Command::Calibrate(args) => calibrate::run(&args),
        Command::Predict(args) => predict::run(&args),
        Command::Report(args) => report::run(&args),
        Command::Batch(args) => batch::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Demo(args) => demo::run(&args),
    }
}

/// The error and its causes on one line, each cause once (see [`eegadapt::pipeline::one_line`]).
pub fn one_line(err: &anyhow::Error) -> String {
    eegadapt::pipeline::one_line(err.as_ref())
}

/// True when the error is a closed stdout (e.g. piped into `head`): not a failure.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
