//! Feature-stage throughput: `cargo bench --bench features`.
//!
//! (a) Welch alone, one thread: a deterministic EEG-like signal (AR(1) noise plus a 10 Hz
//!     sine, f64), 64 channels x 1 hour at 160 Hz (576000 samples each) and 64 x 20000 samples,
//!     `nperseg` 160, `noverlap` 80; best of 5 wall times after a warm-up. The speed-up is
//!     against scipy measured on this machine when `benches/scipy_welch.py` (the twin of this
//!     part) has left its numbers in `<tempdir>/eegadapt-bench/scipy_welch.json`, else against
//!     the 0.07 s for 64 x 20000 quoted in the issue; the table says which.
//! (b) Feature extraction for the `eegmmidb-lr` task (runs 4, 8, 12) over every such file under
//!     `$EEGADAPT_SHARED/data/eegmmidb` (default `../shared` beside the crate): SHA-256 of the
//!     file, `features_from_file` and `store::write_feature_set` into a temporary folder, with
//!     1 thread and with `available_parallelism()` threads (an explicit rayon pool per case);
//!     best of 3 after a warm-up that also fills the page cache. Recordings/s and MB/s of EDF
//!     input. polars reads `POLARS_MAX_THREADS` once per process, so each case runs in a child
//!     process of this bench (`--features-case N`) started with `POLARS_MAX_THREADS=N`; the
//!     table shows the size of polars' pool the child actually had.
//!
//! (c) The whole `features` command against its Python twin, per core: `eegadapt features DIR
//!     --task eegmmidb-lr --out OUT --jobs 1` on the 36 left/right recordings of S001-S012 (the
//!     issue's measure), against `benches/features_python.py DIR OUT` (MNE read, scipy Welch and
//!     sosfiltfilt, scikit-learn OAS, pandas Parquet, one thread) on the same files. Whole
//!     processes, each into an empty folder, alternated three times; median wall time and CPU
//!     time (user + system, from `getrusage` of the children). The Python side needs `python3`
//!     (or `$EEGADAPT_PYTHON`) with mne, scipy, scikit-learn, pandas and pyarrow; without them the
//!     part prints why it is skipped. `cargo bench --bench features -- --whole` runs only (c).
//!
//! The load average (`/proc/loadavg`) is printed at the start and after each part: other
//! processes on the machine distort the numbers.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use eegadapt::features::{features_from_file, FeatureConfig, Welch, WelchConfig};
use eegadapt::store;
use eegadapt::task::{RecordingId, Task};
use rayon::prelude::*;

use eegadapt::pretrain::rng::Rng;

const CHANNELS: usize = 64;
const FS: f64 = 160.0;
const HOUR: usize = 576_000;
const SHORT: usize = 20_000;
const NPERSEG: usize = 160;
const NOVERLAP: usize = 80;
/// scipy's time for 64 x 20000 quoted in the issue, seconds.
const SCIPY_QUOTED_S: f64 = 0.07;
/// The target: this many times scipy per core.
const TARGET: f64 = 15.0;

