//! An opened EDF/BDF file: memory-mapped, header validated, annotations and record times parsed;
//! samples are decoded only when asked for, per channel and per time window.

use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::error::{EdfError, Result};
use super::header::{parse_header, Header};
use super::recording::{Annotation, Channel, ChannelKind, Format, Recording, Segment};
use super::tal;

/// Two record onsets closer than this are treated as contiguous (TAL onsets carry at most
/// 100 ns resolution in practice; rounding in writers stays far below a microsecond).
const CONTIGUITY_TOLERANCE_S: f64 = 1e-6;

/// An open EDF, EDF+, BDF or BDF+ file.
///
/// Opening reads only the header and the annotation signals; [`EdfFile::read_physical`] and
/// friends decode one channel's samples over any range of samples, touching only the bytes they
/// need, so one channel or one window of a 10 GB file is cheap.
#[derive(Debug)]
pub struct EdfFile {
    path: PathBuf,
    map: Mmap,
    header: Header,
    /// Byte offset of each signal inside a data record.
    signal_offsets: Vec<usize>,
    record_bytes: usize,
    records: usize,
    /// Index into `header.signals` of each data (non-annotation) channel.
    data_signals: Vec<usize>,
    channels: Vec<Channel>,
    /// Start of each record relative to the first record, in seconds.
    record_onsets: Vec<f64>,
    annotations: Vec<Annotation>,
    segments: Vec<Segment>,
    first_record_offset_s: f64,
    warnings: Vec<String>,
}

/// Opens and validates a file. See [`EdfFile`].
pub fn open(path: impl AsRef<Path>) -> Result<EdfFile> {
    EdfFile::open(path)
}

/// Reads a whole file into a [`Recording`] (all channels decoded to physical units, f32).
pub fn read_recording(path: impl AsRef<Path>) -> Result<Recording> {
    EdfFile::open(path)?.to_recording()
}

