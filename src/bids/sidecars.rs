//! The sidecars of a BIDS recording: `_events.tsv` (onset, duration, trial_type) replaces the
//! file's own annotations, and `_channels.tsv` rows whose `status` is `bad` mark channels bad.

use std::path::{Path, PathBuf};

use super::{BidsError, Entities};
use crate::edf::{labels, Annotation, Recording};

/// A tab-separated table: its header and rows (every row as wide as the header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tsv {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows of fields.
    pub rows: Vec<Vec<String>>,
}

impl Tsv {
    /// The index of column `name`.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }
}

/// Reads a TSV file: the first line names the columns; blank lines are skipped.
pub fn read_tsv(path: &Path) -> Result<Tsv, BidsError> {
    let text = std::fs::read_to_string(path).map_err(|source| BidsError::Io {
        path: path.to_path_buf(),
        action: "cannot read",
        source,
    })?;
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let columns: Vec<String> = lines
        .next()
        .map(|(_, l)| l.split('\t').map(|c| c.trim().to_string()).collect())
        .ok_or_else(|| BidsError::Sidecar {
            path: path.to_path_buf(),
            reason: "empty (no header line)".into(),
        })?;
    let mut rows = Vec::new();
    for (i, line) in lines {
        let fields: Vec<String> = line.split('\t').map(|f| f.trim().to_string()).collect();
        if fields.len() != columns.len() {
            return Err(BidsError::Sidecar {
                path: path.to_path_buf(),
                reason: format!(
                    "line {}: {} fields, the header has {}",
                    i + 1,
                    fields.len(),
                    columns.len()
                ),
            });
        }
        rows.push(fields);
    }
    Ok(Tsv { columns, rows })
}

/// The sidecar of `data` with `suffix` (`events`, `channels`): same folder and entities.
fn sidecar(data: &Path, suffix: &str) -> Option<PathBuf> {
    let name = data.file_name()?.to_str()?;
    let (entities, _) = name.rsplit_once('_')?;
    Some(data.with_file_name(format!("{entities}_{suffix}.tsv")))
}

/// Applies the BIDS sidecars of `data` (when its name is a BIDS name) to its `recording`:
/// `_events.tsv` replaces the annotations (its `trial_type` is the annotation text; rows whose
/// type is `n/a` are left out), and `_channels.tsv` marks the channels whose `status` is `bad`.
/// A BIDS name with an unknown entity, or a sidecar without the columns it needs, is an error
/// naming the file.
pub fn apply_sidecars(data: &Path, recording: &mut Recording) -> Result<(), BidsError> {
    match Entities::of_file(data) {
        None => return Ok(()),
        Some(entities) => entities?,
    };
    if let Some(path) = sidecar(data, "events").filter(|p| p.is_file()) {
        recording.annotations = events(&path, recording)?;
    }
    if let Some(path) = sidecar(data, "channels").filter(|p| p.is_file()) {
        mark_bad_channels(&path, recording)?;
    }
    Ok(())
}

fn events(path: &Path, recording: &Recording) -> Result<Vec<Annotation>, BidsError> {
    let tsv = read_tsv(path)?;
    let fail = |reason: String| BidsError::Sidecar {
        path: path.to_path_buf(),
        reason,
    };
    let wanted = ["onset", "duration", "trial_type"];
    let missing: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|c| tsv.column(c).is_none())
        .collect();
    let [Some(onset), Some(duration), Some(trial_type)] = wanted.map(|c| tsv.column(c)) else {
        return Err(fail(format!(
            "no {} column (it has {}); events need onset, duration and trial_type",
            missing.join(", "),
            tsv.columns.join(", ")
        )));
    };
    let end = recording.records as f64 * recording.record_duration_s;
    let mut out = Vec::new();
    for (i, row) in tsv.rows.iter().enumerate() {
        let text = row[trial_type].clone();
        if text == "n/a" || text.is_empty() {
            continue;
        }
        let onset_s: f64 = row[onset]
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| {
                fail(format!(
                    "row {}: onset {:?} is not a number",
                    i + 1,
                    row[onset]
                ))
            })?;
        let duration_s = match row[duration].as_str() {
            "n/a" | "" => None,
            d => Some(
                d.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v >= 0.0)
                    .ok_or_else(|| {
                        fail(format!("row {}: duration {d:?} is not a number", i + 1))
                    })?,
            ),
        };
        out.push(Annotation {
            onset_s,
            duration_s,
            text,
            past_end: onset_s > end,
        });
    }
    out.sort_by(|a, b| a.onset_s.total_cmp(&b.onset_s));
    Ok(out)
}

fn mark_bad_channels(path: &Path, recording: &mut Recording) -> Result<(), BidsError> {
    let tsv = read_tsv(path)?;
    let name = tsv.column("name").ok_or_else(|| BidsError::Sidecar {
        path: path.to_path_buf(),
        reason: format!("no name column (it has {})", tsv.columns.join(", ")),
    })?;
    let Some(status) = tsv.column("status") else {
        return Ok(());
    };
    for row in tsv
        .rows
        .iter()
        .filter(|r| r[status].eq_ignore_ascii_case("bad"))
    {
        let bad = row[name].as_str();
        let standard = labels::electrode_name(bad);
        let label =
            recording.channels.iter().map(|c| c.label.trim()).find(|l| {
                *l == bad || (standard.is_some() && labels::electrode_name(l) == standard)
            });
        match label {
            Some(l) if !recording.bads.iter().any(|b| b == l) => recording.bads.push(l.to_string()),
            Some(_) => {}
            None => recording.warnings.push(format!(
                "{}: bad channel {bad:?} is not in the recording",
                path.display()
            )),
        }
    }
    Ok(())
}
