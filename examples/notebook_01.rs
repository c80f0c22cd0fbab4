//! Generated from `notebooks-rs/01-inspect-and-spectra.ipynb` by `tests/notebooks.rs`; do not edit (change the
//! notebook, then `EEGADAPT_BLESS=1 cargo test --test integration notebooks::`).
#![allow(clippy::all, unused)]

#[rustfmt::skip]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    std::env::set_current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/notebooks-rs"))?;
    println!("@@cell 2");
    use eegadapt::edf;
    let recording = edf::read_recording("../data/eegmmidb/S001/S001R04.edf")?;
    println!("{}, {:.1} s, {} channels", recording.format, recording.duration_s(), recording.channels.len());
    println!("@@cell 4");
    for c in recording.channels.iter().take(5) {
        println!("{:<6} {:<5} {:?} {} Hz, {} samples, {}", c.label, c.name.as_deref().unwrap_or("-"), c.kind, c.sampling_rate_hz, c.samples, c.unit);
    }
    println!("@@cell 6");
    for a in recording.annotations.iter().take(6) {
        println!("{:>7.2} s  {:<3} {:.2} s", a.onset_s, a.text, a.duration_s.unwrap_or(0.0));
    }
    println!("@@cell 8");
    use eegadapt::features::FeatureConfig;
    use eegadapt::pipeline::features_of;
    use eegadapt::task::Task;
    let task = Task::resolve("eegmmidb-lr")?;
    let files = vec![std::path::PathBuf::from("../data/eegmmidb/S001/S001R04.edf")];
    let set = features_of(&files, &task, &FeatureConfig::default()).remove(0)?;
    println!("{} epochs, classes {:?}, {} frequency bins from {} to {} Hz",
        set.rows.len(), task.classes, set.meta.freqs.len(), set.meta.freqs[0], set.meta.freqs[set.meta.freqs.len() - 1]);
    println!("@@cell 10");
    // Shows an SVG inline in Jupyter (evcxr's display protocol).
    fn show_svg(path: &std::path::Path) {
        let svg = std::fs::read_to_string(path).expect("svg written");
        println!("EVCXR_BEGIN_CONTENT image/svg+xml\n{svg}\nEVCXR_END_CONTENT");
    }
    use eegadapt::plots::{line_chart, Series};
    let freqs = &set.meta.freqs;
    let n = freqs.len();
    let mut series = Vec::new();
    for name in ["C3", "C4"] {
        let c = set.meta.channels.iter().position(|x| x == name).expect("channel");
        for (k, class) in task.classes.iter().enumerate() {
            let rows: Vec<_> = set.rows.iter().filter(|r| r.label == Some(k)).collect();
            let points = (0..n).filter(|&f| freqs[f] <= 40.0).map(|f| {
                let mean = rows.iter().map(|r| r.log_psd[c * n + f]).sum::<f64>() / rows.len() as f64;
                (freqs[f], mean)
            }).collect();
            series.push(Series { name: format!("{name}, {class} ({} epochs)", rows.len()), points });
        }
    }
    std::fs::create_dir_all("../target/notebooks")?;
    let stem = std::path::Path::new("../target/notebooks/spectra_c3_c4");
    line_chart(stem, "S001 run 4: mean log spectrum by class", "frequency (Hz)", "log10 power (uV^2/Hz)", &series)?;
    show_svg(&stem.with_extension("svg"));
    Ok(())
}
