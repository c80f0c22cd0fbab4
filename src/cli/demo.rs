//! `eegadapt demo`: the everyday job on the data shipped in `data/`: calibrate one subject on
//! run 4 with the shipped encoder, predict its runs 8 and 12, print what was measured and write
//! the subject's report.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use eegadapt::calibrate;
use eegadapt::report::{self, ReportOptions};

use eegadapt::pipeline::{calibrate_files, held_out_of, predict_files, CalibrateFiles};

use super::calibrate::print_summary;

/// Arguments of `demo`.
#[derive(Args)]
pub struct DemoArgs {
    /// The project's data folder (default: ./data, else the one beside the sources).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Where to write the subject model.
    #[arg(long, default_value = "demo-output")]
    out: PathBuf,
    /// Worker threads.
    #[arg(long)]
    jobs: Option<usize>,
}

fn data_dir(given: Option<&Path>) -> PathBuf {
    if let Some(d) = given {
        return d.to_path_buf();
    }
    let local = PathBuf::from("data");
    if local.join("encoder").is_dir() {
        local
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("data")
    }
}

/// Runs the command.
pub fn run(args: &DemoArgs) -> anyhow::Result<ExitCode> {
    super::limit_threads(args.jobs);
    let started = Instant::now();
    let data = data_dir(args.data.as_deref());
    let encoder = data.join("encoder");
    let recordings = data.join("eegmmidb").join("S001");
    let run = |n: u32| recordings.join(format!("S001R{n:02}.edf"));
    for path in [encoder.join("encoder.json"), run(4), run(8), run(12)] {
        if !path.exists() {
            bail!(
                "{}: missing; the demo needs the project's data/ folder",
                path.display()
            );
        }
    }
    println!(
        "demo: encoder {} (pretrained on EEGMMIDB S002-S012, see data/encoder/RECIPE.md)",
        encoder.display()
    );
    println!("calibrating subject S001 on run 4 (imagined left vs right fist) ...");
    let subject_dir = args.out.join("S001");
    let summary = calibrate_files(&CalibrateFiles {
        encoder: encoder.clone(),
        task: "eegmmidb-lr".into(),
        subject: "S001".into(),
        calibration: vec![run(4)],
        unlabeled: Vec::new(),
        out: subject_dir.clone(),
    })?;
    print_summary(&summary, &subject_dir);
    println!("predicting runs 8 and 12 ...");
    let loaded = calibrate::load(&subject_dir, Some(&encoder))?;
    let predicted = predict_files(&loaded, &[run(8), run(12)]);
    if let Some(failure) = predicted.failed.first() {
        bail!("{failure}");
    }
    let accuracy = predicted
        .accuracy
        .context("runs 8 and 12 carry no labels")?;
    println!(
        "S001 runs 8 + 12: {} epochs, accuracy {:.3}, balanced accuracy {:.3}, Cohen's kappa {:.3}",
        predicted.n_epochs,
        accuracy,
        predicted.balanced_accuracy.unwrap_or(f64::NAN),
        predicted.kappa.unwrap_or(f64::NAN)
    );
    let held_out = held_out_of(predicted, &[run(8), run(12)])?;
    let page = subject_dir.join(report::REPORT);
    let html = report::render(&subject_dir, Some(&held_out), &ReportOptions::default())?;
    report::write(&page, &html)?;
    println!(
        "artifacts: {} (model.safetensors, subject.json, {}), plots in {}; {:.1} s in all",
        subject_dir.display(),
        report::REPORT,
        subject_dir.join("plots").display(),
        started.elapsed().as_secs_f64()
    );
    println!(
        "next: open {} in a browser; eegadapt predict --model {} FILE.edf --json",
        page.display(),
        subject_dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
