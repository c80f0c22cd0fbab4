//! Choosing channels of a recording by kind and by name.

use crate::edf::{Channel, ChannelKind, Recording};

use super::error::{PreprocessError, Result};

/// Which channels to keep: those of any of `kinds`, plus those named in `names` (label as
/// written or normalized 10-05 name, case-insensitive). Channels keep the recording's order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Picks {
    /// Channel kinds to keep.
    pub kinds: Vec<ChannelKind>,
    /// Channel labels or normalized names to keep; each must be found.
    pub names: Vec<String>,
}

impl Picks {
    /// Every channel of the given kinds.
    pub fn kinds(kinds: impl IntoIterator<Item = ChannelKind>) -> Self {
        Self {
            kinds: kinds.into_iter().collect(),
            names: Vec::new(),
        }
    }

    /// The named channels.
    pub fn names<S: Into<String>>(names: impl IntoIterator<Item = S>) -> Self {
        Self {
            kinds: Vec::new(),
            names: names.into_iter().map(Into::into).collect(),
        }
    }

    /// These picks plus the named channels.
    pub fn and_names<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.names.extend(names.into_iter().map(Into::into));
        self
    }
}

/// True when `name` is the channel's label (trimmed) or its normalized name, ignoring case.
pub(crate) fn matches_name(channel: &Channel, name: &str) -> bool {
    let name = name.trim();
    channel.label.trim().eq_ignore_ascii_case(name)
        || channel
            .name
            .as_deref()
            .is_some_and(|n| n.eq_ignore_ascii_case(name))
}

/// Indices of the channels `picks` selects, in recording order; errors naming every requested
/// name that matches no channel.
pub fn pick_indices(recording: &Recording, picks: &Picks) -> Result<Vec<usize>> {
    let missing: Vec<String> = picks
        .names
        .iter()
        .filter(|n| !recording.channels.iter().any(|c| matches_name(c, n)))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(PreprocessError::MissingChannels(missing));
    }
    Ok(recording
        .channels
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            picks.kinds.contains(&c.kind) || picks.names.iter().any(|n| matches_name(c, n))
        })
        .map(|(i, _)| i)
        .collect())
}

/// A copy of `recording` with only the channels `picks` selects (and their data and bad marks).
pub fn pick_channels(recording: &Recording, picks: &Picks) -> Result<Recording> {
    let keep = pick_indices(recording, picks)?;
    let channels: Vec<Channel> = keep
        .iter()
        .filter_map(|&i| recording.channels.get(i).cloned())
        .collect();
    let bads = recording
        .bads
        .iter()
        .filter(|b| channels.iter().any(|c| c.label == **b))
        .cloned()
        .collect();
    // Field by field, so that the unpicked channels' samples are never copied.
    Ok(Recording {
        source: recording.source.clone(),
        format: recording.format,
        start: recording.start,
        identity: recording.identity.clone(),
        record_duration_s: recording.record_duration_s,
        records: recording.records,
        channels,
        data: keep
            .iter()
            .filter_map(|&i| recording.data.get(i).cloned())
            .collect(),
        annotations: recording.annotations.clone(),
        segments: recording.segments.clone(),
        warnings: recording.warnings.clone(),
        bads,
    })
}
