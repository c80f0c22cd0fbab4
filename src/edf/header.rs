//! The fixed-size EDF/BDF header: parsing, validation and the tolerated deviations.
//!
//! Layout (EDF specification, 1992; EDF+ 2003; BioSemi BDF): 256 bytes of fixed fields, then
//! 256 bytes per signal stored field by field (all labels, then all transducers, ...).

use std::path::Path;

use super::error::{EdfError, Result};
use super::labels;
use super::recording::{Channel, Format, Identity, StartTime};

/// Size of the fixed part of the header.
pub const FIXED_HEADER_BYTES: usize = 256;
/// Header bytes per signal.
pub const SIGNAL_HEADER_BYTES: usize = 256;

/// Per-signal field widths, in the order they are stored.
const SIGNAL_FIELDS: [(&str, usize); 10] = [
    ("label", 16),
    ("transducer", 80),
    ("physical_dimension", 8),
    ("physical_min", 8),
    ("physical_max", 8),
    ("digital_min", 8),
    ("digital_max", 8),
    ("prefiltering", 80),
    ("samples_per_record", 8),
    ("reserved", 32),
];

/// A parsed and validated header. Signals include annotation signals.
#[derive(Debug, Clone)]
pub struct Header {
    /// File format.
    pub format: Format,
    /// Identifying text fields.
    pub identity: Identity,
    /// Start date and time from the header (sub-second part still 0).
    pub start: Option<StartTime>,
    /// Bytes before the first data record.
    pub header_bytes: usize,
    /// Data records announced by the header (`None` when it says -1, i.e. unknown).
    pub declared_records: Option<usize>,
    /// Duration of a data record in seconds.
    pub record_duration_s: f64,
    /// All signals, annotation signals included.
    pub signals: Vec<Channel>,
    /// Deviations that were tolerated.
    pub warnings: Vec<String>,
}

impl Header {
    /// Indices of the annotation signals.
    pub fn annotation_signals(&self) -> Vec<usize> {
        self.signals
            .iter()
            .enumerate()
            .filter(|(_, s)| labels::is_annotation_label(&s.label))
            .map(|(i, _)| i)
            .collect()
    }
}

/// Reads header fields from a byte slice, collecting warnings and naming the file in errors.
struct FieldReader<'a> {
    path: &'a Path,
    bytes: &'a [u8],
    warnings: Vec<String>,
}

impl<'a> FieldReader<'a> {
    fn raw(&self, start: usize, len: usize) -> &'a [u8] {
        // Callers check the header length first; an empty slice is the safe fallback.
        self.bytes.get(start..start + len).unwrap_or(&[])
    }

    /// Text of a field: bytes as Latin-1 (EDF headers are ASCII; Latin-1 never fails).
    fn text(&self, start: usize, len: usize) -> String {
        self.raw(start, len)
            .iter()
            .map(|&b| char::from(b))
            .collect()
    }

    fn error(&self, field: &str, value: &str, reason: impl Into<String>) -> EdfError {
        EdfError::Field {
            path: self.path.to_path_buf(),
            field: field.to_string(),
            value: value.escape_debug().to_string(),
            reason: reason.into(),
        }
    }

    /// A numeric field: trailing spaces are normal, leading spaces are tolerated with a warning.
    fn number_text(&mut self, field: &str, raw: &str) -> Result<String> {
        let trimmed = raw.trim_end_matches([' ', '\0']);
        let value = trimmed.trim_start();
        if value.is_empty() {
            return Err(self.error(field, raw, "empty numeric field"));
        }
        if value.len() != trimmed.len() {
            self.warnings.push(format!(
                "header field `{field}` has leading spaces ({raw:?})"
            ));
        }
        Ok(value.to_string())
    }

    fn integer(&mut self, field: &str, raw: &str) -> Result<i64> {
        let value = self.number_text(field, raw)?;
        let value = value.strip_prefix('+').unwrap_or(&value);
        value
            .parse::<i64>()
            .map_err(|_| self.error(field, raw, "not an integer"))
    }

    fn float(&mut self, field: &str, raw: &str) -> Result<f64> {
        let value = self.number_text(field, raw)?;
        match value.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(self.error(field, raw, "not a finite number")),
        }
    }
}