impl EdfFile {
    /// Opens and validates a file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let io = |action, source| EdfError::Io {
            path: path.clone(),
            action,
            source,
        };
        let file = File::open(&path).map_err(|e| io("cannot open", e))?;
        let file_len = file.metadata().map_err(|e| io("cannot stat", e))?.len();
        if file_len == 0 {
            return Err(EdfError::Truncated {
                path,
                reason: "the file is empty".into(),
            });
        }
        // SAFETY: the map is read-only and private to this value. If another process truncates
        // the file while it is mapped, reads fault; that is the accepted cost of not reading
        // 10 GB files into memory, the same trade every mmap-based reader makes.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| io("cannot map", e))?;
        let header = parse_header(&path, &map, file_len)?;
        Self::from_parts(path, map, header)
    }

    fn from_parts(path: PathBuf, map: Mmap, header: Header) -> Result<Self> {
        let bps = header.format.bytes_per_sample();
        let mut signal_offsets = Vec::with_capacity(header.signals.len());
        let mut record_bytes: usize = 0;
        for s in &header.signals {
            signal_offsets.push(record_bytes);
            record_bytes = s
                .samples_per_record
                .checked_mul(bps)
                .and_then(|b| record_bytes.checked_add(b))
                .filter(|&b| b as u64 <= map.len() as u64)
                .ok_or_else(|| EdfError::Field {
                    path: path.clone(),
                    field: "samples_per_record (sum over signals)".into(),
                    value: header
                        .signals
                        .iter()
                        .map(|s| s.samples_per_record.to_string())
                        .collect::<Vec<_>>()
                        .join(","),
                    reason: format!(
                        "one data record would exceed the file size ({} bytes)",
                        map.len()
                    ),
                })?;
        }
        let mut warnings = header.warnings.clone();
        let data_bytes = map.len().saturating_sub(header.header_bytes);
        let complete = data_bytes / record_bytes;
        let partial = data_bytes % record_bytes;
        let records = match header.declared_records {
            None => {
                if partial > 0 {
                    warnings.push(format!(
                        "{partial} bytes of a partial data record after the {complete} complete records are ignored"
                    ));
                }
                complete
            }
            Some(declared) if declared > complete => {
                if complete == 0 {
                    return Err(EdfError::Truncated {
                        path,
                        reason: format!(
                            "header field `n_records` announces {declared} data records of {record_bytes} bytes, \
                             the file holds none complete ({data_bytes} data bytes)"
                        ),
                    });
                }
                warnings.push(format!(
                    "file truncated: header announces {declared} data records, the file holds {complete} complete \
                     records and {partial} bytes of a partial one; reading the {complete} complete records"
                ));
                complete
            }
            Some(declared) => {
                let extra = data_bytes - declared * record_bytes;
                if extra > 0 {
                    warnings.push(format!(
                        "{extra} bytes after the {declared} data records announced by the header are ignored"
                    ));
                }
                declared
            }
        };
        if records == 0 {
            warnings.push("the file holds no data records".into());
        }
        // Record onsets reach records x duration: a finite but absurd duration (1e308) would
        // make them infinite (found by fuzzing).
        if !(records as f64 * header.record_duration_s).is_finite() {
            return Err(EdfError::Field {
                path,
                field: "record_duration".into(),
                value: format!("{:e}", header.record_duration_s),
                reason: format!("{records} data records of this duration overflow the time axis"),
            });
        }
        let data_signals: Vec<usize> = (0..header.signals.len())
            .filter(|&i| header.signals[i].kind != ChannelKind::Annotation)
            .collect();
        let channels = data_signals
            .iter()
            .map(|&i| {
                let mut c = header.signals[i].clone();
                c.samples = c.samples_per_record * records;
                c
            })
            .collect();
        let mut file = EdfFile {
            path,
            map,
            header,
            signal_offsets,
            record_bytes,
            records,
            data_signals,
            channels,
            record_onsets: Vec::new(),
            annotations: Vec::new(),
            segments: Vec::new(),
            first_record_offset_s: 0.0,
            warnings,
        };
        file.read_annotations()?;
        Ok(file)
    }

    /// Parses every annotation signal of every record: annotations, record onsets, segments.
    fn read_annotations(&mut self) -> Result<()> {
        let annotation_signals = self.header.annotation_signals();
        let duration = self.header.record_duration_s;
        let mut onsets: Vec<Option<f64>> = vec![None; self.records];
        // (signal, record) holding each annotation, then its onset, duration and text.
        type Raw = ((usize, usize), f64, Option<f64>, String);
        let mut raw: Vec<Raw> = Vec::new();
        let mut recovered = 0;
        // A file larger than this is not kept resident while its annotations are scanned: each
        // batch of records' pages is released once parsed (the scan touches every record).
        let release_every = (self.map.len() > LARGE_FILE_BYTES).then_some(RELEASE_RECORDS);
        for (record, record_onset) in onsets.iter_mut().enumerate() {
            if let Some(n) = release_every.filter(|&n| record > 0 && record % n == 0) {
                self.release(Some(record - n..record));
            }
            for (nth, &signal) in annotation_signals.iter().enumerate() {
                let bytes = self.signal_bytes(record, signal);
                let parsed = tal::parse_record(bytes).map_err(|reason| EdfError::Annotation {
                    path: self.path.clone(),
                    signal,
                    record,
                    reason,
                })?;
                recovered += parsed.recovered_separators;
                for (position, t) in parsed.tals.into_iter().enumerate() {
                    let mut texts = t.texts.into_iter().peekable();
                    if nth == 0 && position == 0 && texts.peek().is_some_and(String::is_empty) {
                        *record_onset = Some(t.onset);
                        texts.next();
                    }
                    raw.extend(
                        texts
                            .filter(|x| !x.is_empty())
                            .map(|x| ((signal, record), t.onset, t.duration, x)),
                    );
                }
            }
        }
        if recovered > 0 {
            self.warnings.push(format!(
                "{recovered} annotation lists lacked the NUL separator after the time-keeping entry; split as separate annotations"
            ));
        }
        let has_time_keeping = !annotation_signals.is_empty() && self.records > 0;
        let missing = onsets.iter().filter(|o| o.is_none()).count();
        if has_time_keeping && missing > 0 && self.header.format.is_plus() {
            self.warnings.push(format!(
                "{missing} of {} data records lack a time-keeping annotation; their onsets assume contiguous records",
                self.records
            ));
        }
        self.first_record_offset_s = onsets.first().copied().flatten().unwrap_or(0.0);
        // TAL onsets are finite, but their difference to the first record's onset can overflow
        // (+1.7e308 and -1.7e308; fuzzing found infinite onsets): such a time axis is refused
        // rather than filled with infinities and NaN. Record onsets are checked below.
        let first = self.first_record_offset_s;
        let overflow = |(signal, record): (usize, usize), onset: f64| EdfError::Annotation {
            path: self.path.clone(),
            signal,
            record,
            reason: format!(
                "onset {onset:e} s relative to the first record's onset {first:e} s is out of range"
            ),
        };
        if let Some(&(at, onset, _, _)) = raw.iter().find(|a| !(a.1 - first).is_finite()) {
            return Err(overflow(at, onset));
        }
        // Plain EDF has no record times: records are contiguous by definition.
        let use_time_keeping = self.header.format.is_plus();
        let mut previous: Option<f64> = None;
        self.record_onsets = onsets
            .iter()
            .enumerate()
            .map(|(i, o)| {
                let onset = match (use_time_keeping, o) {
                    (true, Some(t)) => t - self.first_record_offset_s,
                    _ => previous.map_or(i as f64 * duration, |p| p + duration),
                };
                previous = Some(onset);
                onset
            })
            .collect();
        if let Some(record) = self.record_onsets.iter().position(|o| !o.is_finite()) {
            let signal = annotation_signals.first().copied().unwrap_or(0);
            let onset = onsets
                .get(record)
                .copied()
                .flatten()
                .unwrap_or(f64::INFINITY);
            return Err(overflow((signal, record), onset));
        }
        self.segments = segments_of(&self.record_onsets, duration);
        if !self.header.format.is_discontinuous() && self.segments.len() > 1 {
            self.warnings.push(format!(
                "{} file has {} gaps between data records; kept as separate segments",
                self.header.format,
                self.segments.len() - 1
            ));
        }
        let data_end = self.segments.last().map_or(0.0, Segment::end_s);
        let mut annotations: Vec<Annotation> = raw
            .into_iter()
            .map(|(_, onset, duration_s, text)| {
                let onset_s = onset - self.first_record_offset_s;
                Annotation {
                    onset_s,
                    duration_s,
                    text,
                    past_end: onset_s > data_end + CONTIGUITY_TOLERANCE_S,
                }
            })
            .collect();
        annotations.sort_by(|a, b| a.onset_s.total_cmp(&b.onset_s));
        let past_end = annotations.iter().filter(|a| a.past_end).count();
        if past_end > 0 {
            self.warnings.push(format!(
                "{past_end} annotations start after the end of the data ({data_end} s); kept and flagged `past_end`"
            ));
        }
        self.annotations = annotations;
        Ok(())
    }

    /// The bytes of one signal in one record. Indices come from the validated layout.
    fn signal_bytes(&self, record: usize, signal: usize) -> &[u8] {
        let bps = self.header.format.bytes_per_sample();
        let start =
            self.header.header_bytes + record * self.record_bytes + self.signal_offsets[signal];
        let len = self.header.signals[signal].samples_per_record * bps;
        self.map.get(start..start + len).unwrap_or(&[])
    }

    /// The file this was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// File format.
    pub fn format(&self) -> Format {
        self.header.format
    }

    /// The parsed header (all signals, annotation signals included).
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Data channels (annotation signals excluded), with their sample counts.
    pub fn channels(&self) -> &[Channel] {
        &self.channels
    }

    /// Number of complete data records read.
    pub fn records(&self) -> usize {
        self.records
    }

    /// Annotations, sorted by onset, relative to the first data record.
    pub fn annotations(&self) -> &[Annotation] {
        &self.annotations
    }

    /// Runs of contiguous data records.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Onset of each data record relative to the first, in seconds.
    pub fn record_onsets(&self) -> &[f64] {
        &self.record_onsets
    }

    /// Tolerated deviations from the specification.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Seconds of recorded data (records x record duration).
    pub fn duration_s(&self) -> f64 {
        self.records as f64 * self.header.record_duration_s
    }

    /// Start of the first data record (header start plus the first record's time-keeping offset).
    pub fn start(&self) -> Option<super::StartTime> {
        self.header.start.map(|mut s| {
            let extra = self.first_record_offset_s;
            if (0.0..1.0).contains(&extra) {
                s.subsecond = extra;
            }
            s
        })
    }

    fn check_range(&self, channel: usize, samples: &Range<usize>) -> Result<&Channel> {
        let c = self
            .channels
            .get(channel)
            .ok_or_else(|| EdfError::OutOfRange {
                path: self.path.clone(),
                what: format!(
                    "channel {channel} requested, the file has {}",
                    self.channels.len()
                ),
            })?;
        if samples.start > samples.end || samples.end > c.samples {
            return Err(EdfError::OutOfRange {
                path: self.path.clone(),
                what: format!(
                    "samples {}..{} of channel {} ({}) requested, it has {}",
                    samples.start, samples.end, channel, c.label, c.samples
                ),
            });
        }
        Ok(c)
    }

    /// Calls `sink(samples_before, digital_bytes)` for each record-sized piece of the range.
    ///
    /// One channel's pieces lie a whole data record apart, too far for the hardware
    /// prefetcher: the piece [`PREFETCH_RECORDS`] records ahead is prefetched while this one is
    /// decoded, so that reading a channel streams instead of waiting on every record.
    fn for_each_piece(
        &self,
        channel: usize,
        samples: Range<usize>,
        mut sink: impl FnMut(usize, &[u8]),
    ) {
        let signal = self.data_signals[channel];
        let spr = self.header.signals[signal].samples_per_record;
        let bps = self.header.format.bytes_per_sample();
        let base = self.header.header_bytes + self.signal_offsets[signal];
        let ahead = PREFETCH_RECORDS * self.record_bytes;
        let mut record = samples.start / spr;
        let mut first = samples.start % spr;
        let mut at = samples.start;
        while at < samples.end {
            let last = spr.min(first + samples.end - at);
            let start = base + record * self.record_bytes;
            prefetch(&self.map, start + ahead, spr * bps);
            let bytes = self
                .map
                .get(start + first * bps..start + last * bps)
                .unwrap_or(&[]);
            sink(at - samples.start, bytes);
            at += last - first;
            record += 1;
            first = 0;
        }
    }

    /// Digital values of `channel` over a range of its samples.
    pub fn read_digital(&self, channel: usize, samples: Range<usize>) -> Result<Vec<i32>> {
        self.check_range(channel, &samples)?;
        let mut out = vec![0_i32; samples.len()];
        let bdf = self.header.format.bytes_per_sample() == 3;
        self.for_each_piece(channel, samples, |at, bytes| {
            decode_digital(bytes, bdf, &mut out[at..], |d| d);
        });
        Ok(out)
    }

    /// Physical values (f64, exact scaling) of `channel` over a range of its samples.
    pub fn read_physical(&self, channel: usize, samples: Range<usize>) -> Result<Vec<f64>> {
        let (gain, offset) = self.check_range(channel, &samples)?.scaling();
        let mut out = vec![0_f64; samples.len()];
        let bdf = self.header.format.bytes_per_sample() == 3;
        self.for_each_piece(channel, samples, |at, bytes| {
            decode_digital(bytes, bdf, &mut out[at..], |d| gain * f64::from(d) + offset);
        });
        Ok(out)
    }

    /// Physical values (f32) of `channel` over a range of its samples, written into `out`.
    pub fn read_physical_f32_into(
        &self,
        channel: usize,
        samples: Range<usize>,
        out: &mut [f32],
    ) -> Result<()> {
        let (gain, offset) = self.check_range(channel, &samples)?.scaling();
        if out.len() != samples.len() {
            return Err(EdfError::OutOfRange {
                path: self.path.clone(),
                what: format!(
                    "output buffer holds {} samples, {} requested",
                    out.len(),
                    samples.len()
                ),
            });
        }
        let bdf = self.header.format.bytes_per_sample() == 3;
        self.for_each_piece(channel, samples, |at, bytes| {
            decode_digital(bytes, bdf, &mut out[at..], |d| {
                (gain * f64::from(d) + offset) as f32
            });
        });
        Ok(())
    }

    /// Physical values (f32) of every channel between two times (seconds of recorded data from
    /// the first sample, gaps not counted), each channel at its own rate.
    pub fn read_window(&self, start_s: f64, end_s: f64) -> Result<Vec<Vec<f32>>> {
        (0..self.channels.len())
            .map(|i| {
                let c = &self.channels[i];
                let to_sample =
                    |t: f64| ((t * c.sampling_rate_hz).round().max(0.0) as usize).min(c.samples);
                let range = to_sample(start_s)..to_sample(end_s.max(start_s));
                let mut out = vec![0_f32; range.len()];
                self.read_physical_f32_into(i, range, &mut out)?;
                Ok(out)
            })
            .collect()
    }

    /// Decodes every channel into a [`Recording`].
    pub fn to_recording(&self) -> Result<Recording> {
        Ok(Recording {
            data: self.read_all()?,
            ..self.outline()
        })
    }

    /// Every channel's samples in physical units (f32), channel by channel.
    pub fn read_all(&self) -> Result<Vec<Vec<f32>>> {
        (0..self.channels.len())
            .map(|i| {
                let mut out = vec![0_f32; self.channels[i].samples];
                self.read_physical_f32_into(i, 0..out.len(), &mut out)?;
                Ok(out)
            })
            .collect()
    }

    /// The data records `records` of a contiguous recording as a [`Recording`] of their own:
    /// times from the first of them, one segment, no annotations, every channel decoded. Records
    /// of an EDF+D file are refused (their times are not contiguous).
    pub fn records_as_recording(&self, records: Range<usize>) -> Result<Recording> {
        let records = records.start.min(self.records)..records.end.min(self.records);
        if self.segments.len() > 1 {
            return Err(EdfError::OutOfRange {
                path: self.path.clone(),
                what: "record ranges of a discontinuous (EDF+D) recording".into(),
            });
        }
        let data = (0..self.channels.len())
            .map(|i| {
                let spr = self.channels[i].samples_per_record;
                let samples = records.start * spr..records.end * spr;
                let mut out = vec![0_f32; samples.len()];
                self.read_physical_f32_into(i, samples, &mut out)?;
                Ok(out)
            })
            .collect::<Result<Vec<_>>>()?;
        let outline = self.outline();
        let n = records.len();
        Ok(Recording {
            records: n,
            channels: outline
                .channels
                .iter()
                .map(|c| Channel {
                    samples: n * c.samples_per_record,
                    ..c.clone()
                })
                .collect(),
            data,
            annotations: Vec::new(),
            segments: vec![Segment {
                onset_s: 0.0,
                duration_s: n as f64 * self.header.record_duration_s,
                first_record: 0,
                records: n,
            }],
            ..outline
        })
    }

    /// Tells the kernel that this process no longer needs the mapped pages of `records` (or of
    /// the whole file with `None`): they leave its resident memory and are read again from the
    /// page cache if touched later. For reading a file far larger than memory piece by piece.
    pub fn release(&self, records: Option<Range<usize>>) {
        let (offset, len) = match records {
            None => (0, self.map.len()),
            Some(r) => {
                let start =
                    self.header.header_bytes + r.start.min(self.records) * self.record_bytes;
                let end = self.header.header_bytes + r.end.min(self.records) * self.record_bytes;
                (
                    start.min(self.map.len()),
                    end.min(self.map.len()).saturating_sub(start),
                )
            }
        };
        #[cfg(unix)]
        if len > 0 {
            // SAFETY: the map is read-only and private to this `EdfFile`; no slice of it is
            // borrowed here (`&self` readers copy what they decode), and after MADV_DONTNEED a
            // read-only file mapping faults the same file bytes back in on the next access.
            let _ = unsafe {
                self.map
                    .unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, offset, len)
            };
        }
        #[cfg(not(unix))]
        let _ = (offset, len);
    }

    /// The recording without its samples (`data` holds one empty vector per channel): header,
    /// channels, annotations and segments.
    pub fn outline(&self) -> Recording {
        Recording {
            source: self.path.clone(),
            format: self.header.format,
            start: self.start(),
            identity: self.header.identity.clone(),
            record_duration_s: self.header.record_duration_s,
            records: self.records,
            channels: self.channels.clone(),
            data: vec![Vec::new(); self.channels.len()],
            annotations: self.annotations.clone(),
            segments: self.segments.clone(),
            warnings: self.warnings.clone(),
            bads: Vec::new(),
        }
    }
}