/// EEG-like channels: AR(1) noise plus a 10 Hz rhythm with a phase per channel, in uV.
fn synthetic(channels: usize, samples: usize) -> Vec<Vec<f64>> {
    let mut rng = Rng::new(42);
    (0..channels)
        .map(|c| {
            let phase = 0.3 * c as f64;
            let mut level = 0.0;
            (0..samples)
                .map(|k| {
                    level = 0.98 * level + 8.0 * (rng.uniform() * 2.0 - 1.0);
                    let t = k as f64 / FS;
                    level + 20.0 * (2.0 * std::f64::consts::PI * 10.0 * t + phase).sin()
                })
                .collect()
        })
        .collect()
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// Best of `runs` wall times after one warm-up run; dropping the result is not timed.
fn best_of<T>(runs: usize, mut run: impl FnMut() -> T) -> Duration {
    drop(black_box(run()));
    (0..runs)
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

/// scipy's best-of-5 times by input shape ("64x20000"), from `benches/scipy_welch.py`.
fn scipy_measured() -> Option<(PathBuf, serde_json::Value)> {
    let path = std::env::temp_dir()
        .join("eegadapt-bench")
        .join("scipy_welch.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).ok()?).ok()?;
    let ok = json["nperseg"].as_u64() == Some(NPERSEG as u64)
        && json["noverlap"].as_u64() == Some(NOVERLAP as u64)
        && json["fs"].as_f64() == Some(FS);
    ok.then_some((path, json))
}

fn welch_part() {
    println!("\n(a) Welch alone: {CHANNELS} channels, fs {FS} Hz, nperseg {NPERSEG}, noverlap {NOVERLAP}, f64, one thread");
    let started = Instant::now();
    let signal = synthetic(CHANNELS, HOUR);
    println!(
        "    signal generated in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let scipy = scipy_measured();
    match &scipy {
        Some((path, json)) => println!(
            "    scipy: measured on this machine by benches/scipy_welch.py ({}; scipy {}, load then {})",
            path.display(),
            json["scipy"].as_str().unwrap_or("?"),
            json["loadavg"].as_str().unwrap_or("?")
        ),
        None => println!(
            "    scipy: no measurement found (run benches/scipy_welch.py); using the issue's {SCIPY_QUOTED_S} s for 64 x {SHORT}, scaled by length for 1 hour"
        ),
    }
    println!(
        "{:<28} {:>10} {:>10} {:>12} {:>10} {:>9} {:>14}",
        "input (best of 5)",
        "ms",
        "ns/sample",
        "segments/s",
        "scipy ms",
        "speed-up",
        "scipy source"
    );
    let config = WelchConfig {
        nperseg: NPERSEG,
        noverlap: NOVERLAP,
    };
    for samples in [SHORT, HOUR] {
        let mut psd = vec![0.0; NPERSEG / 2 + 1];
        let time = best_of(5, || {
            let mut welch = Welch::new(config, FS).expect("Welch");
            let mut total = 0.0;
            for x in &signal {
                welch.psd_into(&x[..samples], &mut psd).expect("psd");
                total += psd[20];
            }
            total
        });
        let s = time.as_secs_f64();
        let segments = CHANNELS * ((samples - NPERSEG) / (NPERSEG - NOVERLAP) + 1);
        let key = format!("{CHANNELS}x{samples}");
        let (scipy_s, source) = match scipy
            .as_ref()
            .and_then(|(_, j)| j["best_of_5_s"][&key].as_f64())
        {
            Some(t) => (t, "measured"),
            None => (
                SCIPY_QUOTED_S * samples as f64 / SHORT as f64,
                if samples == SHORT {
                    "issue 0.07 s"
                } else {
                    "issue, scaled"
                },
            ),
        };
        println!(
            "{:<28} {:>10.3} {:>10.3} {:>12.0} {:>10.1} {:>8.1}x {:>14}",
            format!("{CHANNELS} x {samples}"),
            s * 1e3,
            s * 1e9 / (CHANNELS * samples) as f64,
            segments as f64 / s,
            scipy_s * 1e3,
            scipy_s / s,
            source
        );
    }
    println!("    target: at least {TARGET}x scipy per core (both sides one thread)");
    println!("    load average after (a): {}", loadavg());
}

/// The task's files under the shared eegmmidb folder, sorted, with their sizes in bytes.
fn lr_files(task: &Task) -> Vec<(PathBuf, u64)> {
    let root = std::env::var_os("EEGADAPT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"))
        .join("data/eegmmidb");
    let mut files = Vec::new();
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("edf"))
                && task.includes(&RecordingId::from_path(&path))
            {
                let size = entry.metadata().map_or(0, |m| m.len());
                files.push((path, size));
            }
        }
    }
    files.sort();
    files
}

