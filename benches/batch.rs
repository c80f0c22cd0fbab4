//! `eegadapt batch` on a clinic-sized manifest: subjects S001-S012 of the shared EEGMMIDB copy
//! (calibrate on run 4, score runs 8 and 12, report), with the encoder shipped in `data/`, as a
//! whole process on 1 and 2 threads, then a rerun with nothing changed (every subject skipped).
//! Timing only: that encoder was pretrained on S002-S012, so these accuracies are not held out.
//!
//! Run: `cargo bench --bench batch` (release build of the binary; about 2 minutes).

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

fn eegmmidb() -> PathBuf {
    std::env::var_os("EEGADAPT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"))
        .join("data/eegmmidb")
}

fn batch(manifest: &std::path::Path, out: &std::path::Path, jobs: &str) -> f64 {
    let started = Instant::now();
    let run = Command::new(env!("CARGO_BIN_EXE_eegadapt"))
        .arg("batch")
        .arg("--manifest")
        .arg(manifest)
        .arg("--encoder")
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/encoder"))
        .arg("--out")
        .arg(out)
        .args(["--jobs", jobs])
        .output()
        .expect("run eegadapt");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    started.elapsed().as_secs_f64()
}

fn main() {
    let data = eegmmidb();
    let work = std::env::temp_dir().join(format!("eegadapt-bench-batch-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("temporary folder");
    let mut manifest = String::from("subject,role,path\n");
    let subjects: Vec<String> = (1..=12).map(|i| format!("S{i:03}")).collect();
    for s in &subjects {
        for (role, run) in [("calibration", 4), ("test", 8), ("test", 12)] {
            let path = data.join(s).join(format!("{s}R{run:02}.edf"));
            assert!(path.is_file(), "{}: missing", path.display());
            manifest.push_str(&format!("{s},{role},{}\n", path.display()));
        }
    }
    let manifest_path = work.join("manifest.csv");
    std::fs::write(&manifest_path, manifest).expect("manifest");
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!("load average before: {}", load.trim());
    }
    for jobs in ["1", "2"] {
        let out = work.join(format!("out{jobs}"));
        let seconds = batch(&manifest_path, &out, jobs);
        println!(
            "batch, {} subjects, {jobs} thread(s): {seconds:.1} s ({:.2} subjects/s)",
            subjects.len(),
            subjects.len() as f64 / seconds
        );
        if jobs == "2" {
            let again = batch(&manifest_path, &out, jobs);
            println!("rerun with nothing changed: {again:.2} s");
        }
    }
    let _ = std::fs::remove_dir_all(&work);
}