/// Files larger than this have their pages released as their annotations are scanned.
const LARGE_FILE_BYTES: usize = 512 << 20;
/// Records scanned between two releases.
const RELEASE_RECORDS: usize = 1024;

/// How many data records ahead [`EdfFile::for_each_piece`] prefetches.
const PREFETCH_RECORDS: usize = 8;

/// Asks the CPU to bring `len` bytes at `start` of `bytes` into cache (no-op out of bounds or
/// off x86-64).
#[inline(always)]
fn prefetch(bytes: &[u8], start: usize, len: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(piece) = bytes.get(start..start + len) {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        for offset in (0..len).step_by(64).chain(len.checked_sub(1)) {
            // SAFETY: SSE is part of the x86-64 baseline, and a prefetch of an address inside a
            // live slice neither faults nor has any effect other than on the cache.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(piece[offset..].as_ptr().cast()) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (bytes, start, len);
}

/// Little-endian 16-bit (EDF) or 24-bit (BDF) two's-complement samples through `map` into `out`.
#[inline]
fn decode_digital<T>(bytes: &[u8], bdf: bool, out: &mut [T], map: impl Fn(i32) -> T) {
    if bdf {
        for (o, b) in out.iter_mut().zip(bytes.chunks_exact(3)) {
            *o = map(i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8);
        }
    } else {
        for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
            *o = map(i32::from(i16::from_le_bytes([b[0], b[1]])));
        }
    }
}

/// Groups records into runs whose onsets follow each other without a gap.
fn segments_of(onsets: &[f64], duration: f64) -> Vec<Segment> {
    let mut segments: Vec<Segment> = Vec::new();
    for (i, &onset) in onsets.iter().enumerate() {
        match segments.last_mut() {
            Some(s) if (s.end_s() - onset).abs() <= CONTIGUITY_TOLERANCE_S.max(duration * 1e-9) => {
                s.records += 1;
                s.duration_s += duration;
            }
            _ => segments.push(Segment {
                onset_s: onset,
                duration_s: duration,
                first_record: i,
                records: 1,
            }),
        }
    }
    segments
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_split_at_gaps_only() {
        let s = segments_of(&[0.0, 1.0, 2.0, 10.0, 11.0], 1.0);
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].onset_s, s[0].duration_s, s[0].records), (0.0, 3.0, 3));
        assert_eq!(
            (s[1].onset_s, s[1].first_record, s[1].records),
            (10.0, 3, 2)
        );
    }

    #[test]
    fn bdf_samples_sign_extend() {
        let mut out = [0_i32; 2];
        decode_digital(&[0xFF, 0xFF, 0xFF, 0x01, 0x00, 0x80], true, &mut out, |d| d);
        assert_eq!(out, [-1, -(1 << 23) + 1]);
    }
}
