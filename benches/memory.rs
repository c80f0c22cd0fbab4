//! Peak memory: `cargo bench --bench memory` (release build of the binary; about 6 minutes and
//! 2 GB of temporary disk).
//!
//! (a) `eegadapt features` on a 1-hour and a 24-hour 64-channel 160 Hz EDF+ that this bench
//!     writes with the project's EDF writer from S001's runs 4, 8 and 12 played over and over
//!     (real EEG and real cues), one thread: peak resident memory (the kernel's `VmHWM`, printed
//!     by the binary when `EEGADAPT_PEAK_RSS` is set), against the file's size, and wall time.
//! (b) `eegadapt batch` on 12 and on 96 subjects (the shared recordings of S001-S012, S021-S023
//!     and S042 repeated under new subject names; calibrate on run 4, score runs 8 and 12) with
//!     the shipped encoder, 2 threads: peak resident memory and wall time per subject.
//!
//! `cargo bench --bench memory -- features` (or `-- batch`) runs one part; with
//! `EEGADAPT_BENCH_KEEP` set, the long recordings are kept (their paths printed). The recordings come from `$EEGADAPT_SHARED/data/eegmmidb` (default `../shared` beside the
//! crate) or, for part (a), from `data/`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use eegadapt::edf::{self, write_edf, Recording, WriteOptions};

fn shared_eegmmidb() -> PathBuf {
    std::env::var_os("EEGADAPT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"))
        .join("data/eegmmidb")
}

/// Runs the binary with `args`; returns (peak resident bytes, wall seconds).
fn measure(args: &[&std::ffi::OsStr]) -> (u64, f64) {
    let started = Instant::now();
    let run = Command::new(env!("CARGO_BIN_EXE_eegadapt"))
        .args(args)
        .env("EEGADAPT_PEAK_RSS", "1")
        .output()
        .expect("run eegadapt");
    let seconds = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    let peak = stderr
        .lines()
        .find_map(|l| l.strip_prefix("eegadapt: peak resident memory "))
        .and_then(|l| l.trim_end_matches(" bytes").parse().ok())
        .expect("peak memory line (Linux only)");
    (peak, seconds)
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// S001's runs 4, 8 and 12 repeated until the recording lasts `seconds`.
fn long_recording(seconds: f64) -> Recording {
    let run = |r: &str| {
        let shared = shared_eegmmidb().join(format!("S001/S001R{r}.edf"));
        let path = if shared.is_file() {
            shared
        } else {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join(format!("data/eegmmidb/S001/S001R{r}.edf"))
        };
        edf::read_recording(path).expect("read S001")
    };
    let runs = [run("04"), run("08"), run("12")];
    let cycle: f64 = runs.iter().map(Recording::duration_s).sum();
    let repeats = (seconds / cycle).ceil() as usize;
    let parts: Vec<Recording> = (0..repeats).flat_map(|_| runs.iter().cloned()).collect();
    Recording::concatenate(&parts).expect("one layout")
}

fn features_part(work: &Path) {
    println!("(a) features, 1 thread, task eegmmidb-lr");
    println!(
        "{:<10} {:>10} {:>8} {:>14} {:>10} {:>9}",
        "recording", "file MB", "epochs", "peak RSS MB", "x file", "wall s"
    );
    for (name, hours) in [("1 hour", 1.0), ("24 hours", 24.0)] {
        let path = work.join(format!("long_{}h.edf", hours as u32));
        let recording = long_recording(hours * 3600.0);
        let epochs = recording
            .annotations
            .iter()
            .filter(|a| a.text == "T1" || a.text == "T2")
            .count();
        write_edf(&path, &recording, &WriteOptions::default()).expect("write");
        drop(recording);
        let size = std::fs::metadata(&path).expect("size").len();
        let out = work.join(format!("features_{}h", hours as u32));
        let (peak, seconds) = measure(&[
            "features".as_ref(),
            path.as_os_str(),
            "--task".as_ref(),
            "eegmmidb-lr".as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
            "--jobs".as_ref(),
            "1".as_ref(),
        ]);
        println!(
            "{name:<10} {:>10.1} {epochs:>8} {:>14.1} {:>10.2} {seconds:>9.1}",
            mb(size),
            mb(peak),
            peak as f64 / size as f64
        );
        if std::env::var_os("EEGADAPT_BENCH_KEEP").is_some() {
            println!("kept {}", path.display());
        } else {
            let _ = std::fs::remove_file(&path);
        }
    }
}

fn batch_part(work: &Path) {
    let data = shared_eegmmidb();
    let mut subjects: Vec<String> = std::fs::read_dir(&data)
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    subjects.retain(|s| {
        [4, 8, 12]
            .iter()
            .all(|r| data.join(s).join(format!("{s}R{r:02}.edf")).is_file())
    });
    subjects.sort();
    if subjects.is_empty() {
        println!(
            "(b) skipped: no shared EEGMMIDB recordings at {}",
            data.display()
        );
        return;
    }
    println!("(b) batch, 2 threads, shipped encoder");
    println!(
        "{:<10} {:>14} {:>16}",
        "subjects", "peak RSS MB", "s per subject"
    );
    for n in [12, 96] {
        let mut manifest = String::from("subject,role,path\n");
        for i in 0..n {
            let s = &subjects[i % subjects.len()];
            for (role, run) in [("calibration", 4), ("test", 8), ("test", 12)] {
                let path = data.join(s).join(format!("{s}R{run:02}.edf"));
                manifest.push_str(&format!("P{i:03}_{s},{role},{}\n", path.display()));
            }
        }
        let path = work.join(format!("manifest_{n}.csv"));
        std::fs::write(&path, manifest).expect("manifest");
        let out = work.join(format!("batch_{n}"));
        let encoder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/encoder");
        let (peak, seconds) = measure(&[
            "batch".as_ref(),
            "--manifest".as_ref(),
            path.as_os_str(),
            "--encoder".as_ref(),
            encoder.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
            "--jobs".as_ref(),
            "2".as_ref(),
        ]);
        println!("{n:<10} {:>14.1} {:>16.2}", mb(peak), seconds / n as f64);
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let work = std::env::temp_dir().join(format!("eegadapt-bench-memory-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("temporary folder");
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!("load average before: {}", load.trim());
    }
    // `cargo bench --bench memory -- features` (or `-- batch`) runs one part.
    let only: Option<String> = std::env::args()
        .skip(1)
        .find(|a| a == "features" || a == "batch");
    if only.as_deref() != Some("batch") {
        features_part(&work);
    }
    if only.as_deref() != Some("features") {
        batch_part(&work);
    }
    if std::env::var_os("EEGADAPT_BENCH_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&work);
    }
}
