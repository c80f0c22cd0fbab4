//! Read a recording with the library and look at it (the notebook
//! `notebooks-rs/01-inspect-and-spectra.ipynb` goes further: epochs and spectra).
//!
//! Run: `cargo run --release --example inspect_recording -- data/eegmmidb/S001/S001R04.edf`

use eegadapt::edf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "data/eegmmidb/S001/S001R04.edf".to_string());
    let recording = edf::read_recording(&path)?;
    println!(
        "{}: {}, {:.1} s, {} channels",
        path,
        recording.format,
        recording.duration_s(),
        recording.channels.len()
    );

    // Mean and standard deviation of C3 over the whole run, in its physical unit.
    let c3 = recording.channel_index("C3").ok_or("no C3 channel")?;
    let x = &recording.data[c3];
    let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / x.len() as f64;
    let var = x
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / x.len() as f64;
    println!(
        "C3: mean {mean:.2} {unit}, std {:.2} {unit}",
        var.sqrt(),
        unit = recording.channels[c3].unit
    );

    // The imagery cues: T1 = left fist, T2 = right fist (EEGMMIDB runs 4, 8, 12).
    for a in recording.annotations.iter().take(6) {
        println!(
            "{:>7.2} s  {:<3} {:.2} s",
            a.onset_s,
            a.text,
            a.duration_s.unwrap_or(0.0)
        );
    }
    Ok(())
}
