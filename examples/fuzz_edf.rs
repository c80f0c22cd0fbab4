//! A seeded mutation fuzzer for the EDF/BDF reader that needs no nightly toolchain.
//!
//! ```text
//! cargo run --release --example fuzz_edf -- --seconds 600 [--seed 42]
//! ```
//!
//! The corpus is every `.edf`/`.bdf` file under `$EEGADAPT_SHARED/data` (default
//! `../shared/data` beside the crate). Large files are cut to their header plus one or two data
//! records (the data signals' samples per record reduced where one record alone is too large,
//! `n_records` fixed), so each execution reads a file of at most 60 KB.
//!
//! Each execution mutates one corpus file (bit flips, byte sets, numeric header fields replaced
//! by interesting values, truncation, splicing with another file, corrupted annotation bytes),
//! writes it to one temporary file, opens it with `eegadapt::edf::open` and, when that succeeds,
//! decodes every channel and checks invariants (sample counts, segments covering the records, no
//! NaN from a header whose numbers are all finite, error messages naming the file on one line).
//!
//! A panic or failed invariant is caught with `catch_unwind`; the input is saved as
//! `tests/fuzz_regressions/<hash>.edf` and fuzzing goes on. Aborts (a single allocation over
//! 64 MB is refused by the global allocator below and aborts the process, as does an execution
//! running over 10 s) are caught by a supervisor process that saves the last input and restarts
//! the worker with the next seed.

use std::alloc::{GlobalAlloc, Layout, System};
use std::fs;
use std::io::{BufRead, BufReader};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use eegadapt::edf;

/// Largest single allocation the reader may make while reading an input of at most 64 KB.
const ALLOCATION_LIMIT: usize = 64 << 20;
/// Budget for one corpus file after cutting it down.
const SEED_BUDGET: usize = 60_000;
/// Mutated inputs are cut to this size, so that every saved regression file stays below 64 KB.
const INPUT_CAP: usize = 64_000;
/// An execution running longer than this is reported as a hang.
const HANG_LIMIT: Duration = Duration::from_secs(10);

/// Refuses (with an abort, via `handle_alloc_error`) any allocation over [`ALLOCATION_LIMIT`].
struct GuardedAllocator;