fn process(path: &Path, out: &Path, task: &Task, config: &FeatureConfig) -> usize {
    let sha = store::sha256_file(path).expect("sha256");
    let set = features_from_file(path, &sha, task, config).expect("features");
    let stem = path.file_stem().expect("file stem").to_string_lossy();
    store::write_feature_set(&out.join(format!("{stem}.parquet")), &set).expect("write");
    set.rows.len()
}

/// Threads of this process named like polars' compute pool (`polars-0`, ...).
fn polars_pool_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .flatten()
                .filter(|t| {
                    std::fs::read_to_string(t.path().join("comm")).is_ok_and(|name| {
                        name.trim()
                            .strip_prefix("polars-")
                            .is_some_and(|rest| rest.bytes().all(|b| b.is_ascii_digit()))
                    })
                })
                .count()
        })
        .unwrap_or(0)
}

/// One case of part (b), in a child process: prints `RESULT threads wall_s rows polars_threads`.
fn features_case(threads: usize) {
    let task = Task::resolve("eegmmidb-lr").expect("task");
    let config = FeatureConfig::default();
    let files = lr_files(&task);
    assert!(!files.is_empty(), "no eegmmidb-lr file found");
    let out = tempfile::tempdir().expect("temporary folder");
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("rayon pool");
    let mut rows = 0;
    let time = best_of(3, || {
        rows = pool.install(|| {
            files
                .par_iter()
                .map(|(path, _)| process(path, out.path(), &task, &config))
                .sum::<usize>()
        });
    });
    println!(
        "RESULT {threads} {} {rows} {}",
        time.as_secs_f64(),
        polars_pool_threads()
    );
}

