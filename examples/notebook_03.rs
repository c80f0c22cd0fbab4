//! Generated from `notebooks-rs/03-batch-with-polars.ipynb` by `tests/notebooks.rs`; do not edit (change the
//! notebook, then `EEGADAPT_BLESS=1 cargo test --test integration notebooks::`).
#![allow(clippy::all, unused)]

#[rustfmt::skip]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    std::env::set_current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/notebooks-rs"))?;
    println!("@@cell 3");
    use eegadapt::features::{config_hash, FeatureConfig};
    use eegadapt::pipeline::{collect_inputs, feature_table};
    use eegadapt::task::Task;
    let task = Task::resolve("eegmmidb-lr")?;
    let config = FeatureConfig::default();
    let hash = config_hash(&config, &task);
    let out = std::path::PathBuf::from("../target/notebooks/features");
    std::fs::create_dir_all(&out)?;
    for file in collect_inputs(&["../data/eegmmidb/S001".into()])? {
        let outcome = feature_table(&file, &task, &config, &hash, &out, false, None)?;
        println!("{}: {:?}", file.file_name().unwrap().to_string_lossy(), outcome);
    }
    println!("@@cell 5");
    use polars::prelude::*;
    let path = out.join("S001R04.parquet");
    let df = ParquetReader::new(std::fs::File::open(&path)?).finish()?;
    println!("{} rows x {} columns", df.height(), df.width());
    for (name, dtype) in df.schema().iter() { println!("  {name}: {dtype}"); }
    println!("{}", df.select(["subject", "recording", "run", "epoch", "onset_s", "label"])?.head(Some(6)));
    println!("@@cell 7");
    let mut counts = std::collections::BTreeMap::new();
    for run in ["S001R04", "S001R08", "S001R12"] {
        let df = ParquetReader::new(std::fs::File::open(out.join(format!("{run}.parquet")))?).finish()?;
        for label in df.column("label")?.as_materialized_series().iter() {
            *counts.entry((run, label.to_string())).or_insert(0) += 1;
        }
    }
    for ((run, label), n) in &counts { println!("{run} label {label}: {n} epochs"); }
    Ok(())
}
