//! Features of a long recording in bounded memory: its epoch windows, found in the whole file's
//! annotations, are cut from pieces of a few minutes read one at a time, each with a margin of
//! data on both sides so that the zero-phase filters settle before its first window. The rows
//! equal the whole-file path's (to rounding of the filters' tails); memory holds one piece.

use super::extract::{extract_owned, FeatureSet};
use super::{FeatureConfig, FeatureError};
use crate::edf::{ChannelKind, EdfFile, Recording};
use crate::epochs::{task_windows, Window};
use crate::task::{RecordingId, Task};

/// Recordings longer than this (seconds) are processed in pieces.
pub const LONG_RECORDING_S: f64 = 600.0;
/// Seconds of data read on each side of a piece's windows: the filters' settling time, for the
/// slowest band (0.5 Hz, order 4, forward and backward) well below single precision.
pub const PIECE_MARGIN_S: f64 = 20.0;
/// Most seconds spanned by the windows of one piece.
pub const PIECE_S: f64 = 120.0;

/// Whether `outline`'s features can be computed in pieces with `config`: one contiguous
/// segment, every EEG channel at one record layout, no resampling.
pub fn piecewise_possible(outline: &Recording, config: &FeatureConfig) -> bool {
    let mut eeg = outline
        .channels
        .iter()
        .filter(|c| c.kind == ChannelKind::Eeg && !outline.bads.contains(&c.label))
        .map(|c| c.samples_per_record);
    let first = eeg.next();
    outline.segments.len() <= 1
        && config.resample_hz.is_none()
        && first.is_some()
        && eeg.all(|spr| Some(spr) == first)
        && outline.record_duration_s > 0.0
}

/// The features of a long recording, one piece of rows at a time (each item holds the rows of
/// one piece and the table's metadata, its drop log covering that piece). See
/// [`Pieces::new`]; [`extract_in_pieces`] collects them into one table.
pub struct Pieces {
    file: EdfFile,
    outline: Recording,
    id: RecordingId,
    task: Task,
    config: FeatureConfig,
    tmin: f64,
    length: f64,
    groups: std::vec::IntoIter<Vec<Window>>,
    /// Rows produced so far (the next row's epoch index).
    done: usize,
    /// No windows at all: one short piece still gives the table's columns.
    empty: bool,
}

impl Pieces {
    /// The pieces of `file` (whose outline, with any sidecar's events and bad channels, is
    /// `outline`), each with windows spanning at most `piece_s` seconds.
    pub fn new(
        file: EdfFile,
        outline: Recording,
        id: RecordingId,
        task: &Task,
        config: &FeatureConfig,
        piece_s: f64,
    ) -> Self {
        let (tmin, length, mut windows) = task_windows(&outline, &id, task);
        windows.sort_by(|a, b| a.onset_s.total_cmp(&b.onset_s));
        let mut groups: Vec<Vec<Window>> = Vec::new();
        for w in windows {
            match groups.last_mut() {
                Some(g)
                    if g.first()
                        .is_some_and(|f| w.onset_s - f.onset_s + length <= piece_s) =>
                {
                    g.push(w)
                }
                _ => groups.push(vec![w]),
            }
        }
        let empty = groups.is_empty();
        // Opening read every record's annotations: those pages are not needed again.
        file.release(None);
        Pieces {
            file,
            outline,
            id,
            task: task.clone(),
            config: config.clone(),
            tmin,
            length,
            groups: groups.into_iter(),
            done: 0,
            empty,
        }
    }

    /// Records holding `from_s..to_s` and the margins around it.
    fn records(&self, from_s: f64, to_s: f64) -> std::ops::Range<usize> {
        let (rd, n) = (self.outline.record_duration_s, self.outline.records);
        let first = ((from_s - PIECE_MARGIN_S).max(0.0) / rd).floor() as usize;
        let end = (((to_s + PIECE_MARGIN_S) / rd).ceil().max(0.0) as usize).min(n);
        first..end.max(first + 1).min(n.max(1))
    }

    fn piece(&self, records: std::ops::Range<usize>) -> Result<Recording, FeatureError> {
        let mut piece = self.file.records_as_recording(records)?;
        // The decoded copy is all that is needed: the file's pages leave resident memory (all
        // of them: the kernel maps pages around each one read, beyond the piece).
        self.file.release(None);
        piece.bads = self.outline.bads.clone();
        Ok(piece)
    }

    fn next_set(&mut self, group: Vec<Window>) -> Result<FeatureSet, FeatureError> {
        let (Some(first), Some(last)) = (group.first(), group.last()) else {
            return Err(FeatureError::Config("an empty piece".into()));
        };
        let range = self.records(
            first.onset_s + self.tmin,
            last.onset_s + self.tmin + self.length,
        );
        let offset = range.start as f64 * self.outline.record_duration_s;
        let piece = self.piece(range)?;
        let shifted: Vec<Window> = group
            .iter()
            .map(|w| Window {
                onset_s: w.onset_s - offset,
                ..w.clone()
            })
            .collect();
        let mut part = extract_owned(piece, &self.id, &self.task, &self.config, Some(&shifted))?;
        // Back to the whole recording's times, exactly as its windows had them.
        let original = |t: f64| {
            shifted
                .iter()
                .zip(&group)
                .find(|(s, _)| s.onset_s == t)
                .map_or(t + offset, |(_, w)| w.onset_s)
        };
        for (k, row) in part.rows.iter_mut().enumerate() {
            row.onset_s = original(row.onset_s);
            row.epoch = self.done + k;
        }
        for dropped in &mut part.meta.drop_log {
            dropped.onset_s = original(dropped.onset_s);
        }
        self.done += part.rows.len();
        part.meta.bad_channels = self.outline.bads.clone();
        Ok(part)
    }
}

impl Iterator for Pieces {
    type Item = Result<FeatureSet, FeatureError>;

    fn next(&mut self) -> Option<Self::Item> {
        if std::mem::take(&mut self.empty) {
            let set = self.piece(self.records(0.0, 0.0)).and_then(|piece| {
                let mut set = extract_owned(piece, &self.id, &self.task, &self.config, Some(&[]))?;
                set.meta.bad_channels = self.outline.bads.clone();
                Ok(set)
            });
            return Some(set);
        }
        let group = self.groups.next()?;
        Some(self.next_set(group))
    }
}

/// All the pieces (of [`Pieces`]) as one table.
pub fn extract_in_pieces(
    pieces: impl Iterator<Item = Result<FeatureSet, FeatureError>>,
) -> Result<FeatureSet, FeatureError> {
    let mut whole: Option<FeatureSet> = None;
    for part in pieces {
        let mut part = part?;
        match &mut whole {
            None => whole = Some(part),
            Some(w) => {
                w.rows.append(&mut part.rows);
                w.meta.drop_log.append(&mut part.meta.drop_log);
            }
        }
    }
    whole.ok_or_else(|| FeatureError::Config("no piece was read".into()))
}
