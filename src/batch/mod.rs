//! A clinic's recordings, many subjects at once: each subject of a [manifest] is
//! calibrated, scored and reported in its own folder, subjects in parallel.
//!
//! Three promises, kept here rather than by each step:
//! - **One bad subject never stops the rest.** Each subject's work runs on its own; an error or
//!   even a panic becomes that subject's line in the summary and the others go on.
//! - **Reruns skip finished work.** A subject is finished when its folder holds `batch.json`,
//!   written last, whose fingerprint (the SHA-256 of every input file's bytes and role, the
//!   encoder's weights, the task and the crate version) equals the inputs' fingerprint now. Any
//!   changed input, or an interrupted run, means the subject is done again.
//! - **Nothing half-written.** Every file is written to a temporary name and renamed.

pub mod bids;
pub mod manifest;
pub mod shard;
pub mod slurm;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use manifest::{parse_manifest, read_manifest, Role, SubjectJob};
pub use shard::{merge, Merged, Shard};

use crate::atomic::write_atomically;
use crate::store::sha256_file;

/// File in a subject's folder that marks its work finished, with its fingerprint.
pub const DONE_MARKER: &str = "batch.json";
/// Summary files in the output folder.
pub const SUMMARY_CSV: &str = "summary.csv";
/// Summary files in the output folder.
pub const SUMMARY_JSON: &str = "summary.json";
/// Page in the output folder linking every subject's report.
pub const INDEX_HTML: &str = "index.html";

/// Why a batch could not start, or a file could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// A line of the manifest is wrong.
    #[error("{}: line {line}: {reason}", path.display())]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// Why.
        reason: String,
    },
    /// A file-system error.
    #[error("{}: {action}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// Why.
        source: std::io::Error,
    },
}

/// What one subject's work produced, as the summary shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// Labelled calibration epochs.
    pub calibration_epochs: usize,
    /// The calibration strategy chosen.
    pub strategy: String,
    /// Labelled epochs of the test recordings scored.
    pub test_epochs: usize,
    /// Accuracy on the test recordings, when there were any.
    pub test_accuracy: Option<f64>,
    /// Epochs of the predict recordings classified.
    pub predicted_epochs: usize,
    /// Predict recordings that could not be read, each with why (the rest were classified).
    pub failed_recordings: Vec<String>,
}

/// How a subject's work ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Done in this run.
    Done,
    /// Already done by an earlier run with the same inputs: skipped.
    UpToDate,
    /// Failed; see the error.
    Failed,
}

impl Status {
    /// The status as the summary writes it.
    pub fn name(self) -> &'static str {
        match self {
            Status::Done => "done",
            Status::UpToDate => "up_to_date",
            Status::Failed => "failed",
        }
    }
}

/// One subject's line of the summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubjectResult {
    /// Subject identifier.
    pub subject: String,
    /// How it ended.
    pub status: Status,
    /// What it produced (for done and up-to-date subjects).
    pub outcome: Option<Outcome>,
    /// Why it failed.
    pub error: Option<String>,
    /// Wall time of this run's work on it, seconds.
    pub seconds: f64,
}

/// `batch.json`: the fingerprint of the inputs a subject's outputs were made from.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct DoneMarker {
    fingerprint: String,
    crate_version: String,
    outcome: Outcome,
}

/// The folder of `subject`'s outputs under `out`: `subjects/<ID>`, or for BIDS subjects
/// (`sub-<label>`, `sub-<label>_ses-<label>`) the BIDS-Derivatives folder `sub-<label>[/ses-<label>]`.
pub fn subject_dir(out: &Path, subject: &str) -> PathBuf {
    if subject.starts_with("sub-") {
        return subject
            .split('_')
            .fold(out.to_path_buf(), |dir, part| dir.join(part));
    }
    out.join("subjects").join(subject)
}

/// Fingerprint of a job's inputs: every recording's role and bytes, plus `context` (what else
/// the outputs depend on: the encoder's weights hash, the task, options).
pub fn fingerprint(job: &SubjectJob, context: &str) -> Result<String, String> {
    let mut hasher = Sha256::new();
    hasher.update(env!("CARGO_PKG_VERSION").as_bytes());
    hasher.update([0]);
    hasher.update(context.as_bytes());
    for (role, path) in job.recordings() {
        let sha = sha256_file(path).map_err(|e| e.to_string())?;
        hasher.update([0]);
        hasher.update(role.name().as_bytes());
        hasher.update(sha.as_bytes());
    }
    Ok(format!("{:x}", hasher.finalize()))
}