// SAFETY: every call is forwarded unchanged to the system allocator, or refused with null,
// which the `GlobalAlloc` contract allows.
unsafe impl GlobalAlloc for GuardedAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > ALLOCATION_LIMIT {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > ALLOCATION_LIMIT {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > ALLOCATION_LIMIT {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: GuardedAllocator = GuardedAllocator;

/// SplitMix64: tiny, seedable, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.below(items.len()))
    }
}

/// FNV-1a, to name saved inputs by content.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

// ---------------------------------------------------------------------------------------------
// Corpus

/// Widths of the per-signal header fields, in storage order.
const SIGNAL_WIDTHS: [usize; 10] = [16, 80, 8, 8, 8, 8, 8, 80, 8, 32];
/// Columns of the per-signal numeric fields: physical min/max, digital min/max, samples/record.
const NUMERIC_COLUMNS: [usize; 5] = [3, 4, 5, 6, 8];
/// Fixed header fields as (offset, width).
const FIXED_FIELDS: [(usize, usize); 10] = [
    (0, 8),    // version
    (8, 80),   // patient
    (88, 80),  // recording
    (168, 8),  // start date
    (176, 8),  // start time
    (184, 8),  // header bytes
    (192, 44), // reserved
    (236, 8),  // n_records
    (244, 8),  // record duration
    (252, 4),  // ns
];
const NUMERIC_FIXED: [usize; 6] = [3, 4, 5, 7, 8, 9];

/// Offset of column `column` of signal `signal` in a header of `ns` signals.
fn signal_field(ns: usize, signal: usize, column: usize) -> (usize, usize) {
    let before: usize = SIGNAL_WIDTHS[..column].iter().sum();
    let width = SIGNAL_WIDTHS[column];
    (256 + ns * before + signal * width, width)
}

/// A corpus file with the layout of its (unmutated) header, used to aim mutations.
struct Seed {
    name: String,
    bytes: Vec<u8>,
    ns: usize,
    header_bytes: usize,
    record_bytes: usize,
    records: usize,
    /// (offset in a record, length) of each annotation signal.
    annotations: Vec<(usize, usize)>,
    /// (offset in a record, length) of each data signal.
    data: Vec<(usize, usize)>,
}

fn field_text(bytes: &[u8], (start, width): (usize, usize)) -> Option<String> {
    let raw = bytes.get(start..start + width)?;
    Some(String::from_utf8_lossy(raw).trim().to_string())
}

fn set_field(bytes: &mut [u8], (start, width): (usize, usize), value: &[u8]) {
    if let Some(slot) = bytes.get_mut(start..start + width) {
        for (i, b) in slot.iter_mut().enumerate() {
            *b = value.get(i).copied().unwrap_or(b' ');
        }
    }
}

/// Parses a corpus file leniently and cuts it down to at most [`SEED_BUDGET`] bytes.
fn load_seed(path: &Path) -> Option<Seed> {
    let full = fs::read(path).ok()?;
    let ns: usize = field_text(&full, FIXED_FIELDS[9])?.parse().ok()?;
    let header_bytes = 256 * (ns + 1);
    let bps = if full.first() == Some(&0xFF) { 3 } else { 2 };
    let mut spr = Vec::with_capacity(ns);
    let mut labels = Vec::with_capacity(ns);
    for i in 0..ns {
        spr.push(
            field_text(&full, signal_field(ns, i, 8))?
                .parse::<usize>()
                .ok()?,
        );
        labels.push(field_text(&full, signal_field(ns, i, 0))?);
    }
    let is_annotation: Vec<bool> = labels.iter().map(|l| l.contains("Annotations")).collect();
    let record_bytes: usize = spr.iter().sum::<usize>() * bps;
    let available = full.len().saturating_sub(header_bytes) / record_bytes.max(1);
    let mut bytes = full.get(..header_bytes)?.to_vec();
    let records;
    if header_bytes + record_bytes <= SEED_BUDGET {
        records = available
            .min((SEED_BUDGET - header_bytes) / record_bytes)
            .min(4);
        bytes.extend_from_slice(full.get(header_bytes..header_bytes + records * record_bytes)?);
    } else {
        // One record is too large: keep the annotation signals whole and the first samples of
        // each data signal, with samples_per_record rewritten.
        let annotation_bytes: usize = spr
            .iter()
            .zip(&is_annotation)
            .filter(|(_, &a)| a)
            .map(|(s, _)| s * bps)
            .sum();
        let data_bytes = record_bytes - annotation_bytes;
        let budget = SEED_BUDGET.checked_sub(header_bytes + annotation_bytes)?;
        let factor = data_bytes.div_ceil(budget.max(1)).max(1);
        let mut offset = header_bytes;
        let mut record = Vec::new();
        for i in 0..ns {
            let keep = if is_annotation[i] {
                spr[i]
            } else {
                (spr[i] / factor).max(1)
            };
            record.extend_from_slice(full.get(offset..offset + keep * bps)?);
            offset += spr[i] * bps;
            set_field(
                &mut bytes,
                signal_field(ns, i, 8),
                keep.to_string().as_bytes(),
            );
            spr[i] = keep;
        }
        bytes.extend_from_slice(&record);
        records = 1;
    }
    set_field(&mut bytes, FIXED_FIELDS[7], records.to_string().as_bytes());
    let mut annotations = Vec::new();
    let mut data = Vec::new();
    let mut offset = 0;
    for (s, a) in spr.iter().zip(&is_annotation) {
        let region = (offset, s * bps);
        if *a {
            annotations.push(region);
        } else {
            data.push(region);
        }
        offset += s * bps;
    }
    Some(Seed {
        name: path.display().to_string(),
        bytes,
        ns,
        header_bytes,
        record_bytes: offset,
        records,
        annotations,
        data,
    })
}

fn corpus_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            corpus_files(&path, out);
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("edf") || e.eq_ignore_ascii_case("bdf"))
        {
            out.push(path);
        }
    }
}