/// Parses and validates the header of a file of `file_len` bytes whose first bytes are `bytes`.
///
/// Validates every count against the file size before anything is allocated from it.
pub fn parse_header(path: &Path, bytes: &[u8], file_len: u64) -> Result<Header> {
    let mut r = FieldReader {
        path,
        bytes,
        warnings: Vec::new(),
    };
    if bytes.len() < FIXED_HEADER_BYTES {
        return Err(EdfError::Truncated {
            path: path.to_path_buf(),
            reason: format!(
                "{} bytes, shorter than the {FIXED_HEADER_BYTES}-byte fixed header",
                bytes.len()
            ),
        });
    }
    let is_bdf = bytes[0] == 0xFF;
    let version = r.text(0, 8);
    if is_bdf {
        if &bytes[1..8] != b"BIOSEMI" {
            r.warnings.push(format!(
                "BDF version field is {version:?}, expected \"\\xffBIOSEMI\""
            ));
        }
    } else if version.trim() != "0" {
        return Err(EdfError::NotEdf {
            path: path.to_path_buf(),
            reason: format!(
                "version field is {:?}, expected \"0\" (EDF) or \"\\xffBIOSEMI\" (BDF)",
                version.escape_debug().to_string()
            ),
        });
    }
    let identity = Identity {
        patient: r.text(8, 80).trim().to_string(),
        recording: r.text(88, 80).trim().to_string(),
    };
    let reserved = r.text(192, 44);
    let format = format_of(is_bdf, &reserved);

    let ns_raw = r.text(252, 4);
    let ns = r.integer("ns", &ns_raw)?;
    let max_ns = (file_len.saturating_sub(FIXED_HEADER_BYTES as u64)) / SIGNAL_HEADER_BYTES as u64;
    if ns <= 0 {
        return Err(r.error("ns", &ns_raw, "a file needs at least one signal"));
    }
    if ns as u64 > max_ns {
        return Err(r.error(
            "ns",
            &ns_raw,
            format!("{ns} signal headers need more bytes than the file's {file_len}"),
        ));
    }
    let ns = ns as usize;
    let header_bytes = FIXED_HEADER_BYTES + ns * SIGNAL_HEADER_BYTES;
    if bytes.len() < header_bytes {
        return Err(EdfError::Truncated {
            path: path.to_path_buf(),
            reason: format!("header of {ns} signals needs {header_bytes} bytes"),
        });
    }
    let header_bytes_raw = r.text(184, 8);
    let declared_header_bytes = r.integer("header_bytes", &header_bytes_raw)?;
    if declared_header_bytes != header_bytes as i64 {
        return Err(r.error(
            "header_bytes",
            &header_bytes_raw,
            format!("ns = {ns} signals need a header of exactly {header_bytes} bytes"),
        ));
    }

    let records_raw = r.text(236, 8);
    let declared_records = match r.integer("n_records", &records_raw)? {
        -1 => {
            r.warnings.push(
                "header gives -1 data records (recording not closed); counting from file size"
                    .into(),
            );
            None
        }
        n if n < 0 => return Err(r.error("n_records", &records_raw, "negative record count")),
        n => Some(n as usize),
    };
    let duration_raw = r.text(244, 8);
    let record_duration_s = r.float("record_duration", &duration_raw)?;
    if record_duration_s < 0.0 {
        return Err(r.error("record_duration", &duration_raw, "negative record duration"));
    }

    let start = parse_start(&mut r, &identity.recording);
    let duration = (record_duration_s, duration_raw.as_str());
    let signals = parse_signals(&mut r, ns, format, duration, file_len)?;
    if !format.is_plus()
        && signals
            .iter()
            .any(|s| labels::is_annotation_label(&s.label))
    {
        r.warnings.push(
            "plain EDF/BDF carries an annotation signal; it is read as EDF+ annotations".into(),
        );
    }
    if format.is_plus()
        && !signals
            .iter()
            .any(|s| labels::is_annotation_label(&s.label))
    {
        r.warnings.push(format!(
            "{format} file has no annotation signal; records are assumed contiguous"
        ));
    }
    Ok(Header {
        format,
        identity,
        start,
        header_bytes,
        declared_records,
        record_duration_s,
        signals,
        warnings: r.warnings,
    })
}