fn features_part() {
    let task = Task::resolve("eegmmidb-lr").expect("task");
    let files = lr_files(&task);
    if files.is_empty() {
        println!("\n(b) skipped: no eegmmidb-lr file under the shared data folder");
        return;
    }
    let bytes: u64 = files.iter().map(|(_, s)| s).sum();
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "\n(b) feature extraction, task eegmmidb-lr: {} recordings, {:.1} MB of EDF; sha256 + features_from_file + write_feature_set (default FeatureConfig)",
        files.len(),
        bytes as f64 / 1e6
    );
    println!(
        "{:<24} {:>10} {:>13} {:>9} {:>8} {:>8} {:>13}",
        "threads (best of 3)", "wall s", "recordings/s", "MB/s", "epochs", "scaling", "polars pool"
    );
    let exe = std::env::current_exe().expect("bench executable");
    let mut single = None;
    let mut counts = vec![1];
    if all > 1 {
        counts.push(all);
    }
    for threads in counts {
        let output = Command::new(&exe)
            .args(["--features-case", &threads.to_string()])
            .env("POLARS_MAX_THREADS", threads.to_string())
            .output()
            .expect("run the child case");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let Some(line) = stdout.lines().find_map(|l| l.strip_prefix("RESULT ")) else {
            eprintln!("{}", String::from_utf8_lossy(&output.stderr));
            panic!("case with {threads} threads failed: {}", output.status);
        };
        let fields: Vec<&str> = line.split_whitespace().collect();
        let wall: f64 = fields[1].parse().expect("wall time");
        let single_wall = *single.get_or_insert(wall);
        println!(
            "{:<24} {:>10.3} {:>13.2} {:>9.1} {:>8} {:>7.2}x {:>13}",
            threads.to_string(),
            wall,
            files.len() as f64 / wall,
            bytes as f64 / 1e6 / wall,
            fields[2],
            single_wall / wall,
            fields[3]
        );
    }
    println!("    load average after (b): {}", loadavg());
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--features-case") {
        let threads = args
            .get(i + 1)
            .and_then(|n| n.parse().ok())
            .expect("--features-case N");
        features_case(threads);
        return;
    }
    println!(
        "load average at start: {} ({} CPUs available)",
        loadavg(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    if !args.iter().any(|a| a == "--whole") {
        welch_part();
        features_part();
    }
    whole_command_part();
}

/// CPU seconds (user + system) of the finished children of this process so far.
fn children_cpu_s() -> f64 {
    // SAFETY: getrusage writes only into the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// Wall and CPU seconds of one run of `command` (which must succeed).
fn timed(command: &mut Command) -> (f64, f64) {
    let cpu = children_cpu_s();
    let started = Instant::now();
    let output = command.output().expect("start the command");
    let wall = started.elapsed().as_secs_f64();
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (wall, children_cpu_s() - cpu)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Why the Python twin cannot run here, if it cannot.
fn python_missing(python: &str) -> Option<String> {
    let probe = Command::new(python)
        .args(["-c", "import mne, scipy, sklearn, pandas, pyarrow"])
        .output();
    match probe {
        Err(e) => Some(format!("cannot start {python}: {e}")),
        Ok(o) if !o.status.success() => Some(format!(
            "{python} lacks mne, scipy, scikit-learn, pandas or pyarrow ({})",
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .last()
                .unwrap_or("")
        )),
        Ok(_) => None,
    }
}

fn whole_command_part() {
    let task = Task::resolve("eegmmidb-lr").expect("task");
    let subjects: Vec<String> = (1..=12).map(|s| format!("S{s:03}")).collect();
    let files: Vec<PathBuf> = lr_files(&task)
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| {
            let id = RecordingId::from_path(p);
            subjects.contains(&id.subject)
        })
        .collect();
    println!(
        "\n(c) the whole command, one core: eegadapt features --jobs 1 against benches/features_python.py, {} recordings (S001-S012, runs 4, 8, 12)",
        files.len()
    );
    if files.len() != 36 {
        println!(
            "    skipped: expected the 36 recordings of S001-S012 under the shared data folder"
        );
        return;
    }
    let inputs = tempfile::tempdir().expect("temporary folder");
    for f in &files {
        let name = f.file_name().expect("file name");
        std::os::unix::fs::symlink(f, inputs.path().join(name)).expect("link an input");
    }
    let python = std::env::var("EEGADAPT_PYTHON").unwrap_or_else(|_| "python3".into());
    let missing = python_missing(&python);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/features_python.py");
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for round in 0..3 {
        let out = tempfile::tempdir().expect("temporary folder");
        ours.push(timed(
            Command::new(env!("CARGO_BIN_EXE_eegadapt"))
                .arg("features")
                .arg(inputs.path())
                .args(["--task", "eegmmidb-lr", "--jobs", "1", "--out"])
                .arg(out.path().join(format!("rust-{round}"))),
        ));
        if missing.is_none() {
            theirs.push(timed(
                Command::new(&python)
                    .arg(&script)
                    .arg(inputs.path())
                    .arg(out.path().join(format!("python-{round}"))),
            ));
        }
    }
    let summary = |runs: &[(f64, f64)]| {
        (
            median(runs.iter().map(|r| r.0).collect()),
            median(runs.iter().map(|r| r.1).collect()),
        )
    };
    let (wall, cpu) = summary(&ours);
    println!("{:<44} {:>12} {:>12}", "median of 3", "wall s", "CPU s");
    println!(
        "{:<44} {:>12.2} {:>12.2}",
        "eegadapt features --jobs 1", wall, cpu
    );
    match missing {
        Some(why) => println!("    Python side skipped: {why}"),
        None => {
            let (py_wall, py_cpu) = summary(&theirs);
            println!(
                "{:<44} {:>12.2} {:>12.2}",
                "python3 benches/features_python.py", py_wall, py_cpu
            );
            println!(
                "    eegadapt is {:.1}x faster by wall time, {:.1}x by CPU time (goal: 10x)",
                py_wall / wall,
                py_cpu / cpu
            );
        }
    }
    println!("    load average after (c): {}", loadavg());
}
