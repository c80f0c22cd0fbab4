//! From a file to its features: read whole, or in pieces when it is long (see
//! [`super::pieces`]), with its BIDS sidecars applied.

use std::path::Path;

use super::extract::{extract_owned, FeatureSet, SourceFile};
use super::pieces::{extract_in_pieces, piecewise_possible, Pieces, LONG_RECORDING_S, PIECE_S};
use super::{FeatureConfig, FeatureError};
use crate::edf::{self, Recording};
use crate::task::{RecordingId, Task};

/// Reads an EDF/BDF file and computes its features; `sha256` (of the file's bytes, computed by
/// the caller, who usually needs it first to decide whether to skip the file) goes in the
/// metadata.
pub fn features_from_file(
    path: &Path,
    sha256: &str,
    task: &Task,
    config: &FeatureConfig,
) -> Result<FeatureSet, FeatureError> {
    match pieces_of_file(path, sha256, task, config)? {
        Pieced::Pieces(pieces) => extract_in_pieces(pieces),
        Pieced::Whole(set) => Ok(*set),
    }
}

fn source_file(path: &Path, sha256: &str) -> SourceFile {
    SourceFile {
        name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        sha256: sha256.to_string(),
    }
}

/// The features of a recording read whole, or the pieces of a long one's.
pub enum Pieced {
    /// Read whole (any sidecars applied): its features.
    Whole(Box<FeatureSet>),
    /// Too long to hold: its pieces, each part naming the file as its source.
    Pieces(Box<dyn Iterator<Item = Result<FeatureSet, FeatureError>> + Send>),
}

/// The features of a recording: computed from the whole of it, or, when it lasts longer than
/// [`LONG_RECORDING_S`] and [`piecewise_possible`], as pieces still to compute, one at a time
/// (bounded memory).
pub fn pieces_of_file(
    path: &Path,
    sha256: &str,
    task: &Task,
    config: &FeatureConfig,
) -> Result<Pieced, FeatureError> {
    pieces_of_file_with(path, task, config, || Ok(sha256.to_string()))
}

/// [`pieces_of_file`] for a caller whose hash of the file may still be in the making (on another
/// thread): `sha256` is called once, only when the hash is needed, which for a recording read
/// whole is after its features are computed.
pub fn pieces_of_file_with<E: From<FeatureError>>(
    path: &Path,
    task: &Task,
    config: &FeatureConfig,
    sha256: impl FnOnce() -> Result<String, E>,
) -> Result<Pieced, E> {
    let file = edf::open(path).map_err(FeatureError::from)?;
    let mut outline = file.outline();
    // A BIDS recording's events and bad channels come from its sidecars.
    crate::bids::apply_sidecars(path, &mut outline).map_err(FeatureError::from)?;
    if outline.duration_s() > LONG_RECORDING_S && piecewise_possible(&outline, config) {
        let id = RecordingId::from_path(path);
        let source = source_file(path, &sha256()?);
        let pieces = Pieces::new(file, outline, id, task, config, PIECE_S).map(move |part| {
            part.map(|mut set| {
                set.meta.sources = vec![source.clone()];
                set
            })
        });
        return Ok(Pieced::Pieces(Box::new(pieces)));
    }
    let recording = Recording {
        data: file.read_all().map_err(FeatureError::from)?,
        ..outline
    };
    let id = RecordingId::from_path(path);
    let mut set = extract_owned(recording, &id, task, config, None)?;
    set.meta.sources = vec![source_file(path, &sha256()?)];
    Ok(Pieced::Whole(Box::new(set)))
}
