//! Time a person waits at the cap: `eegadapt calibrate` on one subject's run 4 (15 trials) with
//! the encoder shipped in `data/`, and the whole `eegadapt demo`, each as a whole process on
//! 2 threads, 3 runs, minimum and median printed.
//!
//! Run: `cargo bench --bench calibrate` (release build of the binary).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

fn time(label: &str, args: &[&str]) -> Vec<f64> {
    let mut seconds = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_eegadapt"))
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("run eegadapt");
        assert!(
            out.status.success(),
            "{label}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        seconds.push(started.elapsed().as_secs_f64());
    }
    seconds.sort_by(f64::total_cmp);
    println!(
        "{label}: min {:.2} s, median {:.2} s, max {:.2} s (3 runs)",
        seconds[0], seconds[1], seconds[2]
    );
    seconds
}

fn main() {
    let out = std::env::temp_dir().join(format!("eegadapt-bench-calibrate-{}", std::process::id()));
    let out_str = out.display().to_string();
    let subject = Path::new(&out_str).join("S001").display().to_string();
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!("load average before: {}", load.trim());
    }
    time(
        "calibrate S001 run 4, 2 threads",
        &[
            "calibrate",
            "--encoder",
            "data/encoder",
            "--task",
            "eegmmidb-lr",
            "--subject",
            "S001",
            "--calibration",
            "data/eegmmidb/S001/S001R04.edf",
            "--out",
            &subject,
            "--jobs",
            "2",
        ],
    );
    time(
        "demo (calibrate run 4, predict runs 8 and 12), 2 threads",
        &["demo", "--out", &out_str, "--jobs", "2"],
    );
    let _ = std::fs::remove_dir_all(&out);
}
