//! The in-memory recording produced by the reader, and the types it is made of.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

/// File format, as told by the first byte and the reserved header field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Format {
    /// Plain EDF (1992): no annotations, records assumed contiguous.
    #[serde(rename = "EDF")]
    Edf,
    /// EDF+ with contiguous data records.
    #[serde(rename = "EDF+C")]
    EdfPlusC,
    /// EDF+ with possibly discontinuous data records.
    #[serde(rename = "EDF+D")]
    EdfPlusD,
    /// BioSemi BDF (24-bit samples).
    #[serde(rename = "BDF")]
    Bdf,
    /// BDF+ with contiguous data records.
    #[serde(rename = "BDF+C")]
    BdfPlusC,
    /// BDF+ with possibly discontinuous data records.
    #[serde(rename = "BDF+D")]
    BdfPlusD,
}

impl Format {
    /// Bytes per sample: 2 for EDF, 3 for BDF.
    pub fn bytes_per_sample(self) -> usize {
        match self {
            Format::Edf | Format::EdfPlusC | Format::EdfPlusD => 2,
            Format::Bdf | Format::BdfPlusC | Format::BdfPlusD => 3,
        }
    }

    /// True for the EDF+/BDF+ variants, which carry annotations and record times.
    pub fn is_plus(self) -> bool {
        !matches!(self, Format::Edf | Format::Bdf)
    }

    /// True for the variants whose records may have gaps between them.
    pub fn is_discontinuous(self) -> bool {
        matches!(self, Format::EdfPlusD | Format::BdfPlusD)
    }

    /// The name used in reports: `EDF`, `EDF+C`, `EDF+D`, `BDF`, `BDF+C` or `BDF+D`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Edf => "EDF",
            Format::EdfPlusC => "EDF+C",
            Format::EdfPlusD => "EDF+D",
            Format::Bdf => "BDF",
            Format::BdfPlusC => "BDF+C",
            Format::BdfPlusD => "BDF+D",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Start of the recording: the header's date and time plus the sub-second offset of the first
/// data record (EDF+ time-keeping annotation).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StartTime {
    /// Four-digit year.
    pub year: u16,
    /// Month, 1-12.
    pub month: u8,
    /// Day of month, 1-31.
    pub day: u8,
    /// Hour, 0-23.
    pub hour: u8,
    /// Minute, 0-59.
    pub minute: u8,
    /// Second, 0-59.
    pub second: u8,
    /// Fraction of a second in [0, 1).
    pub subsecond: f64,
}

impl fmt::Display for StartTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )?;
        if self.subsecond > 0.0 {
            let digits = format!("{:.7}", self.subsecond);
            write!(
                f,
                "{}",
                digits.trim_start_matches('0').trim_end_matches('0')
            )?;
        }
        Ok(())
    }
}

/// Identifying header text, kept apart from the signals so that it can be withheld.
///
/// Never log these fields; print them only when the user asks for them explicitly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// The 80-character local patient identification field, trimmed.
    pub patient: String,
    /// The 80-character local recording identification field, trimmed.
    pub recording: String,
}

impl Identity {
    /// Patient name (4th EDF+ subfield, underscores as spaces), if the field follows EDF+.
    pub fn patient_name(&self) -> Option<String> {
        self.patient_subfield(3).map(|s| s.replace('_', " "))
    }

    /// Birth date (3rd EDF+ subfield, `dd-MMM-yyyy`), if present.
    pub fn birth_date(&self) -> Option<String> {
        self.patient_subfield(2).map(str::to_string)
    }

    fn patient_subfield(&self, index: usize) -> Option<&str> {
        self.patient
            .split(' ')
            .filter(|s| !s.is_empty())
            .nth(index)
            .filter(|s| *s != "X")
    }
}

/// What a channel measures, guessed from its label (and the type prefix EDF+ recommends).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    /// Electroencephalogram.
    Eeg,
    /// Electro-oculogram.
    Eog,
    /// Electromyogram.
    Emg,
    /// Electrocardiogram.
    Ecg,
    /// Trigger, status or stimulus channel (event codes, not a physiological signal).
    Stim,
    /// EDF+/BDF+ annotation signal.
    Annotation,
    /// Anything else (respiration, SpO2, temperature, unknown).
    Other,
}

/// One signal of the file as described by its header.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Channel {
    /// The label as written in the file (trailing spaces trimmed).
    pub label: String,
    /// The standard 10-05 electrode name this label refers to (`C3..` -> `C3`,
    /// `EEG Fp1-REF` -> `Fp1`, `T3` -> `T7`), if any.
    pub name: Option<String>,
    /// What the channel measures.
    pub kind: ChannelKind,
    /// Physical dimension as written (e.g. `uV`).
    pub unit: String,
    /// Transducer type field.
    pub transducer: String,
    /// Prefiltering field.
    pub prefilter: String,
    /// Samples per second.
    pub sampling_rate_hz: f64,
    /// Samples in each data record.
    pub samples_per_record: usize,
    /// Samples in the file (over all complete data records).
    pub samples: usize,
    /// Physical minimum.
    pub physical_min: f64,
    /// Physical maximum.
    pub physical_max: f64,
    /// Digital minimum.
    pub digital_min: i32,
    /// Digital maximum.
    pub digital_max: i32,
}

