//! Calibrate a subject and predict new runs with the library: the code of
//! `notebooks-rs/02-calibrate-and-predict.ipynb`, kept here so that CI compiles it.
//!
//! Run: `cargo run --release --example calibrate_subject` (from the crate's folder).

use eegadapt::align::RowLayout;
use eegadapt::calibrate::{self, CalibrateOptions, CalibrationInput};
use eegadapt::features::{feature_config_hash, features_from_file, FeatureRow, FeatureSet};
use eegadapt::predict::{argmax, scores};
use eegadapt::store::sha256_file;
use eegadapt::task::Task;

fn features(
    path: &str,
    task: &Task,
    config: &eegadapt::features::FeatureConfig,
) -> Result<FeatureSet, Box<dyn std::error::Error>> {
    let path = std::path::Path::new(path);
    Ok(features_from_file(path, &sha256_file(path)?, task, config)?)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The population encoder shipped in data/ (never trained on S001).
    let encoder_dir = std::path::Path::new("data/encoder");
    let manifest = eegadapt::pretrain::read_manifest(encoder_dir)?;
    let config = manifest.feature_config.clone();
    let (population, _) =
        eegadapt::pretrain::load(encoder_dir, Some(&feature_config_hash(&config)))?;
    let task = Task::resolve("eegmmidb-lr")?;

    // Calibration: S001's run 4 (15 labelled imagery trials).
    let run4 = features("data/eegmmidb/S001/S001R04.edf", &task, &config)?;
    let layout = RowLayout::of(&run4.meta);
    let input = CalibrationInput {
        task: 0,
        channels: run4.meta.channels.clone(),
        layout,
        labelled: run4.rows.iter().filter(|r| r.label.is_some()).collect(),
        unlabeled: Vec::new(),
    };
    let model = calibrate::calibrate(&population, &input, &CalibrateOptions::default())?;
    println!("chosen by inner cross-validation: {}", model.strategy);
    for s in &model.inner_cv {
        println!("  {:<36} {:.3}", s.strategy.to_string(), s.accuracy);
    }

    // Prediction: runs 8 and 12, never seen during calibration.
    let mut pairs = Vec::new();
    for run in ["S001R08", "S001R12"] {
        let set = features(&format!("data/eegmmidb/S001/{run}.edf"), &task, &config)?;
        let rows: Vec<&FeatureRow> = set.rows.iter().collect();
        for (row, p) in rows.iter().zip(model.probabilities(&population, &rows)?) {
            if let Some(label) = row.label {
                pairs.push((label, argmax(&p)));
            }
        }
    }
    if let Some(s) = scores(&pairs, task.classes.len()) {
        println!(
            "runs 8 + 12: {} epochs, accuracy {:.3}, balanced accuracy {:.3}, kappa {:.3}",
            s.n_epochs, s.accuracy, s.balanced_accuracy, s.kappa
        );
    }
    Ok(())
}