fn finished_outcome(dir: &Path, fingerprint: &str) -> Option<Outcome> {
    let text = std::fs::read_to_string(dir.join(DONE_MARKER)).ok()?;
    let marker: DoneMarker = serde_json::from_str(&text).ok()?;
    (marker.fingerprint == fingerprint).then_some(marker.outcome)
}

/// Writes `value` as pretty JSON to `path`, through a temporary file.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), BatchError> {
    let io = |action: &'static str, source| BatchError::Io {
        path: path.to_path_buf(),
        action,
        source,
    };
    let json = serde_json::to_vec_pretty(value)
        .map_err(|e| io("cannot encode", std::io::Error::other(e)))?;
    write_atomically(
        path,
        |f| std::io::Write::write_all(f, &json).map_err(|e| io("cannot write", e)),
        io,
    )
}

/// Runs `work(job, subject_folder)` for every job not already finished with the same inputs,
/// subjects in parallel on the current rayon pool, and returns one result per job in manifest
/// order. `done(result)` is called as each subject ends (for progress). Errors and panics in
/// `work` fail only their subject; a subject's marker is written only after its work succeeded.
pub fn run_subjects<W, P>(
    jobs: &[SubjectJob],
    out: &Path,
    context: &str,
    work: W,
    done: P,
) -> Vec<SubjectResult>
where
    W: Fn(&SubjectJob, &Path) -> Result<Outcome, String> + Sync,
    P: Fn(&SubjectResult) + Sync,
{
    jobs.par_iter()
        .map(|job| {
            let started = Instant::now();
            let ended = |status, outcome, error| SubjectResult {
                subject: job.subject.clone(),
                status,
                outcome,
                error,
                seconds: started.elapsed().as_secs_f64(),
            };
            let result = match run_one(job, out, context, &work) {
                Ok((status, outcome)) => ended(status, Some(outcome), None),
                Err(error) => ended(Status::Failed, None, Some(error)),
            };
            done(&result);
            result
        })
        .collect()
}

fn run_one<W>(
    job: &SubjectJob,
    out: &Path,
    context: &str,
    work: &W,
) -> Result<(Status, Outcome), String>
where
    W: Fn(&SubjectJob, &Path) -> Result<Outcome, String>,
{
    if let Some(problem) = job.problem() {
        return Err(problem);
    }
    let fingerprint = fingerprint(job, context)?;
    let dir = subject_dir(out, &job.subject);
    if let Some(outcome) = finished_outcome(&dir, &fingerprint) {
        return Ok((Status::UpToDate, outcome));
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: cannot create: {e}", dir.display()))?;
    // An old marker would vouch for outputs this run is about to replace.
    match std::fs::remove_file(dir.join(DONE_MARKER)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(format!(
                "{}: cannot remove: {e}",
                dir.join(DONE_MARKER).display()
            ));
        }
        _ => {}
    }
    let outcome = catch_unwind(AssertUnwindSafe(|| work(job, &dir))).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        Err(format!("internal error (a bug; please report it): {what}"))
    })?;
    let marker = DoneMarker {
        fingerprint,
        crate_version: env!("CARGO_PKG_VERSION").to_string(),
        outcome: outcome.clone(),
    };
    write_json(&dir.join(DONE_MARKER), &marker).map_err(|e| e.to_string())?;
    Ok((Status::Done, outcome))
}

/// Writes `summary.csv`, `summary.json` and `index.html` (a table linking each subject's
/// `report.html`) into `out`.
pub fn write_summary(out: &Path, results: &[SubjectResult]) -> Result<PathBuf, BatchError> {
    write_json(&out.join(SUMMARY_JSON), &results)?;
    write_index(out, results)?;
    let mut csv = String::from(
        "subject,status,calibration_epochs,strategy,test_epochs,test_accuracy,predicted_epochs,failed_recordings,error,seconds\n",
    );
    for r in results {
        let o = r.outcome.clone().unwrap_or_default();
        let fields = [
            r.subject.clone(),
            r.status.name().to_string(),
            o.calibration_epochs.to_string(),
            o.strategy,
            o.test_epochs.to_string(),
            o.test_accuracy.map_or(String::new(), |a| format!("{a:.4}")),
            o.predicted_epochs.to_string(),
            o.failed_recordings.join("; "),
            r.error.clone().unwrap_or_default(),
            format!("{:.1}", r.seconds),
        ];
        let quoted: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        csv.push_str(&quoted.join(","));
        csv.push('\n');
    }
    let path = out.join(SUMMARY_CSV);
    write_text(&path, &csv)?;
    Ok(path)
}

