//! Writing a [`Recording`] as a 16-bit EDF+ file or a 24-bit BDF+ file (`+C`, or `+D` when it
//! has gaps).

mod annotations;
mod header;

use annotations::*;
use header::*;

use std::io::Write;
use std::path::Path;

use super::error::{EdfError, Result};
use super::labels;
use super::recording::{Channel, Recording, Segment, StartTime};

/// How [`write_edf`] writes a recording.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteOptions {
    /// Replace the identifying header fields by the EDF+ anonymous values: patient `X X X X`,
    /// recording `Startdate X X X X`, start `01.01.85 00.00.00` (sub-second start dropped).
    /// Annotation texts are written unchanged.
    pub deidentify: bool,
    /// Duration of a data record in seconds; `None` keeps the recording's. Every channel must fill
    /// a whole number of samples per record and every segment a whole number of records.
    pub record_duration_s: Option<f64>,
    /// Write 24-bit BDF+ (BioSemi's format, version `\xffBIOSEMI`, `BDF Annotations`) instead of
    /// 16-bit EDF+.
    pub bdf: bool,
}

/// Sample width and digital range of the written format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SampleFormat {
    /// Bytes per sample.
    bytes: usize,
    /// Smallest digital value.
    min: i32,
    /// Largest digital value.
    max: i32,
}

impl SampleFormat {
    const EDF: SampleFormat = SampleFormat {
        bytes: 2,
        min: i16::MIN as i32,
        max: i16::MAX as i32,
    };
    const BDF: SampleFormat = SampleFormat {
        bytes: 3,
        min: -(1 << 23),
        max: (1 << 23) - 1,
    };

    fn of(options: &WriteOptions) -> Self {
        if options.bdf {
            Self::BDF
        } else {
            Self::EDF
        }
    }
}

/// Writes `recording` to `path` as a 16-bit EDF+ file, or a 24-bit BDF+ file with
/// [`WriteOptions::bdf`] (the same rules with 24-bit samples, `BDF+C`/`BDF+D` and
/// `BDF Annotations`).
///
/// - EDF+C when the recording is one contiguous segment, EDF+D otherwise; one `EDF Annotations`
///   signal (the last) holds each record's time-keeping TAL (its onset; the sub-second start in
///   the first one) and the annotations, spread forward over records so that none overflows.
/// - Samples are quantized with each channel's physical and digital range (nearest digital
///   value, clamped to the digital range). BDF input (24-bit) is scaled into the 16-bit range
///   `-32768..=32767` over the same physical range, so its resolution becomes one 16-bit step of
///   that range. A channel with a degenerate range (read unscaled) is written with an identity
///   map. A NaN sample is an [`EdfError::Write`].
/// - Header text is ASCII (`µ` becomes `u`, other characters outside printable ASCII become `_`);
///   text or numbers that cannot fit their field are an [`EdfError::Write`], except physical
///   limits, which lose decimals outward (the range only widens) until they fit.
/// - The file is written to a temporary file in the same folder, then renamed over `path`: an
///   existing file is replaced only by a complete new one.
pub fn write_edf(
    path: impl AsRef<Path>,
    recording: &Recording,
    options: &WriteOptions,
) -> Result<()> {
    let path = path.as_ref();
    let plan = Plan::new(path, recording, options)?;
    crate::atomic::write_atomically(
        path,
        |out| plan.write(out),
        |action, source| EdfError::Io {
            path: path.to_path_buf(),
            action,
            source,
        },
    )
}

/// The most data records the 8-character header field can count.
const MAX_RECORDS: usize = 99_999_999;

/// Digital = round(physical * scale + base), clamped to `lo..=hi`.
#[derive(Debug, Clone, Copy)]
struct Quantizer {
    scale: f64,
    base: f64,
    lo: f64,
    hi: f64,
}

/// Everything decided before the first byte is written.
struct Plan<'a> {
    path: &'a Path,
    recording: &'a Recording,
    header: Vec<u8>,
    samples_per_record: Vec<usize>,
    quantizers: Vec<Quantizer>,
    format: SampleFormat,
    /// Onset of each record in the header's time frame (sub-second start included).
    record_times: Vec<f64>,
    /// Indices into `recording.annotations` stored in each record.
    placement: Vec<Vec<usize>>,
    /// Sub-second start added to every TAL onset.
    subsecond: f64,
    annotation_bytes: usize,
}

