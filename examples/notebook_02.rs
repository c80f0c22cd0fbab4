//! Generated from `notebooks-rs/02-calibrate-and-predict.ipynb` by `tests/notebooks.rs`; do not edit (change the
//! notebook, then `EEGADAPT_BLESS=1 cargo test --test integration notebooks::`).
#![allow(clippy::all, unused)]

#[rustfmt::skip]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    std::env::set_current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/notebooks-rs"))?;
    println!("@@cell 3");
    use eegadapt::pipeline::{calibrate_files, predict_files, CalibrateFiles};
    use std::path::PathBuf;
    let out = PathBuf::from("../target/notebooks/S001");
    let summary = calibrate_files(&CalibrateFiles {
        encoder: "../data/encoder".into(),
        task: "eegmmidb-lr".into(),
        subject: "S001".into(),
        calibration: vec!["../data/eegmmidb/S001/S001R04.edf".into()],
        unlabeled: Vec::new(),
        out: out.clone(),
    })?;
    let m = &summary.subject.manifest;
    println!("{} labelled epochs {:?}, {} inner folds, {:.1} s", m.calibration.per_class.iter().sum::<usize>(), m.calibration.per_class, m.inner_cv_folds, summary.seconds);
    for s in &m.inner_cv {
        println!("  {} {:<36} inner-CV accuracy {:.3}", if s.strategy == m.strategy { "*" } else { " " }, s.strategy.to_string(), s.accuracy);
    }
    println!("@@cell 5");
    let test: Vec<PathBuf> = ["S001R08", "S001R12"].iter().map(|r| format!("../data/eegmmidb/S001/{r}.edf").into()).collect();
    let predicted = predict_files(&summary.subject, &test);
    println!("{} epochs: accuracy {:.3}, balanced accuracy {:.3}, Cohen's kappa {:.3}",
        predicted.n_epochs, predicted.accuracy.unwrap_or(f64::NAN), predicted.balanced_accuracy.unwrap_or(f64::NAN), predicted.kappa.unwrap_or(f64::NAN));
    println!("confusion [true][predicted] over {:?}: {:?}", predicted.classes, predicted.confusion);
    for e in predicted.epochs.iter().take(4) { println!("{:?}", e); }
    println!("@@cell 7");
    // Shows an SVG inline in Jupyter (evcxr's display protocol).
    fn show_svg(path: &std::path::Path) {
        let svg = std::fs::read_to_string(path).expect("svg written");
        println!("EVCXR_BEGIN_CONTENT image/svg+xml\n{svg}\nEVCXR_END_CONTENT");
    }
    show_svg(&out.join("plots/scalp_maps.svg"));
    Ok(())
}
