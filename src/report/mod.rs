//! `report.html`: one self-contained page about a subject model that a clinician or researcher
//! can read without the tool. It says what the model was calibrated from, how well it did and how
//! sure that figure is, what changed from the population model (the diagnostic plots, inline),
//! and where every input came from (file hashes, encoder, settings, versions).
//!
//! The page needs no network and no files beside it, so it can be archived or mailed as is. With
//! [`ReportOptions::deidentify`] it withholds the subject identifier, file names and folders;
//! SHA-256 hashes stay, so whoever holds the files can still match them.

mod html;
mod stats;

use std::path::{Path, PathBuf};

pub use stats::{binomial_above_chance, wilson_interval};

use crate::atomic::write_atomically;
use crate::calibrate::{self, CalibrateError, SubjectManifest};
use crate::features::SourceFile;
use crate::predict::Scores;
use crate::store::sha256_file;

/// File name of the report inside a subject folder.
pub const REPORT: &str = "report.html";

/// The diagnostic plots a report shows, in order: file stem under `plots/` and what it shows.
const PLOTS: [(&str, &str); 6] = [
    (
        "population_vs_personalized",
        "Accuracy of each candidate model in cross-validation on the calibration epochs, the \
         population model (no personalization) among them. The chosen one is marked in the table \
         above.",
    ),
    (
        "confusion_inner_cv",
        "Which classes the chosen model confused, in cross-validation on the calibration epochs \
         (rows: true class, columns: predicted).",
    ),
    (
        "scalp_maps",
        "The head seen from above (nose up), on the calibration epochs. Left and middle: how much \
         the mu (8-13 Hz) and beta (13-30 Hz) power of the second class differs from the first's \
         at each electrode, in dB (blue: lower, red: higher). Imagining or making a hand movement \
         lowers mu/beta power over the opposite hemisphere's motor cortex (near C3 for the right \
         hand, C4 for the left), so a clear lateral pattern there is what a good recording shows. \
         Right: where the chosen model's decision follows the 8-30 Hz power (correlation of each \
         electrode's power with the model's score over the calibration epochs). Values between \
         electrodes are interpolated.",
    ),
    (
        "spectrum",
        "This subject's mean log power spectrum beside the population's. A large offset, or a \
         peak only one of them has (line noise, alpha), shows how this person's recordings differ.",
    ),
    (
        "embedding_pca",
        "This subject's calibration epochs (one dot each, coloured by class) as spatial \
         covariances, on their first two principal components: left, as recorded; right, after \
         re-centring on the subject's own mean covariance, which moves this person's data onto the \
         population's reference point (the step that lets a population model read a new person). \
         Classes that form separate clouds are easy to tell apart.",
    ),
    (
        "learning_curve",
        "Training loss of the final fit, step by step: it should fall and level off.",
    ),
];

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// The subject model cannot be read, or it is not what its manifest says.
    #[error(transparent)]
    Model(#[from] CalibrateError),
    /// The inputs contradict each other (e.g. a "held-out" recording used in calibration).
    #[error("{0}")]
    Refused(String),
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

/// How to write a report.
#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    /// Withhold the subject identifier, file names and folders.
    pub deidentify: bool,
}

/// Scores of the model on recordings it never saw during calibration.
#[derive(Debug, Clone)]
pub struct HeldOut {
    /// The scored recordings.
    pub recordings: Vec<SourceFile>,
    /// Their labelled epochs' scores.
    pub scores: Scores,
}

/// The report of the subject model in `dir` as HTML, with `held_out` scores when given.
///
/// Refuses a model whose weights are not the ones its manifest names, and held-out recordings
/// that were part of the calibration (their scores would not be held out).
pub fn render(
    dir: &Path,
    held_out: Option<&HeldOut>,
    options: &ReportOptions,
) -> Result<String, ReportError> {
    let manifest = calibrate::read_manifest(dir)?;
    if manifest.format_version != calibrate::FORMAT_VERSION {
        return Err(ReportError::Refused(format!(
            "{}: manifest format {} (this build reads {})",
            dir.join(calibrate::MANIFEST).display(),
            manifest.format_version,
            calibrate::FORMAT_VERSION
        )));
    }
    let weights = dir.join(calibrate::WEIGHTS);
    let sha = sha256_file(&weights).map_err(CalibrateError::from)?;
    if sha != manifest.weights_sha256 {
        return Err(ReportError::Refused(format!(
            "{}: SHA-256 {sha}, but {} names {}; the model was changed after calibration",
            weights.display(),
            calibrate::MANIFEST,
            manifest.weights_sha256
        )));
    }
    if let Some(held_out) = held_out {
        refuse_calibration_reuse(&manifest, held_out)?;
    }
    let plots = read_plots(&dir.join("plots"))?;
    Ok(html::page(&manifest, held_out, &plots, options))
}

/// Writes `html` to `path` (through a temporary file, so a crash leaves no half report).
pub fn write(path: &Path, html: &str) -> Result<(), ReportError> {
    let io = |action: &'static str, source| ReportError::Io {
        path: path.to_path_buf(),
        action,
        source,
    };
    write_atomically(
        path,
        |f| std::io::Write::write_all(f, html.as_bytes()).map_err(|e| io("cannot write", e)),
        io,
    )
}

fn refuse_calibration_reuse(
    manifest: &SubjectManifest,
    held_out: &HeldOut,
) -> Result<(), ReportError> {
    let calibration = &manifest.calibration;
    for file in &held_out.recordings {
        let reused = calibration
            .recordings
            .iter()
            .chain(&calibration.unlabeled_recordings)
            .find(|c| c.sha256 == file.sha256);
        if let Some(reused) = reused {
            return Err(ReportError::Refused(format!(
                "{}: the same bytes as calibration recording {}; scores on it would not be held out",
                file.name, reused.name
            )));
        }
    }
    Ok(())
}

/// A plot to show: its caption and its SVG text (`None` when calibration wrote none).
struct Plot {
    caption: &'static str,
    svg: Option<String>,
}

fn read_plots(dir: &Path) -> Result<Vec<Plot>, ReportError> {
    PLOTS
        .iter()
        .map(|&(stem, caption)| {
            let path = dir.join(format!("{stem}.svg"));
            let svg = match std::fs::read_to_string(&path) {
                Ok(text) => Some(text),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(source) => {
                    return Err(ReportError::Io {
                        path,
                        action: "cannot read",
                        source,
                    })
                }
            };
            // Only the SVG element itself goes into the page: never a prologue or a script.
            let svg = svg.and_then(|text| {
                let start = text.find("<svg")?;
                let end = text.rfind("</svg>")? + "</svg>".len();
                let body = text.get(start..end)?;
                (!body.contains("<script")).then(|| body.to_string())
            });
            Ok(Plot { caption, svg })
        })
        .collect()
}
