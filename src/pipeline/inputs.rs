//! Input files and their feature tables.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::PipelineError;
use crate::align::{select_channels, RowLayout};
use crate::atomic::Committer;
use crate::features::{
    config_hash, features_from_file, pieces_of_file, pieces_of_file_with, FeatureConfig,
    FeatureError, FeatureSet, Pieced,
};
use crate::pretrain::heads_of;
use crate::store;
use crate::task::{RecordingId, Task};

/// True for feature tables (inputs that `pretrain` reads instead of recomputing).
pub fn is_parquet(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
}

/// Files as given, folders searched recursively for EDF/BDF (and .parquet tables), sorted; the
/// same recording name twice is refused, since both would write the same output file.
pub fn collect_inputs(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, PipelineError> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            walk(input, &mut files)
                .map_err(|e| PipelineError::io(input, "cannot list folder", e))?;
        } else {
            files.push(input.clone());
        }
    }
    files.sort();
    files.dedup();
    let mut seen: HashMap<String, &Path> = HashMap::new();
    for f in &files {
        let stem = RecordingId::from_path(f).recording;
        if let Some(previous) = seen.insert(stem.clone(), f) {
            return Err(PipelineError::Refused(format!(
                "{} and {} share the name {stem:?} and would overwrite each other's features",
                previous.display(),
                f.display()
            )));
        }
    }
    Ok(files)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if path.extension().is_some_and(|e| {
            e.eq_ignore_ascii_case("edf")
                || e.eq_ignore_ascii_case("bdf")
                || e.eq_ignore_ascii_case("parquet")
        }) {
            out.push(path);
        }
    }
    Ok(())
}

/// The features of one recording for `task`, the error naming the file.
fn features_of_file(
    file: &Path,
    task: &Task,
    config: &FeatureConfig,
) -> Result<FeatureSet, PipelineError> {
    let sha = store::sha256_file(file)?;
    features_from_file(file, &sha, task, config).map_err(|e| PipelineError::from(e).in_file(file))
}

/// Features of each file for `task` (in parallel, on the current rayon pool), each result naming
/// its file on error.
pub fn features_of(
    files: &[PathBuf],
    task: &Task,
    config: &FeatureConfig,
) -> Vec<Result<FeatureSet, PipelineError>> {
    files
        .par_iter()
        .map(|file| features_of_file(file, task, config))
        .collect()
}

/// What [`feature_table`] did with one recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableOutcome {
    /// A new table was written.
    Written,
    /// The table on disk was built from the same bytes with the same settings: kept.
    UpToDate,
    /// The recording is not one of the task's runs: skipped.
    NotInTask,
}

/// Writes the feature table of `file` for `task` under `out` (`<recording>.parquet` and its JSON
/// sidecar, or `rec-<hash prefix>` names when `deidentify`), unless an up-to-date one is there.
/// `hash` is [`config_hash`] of `config` and `task`. With `commits`, a whole-file table is synced
/// and renamed into place by that committer (see [`Committer`]), not before this returns.
pub fn feature_table(
    file: &Path,
    task: &Task,
    config: &FeatureConfig,
    hash: &str,
    out: &Path,
    deidentify: bool,
    commits: Option<&Committer>,
) -> Result<TableOutcome, PipelineError> {
    let id = RecordingId::from_path(file);
    if !task.includes(&id) {
        return Ok(TableOutcome::NotInTask);
    }
    let in_file = |e: FeatureError| PipelineError::from(e).in_file(file);
    let named = out.join(format!("{}.parquet", id.recording));
    let (parquet, pieced) = if deidentify || named.is_file() {
        // The hash comes first: it names a de-identified table, and decides whether a table
        // already there is up to date.
        let sha = store::sha256_file(file)?;
        let parquet = if deidentify {
            out.join(format!("rec-{}.parquet", sha.get(..16).unwrap_or(&sha)))
        } else {
            named
        };
        if store::is_up_to_date(&parquet, hash, &sha) {
            return Ok(TableOutcome::UpToDate);
        }
        let pieced = pieces_of_file(file, &sha, task, config).map_err(in_file)?;
        (parquet, pieced)
    } else {
        // No table to compare with: the hash is needed only in the metadata.
        (named, pieces_hashed_beside(file, task, config)?)
    };
    match pieced {
        Pieced::Whole(mut set) => {
            if deidentify {
                store::deidentify(&mut set);
            }
            store::write_feature_set_via(&parquet, &set, commits)?;
        }
        // A long recording goes to disk piece by piece: memory holds one piece.
        Pieced::Pieces(parts) => {
            let parts = parts.map(|part| part.map_err(in_file));
            store::write_feature_parts(&parquet, parts, |set| {
                if deidentify {
                    store::deidentify(set)
                }
            })?;
        }
    }
    Ok(TableOutcome::Written)
}

