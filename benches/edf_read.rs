//! EDF decode throughput: `cargo bench --bench edf_read`.
//!
//! Writes (once, with `edf::writer`) a deterministic 1-hour, 64-channel, 160 Hz EDF+C file to
//! `$TMPDIR/eegadapt-bench/`, reads it once to warm the page cache, then times (best of 5 after
//! a warm-up, one thread; dropping results is not timed):
//! - (a) the full decode to f32: `EdfFile::to_recording`, `read_recording` (with the open), and
//!   the same decode into reused buffers, next to the bare cost of allocating and first touching
//!   that much f32 output (the kernel's page faults, which dominate the full decode);
//! - (b) one channel whole and (c) one 10-second window of all channels (a different channel or
//!   window each run), which read only their share of the file;
//! - (d) the full decode through edfplus 0.1.0.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use eegadapt::edf::writer::{write_edf, WriteOptions};
use eegadapt::edf::{self, Annotation, Channel, ChannelKind, Format, Identity, Recording, Segment};

use eegadapt::pretrain::rng::Rng;

const CHANNELS: usize = 64;
const RATE: usize = 160;
const SECONDS: usize = 3600;

/// EEG-like: brown-ish noise (AR(1)), a 10 Hz alpha rhythm and a little white noise, in uV.
fn synthetic_recording() -> Recording {
    let labels = [
        "Fc5.", "Fc3.", "Fc1.", "Fcz.", "Fc2.", "Fc4.", "Fc6.", "C5..", "C3..", "C1..", "Cz..",
        "C2..", "C4..", "C6..", "Cp5.", "Cp3.", "Cp1.", "Cpz.", "Cp2.", "Cp4.", "Cp6.", "Fp1.",
        "Fpz.", "Fp2.", "Af7.", "Af3.", "Afz.", "Af4.", "Af8.", "F7..", "F5..", "F3..", "F1..",
        "Fz..", "F2..", "F4..", "F6..", "F8..", "Ft7.", "Ft8.", "T7..", "T8..", "T9..", "T10.",
        "Tp7.", "Tp8.", "P7..", "P5..", "P3..", "P1..", "Pz..", "P2..", "P4..", "P6..", "P8..",
        "Po7.", "Po3.", "Poz.", "Po4.", "Po8.", "O1..", "Oz..", "O2..", "Iz..",
    ];
    let samples = RATE * SECONDS;
    let mut rng = Rng::new(42);
    let mut channels = Vec::with_capacity(CHANNELS);
    let mut data = Vec::with_capacity(CHANNELS);
    for (i, label) in labels.iter().enumerate() {
        channels.push(Channel {
            label: (*label).to_string(),
            name: edf::labels::electrode_name(label).map(str::to_string),
            kind: ChannelKind::Eeg,
            unit: "uV".into(),
            transducer: String::new(),
            prefilter: String::new(),
            sampling_rate_hz: RATE as f64,
            samples_per_record: RATE,
            samples,
            physical_min: -3276.8,
            physical_max: 3276.7,
            digital_min: -32768,
            digital_max: 32767,
        });
        let phase = i as f64 * 0.3;
        let mut level = 0.0;
        data.push(
            (0..samples)
                .map(|k| {
                    level = 0.98 * level + 8.0 * (rng.uniform() * 2.0 - 1.0);
                    let t = k as f64 / RATE as f64;
                    let alpha = 20.0 * (2.0 * std::f64::consts::PI * 10.0 * t + phase).sin();
                    (level + alpha + 2.0 * (rng.uniform() * 2.0 - 1.0)) as f32
                })
                .collect(),
        );
    }
    let annotations = (0..SECONDS / 30)
        .map(|k| Annotation {
            onset_s: k as f64 * 30.0 + 2.0,
            duration_s: Some(4.1),
            text: if k % 2 == 0 { "T1" } else { "T2" }.into(),
            past_end: false,
        })
        .collect();
    Recording {
        source: PathBuf::from("synthetic"),
        format: Format::EdfPlusC,
        start: None,
        identity: Identity::default(),
        record_duration_s: 1.0,
        records: SECONDS,
        channels,
        data,
        bads: Vec::new(),
        annotations,
        segments: vec![Segment {
            onset_s: 0.0,
            duration_s: SECONDS as f64,
            first_record: 0,
            records: SECONDS,
        }],
        warnings: Vec::new(),
    }
}