fn load_corpus() -> Vec<Seed> {
    let shared = std::env::var_os("EEGADAPT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    let mut files = Vec::new();
    corpus_files(&shared.join("data"), &mut files);
    files.sort();
    files.iter().filter_map(|p| load_seed(p)).collect()
}

// ---------------------------------------------------------------------------------------------
// Mutations

const INTERESTING: &[&[u8]] = &[
    b"0",
    b"-1",
    b"-5",
    b"1",
    b"2",
    b"-0",
    b"+1",
    b" 1",
    b"   7",
    b"99999999",
    b"-9999999",
    b"9999",
    b"-999",
    b"abc",
    b"x",
    b"",
    b"        ",
    b"NaN",
    b"nan",
    b"inf",
    b"-inf",
    b"1e308",
    b"-1e308",
    b"1e-320",
    b"1e-9",
    b"0.0000001",
    b"1.5",
    b"0x10",
    b"32767",
    b"32768",
    b"-32768",
    b"-32769",
    b"8388607",
    b"8388608",
    b"-8388608",
    b"-8388609",
    b"65535",
    b"1,5",
    b"1 2",
    b"+-1",
    b"--1",
    b"\0",
    b"\x14",
    b"\xff\xfe",
    b"1e5",
    b"-1e5",
    b"4e-5",
];

const TAL_TOKENS: &[&[u8]] = &[
    b"+",
    b"-",
    b"0",
    b"1",
    b"12.5",
    b".",
    b"..",
    b"\x14",
    b"\x14\x14",
    b"\x15",
    b"\0",
    b"Spike",
    b"+0.5",
    b"-3",
    b"+1e5",
    b"\xff\xfe",
    "仰卧".as_bytes(),
    b"+99999999999999999999999999999999999999999999999999999999999999999999999999999999\
      99999999999999999999999999999999999999999999999999999999999999999999999999999999\
      99999999999999999999999999999999999999999999999999999999999999999999999999999999\
      99999999999999999999999999999999999999999999999999999999999999999999999999999999",
];

/// A numeric field of the seed's header, fixed or per-signal.
fn numeric_field(rng: &mut Rng, seed: &Seed) -> (usize, usize) {
    if seed.ns == 0 || rng.chance(35) {
        let i = *rng.pick(&NUMERIC_FIXED).unwrap_or(&9);
        FIXED_FIELDS[i]
    } else {
        let column = *rng.pick(&NUMERIC_COLUMNS).unwrap_or(&8);
        signal_field(seed.ns, rng.below(seed.ns), column)
    }
}

fn any_field(rng: &mut Rng, seed: &Seed) -> (usize, usize) {
    if seed.ns == 0 || rng.chance(40) {
        *rng.pick(&FIXED_FIELDS).unwrap_or(&(0, 8))
    } else {
        signal_field(seed.ns, rng.below(seed.ns), rng.below(SIGNAL_WIDTHS.len()))
    }
}

fn interesting_value(rng: &mut Rng, current: &[u8]) -> Vec<u8> {
    match rng.below(6) {
        0 => (rng.next() as i32).to_string().into_bytes(),
        1 => (rng.below(100) as i64 - 10).to_string().into_bytes(),
        2 => {
            // The current value nudged: ns+1, spr-1, header_bytes+256...
            let text = String::from_utf8_lossy(current);
            let value: i64 = text.trim().parse().unwrap_or(0);
            let delta = *rng.pick(&[-256_i64, -2, -1, 1, 2, 256]).unwrap_or(&1);
            value.saturating_add(delta).to_string().into_bytes()
        }
        3 => {
            // With leading spaces (tolerated with a warning).
            let text = String::from_utf8_lossy(current);
            format!("  {}", text.trim()).into_bytes()
        }
        _ => rng.pick(INTERESTING).unwrap_or(&&b"0"[..]).to_vec(),
    }
}

fn mutate(rng: &mut Rng, corpus: &[Seed], seed: &Seed) -> Vec<u8> {
    let mut bytes = seed.bytes.clone();
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        let header = seed.header_bytes.min(bytes.len()).max(1);
        match rng.below(16) {
            0..=3 => {
                let field = numeric_field(rng, seed);
                let current = bytes
                    .get(field.0..field.0 + field.1)
                    .unwrap_or(&[])
                    .to_vec();
                let value = interesting_value(rng, &current);
                set_field(&mut bytes, field, &value);
            }
            4 => {
                // Random printable junk or bytes in any header field.
                let field = any_field(rng, seed);
                let value: Vec<u8> = (0..rng.below(field.1 + 1))
                    .map(|_| {
                        if rng.chance(70) {
                            b' ' + rng.below(95) as u8
                        } else {
                            rng.next() as u8
                        }
                    })
                    .collect();
                set_field(&mut bytes, field, &value);
            }
            5 => {
                let at = rng.below(header);
                if let Some(b) = bytes.get_mut(at) {
                    *b ^= 1 << rng.below(8);
                }
            }
            6 => {
                let len = bytes.len();
                let at = if rng.chance(70) {
                    rng.below(header)
                } else {
                    rng.below(len)
                };
                let value = *rng
                    .pick(&[
                        0_u8, 0xFF, 0x7F, 0x80, b' ', b'-', b'+', b'.', b'0', b'9', 0x14,
                    ])
                    .unwrap_or(&0);
                if let Some(b) = bytes.get_mut(at) {
                    *b = if rng.chance(30) {
                        rng.next() as u8
                    } else {
                        value
                    };
                }
            }
            7 => {
                // Truncation: inside the header, at a record boundary +- a little, anywhere.
                let len = bytes.len();
                let at = match rng.below(3) {
                    0 => rng.below(header + 1),
                    1 => {
                        let r = rng.below(seed.records + 1);
                        (seed.header_bytes + r * seed.record_bytes + rng.below(5)).saturating_sub(2)
                    }
                    _ => rng.below(len + 1),
                };
                bytes.truncate(at);
            }
            8 => {
                // Trailing junk: one byte, or a few.
                let n = if rng.chance(50) { 1 } else { rng.below(600) };
                for _ in 0..n {
                    bytes.push(rng.next() as u8);
                }
            }
            9 => {
                // Splice: this file's start with another file's rest, or another file's field.
                if let Some(other) = rng.pick(corpus) {
                    if rng.chance(50) {
                        let cut = rng.below(bytes.len() + 1);
                        let from = rng.below(other.bytes.len() + 1);
                        bytes.truncate(cut);
                        bytes.extend_from_slice(other.bytes.get(from..).unwrap_or(&[]));
                    } else {
                        let field = any_field(rng, seed);
                        let source = other.bytes.get(field.0..field.0 + field.1).unwrap_or(&[]);
                        let source = source.to_vec();
                        set_field(&mut bytes, field, &source);
                    }
                }
            }
            10..=12 => corrupt_annotations(rng, seed, &mut bytes),
            13 => {
                // Make n_records agree with the length again (or -1), to reach the data.
                let records =
                    bytes.len().saturating_sub(seed.header_bytes) / seed.record_bytes.max(1);
                let value = if rng.chance(30) {
                    "-1".to_string()
                } else {
                    records.to_string()
                };
                set_field(&mut bytes, FIXED_FIELDS[7], value.as_bytes());
            }
            14 => {
                // Extreme samples in a data signal.
                if let Some(&(offset, len)) = rng.pick(&seed.data) {
                    let r = rng.below(seed.records.max(1));
                    let start = seed.header_bytes + r * seed.record_bytes + offset;
                    let fill = *rng
                        .pick(&[
                            [0x00_u8, 0x80, 0x80],
                            [0xFF, 0x7F, 0x7F],
                            [0xFF, 0xFF, 0xFF],
                        ])
                        .unwrap_or(&[0; 3]);
                    for (i, b) in bytes.iter_mut().skip(start).take(len).enumerate() {
                        *b = fill[i % 3];
                    }
                }
            }
            _ => {
                // Insert or delete a block, shifting everything after it.
                let len = bytes.len();
                let at = rng.below(len + 1);
                let n = 1 + rng.below(300);
                if rng.chance(50) {
                    let block: Vec<u8> = bytes.iter().skip(at).take(n).copied().collect();
                    bytes.splice(at..at, block);
                } else {
                    bytes.drain(at..(at + n).min(len));
                }
            }
        }
    }
    bytes.truncate(INPUT_CAP);
    bytes
}