impl Channel {
    /// Gain and offset of the digital -> physical map `physical = gain * digital + offset`.
    ///
    /// A degenerate range (digital or physical minimum equal to its maximum) maps digital values
    /// unchanged; the reader warns about it.
    pub fn scaling(&self) -> (f64, f64) {
        let digital_span = f64::from(self.digital_max) - f64::from(self.digital_min);
        let physical_span = self.physical_max - self.physical_min;
        if digital_span == 0.0 || physical_span == 0.0 || !physical_span.is_finite() {
            return (1.0, 0.0);
        }
        let gain = physical_span / digital_span;
        (gain, self.physical_min - gain * f64::from(self.digital_min))
    }
}

/// One annotation (EDF+ TAL entry).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Annotation {
    /// Seconds from the start of the first data record.
    pub onset_s: f64,
    /// Duration in seconds, when the file gives one.
    pub duration_s: Option<f64>,
    /// The annotation text (UTF-8).
    pub text: String,
    /// True when the onset lies after the end of the recorded data; such annotations are kept.
    pub past_end: bool,
}

/// A run of contiguous data records. EDF+D files can have several, with gaps between them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Segment {
    /// Seconds from the start of the first data record.
    pub onset_s: f64,
    /// Length in seconds.
    pub duration_s: f64,
    /// Index of the segment's first data record.
    pub first_record: usize,
    /// Number of data records in the segment.
    pub records: usize,
}

impl Segment {
    /// Seconds from the start of the first record to the end of this segment.
    pub fn end_s(&self) -> f64 {
        self.onset_s + self.duration_s
    }
}

/// A decoded recording: header, channels, samples in physical units, annotations and segments.
///
/// Samples of channel `i` are `data[i]`, concatenated over all data records; where the file has
/// gaps (EDF+D), `segments` says which samples belong to which stretch of time. Nothing is joined
/// or padded silently.
#[derive(Debug, Clone)]
pub struct Recording {
    /// The file it was read from.
    pub source: PathBuf,
    /// File format.
    pub format: Format,
    /// Start of the first data record, if the header date is valid.
    pub start: Option<StartTime>,
    /// Patient and recording identification, kept apart so they can be withheld.
    pub identity: Identity,
    /// Duration of one data record in seconds.
    pub record_duration_s: f64,
    /// Number of complete data records read.
    pub records: usize,
    /// Data channels (annotation signals excluded).
    pub channels: Vec<Channel>,
    /// Samples per channel, in the channel's physical unit.
    pub data: Vec<Vec<f32>>,
    /// Annotations from every annotation signal, sorted by onset.
    pub annotations: Vec<Annotation>,
    /// Runs of contiguous records.
    pub segments: Vec<Segment>,
    /// Deviations from the specification that were tolerated.
    pub warnings: Vec<String>,
    /// Labels of channels marked bad (kept in `channels`, excluded from the average reference).
    pub bads: Vec<String>,
}

impl Recording {
    /// A copy with `data` for samples: everything else cloned, the old samples not copied.
    pub fn with_data(&self, data: Vec<Vec<f32>>) -> Recording {
        Recording {
            source: self.source.clone(),
            format: self.format,
            start: self.start,
            identity: self.identity.clone(),
            record_duration_s: self.record_duration_s,
            records: self.records,
            channels: self.channels.clone(),
            data,
            annotations: self.annotations.clone(),
            segments: self.segments.clone(),
            warnings: self.warnings.clone(),
            bads: self.bads.clone(),
        }
    }

    /// Seconds of recorded data (records x record duration; gaps not counted).
    pub fn duration_s(&self) -> f64 {
        self.records as f64 * self.record_duration_s
    }

    /// One contiguous recording of `parts` played one after the other (a long test recording
    /// from short real ones): samples appended, annotations shifted by the time before their
    /// part, header and identity of the first. `None` when the parts' channels (labels, rates,
    /// samples per record) or record durations differ, when a part has gaps, or when there are
    /// no parts.
    pub fn concatenate(parts: &[Recording]) -> Option<Recording> {
        let first = parts.first()?;
        let same = |r: &Recording| {
            r.record_duration_s == first.record_duration_s
                && r.segments.len() <= 1
                && r.channels.len() == first.channels.len()
                && r.channels.iter().zip(&first.channels).all(|(a, b)| {
                    a.label == b.label
                        && a.samples_per_record == b.samples_per_record
                        && a.sampling_rate_hz == b.sampling_rate_hz
                })
        };
        if !parts.iter().all(same) {
            return None;
        }
        let mut whole = first.clone();
        whole.annotations.clear();
        for d in &mut whole.data {
            d.clear();
        }
        let mut offset = 0.0;
        for part in parts {
            for (d, x) in whole.data.iter_mut().zip(&part.data) {
                d.extend_from_slice(x);
            }
            whole
                .annotations
                .extend(part.annotations.iter().map(|a| Annotation {
                    onset_s: a.onset_s + offset,
                    ..a.clone()
                }));
            offset += part.duration_s();
        }
        whole.records = parts.iter().map(|p| p.records).sum();
        for (c, d) in whole.channels.iter_mut().zip(&whole.data) {
            c.samples = d.len();
        }
        whole.segments = vec![Segment {
            onset_s: 0.0,
            duration_s: whole.duration_s(),
            first_record: 0,
            records: whole.records,
        }];
        Some(whole)
    }

    /// Index of the first channel whose label (as written, trimmed) or normalized name equals
    /// `name`, ignoring case.
    pub fn channel_index(&self, name: &str) -> Option<usize> {
        self.channels.iter().position(|c| {
            c.label.eq_ignore_ascii_case(name)
                || c.name
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
    }
}
