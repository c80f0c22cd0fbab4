//! Calibrate a subject and predict new runs with the library, through the same functions the
//! `eegadapt` binary calls (`eegadapt::pipeline`).
//!
//! Run: `cargo run --release --example calibrate_subject` (from the crate's folder).

use std::path::PathBuf;

use eegadapt::pipeline::{calibrate_files, predict_files, CalibrateFiles};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let run = |n: u32| PathBuf::from(format!("data/eegmmidb/S001/S001R{n:02}.edf"));
    // The shipped population encoder (never trained on S001), calibrated on S001's run 4.
    let summary = calibrate_files(&CalibrateFiles {
        encoder: "data/encoder".into(),
        task: "eegmmidb-lr".into(),
        subject: "S001".into(),
        calibration: vec![run(4)],
        unlabeled: Vec::new(),
        out: std::env::temp_dir().join("eegadapt-example-S001"),
    })?;
    let manifest = &summary.subject.manifest;
    println!("chosen by inner cross-validation: {}", manifest.strategy);
    for s in &manifest.inner_cv {
        println!("  {:<36} {:.3}", s.strategy.to_string(), s.accuracy);
    }
    // Runs 8 and 12, never seen during calibration.
    let predicted = predict_files(&summary.subject, &[run(8), run(12)]);
    for failure in &predicted.failed {
        eprintln!("{failure}");
    }
    println!(
        "runs 8 + 12: {} epochs, accuracy {:.3}, kappa {:.3}",
        predicted.n_epochs,
        predicted.accuracy.unwrap_or(f64::NAN),
        predicted.kappa.unwrap_or(f64::NAN)
    );
    Ok(())
}
