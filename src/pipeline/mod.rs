//! The pipeline from files to results, as the command-line tool runs it: features of recordings
//! for a task, an encoder pretrained on many subjects' files, a subject calibrated from files,
//! new files predicted. `eegadapt`'s commands parse arguments, call these and print; a library
//! user (the examples, the notebooks) calls the same functions.
//!
//! Every function here names the file an error came from; one bad recording never hides which.

mod bench;
mod calibrate;
mod inputs;
mod inspect;
mod new_tasks;
mod predict;
mod pretrain;
mod subject;

use std::path::PathBuf;

pub use bench::{
    bench_files, bench_json, classical_task, write_bench_plots, BenchEvent, BenchFiles,
    BenchOutcome, CLASSICAL_WINDOW,
};
pub use calibrate::{calibrate_files, calibrate_files_as, CalibrateFiles, CalibrationSummary};
pub use inputs::{
    collect_inputs, feature_table, features_of, is_parquet, keep_vocabulary, load_features,
    pick_channels, TableOutcome,
};
pub use inspect::{inspect_json, write_inspection};
pub use new_tasks::{
    new_tasks_files, task_names as new_task_names, ColumnSummary, NewTasksFiles, NewTasksReport,
    Scores, SubjectRow, TaskResult, CLASSICAL, LABEL_GAP, MDM, NEW_HEAD, SUBJECT_VIEWS,
    WITH_ENCODER,
};
pub use predict::{held_out_of, predict_files, PredictReport};
pub use pretrain::{pretrain_sets, scores_table, write_training_log, PretrainFiles, Pretrained};
pub use subject::{batch_task, process_subject, run_batch, BatchFiles};

/// Why a pipeline step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// A step failed on one file.
    #[error("{}", in_file_message(path, source))]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: Box<PipelineError>,
    },
    /// A file-system error.
    #[error("{}: {action}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// The inputs cannot be used as asked (the message says why).
    #[error("{0}")]
    Refused(String),
    /// Reading a recording.
    #[error(transparent)]
    Edf(#[from] crate::edf::EdfError),
    /// Computing features.
    #[error(transparent)]
    Features(#[from] crate::features::FeatureError),
    /// Reading or writing a feature table.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Resolving a task.
    #[error(transparent)]
    Task(#[from] crate::task::TaskError),
    /// Pretraining or loading an encoder.
    #[error(transparent)]
    Pretrain(#[from] crate::pretrain::PretrainError),
    /// Calibrating or loading a subject model.
    #[error(transparent)]
    Calibrate(#[from] crate::calibrate::CalibrateError),
    /// Predicting.
    #[error(transparent)]
    Predict(#[from] crate::predict::PredictError),
    /// Running the benchmark.
    #[error(transparent)]
    Bench(#[from] crate::bench::BenchError),
    /// Writing a report.
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),
    /// Writing a batch's outputs.
    #[error(transparent)]
    Batch(#[from] crate::batch::BatchError),
    /// Drawing a plot.
    #[error(transparent)]
    Plot(#[from] crate::plots::PlotError),
}

/// `path: message`, or the message alone when it already starts with the path.
fn in_file_message(path: &std::path::Path, source: &PipelineError) -> String {
    let message = source.to_string();
    let path = path.display().to_string();
    if message.starts_with(&path) {
        message
    } else {
        format!("{path}: {message}")
    }
}

impl PipelineError {
    /// This error, said of `path`.
    pub fn in_file(self, path: impl Into<PathBuf>) -> Self {
        PipelineError::File {
            path: path.into(),
            source: Box::new(self),
        }
    }

    fn io(path: impl Into<PathBuf>, action: &'static str, source: std::io::Error) -> Self {
        PipelineError::Io {
            path: path.into(),
            action,
            source,
        }
    }
}

/// An error and its causes on one line, each cause once: errors that already name their cause in
/// their message do not repeat it.
pub fn one_line(err: &(dyn std::error::Error + 'static)) -> String {
    let mut line = String::new();
    let mut cause = Some(err);
    while let Some(err) = cause {
        let text = err.to_string();
        if text.starts_with(&line) {
            // A context that only named the file, repeated by the cause: keep the cause.
            line = text;
        } else if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
        cause = err.source();
    }
    line
}

/// The worker-thread count (`--jobs`, else every core), applied to the thread pools that
/// libraries start on their own: polars' (Parquet encoding) and candle's matrix products, which
/// read these variables once, and rayon's global pool (feature extraction, batch subjects).
/// Call before any of them runs; later calls keep the first pool.
///
/// Candle's elementwise kernels (`CANDLE_NUM_THREADS`) stay on one thread unless the variable is
/// set: at the encoder's tensor sizes their hand-offs cost more than they save (a training step
/// at `--jobs 2` took 6% less wall time and 37% less CPU time that way), and the fused kernels
/// and matrix products already use the pool.
pub fn use_threads(jobs: Option<usize>) -> usize {
    let jobs = jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let defaults = [
        ("POLARS_MAX_THREADS", jobs),
        ("RAYON_NUM_THREADS", jobs),
        ("CANDLE_NUM_THREADS", 1),
    ];
    for (var, value) in defaults {
        if std::env::var_os(var).is_none() {
            std::env::set_var(var, value.to_string());
        }
    }
    // Already built (a second call in one process): the first pool stays.
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build_global();
    jobs
}