/// [`pieces_of_file`] with the file's SHA-256 computed on a second thread while this one reads
/// and computes (the bytes are read twice either way), for a caller that needs the hash only in
/// the metadata.
fn pieces_hashed_beside(
    file: &Path,
    task: &Task,
    config: &FeatureConfig,
) -> Result<Pieced, PipelineError> {
    std::thread::scope(|scope| {
        let hashing = scope.spawn(|| store::sha256_file(file));
        pieces_of_file_with(file, task, config, || match hashing.join() {
            Ok(sha) => Ok(sha?),
            Err(panic) => std::panic::resume_unwind(panic),
        })
    })
    .map_err(|e: PipelineError| e.in_file(file))
}

/// Feature tables for every task, tagged with the task's head index: read from .parquet inputs,
/// or computed from EDF/BDF (cached under `<cache_root>/<task>/`, reused when up to date).
/// A recording that fails is passed to `on_skip` and left out; none at all is an error.
pub fn load_features(
    data: &[PathBuf],
    tasks: &[Task],
    config: &FeatureConfig,
    cache_root: &Path,
    on_skip: &(dyn Fn(&PipelineError) + Sync),
) -> Result<Vec<(usize, FeatureSet)>, PipelineError> {
    let files = collect_inputs(data)?;
    let (_, head_index) = heads_of(tasks)?;
    let mut sets = Vec::new();
    for (task, head) in tasks.iter().zip(head_index) {
        let hash = config_hash(config, task);
        let cache = cache_root.join(&task.name);
        std::fs::create_dir_all(&cache)
            .map_err(|e| PipelineError::io(&cache, "cannot create folder", e))?;
        let results: Vec<Result<Option<FeatureSet>, PipelineError>> = files
            .par_iter()
            .map(|file| {
                cached_table(file, task, config, &hash, &cache).map_err(|e| match e {
                    e @ PipelineError::File { .. } => e,
                    e => e.in_file(file),
                })
            })
            .collect();
        for r in results {
            match r {
                Ok(Some(set)) if !set.rows.is_empty() => sets.push((head, set)),
                Ok(_) => {}
                Err(e) => on_skip(&e),
            }
        }
    }
    if sets.is_empty() {
        return Err(PipelineError::Refused(format!(
            "no recordings of tasks {:?} in {:?}",
            tasks.iter().map(|t| &t.name).collect::<Vec<_>>(),
            data.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
        )));
    }
    Ok(sets)
}

fn cached_table(
    file: &Path,
    task: &Task,
    config: &FeatureConfig,
    hash: &str,
    cache: &Path,
) -> Result<Option<FeatureSet>, PipelineError> {
    if is_parquet(file) {
        let meta = store::read_meta(file)?;
        if meta.task.name != task.name {
            return Ok(None);
        }
        return Ok(Some(store::read_feature_set_expecting(file, hash)?));
    }
    let id = RecordingId::from_path(file);
    if !task.includes(&id) {
        return Ok(None);
    }
    let sha = store::sha256_file(file)?;
    let cached = cache.join(format!("{}.parquet", id.recording));
    if store::is_up_to_date(&cached, hash, &sha) {
        return Ok(Some(store::read_feature_set(&cached)?));
    }
    let set = features_from_file(file, &sha, task, config)?;
    store::write_feature_set(&cached, &set)?;
    Ok(Some(set))
}

/// Keeps only `names` (standard names, any case) of a feature set, in the set's order.
pub fn pick_channels(set: &mut FeatureSet, names: &[String]) -> Result<(), PipelineError> {
    let layout = RowLayout::of(&set.meta);
    let keep: Vec<usize> = (0..set.meta.channels.len())
        .filter(|&i| {
            names
                .iter()
                .any(|n| n.trim().eq_ignore_ascii_case(&set.meta.channels[i]))
        })
        .collect();
    if keep.len() != names.len() {
        let missing: Vec<&String> = names
            .iter()
            .filter(|n| {
                !set.meta
                    .channels
                    .iter()
                    .any(|c| c.eq_ignore_ascii_case(n.trim()))
            })
            .collect();
        return Err(PipelineError::Refused(format!(
            "{}: no channel {missing:?}",
            set.meta
                .sources
                .first()
                .map_or("a feature table", |s| s.name.as_str())
        )));
    }
    for row in &mut set.rows {
        *row = select_channels(row, layout, &keep);
    }
    set.meta.channels = keep.iter().map(|&i| set.meta.channels[i].clone()).collect();
    Ok(())
}

/// Keeps only the channels of `set` that are in `vocabulary` (in the set's order), so that
/// covariances and their tangent vectors are computed over exactly the channels a model reads.
pub fn keep_vocabulary(set: &mut FeatureSet, vocabulary: &[String]) -> Result<(), PipelineError> {
    let names: Vec<String> = set
        .meta
        .channels
        .iter()
        .filter(|c| vocabulary.contains(c))
        .cloned()
        .collect();
    if names.len() == set.meta.channels.len() {
        return Ok(());
    }
    if names.is_empty() {
        return Err(PipelineError::Refused(format!(
            "none of its channels ({}) is one the model reads ({})",
            set.meta.channels.join(", "),
            vocabulary.join(", ")
        )));
    }
    pick_channels(set, &names)
}