/// Writes `text` to `path` through a temporary file.
fn write_text(path: &Path, text: &str) -> Result<(), BatchError> {
    let io = |action: &'static str, source| BatchError::Io {
        path: path.to_path_buf(),
        action,
        source,
    };
    write_atomically(
        path,
        |f| std::io::Write::write_all(f, text.as_bytes()).map_err(|e| io("cannot write", e)),
        io,
    )
}

fn write_index(out: &Path, results: &[SubjectResult]) -> Result<(), BatchError> {
    let escape = |t: &str| {
        t.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let mut rows = String::new();
    for r in results {
        let o = r.outcome.clone().unwrap_or_default();
        let subject = escape(&r.subject);
        let report = subject_dir(Path::new(""), &r.subject).join("report.html");
        let link = if out.join(&report).is_file() {
            let href = escape(&report.to_string_lossy().replace('\\', "/"));
            format!("<a href=\"{href}\">{subject}</a>")
        } else {
            subject
        };
        let accuracy = o.test_accuracy.map_or("-".into(), |a| format!("{a:.3}"));
        let note = escape(r.error.as_deref().unwrap_or(""));
        rows.push_str(&format!(
            "<tr><td>{link}</td><td>{}</td><td>{}</td><td>{}</td><td>{accuracy}</td><td>{}</td><td>{note}</td></tr>\n",
            r.status.name(),
            o.calibration_epochs,
            escape(&o.strategy),
            o.predicted_epochs
        ));
    }
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>eegadapt batch</title>\n\
         <style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:.2em .8em;text-align:left}}\
         tr:nth-child(even){{background:#f2f2f2}}</style></head><body>\n<h1>Batch: {} subjects</h1>\n\
         <table><tr><th>subject</th><th>status</th><th>calibration epochs</th><th>approach</th>\
         <th>test accuracy</th><th>predicted epochs</th><th>note</th></tr>\n{rows}</table>\n\
         <p>Summary: <a href=\"{SUMMARY_CSV}\">{SUMMARY_CSV}</a>, <a href=\"{SUMMARY_JSON}\">{SUMMARY_JSON}</a>.</p>\n\
         </body></html>\n",
        results.len()
    );
    write_text(&out.join(INDEX_HTML), &html)
}

/// The summary as the terminal table `batch` prints, with the counts and the path of the file
/// the results were written to.
pub fn summary_table(results: &[SubjectResult], written: &Path) -> String {
    use std::fmt::Write as _;
    let mut stdout = String::new();
    let _ = writeln!(
        stdout,
        "{:<12} {:<10} {:>6}  {:<30} {:>9}  note",
        "subject", "status", "calib", "strategy", "test acc"
    );
    for r in results {
        let o = r.outcome.clone().unwrap_or_default();
        let accuracy = o.test_accuracy.map_or("-".into(), |a| format!("{a:.3}"));
        let note = match (&r.error, o.failed_recordings.len()) {
            (Some(error), _) => error.clone(),
            (None, 0) => String::new(),
            (None, n) => format!("{n} predict recording(s) unreadable, see summary"),
        };
        let _ = writeln!(
            stdout,
            "{:<12} {:<10} {:>6}  {:<30} {:>9}  {note}",
            r.subject,
            r.status.name(),
            o.calibration_epochs,
            o.strategy,
            accuracy
        );
    }
    let count = |s: Status| results.iter().filter(|r| r.status == s).count();
    let _ = writeln!(
        stdout,
        "{} done, {} up to date, {} failed; results: {}",
        count(Status::Done),
        count(Status::UpToDate),
        count(Status::Failed),
        written.display()
    );
    stdout
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests;
