//! EEG-BIDS: file-name entities and the sidecars that refine a recording (`_events.tsv`,
//! `_channels.tsv`); a dataset's recordings become batch jobs in [`crate::batch::bids`].
//!
//! A data file is `sub-<label>[_ses-<label>]_task-<label>[_acq-..][_run-<index>]_eeg.edf|.bdf`
//! under `sub-<label>/[ses-<label>/]eeg/`. Its sidecars sit beside it with the same entities and
//! another suffix. Sidecars higher in the tree (BIDS inheritance) are not read.

mod sidecars;

pub use sidecars::{apply_sidecars, read_tsv, Tsv};

use std::path::{Path, PathBuf};

/// Why a BIDS file or filter cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BidsError {
    /// A file name or filter that breaks the naming rules.
    #[error("{}: {reason}", path.display())]
    Name {
        /// The file (or the filter, as written).
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A sidecar that cannot be read or is missing what it must hold.
    #[error("{}: {reason}", path.display())]
    Sidecar {
        /// The sidecar.
        path: PathBuf,
        /// What is wrong.
        reason: String,
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
}

/// The entities BIDS defines, in the order they appear in file names.
pub const ENTITIES: [&str; 19] = [
    "sub",
    "ses",
    "sample",
    "task",
    "tracksys",
    "acq",
    "nuc",
    "voi",
    "ce",
    "trc",
    "stain",
    "rec",
    "dir",
    "run",
    "mod",
    "echo",
    "flip",
    "inv",
    "recording",
];

/// A file name's entities (key, value) in order, and its suffix (`eeg`, `events` ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entities {
    /// `(key, value)` pairs in file-name order.
    pub pairs: Vec<(String, String)>,
    /// The part after the last entity (`eeg`, `events`, `channels`).
    pub suffix: String,
}

impl Entities {
    /// Parses a BIDS file name (the extension, if any, is ignored). `None` when the name is not
    /// BIDS-like (no `sub-` first); an error when it is, but an entity is unknown or malformed.
    pub fn of_file(path: &Path) -> Option<Result<Entities, BidsError>> {
        let name = path.file_name()?.to_str()?;
        let stem = name.split('.').next().unwrap_or(name);
        if !stem.starts_with("sub-") {
            return None;
        }
        let fail = |reason: String| BidsError::Name {
            path: path.to_path_buf(),
            reason,
        };
        let mut parts: Vec<&str> = stem.split('_').collect();
        let suffix = parts.pop().unwrap_or_default();
        if suffix.contains('-') {
            return Some(Err(fail(format!(
                "no suffix after the entities ({suffix:?})"
            ))));
        }
        Some(
            parse_pairs(&parts)
                .map(|pairs| Entities {
                    pairs,
                    suffix: suffix.to_string(),
                })
                .map_err(fail),
        )
    }

    /// The value of entity `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether every entity of `filter` has the same value here.
    pub fn matches(&self, filter: &[(String, String)]) -> bool {
        filter
            .iter()
            .all(|(k, v)| self.get(k).is_some_and(|mine| same_value(k, mine, v)))
    }
}

/// Run and other index values compare as numbers (`run-01` is `run-1`).
fn same_value(key: &str, a: &str, b: &str) -> bool {
    match (key, a.parse::<u64>(), b.parse::<u64>()) {
        ("run" | "echo" | "flip" | "inv", Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// `key-value` parts, each key a BIDS entity and each value alphanumeric.
fn parse_pairs(parts: &[&str]) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::with_capacity(parts.len());
    for part in parts {
        let (key, value) = part
            .split_once('-')
            .ok_or_else(|| format!("{part:?} is not an entity (key-value)"))?;
        if !ENTITIES.contains(&key) {
            return Err(format!(
                "unknown BIDS entity {key:?} (known: {})",
                ENTITIES.join(", ")
            ));
        }
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(format!(
                "entity {key} has the value {value:?}, not alphanumeric"
            ));
        }
        pairs.push((key.to_string(), value.to_string()));
    }
    Ok(pairs)
}

/// Writes the BIDS-Derivatives `dataset_description.json` of eegadapt's outputs into `out`
/// (kept when present).
pub fn write_derivative_description(out: &Path) -> Result<(), BidsError> {
    let path = out.join("dataset_description.json");
    if path.is_file() {
        return Ok(());
    }
    let io = |action, source| BidsError::Io {
        path: path.clone(),
        action,
        source,
    };
    std::fs::create_dir_all(out).map_err(|e| io("cannot create folder", e))?;
    let description = serde_json::json!({
        "Name": "eegadapt: personalized EEG models",
        "BIDSVersion": "1.9.0",
        "DatasetType": "derivative",
        "GeneratedBy": [{
            "Name": "eegadapt",
            "Version": env!("CARGO_PKG_VERSION"),
            "Description": "per-subject calibration, scores on held-out recordings, predictions and reports"
        }]
    });
    let text =
        serde_json::to_vec_pretty(&description).map_err(|e| io("cannot encode", e.into()))?;
    crate::atomic::write_atomically(
        &path,
        |f| std::io::Write::write_all(f, &text).map_err(|e| io("cannot write", e)),
        io,
    )
}

/// Parses an entity filter as written on the command line (`task-motor_run-1`).
pub fn parse_filter(text: &str) -> Result<Vec<(String, String)>, BidsError> {
    let parts: Vec<&str> = text.split('_').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() {
        return Err(BidsError::Name {
            path: PathBuf::from(text),
            reason: "an empty filter".into(),
        });
    }
    parse_pairs(&parts).map_err(|reason| BidsError::Name {
        path: PathBuf::from(text),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_give_entities_and_suffix() {
        let e = Entities::of_file(Path::new("sub-01_ses-2_task-motor_run-03_eeg.edf"))
            .expect("bids")
            .expect("valid");
        assert_eq!(e.get("sub"), Some("01"));
        assert_eq!(e.get("run"), Some("03"));
        assert_eq!(e.suffix, "eeg");
        assert!(e.matches(&parse_filter("task-motor_run-3").expect("filter")));
        assert!(!e.matches(&parse_filter("task-rest").expect("filter")));
        assert!(!e.matches(&parse_filter("acq-x").expect("filter")));
        assert!(Entities::of_file(Path::new("S001R04.edf")).is_none());
    }

    #[test]
    fn unknown_entities_and_bad_values_are_named() {
        let err = Entities::of_file(Path::new("sub-01_foo-1_task-x_eeg.edf"))
            .expect("bids")
            .expect_err("unknown");
        assert!(
            err.to_string().contains("unknown BIDS entity \"foo\""),
            "{err}"
        );
        assert!(parse_filter("runn-1").is_err());
        assert!(parse_filter("run-1.5").is_err());
        assert!(parse_filter("").is_err());
    }
}