fn corrupt_annotations(rng: &mut Rng, seed: &Seed, bytes: &mut [u8]) {
    let Some(&(offset, len)) = rng.pick(&seed.annotations) else {
        return;
    };
    let record = rng.below(seed.records.max(1));
    let start = seed.header_bytes + record * seed.record_bytes + offset;
    let Some(region) = bytes.get_mut(start..start + len) else {
        return;
    };
    match rng.below(3) {
        0 => {
            // A few bytes set to TAL delimiters or random values.
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(region.len());
                let value = *rng
                    .pick(&[0x14_u8, 0x15, 0x00, b'+', b'-', b'.', b'1', 0xFF])
                    .unwrap_or(&0);
                if let Some(b) = region.get_mut(at) {
                    *b = if rng.chance(20) {
                        rng.next() as u8
                    } else {
                        value
                    };
                }
            }
        }
        1 => {
            // A whole new list of TAL-shaped tokens.
            let mut text = Vec::new();
            while text.len() < region.len() && rng.chance(92) {
                text.extend_from_slice(rng.pick(TAL_TOKENS).unwrap_or(&&b"+"[..]));
            }
            let keep_padding = rng.chance(50);
            for (i, b) in region.iter_mut().enumerate() {
                *b = match text.get(i) {
                    Some(&t) => t,
                    None if keep_padding => 0,
                    None => *b,
                };
            }
        }
        _ => {
            // Random bytes over a stretch.
            let from = rng.below(region.len());
            let to = (from + 1 + rng.below(40)).min(region.len());
            for b in region.iter_mut().take(to).skip(from) {
                *b = rng.next() as u8;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// One execution

/// Opens the file and checks every invariant; panics (caught by the caller) on a violation.
/// Returns whether the file opened.
fn execute(path: &Path) -> bool {
    let shown = path.display().to_string();
    let file = match edf::open(path) {
        Ok(file) => file,
        Err(e) => {
            let message = e.to_string();
            assert!(
                message.contains(&shown),
                "error does not name the file: {message}"
            );
            assert!(!message.contains('\n'), "error spans lines: {message:?}");
            return false;
        }
    };
    let records = file.records();
    for w in file.warnings() {
        assert!(!w.contains('\n'), "warning spans lines: {w:?}");
    }
    assert_eq!(file.record_onsets().len(), records, "one onset per record");
    assert!(
        file.record_onsets().iter().all(|o| o.is_finite()),
        "non-finite record onset: {:?}",
        file.record_onsets()
    );
    let mut next = 0;
    for s in file.segments() {
        assert_eq!(s.first_record, next, "segments must tile the records");
        assert!(s.records > 0, "empty segment");
        next += s.records;
    }
    assert_eq!(next, records, "segments must cover every record");
    for a in file.annotations() {
        assert!(a.onset_s.is_finite(), "non-finite annotation onset: {a:?}");
        assert!(
            a.duration_s.is_none_or(f64::is_finite),
            "non-finite annotation duration: {a:?}"
        );
    }
    let bdf = file.format().bytes_per_sample() == 3;
    let limit = if bdf { 1 << 23 } else { 1 << 15 };
    for (i, c) in file.channels().iter().enumerate() {
        assert_eq!(c.samples, c.samples_per_record * records, "sample count");
        let physical = file.read_physical(i, 0..c.samples).expect("read_physical");
        assert_eq!(physical.len(), c.samples);
        assert!(
            physical.iter().all(|v| !v.is_nan()),
            "NaN from finite header values in channel {i}: {c:?}"
        );
        let digital = file.read_digital(i, 0..c.samples).expect("read_digital");
        assert!(digital.iter().all(|&d| d >= -limit && d < limit));
        assert!(file.read_physical(i, 0..c.samples + 1).is_err());
    }
    let recording = file.to_recording().expect("to_recording");
    assert_eq!(recording.data.len(), file.channels().len());
    for (data, c) in recording.data.iter().zip(&recording.channels) {
        assert_eq!(data.len(), c.samples);
        assert!(data.iter().all(|v| !v.is_nan()), "NaN in to_recording");
    }
    let window = file
        .read_window(0.0, file.duration_s())
        .expect("read_window");
    assert_eq!(window.len(), file.channels().len());
    true
}

// ---------------------------------------------------------------------------------------------
// Worker and supervisor

static LAST_PANIC: Mutex<String> = Mutex::new(String::new());
/// Milliseconds since the worker started at which the running execution began (0: idle).
static EXECUTION_STARTED_MS: AtomicU64 = AtomicU64::new(0);

fn regression_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions")
}

/// Saves an input under its hash; returns the path and whether it was new.
fn save_regression(bytes: &[u8]) -> (PathBuf, bool) {
    let dir = regression_dir();
    let _ = fs::create_dir_all(&dir);
    let path = dir.join(format!("{:016x}.edf", fnv1a(bytes)));
    let new = !path.exists();
    if new {
        if let Err(e) = fs::write(&path, bytes) {
            eprintln!("cannot save {}: {e}", path.display());
        }
    }
    (path, new)
}

fn worker(seconds: f64, seed: u64, input: &Path) {
    let corpus = load_corpus();
    if corpus.is_empty() {
        eprintln!("no corpus: no .edf/.bdf files under $EEGADAPT_SHARED/data or ../shared/data");
        std::process::exit(2);
    }
    println!("FUZZ-CORPUS files={}", corpus.len());
    panic::set_hook(Box::new(|info| {
        if let Ok(mut last) = LAST_PANIC.lock() {
            *last = info.to_string().replace('\n', " | ");
        }
    }));
    let started = Instant::now();
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(500));
        let at = EXECUTION_STARTED_MS.load(Ordering::Relaxed);
        let now = started.elapsed().as_millis() as u64;
        if at != 0 && now.saturating_sub(at) > HANG_LIMIT.as_millis() as u64 {
            eprintln!("execution running for over {HANG_LIMIT:?}: hang");
            std::process::abort();
        }
    });
    let deadline = started + Duration::from_secs_f64(seconds);
    let mut rng = Rng(seed);
    let (mut execs, mut panics, mut opened) = (0_u64, 0_u64, 0_u64);
    let mut last_report = Instant::now();
    loop {
        if execs % 64 == 0 {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            if now.duration_since(last_report) >= Duration::from_secs(5) {
                println!("FUZZ-PROGRESS execs={execs} panics={panics} opened={opened}");
                last_report = now;
            }
        }
        let Some(seed_file) = rng.pick(&corpus) else {
            break;
        };
        let bytes = mutate(&mut rng, &corpus, seed_file);
        if let Err(e) = fs::write(input, &bytes) {
            eprintln!("cannot write {}: {e}", input.display());
            std::process::exit(2);
        }
        EXECUTION_STARTED_MS.store(started.elapsed().as_millis() as u64 + 1, Ordering::Relaxed);
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| execute(input)));
        EXECUTION_STARTED_MS.store(0, Ordering::Relaxed);
        execs += 1;
        if matches!(outcome, Ok(true)) {
            opened += 1;
        }
        if outcome.is_err() {
            panics += 1;
            let (saved, new) = save_regression(&bytes);
            let message = LAST_PANIC.lock().map(|m| m.clone()).unwrap_or_default();
            if new {
                println!(
                    "FUZZ-PANIC from {} -> {}: {message}",
                    seed_file.name,
                    saved.display()
                );
            }
        }
    }
    println!("FUZZ-DONE execs={execs} panics={panics} opened={opened}");
}

