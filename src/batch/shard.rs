//! A batch spread over machines: `--shard I/N` runs a fixed 1/N of the subjects and writes its
//! results to `shards/`, and the merge combines every shard's results into the one summary a
//! single machine would have written.
//!
//! Subjects go to shards by their rank in identifier order (round robin), so a shard's subjects
//! do not depend on the manifest's line order, and a rerun with the same subjects gives each
//! shard the same ones.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{write_json, BatchError, Status, SubjectJob, SubjectResult};

/// Folder of the shards' results under a batch's output folder.
pub const SHARDS_DIR: &str = "shards";

/// Shard `index` (1-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Which shard, from 1.
    pub index: usize,
    /// How many shards.
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;

    /// Parses `I/N` with `1 <= I <= N`.
    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("shard {text:?}: expected I/N with 1 <= I <= N, for example 2/8");
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            i.trim().parse::<usize>().map_err(|_| bad())?,
            n.trim().parse::<usize>().map_err(|_| bad())?,
        );
        if index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// This shard's jobs, in their manifest order.
    pub fn select(&self, jobs: &[SubjectJob]) -> Vec<SubjectJob> {
        let mut ids: Vec<&str> = jobs.iter().map(|j| j.subject.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let mine: Vec<&str> = ids
            .into_iter()
            .enumerate()
            .filter(|(rank, _)| rank % self.count == self.index - 1)
            .map(|(_, id)| id)
            .collect();
        jobs.iter()
            .filter(|j| mine.contains(&j.subject.as_str()))
            .cloned()
            .collect()
    }

    /// Where this shard's results go under the batch's output folder `out`.
    pub fn results_file(&self, out: &Path) -> PathBuf {
        out.join(SHARDS_DIR)
            .join(format!("shard-{}-of-{}.json", self.index, self.count))
    }

    /// Writes this shard's results; returns the file written.
    pub fn write_results(
        &self,
        out: &Path,
        results: &[SubjectResult],
    ) -> Result<PathBuf, BatchError> {
        let path = self.results_file(out);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| BatchError::Io {
                path: dir.to_path_buf(),
                action: "cannot create folder",
                source,
            })?;
        }
        write_json(&path, &results)?;
        Ok(path)
    }
}

/// What a merge found: every subject's result in manifest order (a subject no shard reported
/// is failed, saying so), and the shards whose results are missing.
#[derive(Debug, Clone)]
pub struct Merged {
    /// One result per manifest subject.
    pub results: Vec<SubjectResult>,
    /// Shards (`I/N`) that wrote no results file.
    pub missing_shards: Vec<Shard>,
}

/// Combines the results of the shards under `out` for the subjects of `jobs`. The shard count is
/// read from the results files; files of another count are ignored (an earlier split).
pub fn merge(out: &Path, jobs: &[SubjectJob]) -> Result<Merged, BatchError> {
    let dir = out.join(SHARDS_DIR);
    let io = |path: &Path, action, source| BatchError::Io {
        path: path.to_path_buf(),
        action,
        source,
    };
    let mut files: BTreeMap<usize, Vec<(Shard, PathBuf)>> = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).map_err(|e| io(&dir, "cannot list shard results", e))? {
        let path = entry
            .map_err(|e| io(&dir, "cannot list shard results", e))?
            .path();
        let shard = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("shard-")?.strip_suffix(".json"))
            .and_then(|n| n.replacen("-of-", "/", 1).parse::<Shard>().ok());
        if let Some(shard) = shard {
            files.entry(shard.count).or_default().push((shard, path));
        }
    }
    let counts: Vec<usize> = files.keys().copied().collect();
    let (count, found) = match counts.as_slice() {
        [count] => (*count, &files[count]),
        [] => {
            return Err(io(
                &dir,
                "no shard results (shard-I-of-N.json) to merge",
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ))
        }
        _ => {
            return Err(io(
                &dir,
                "holds results of several splits; remove the old shard files",
                std::io::Error::other(format!("shard counts {counts:?}")),
            ))
        }
    };
    let mut by_subject: BTreeMap<String, SubjectResult> = BTreeMap::new();
    for (_, path) in found {
        let text = std::fs::read_to_string(path).map_err(|e| io(path, "cannot read", e))?;
        let results: Vec<SubjectResult> = serde_json::from_str(&text)
            .map_err(|e| io(path, "not shard results", std::io::Error::other(e)))?;
        for r in results {
            by_subject.insert(r.subject.clone(), r);
        }
    }
    let missing_shards: Vec<Shard> = (1..=count)
        .map(|index| Shard { index, count })
        .filter(|s| !found.iter().any(|(f, _)| f == s))
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    let results = jobs
        .iter()
        .filter(|j| seen.insert(j.subject.clone()))
        .map(|j| {
            by_subject.remove(&j.subject).unwrap_or_else(|| {
                let shard = (1..=count)
                    .map(|index| Shard { index, count })
                    .find(|s| s.select(jobs).iter().any(|k| k.subject == j.subject));
                SubjectResult {
                    subject: j.subject.clone(),
                    status: Status::Failed,
                    outcome: None,
                    error: Some(format!(
                        "no result: shard {} did not report this subject",
                        shard.map_or("?".to_string(), |s| s.to_string())
                    )),
                    seconds: 0.0,
                }
            })
        })
        .collect();
    Ok(Merged {
        results,
        missing_shards,
    })
}