impl<'a> Plan<'a> {
    fn new(path: &'a Path, recording: &'a Recording, options: &WriteOptions) -> Result<Self> {
        let fail = |reason: String| EdfError::Write {
            path: path.to_path_buf(),
            reason,
        };
        let channels = &recording.channels;
        if channels.len() != recording.data.len() {
            return Err(fail(format!(
                "{} channels but {} sample vectors",
                channels.len(),
                recording.data.len()
            )));
        }
        let duration = options
            .record_duration_s
            .unwrap_or(recording.record_duration_s);
        let duration_text = fit_number(duration, 8, Round::Nearest)
            .filter(|t| t.parse::<f64>().is_ok_and(|v| v == duration) && duration >= 0.0)
            .ok_or_else(|| {
                fail(format!(
                    "record duration {duration} s cannot be written exactly in 8 characters"
                ))
            })?;
        if duration == 0.0 && !channels.is_empty() {
            return Err(fail(
                "record duration 0 is only allowed without data channels".into(),
            ));
        }
        let samples_per_record = channels
            .iter()
            .map(|c| spr_of(c, duration, options.record_duration_s.is_none()))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(fail)?;
        let segments = segments_or_whole(recording, &samples_per_record);
        let counts = record_counts(&segments, duration, options.record_duration_s.is_some())
            .map_err(fail)?;
        let records = counts
            .iter()
            .try_fold(0_usize, |sum, &n| sum.checked_add(n))
            .filter(|&n| n <= MAX_RECORDS)
            .ok_or_else(|| fail(format!("more than {MAX_RECORDS} data records")))?;
        for (i, (c, x)) in channels.iter().zip(&recording.data).enumerate() {
            if Some(x.len()) != records.checked_mul(samples_per_record[i]) {
                return Err(fail(format!(
                    "channel {i} ({}) holds {} samples, its {records} records of {} need {}",
                    c.label,
                    x.len(),
                    samples_per_record[i],
                    records * samples_per_record[i]
                )));
            }
        }
        let subsecond = recording
            .start
            .filter(|_| !options.deidentify)
            .map(|s| s.subsecond)
            .filter(|s| (0.0..1.0).contains(s))
            .unwrap_or(0.0);
        let record_times: Vec<f64> = segments
            .iter()
            .zip(&counts)
            .flat_map(|(s, &n)| (0..n).map(move |j| subsecond + s.onset_s + j as f64 * duration))
            .collect();
        let (placement, annotation_bytes) =
            place_annotations(recording, &record_times, subsecond).map_err(fail)?;
        let format = SampleFormat::of(options);
        let mut quantizers = Vec::with_capacity(channels.len());
        let mut signals = Vec::with_capacity(channels.len() + 1);
        for (i, c) in channels.iter().enumerate() {
            if labels::is_annotation_label(&c.label) {
                return Err(fail(format!("data channel {i} is labelled {:?}", c.label)));
            }
            let (fields, q) = signal_fields(c, samples_per_record[i], format).map_err(fail)?;
            signals.push(fields);
            quantizers.push(q);
        }
        let annotation_samples = annotation_bytes.div_ceil(format.bytes);
        signals.push(annotation_signal_fields(annotation_samples, format));
        let kind = match (options.bdf, segments.len() > 1) {
            (false, false) => "EDF+C",
            (false, true) => "EDF+D",
            (true, false) => "BDF+C",
            (true, true) => "BDF+D",
        };
        let fixed = fixed_fields(recording, options, kind, records, &duration_text);
        let mut header = header_bytes(&fixed, &signals).map_err(fail)?;
        if options.bdf {
            // BDF's version field is the one non-ASCII byte of the header.
            header[..8].copy_from_slice(b"\xffBIOSEMI");
        }
        Ok(Plan {
            path,
            recording,
            header,
            samples_per_record,
            quantizers,
            format,
            record_times,
            placement,
            subsecond,
            annotation_bytes: annotation_samples * format.bytes,
        })
    }

    /// Writes header and records; a NaN sample stops it with an error.
    fn write(&self, out: &mut impl Write) -> Result<()> {
        let io = |source| EdfError::Io {
            path: self.path.to_path_buf(),
            action: "cannot write",
            source,
        };
        out.write_all(&self.header).map_err(io)?;
        let width = self.format.bytes;
        let record_bytes =
            self.samples_per_record.iter().sum::<usize>() * width + self.annotation_bytes;
        let mut buf = vec![
            0_u8;
            if self.record_times.is_empty() {
                0
            } else {
                record_bytes
            }
        ];
        for (r, &time) in self.record_times.iter().enumerate() {
            let mut at = 0;
            for (i, x) in self.recording.data.iter().enumerate() {
                let spr = self.samples_per_record[i];
                let bytes = &mut buf[at..at + width * spr];
                if !quantize(&x[r * spr..(r + 1) * spr], self.quantizers[i], bytes, width) {
                    return Err(EdfError::Write {
                        path: self.path.to_path_buf(),
                        reason: format!(
                            "channel {i} ({}) has a NaN sample in data record {r}",
                            self.recording.channels[i].label
                        ),
                    });
                }
                at += width * spr;
            }
            let tals = &mut buf[at..];
            tals.fill(0);
            let mut text = time_keeping_tal(time);
            for &a in &self.placement[r] {
                text.extend(annotation_tal(self.recording, a, self.subsecond));
            }
            tals[..text.len()].copy_from_slice(&text);
            out.write_all(&buf).map_err(io)?;
        }
        Ok(())
    }
}