fn format_of(is_bdf: bool, reserved: &str) -> Format {
    let reserved = reserved.trim_start();
    let plus = ["EDF+", "BDF+"]
        .iter()
        .find_map(|p| reserved.strip_prefix(p));
    match (is_bdf, plus.map(|rest| rest.starts_with('D'))) {
        (false, None) => Format::Edf,
        (false, Some(false)) => Format::EdfPlusC,
        (false, Some(true)) => Format::EdfPlusD,
        (true, None) => Format::Bdf,
        (true, Some(false)) => Format::BdfPlusC,
        (true, Some(true)) => Format::BdfPlusD,
    }
}

/// `dd.mm.yy` and `hh.mm.ss`; an invalid date gives a warning and no start time (MNE does the
/// same), never an error: the signals are still usable.
fn parse_start(r: &mut FieldReader<'_>, recording_field: &str) -> Option<StartTime> {
    let date = r.text(168, 8);
    let time = r.text(176, 8);
    let parts = |s: &str| -> Option<[u8; 3]> {
        let mut it = s
            .trim()
            .split(['.', ':'])
            .map(|p| p.trim().parse::<u8>().ok());
        let out = [it.next()??, it.next()??, it.next()??];
        it.next().is_none().then_some(out)
    };
    let (Some([day, month, yy]), Some([hour, minute, second])) = (parts(&date), parts(&time))
    else {
        r.warnings.push(format!(
            "start date/time {date:?} {time:?} cannot be parsed; start time unknown"
        ));
        return None;
    };
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 59
        || yy > 99
    {
        r.warnings.push(format!(
            "start date/time {date:?} {time:?} is out of range; start time unknown"
        ));
        return None;
    }
    // EDF: years 85-99 are 1985-1999, 00-84 are 2000-2084; EDF+ gives the full year in the
    // recording field ("Startdate 02-JUN-2015 ..."), which wins when it agrees on the last digits.
    let mut year = if yy >= 85 {
        1900 + u16::from(yy)
    } else {
        2000 + u16::from(yy)
    };
    if let Some(full) = recording_field
        .strip_prefix("Startdate ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|d| d.rsplit('-').next())
        .and_then(|y| y.parse::<u16>().ok())
    {
        if full % 100 == u16::from(yy) {
            year = full;
        }
    }
    Some(StartTime {
        year,
        month,
        day,
        hour,
        minute,
        second,
        subsecond: 0.0,
    })
}

/// `duration` is the record duration and its raw field text; `file_len` bounds every count.
fn parse_signals(
    r: &mut FieldReader<'_>,
    ns: usize,
    format: Format,
    (record_duration_s, duration_raw): (f64, &str),
    file_len: u64,
) -> Result<Vec<Channel>> {
    let mut offset = FIXED_HEADER_BYTES;
    let mut columns: Vec<Vec<String>> = Vec::with_capacity(SIGNAL_FIELDS.len());
    for (_, width) in SIGNAL_FIELDS {
        columns.push((0..ns).map(|i| r.text(offset + i * width, width)).collect());
        offset += ns * width;
    }
    let (sample_min, sample_max) = match format.bytes_per_sample() {
        2 => (i64::from(i16::MIN), i64::from(i16::MAX)),
        _ => (-(1_i64 << 23), (1_i64 << 23) - 1),
    };
    let mut signals = Vec::with_capacity(ns);
    #[allow(clippy::needless_range_loop)] // `i` indexes ten parallel columns
    for i in 0..ns {
        let label = columns[0][i].trim_end().to_string();
        // Fuzzing found labels holding newlines and control characters: messages show the
        // label escaped, so that every error and warning stays on one line.
        let shown = label.escape_debug().to_string();
        let name = |field: &str| format!("signal {i} ({shown}) {field}");
        let physical_min = r.float(&name("physical_min"), &columns[3][i])?;
        let physical_max = r.float(&name("physical_max"), &columns[4][i])?;
        let mut digital = [0_i32; 2];
        for (slot, col) in digital.iter_mut().zip([5, 6]) {
            let field = name(SIGNAL_FIELDS[col].0);
            let value = r.integer(&field, &columns[col][i])?;
            if value < sample_min || value > sample_max {
                return Err(r.error(
                    &field,
                    &columns[col][i],
                    format!(
                        "outside the {}-bit sample range",
                        format.bytes_per_sample() * 8
                    ),
                ));
            }
            *slot = value as i32;
        }
        let spr_field = name("samples_per_record");
        let spr = r.integer(&spr_field, &columns[8][i])?;
        if spr <= 0 {
            return Err(r.error(&spr_field, &columns[8][i], "must be at least 1"));
        }
        // Validated here, per signal, so that the error names the signal whose count is absurd
        // (the record size over all signals is checked again when the file is opened).
        let bytes_per_record = (spr as u64).saturating_mul(format.bytes_per_sample() as u64);
        if bytes_per_record > file_len {
            return Err(r.error(
                &spr_field,
                &columns[8][i],
                format!(
                    "one data record of this signal alone needs {bytes_per_record} bytes, the file has {file_len}"
                ),
            ));
        }
        let is_annotation = labels::is_annotation_label(&label);
        if !is_annotation && (digital[0] == digital[1] || physical_min == physical_max) {
            r.warnings.push(format!(
                "signal {i} ({shown}): degenerate range (physical {physical_min}..{physical_max}, \
                 digital {}..{}); digital values used unscaled",
                digital[0], digital[1]
            ));
        }
        let sampling_rate_hz = if record_duration_s > 0.0 {
            spr as f64 / record_duration_s
        } else {
            0.0
        };
        if record_duration_s == 0.0 && !is_annotation {
            return Err(r.error(
                "record_duration",
                duration_raw,
                format!("record duration 0 is only allowed in annotation-only files, but signal {i} ({shown}) holds data"),
            ));
        }
        // A subnormal duration such as 1e-320 gives an infinite rate.
        if !sampling_rate_hz.is_finite() {
            return Err(r.error(
                "record_duration",
                duration_raw,
                format!("gives signal {i} ({shown}) an infinite sampling rate"),
            ));
        }
        let channel = Channel {
            name: labels::electrode_name(&label).map(str::to_string),
            kind: labels::channel_kind(&label),
            label,
            unit: columns[2][i].trim().to_string(),
            transducer: columns[1][i].trim().to_string(),
            prefilter: columns[7][i].trim().to_string(),
            sampling_rate_hz,
            samples_per_record: spr as usize,
            samples: 0,
            physical_min,
            physical_max,
            digital_min: digital[0],
            digital_max: digital[1],
        };
        // Finite extremes can still overflow the scaling (physical -8e307..8e307 over digital
        // -32768..-32767 gives an infinite offset, and NaN samples); refuse them.
        let (gain, offset) = channel.scaling();
        if !(gain.is_finite() && offset.is_finite()) {
            let field = name("physical_max");
            return Err(r.error(
                &field,
                &columns[4][i],
                format!(
                    "physical range {physical_min:e}..{physical_max:e} over digital range {}..{} \
                     cannot be scaled in double precision",
                    digital[0], digital[1]
                ),
            ));
        }
        signals.push(channel);
    }
    Ok(signals)
}
