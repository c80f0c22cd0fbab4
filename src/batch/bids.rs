//! An EEG-BIDS dataset's recordings as batch jobs (file names and sidecars: [`crate::bids`]): one job per `sub-` label (per session when
//! sessions are kept apart), each recording given the role whose entity filter it matches.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::SubjectJob;
use crate::bids::{parse_filter, read_tsv, BidsError, Entities};

/// How a subject's sessions are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sessions {
    /// One job per subject and session (`sub-01_ses-2`), each calibrated on its own.
    #[default]
    Separate,
    /// One job per subject, every session's recordings together.
    Pooled,
}

/// Entity filters per batch role (a recording has a role when it has every entity of one of the
/// role's filters).
#[derive(Debug, Clone, Default)]
pub struct RoleFilters {
    /// Labelled calibration recordings.
    pub calibration: Vec<Vec<(String, String)>>,
    /// Unlabelled recordings (alignment only).
    pub unlabeled: Vec<Vec<(String, String)>>,
    /// Held-out labelled recordings.
    pub test: Vec<Vec<(String, String)>>,
    /// Recordings to classify.
    pub predict: Vec<Vec<(String, String)>>,
}

impl RoleFilters {
    /// Parses the filters of each role as written on the command line.
    pub fn parse(
        calibration: &[String],
        unlabeled: &[String],
        test: &[String],
        predict: &[String],
    ) -> Result<Self, BidsError> {
        type Filters = Vec<Vec<(String, String)>>;
        let all = |list: &[String]| -> Result<Filters, BidsError> {
            list.iter().map(|f| parse_filter(f)).collect()
        };
        Ok(RoleFilters {
            calibration: all(calibration)?,
            unlabeled: all(unlabeled)?,
            test: all(test)?,
            predict: all(predict)?,
        })
    }
}

/// One EEG recording of the dataset.
#[derive(Debug, Clone)]
pub struct BidsRecording {
    /// The data file.
    pub path: PathBuf,
    /// Its entities.
    pub entities: Entities,
}

/// What a scan found.
#[derive(Debug, Clone)]
pub struct BidsDataset {
    /// One job per subject (or subject and session), in label order; a job that cannot run says
    /// why in its `problems`.
    pub jobs: Vec<SubjectJob>,
    /// Recordings that matched no role's filter (left alone).
    pub unmatched: Vec<PathBuf>,
    /// Participants listed in `participants.tsv` that have no EEG recording.
    pub without_recordings: Vec<String>,
}

/// Finds the EEG recordings of the BIDS dataset at `root` and assigns them to jobs and roles.
/// A file with a malformed name, or one that matches several roles, fails its subject (naming the
/// file); the other subjects are unaffected.
pub fn scan(
    root: &Path,
    filters: &RoleFilters,
    sessions: Sessions,
) -> Result<BidsDataset, BidsError> {
    let description = root.join("dataset_description.json");
    if !description.is_file() {
        return Err(BidsError::Name {
            path: root.to_path_buf(),
            reason: "not a BIDS dataset: no dataset_description.json".into(),
        });
    }
    let mut files = Vec::new();
    for entry in read_dir(root)? {
        let name = entry.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if entry.is_dir() && name.starts_with("sub-") {
            walk(&entry, &mut files)?;
        }
    }
    files.sort();
    let mut jobs: BTreeMap<String, SubjectJob> = BTreeMap::new();
    let mut unmatched = Vec::new();
    for file in files {
        // The subject folder names the subject even when the file name is malformed.
        let folder_subject = file
            .strip_prefix(root)
            .ok()
            .and_then(|p| p.components().next())
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .unwrap_or_default();
        let entities = match Entities::of_file(&file) {
            Some(Ok(e)) if e.suffix == "eeg" => e,
            Some(Ok(_)) | None => continue,
            Some(Err(e)) => {
                job_of(&mut jobs, &folder_subject)
                    .problems
                    .push(e.to_string());
                continue;
            }
        };
        let subject = match (entities.get("sub"), entities.get("ses"), sessions) {
            (Some(sub), Some(ses), Sessions::Separate) => format!("sub-{sub}_ses-{ses}"),
            (Some(sub), _, _) => format!("sub-{sub}"),
            (None, _, _) => folder_subject.clone(),
        };
        if !subject.starts_with(&folder_subject) {
            let problem = format!("{}: filed under {folder_subject}", file.display());
            job_of(&mut jobs, &folder_subject).problems.push(problem);
            continue;
        }
        let job = job_of(&mut jobs, &subject);
        let roles: Vec<&mut Vec<PathBuf>> = [
            (&filters.calibration, &mut job.calibration),
            (&filters.unlabeled, &mut job.unlabeled),
            (&filters.test, &mut job.test),
            (&filters.predict, &mut job.predict),
        ]
        .into_iter()
        .filter(|(role, _)| role.iter().any(|f| entities.matches(f)))
        .map(|(_, list)| list)
        .collect();
        match roles.len() {
            0 => unmatched.push(file),
            1 => roles.into_iter().for_each(|list| list.push(file.clone())),
            _ => job.problems.push(format!(
                "{}: matches the filters of several roles",
                file.display()
            )),
        }
    }
    for (subject, job) in &mut jobs {
        if job.calibration.is_empty() && job.problems.is_empty() {
            job.problems.push(format!(
                "{subject}: no recording matches the calibration filter(s) {}",
                filters
                    .calibration
                    .iter()
                    .map(|f| f
                        .iter()
                        .map(|(k, v)| format!("{k}-{v}"))
                        .collect::<Vec<_>>()
                        .join("_"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    let without_recordings = participants(root)?
        .into_iter()
        .filter(|p| {
            !jobs
                .keys()
                .any(|s| s == p || s.starts_with(&format!("{p}_")))
        })
        .collect();
    Ok(BidsDataset {
        jobs: jobs.into_values().collect(),
        unmatched,
        without_recordings,
    })
}

fn job_of<'a>(jobs: &'a mut BTreeMap<String, SubjectJob>, subject: &str) -> &'a mut SubjectJob {
    jobs.entry(subject.to_string())
        .or_insert_with(|| SubjectJob {
            subject: subject.to_string(),
            ..SubjectJob::default()
        })
}

/// `participant_id`s of `participants.tsv` (none when the file is absent).
fn participants(root: &Path) -> Result<Vec<String>, BidsError> {
    let path = root.join("participants.tsv");
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let tsv = read_tsv(&path)?;
    let id = tsv
        .column("participant_id")
        .ok_or_else(|| BidsError::Sidecar {
            path: path.clone(),
            reason: "no participant_id column".into(),
        })?;
    Ok(tsv.rows.iter().map(|r| r[id].clone()).collect())
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>, BidsError> {
    let io = |source| BidsError::Io {
        path: dir.to_path_buf(),
        action: "cannot list folder",
        source,
    };
    std::fs::read_dir(dir)
        .map_err(io)?
        .map(|e| e.map(|e| e.path()).map_err(io))
        .collect()
}

/// EDF/BDF files under an `eeg` folder below `dir`.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), BidsError> {
    for path in read_dir(dir)? {
        if path.is_dir() {
            walk(&path, out)?;
        } else if path
            .parent()
            .and_then(|p| p.file_name())
            .is_some_and(|n| n == "eeg")
            && path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("edf") || e.eq_ignore_ascii_case("bdf"))
        {
            out.push(path);
        }
    }
    Ok(())
}