/// Samples per record of a channel: its own when the record duration is kept, else its rate
/// times the new duration, which must be a whole number.
fn spr_of(c: &Channel, duration: f64, keep: bool) -> std::result::Result<usize, String> {
    if keep && c.samples_per_record > 0 {
        return Ok(c.samples_per_record);
    }
    let x = c.sampling_rate_hz * duration;
    let n = x.round();
    if n >= 1.0 && (x - n).abs() <= 1e-6 * n && n <= 99_999_999.0 {
        Ok(n as usize)
    } else {
        Err(format!(
            "channel {} at {} Hz does not fill a whole number of samples in a {duration} s record",
            c.label, c.sampling_rate_hz
        ))
    }
}

/// The recording's segments, or one segment over all samples when it lists none.
fn segments_or_whole(recording: &Recording, spr: &[usize]) -> Vec<Segment> {
    if !recording.segments.is_empty() {
        return recording.segments.clone();
    }
    let records = match (recording.data.first(), spr.first()) {
        (Some(x), Some(&n)) => x.len() / n,
        _ => usize::from(!recording.annotations.is_empty()),
    };
    if records == 0 {
        return Vec::new();
    }
    vec![Segment {
        onset_s: 0.0,
        duration_s: records as f64 * recording.record_duration_s,
        first_record: 0,
        records,
    }]
}

/// Records in each segment; checks that segments start at 0, are ordered and do not overlap.
fn record_counts(
    segments: &[Segment],
    duration: f64,
    recount: bool,
) -> std::result::Result<Vec<usize>, String> {
    let mut counts = Vec::with_capacity(segments.len());
    let mut end = 0.0;
    for (k, s) in segments.iter().enumerate() {
        let tolerance = 1e-6_f64.max(duration * 1e-9);
        if (k == 0 && s.onset_s.abs() > 1e-9) || s.onset_s < end - tolerance {
            return Err(format!(
                "segment {k} starts at {} s: segments must start at 0 s and follow each other",
                s.onset_s
            ));
        }
        let n = if recount && duration > 0.0 {
            let x = s.duration_s / duration;
            if (x - x.round()).abs() > 1e-6 {
                return Err(format!(
                    "segment {k} ({} s) is not a whole number of {duration} s records",
                    s.duration_s
                ));
            }
            x.round() as usize
        } else {
            s.records
        };
        end = s.onset_s + n as f64 * duration;
        counts.push(n);
    }
    Ok(counts)
}

/// Quantizes `samples` into little-endian `width`-byte (2 or 3) integers in `out`; false when a
/// sample is NaN.
#[inline]
fn quantize(samples: &[f32], q: Quantizer, out: &mut [u8], width: usize) -> bool {
    let mut nan = false;
    for (x, o) in samples.iter().zip(out.chunks_exact_mut(width)) {
        let v = (f64::from(*x) * q.scale + q.base).round().clamp(q.lo, q.hi);
        nan |= v.is_nan();
        // Two's complement, low bytes first: the low `width` bytes of the 32-bit value.
        o.copy_from_slice(&(v as i32).to_le_bytes()[..width]);
    }
    !nan
}

#[derive(Clone, Copy)]
enum Round {
    Down,
    Up,
    Nearest,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_fit_their_fields_outward() {
        assert_eq!(
            fit_number(-3276.8, 8, Round::Down).as_deref(),
            Some("-3276.8")
        );
        assert_eq!(
            fit_number(-0.000123456, 8, Round::Down).as_deref(),
            Some("-0.00013")
        );
        assert_eq!(
            fit_number(0.000123456, 8, Round::Up).as_deref(),
            Some("0.000124")
        );
        assert_eq!(
            fit_number(187500.0001, 8, Round::Nearest).as_deref(),
            Some("187500")
        );
        assert_eq!(fit_number(123456789.5, 8, Round::Nearest), None);
        assert_eq!(fit_number(f64::NAN, 8, Round::Nearest), None);
    }

    #[test]
    fn tal_times() {
        assert_eq!(format_time(0.0), "+0");
        assert_eq!(format_time(0.1 * 3.0), "+0.3");
        assert_eq!(format_time(-0.25), "-0.25");
        assert_eq!(format_time(-1e-12), "+0");
        assert_eq!(format_time(12.123456789), "+12.123456789");
        assert_eq!(time_keeping_tal(1.5), b"+1.5\x14\x14\x00");
    }

    #[test]
    fn quantize_rounds_and_clamps() {
        let q = Quantizer {
            scale: 10.0,
            base: 0.0,
            lo: -32768.0,
            hi: 32767.0,
        };
        let mut out = [0_u8; 8];
        assert!(quantize(&[0.04, -0.06, 1e9, -1e9], q, &mut out, 2));
        assert_eq!(out, [0, 0, 255, 255, 255, 127, 0, 128]);
        assert!(!quantize(&[f32::NAN], q, &mut out[..2], 2));
        let q24 = Quantizer {
            lo: -8388608.0,
            hi: 8388607.0,
            ..q
        };
        let mut out = [0_u8; 9];
        assert!(quantize(&[-0.1, 1e9, -1e9], q24, &mut out, 3));
        assert_eq!(out, [255, 255, 255, 255, 255, 127, 0, 0, 128]);
    }

    #[test]
    fn header_text_is_ascii() {
        assert_eq!(ascii("µV"), "uV");
        assert_eq!(ascii("Größe"), "Gr__e");
    }
}