fn stat(line: &str, key: &str) -> Option<u64> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
}

fn supervise(seconds: f64, seed: u64) -> std::io::Result<()> {
    let exe = std::env::current_exe()?;
    // A RAM-backed folder where there is one: rewriting a disk file thousands of times a second
    // waits on writeback.
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let input = dir.join(format!("eegadapt-fuzz-{}.edf", std::process::id()));
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let (mut execs, mut panics, mut aborts, mut corpus) = (0_u64, 0_u64, 0_u64, 0_u64);
    let mut opened = 0_u64;
    let mut restarts = 0_u64;
    let mut last_print = Instant::now();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        if left < Duration::from_millis(500) {
            break;
        }
        let worker_seed = seed.wrapping_add(restarts.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut child = Command::new(&exe)
            .arg("--worker")
            .args(["--seconds", &left.as_secs_f64().to_string()])
            .args(["--seed", &worker_seed.to_string()])
            .arg("--input")
            .arg(&input)
            .stdout(Stdio::piped())
            .spawn()?;
        let (mut child_execs, mut child_panics, mut child_opened) = (0, 0, 0);
        if let Some(out) = child.stdout.take() {
            for line in BufReader::new(out).lines() {
                let line = line?;
                if let Some(n) = stat(&line, "files") {
                    corpus = n;
                } else if line.starts_with("FUZZ-PANIC") {
                    println!("{line}");
                }
                if let (Some(e), Some(p), Some(o)) = (
                    stat(&line, "execs"),
                    stat(&line, "panics"),
                    stat(&line, "opened"),
                ) {
                    (child_execs, child_panics, child_opened) = (e, p, o);
                }
                if last_print.elapsed() >= Duration::from_secs(30) {
                    let elapsed = started.elapsed().as_secs_f64();
                    let total = execs + child_execs;
                    println!(
                        "[{elapsed:7.1} s] execs {total} ({:.0}/s), panics {}, aborts {aborts}",
                        total as f64 / elapsed,
                        panics + child_panics
                    );
                    last_print = Instant::now();
                }
            }
        }
        let status = child.wait()?;
        execs += child_execs;
        panics += child_panics;
        opened += child_opened;
        restarts += 1;
        if !status.success() {
            aborts += 1;
            let bytes = fs::read(&input).unwrap_or_default();
            let (saved, _) = save_regression(&bytes);
            println!(
                "FUZZ-ABORT worker {status} (seed {worker_seed}); last input saved as {}",
                saved.display()
            );
        }
    }
    let _ = fs::remove_file(&input);
    let elapsed = started.elapsed().as_secs_f64();
    println!("corpus files:        {corpus}");
    println!("seed:                {seed}");
    println!("duration:            {elapsed:.1} s");
    println!("executions:          {execs}");
    println!("executions/s:        {:.0}", execs as f64 / elapsed);
    println!(
        "opened without error: {opened} ({:.1} %)",
        100.0 * opened as f64 / execs.max(1) as f64
    );
    println!("panics found:        {panics}");
    println!("aborts found:        {aborts}");
    Ok(())
}

fn main() {
    let mut seconds = 60.0;
    let mut seed: u64 = 0x5EED;
    let mut worker_input: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next().unwrap_or_else(|| {
                eprintln!("{name} needs a value");
                std::process::exit(2)
            })
        };
        match arg.as_str() {
            "--seconds" => {
                seconds = value("--seconds").parse().unwrap_or_else(|_| {
                    eprintln!("--seconds takes a number");
                    std::process::exit(2)
                })
            }
            "--seed" => {
                seed = value("--seed").parse().unwrap_or_else(|_| {
                    eprintln!("--seed takes an unsigned integer");
                    std::process::exit(2)
                })
            }
            "--worker" => {}
            "--input" => worker_input = Some(PathBuf::from(value("--input"))),
            other => {
                eprintln!("unknown argument {other:?}; usage: fuzz_edf [--seconds N] [--seed S]");
                std::process::exit(2);
            }
        }
    }
    match worker_input {
        Some(input) => worker(seconds, seed, &input),
        None => {
            if let Err(e) = supervise(seconds, seed) {
                eprintln!("fuzz_edf: {e}");
                std::process::exit(1);
            }
        }
    }
}