/// The benchmark file, written unless a valid one is already there.
fn bench_file() -> PathBuf {
    let dir = std::env::temp_dir().join("eegadapt-bench");
    std::fs::create_dir_all(&dir).expect("create the benchmark folder");
    let path = dir.join("edf_read_1h_64ch_160hz.edf");
    let valid = edf::open(&path).is_ok_and(|f| {
        f.channels().len() == CHANNELS && f.records() == SECONDS && f.annotations().len() == 120
    });
    if !valid {
        let started = Instant::now();
        write_edf(&path, &synthetic_recording(), &WriteOptions::default())
            .expect("write the benchmark file");
        println!(
            "wrote {} in {:.2} s",
            path.display(),
            started.elapsed().as_secs_f64()
        );
    }
    path
}

/// Best of 5 runs after one warm-up run; dropping the result is not timed.
fn best_of_5<T>(mut run: impl FnMut() -> T) -> Duration {
    drop(black_box(run()));
    (0..5)
        .map(|_| {
            let started = Instant::now();
            let result = black_box(run());
            let elapsed = started.elapsed();
            drop(result);
            elapsed
        })
        .min()
        .unwrap_or_default()
}

fn edfplus_full_decode(path: &Path) -> usize {
    let mut reader = edfplus::EdfReader::open(path).expect("edfplus open");
    let counts: Vec<usize> = reader
        .header()
        .signals
        .iter()
        .map(|s| s.samples_in_file as usize)
        .collect();
    counts
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            reader
                .read_physical_samples(i, n)
                .expect("edfplus read")
                .len()
        })
        .sum()
}

fn main() {
    let path = bench_file();
    let bytes = std::fs::read(&path).expect("read the file once").len() as f64;
    let file = edf::open(&path).expect("open");
    let channels = file.channels().len();
    let n = file.channels()[0].samples;
    let total = n * channels;

    let full = best_of_5(|| file.to_recording().expect("decode"));
    let with_open = best_of_5(|| edf::read_recording(&path).expect("read"));
    let mut buffers = vec![vec![0_f32; n]; channels];
    let reused = best_of_5(|| {
        for (i, b) in buffers.iter_mut().enumerate() {
            file.read_physical_f32_into(i, 0..n, b).expect("channel");
        }
    });
    let touch = best_of_5(|| {
        let mut out: Vec<Vec<f32>> = (0..channels).map(|_| vec![0_f32; n]).collect();
        out.iter_mut().for_each(|x| x.fill(1.0));
        out
    });
    // A different channel and window each run, so that no run finds the last one in cache.
    let mut run = 0;
    let one_channel = best_of_5(|| {
        run += 1;
        let i = (run * 7) % channels;
        file.read_physical_f32_into(i, 0..n, &mut buffers[0])
            .expect("channel")
    });
    let window = best_of_5(|| {
        run += 1;
        let start = (run * 317 % (SECONDS - 10)) as f64;
        file.read_window(start, start + 10.0).expect("window")
    });
    let theirs = best_of_5(|| edfplus_full_decode(&path));

    println!(
        "\n{} ({:.1} MB, {channels} channels x {RATE} Hz x {SECONDS} s, {total} samples)",
        path.display(),
        bytes / 1e6
    );
    println!(
        "{:<46} {:>9} {:>10} {:>9} {:>9} {:>10}",
        "case (best of 5, one thread)", "ms", "MB/s", "ns/sample", "vs (a)", "file read"
    );
    let row = |name: &str, d: Duration, samples: usize, share: f64| {
        let s = d.as_secs_f64();
        let rate = if share > 0.0 {
            format!("{:.0}", share * bytes / s / 1e6)
        } else {
            "-".into()
        };
        println!(
            "{:<46} {:>9.3} {:>10} {:>9.3} {:>9.4} {:>9.2}%",
            name,
            s * 1e3,
            rate,
            s * 1e9 / samples as f64,
            s / full.as_secs_f64(),
            share * 100.0
        );
    };
    let record_share = 1.0 / SECONDS as f64;
    row("(a) full decode to f32: to_recording", full, total, 1.0);
    row("(a) with the open: read_recording", with_open, total, 1.0);
    row("(a) into reused buffers: f32_into x 64", reused, total, 1.0);
    row(
        "    (allocate + first touch of the f32 output)",
        touch,
        total,
        0.0,
    );
    row(
        "(b) one channel whole: f32_into",
        one_channel,
        n,
        1.0 / channels as f64,
    );
    row(
        "(c) 10 s window, all channels: read_window",
        window,
        10 * RATE * channels,
        10.0 * record_share,
    );
    row("(d) edfplus full decode to f64", theirs, total, 1.0);
    println!("MB/s: file bytes the case decodes (file read x file size) / time.");
}
