//! Pretraining speed: optimisation steps/s and epochs/s of the default encoder at batch 64 on
//! 1 and 2 threads (each in its own process, since candle reads RAYON_NUM_THREADS once per
//! kernel call and rayon's pool is per process), and the wall time of a whole pretraining on the
//! shared EEGMMIDB subjects (features included, from EDF).
//!
//! Run: `cargo bench --bench pretrain` (release). Data: ../shared/data/eegmmidb.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use candle_core::Module;
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use eegadapt::align::RowLayout;
use eegadapt::encoder::{cross_entropy, masked_reconstruction_loss};
use eegadapt::pretrain::{make_batch, PopulationModel, PretrainConfig, Sample, TaskInfo};

const BATCH: usize = 64;
const CHANNELS: usize = 64;
const FEATURES: usize = 55;

fn synthetic_samples(n: usize) -> Vec<Sample> {
    let mut rng = eegadapt::pretrain::rng::Rng::new(7);
    (0..n)
        .map(|i| Sample {
            tokens: (0..CHANNELS * FEATURES)
                .map(|_| rng.normal() as f32)
                .collect(),
            tangent: Some(
                (0..CHANNELS * CHANNELS)
                    .map(|_| (rng.normal() * 0.1) as f32)
                    .collect(),
            ),
            label: Some(i % 2),
            task: 0,
            run: None,
        })
        .collect()
}

/// Child process: time training steps with the thread count in RAYON_NUM_THREADS.
fn steps() {
    let layout = RowLayout {
        channels: CHANNELS,
        freqs: 45,
        bands: 5,
    };
    let channels: Vec<String> = eegadapt::montage::STANDARD_1005
        .iter()
        .take(CHANNELS)
        .map(|(n, _)| n.to_string())
        .collect();
    let config = PretrainConfig::new(FEATURES);
    let tasks = vec![TaskInfo {
        name: "bench".into(),
        classes: vec!["a".into(), "b".into()],
    }];
    let model = PopulationModel::new(&config.encoder, &tasks, &channels, 1).expect("model");
    let params = eegadapt::encoder::parameter_count(&model.varmap);
    let mut opt =
        AdamW::new(model.encoder_vars().expect("vars"), ParamsAdamW::default()).expect("optimizer");
    let samples = synthetic_samples(BATCH);
    let refs: Vec<&Sample> = samples.iter().collect();
    let keep: Vec<usize> = (0..CHANNELS).collect();
    let mut batch = make_batch(&refs, layout, &channels, &keep).expect("batch");
    let labels = batch.labels.clone().expect("labels");
    let mask = candle_core::Tensor::from_vec(
        (0..BATCH * CHANNELS)
            .map(|i| ((i % 3) == 0) as u8 as f32)
            .collect::<Vec<_>>(),
        (BATCH, CHANNELS),
        &candle_core::Device::Cpu,
    )
    .expect("mask");
    let mut step = |batch: &mut eegadapt::pretrain::Batch| {
        batch.input.mask = Some(mask.clone());
        let out = model.encode(batch, true).expect("forward");
        let recon = masked_reconstruction_loss(
            &model.reconstruction.forward(&out.tokens).expect("recon"),
            &batch.target,
            &mask,
        )
        .expect("loss");
        let logits = model.heads[0].forward(&out.embedding).expect("head");
        let loss = (cross_entropy(&logits, &labels).expect("ce") + recon).expect("sum");
        opt.backward_step(&loss).expect("step");
    };
    for _ in 0..3 {
        step(&mut batch);
    }
    let n = 30;
    let t = Instant::now();
    for _ in 0..n {
        step(&mut batch);
    }
    let s = t.elapsed().as_secs_f64();
    println!("{params} {:.3} {:.1}", n as f64 / s, (n * BATCH) as f64 / s);
}

fn main() {
    if std::env::args().any(|a| a == "--child-steps") {
        steps();
        return;
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at start: {}", load.trim());
    println!("default encoder (d=64, 2 layers, 4 heads, covariance on), batch {BATCH}, {CHANNELS} channels, {FEATURES} features, masked reconstruction + classification, one AdamW step");
    println!(
        "{:>8} {:>10} {:>10} {:>12}",
        "threads", "params", "steps/s", "epochs/s"
    );
    let exe = std::env::current_exe().expect("exe");
    for threads in [1, 2] {
        let out = Command::new(&exe)
            .arg("--child-steps")
            .env("RAYON_NUM_THREADS", threads.to_string())
            .output()
            .expect("child");
        let text = String::from_utf8_lossy(&out.stdout);
        let f: Vec<&str> = text.split_whitespace().collect();
        if f.len() == 3 {
            println!("{threads:>8} {:>10} {:>10} {:>12}", f[0], f[1], f[2]);
        } else {
            println!(
                "{threads:>8} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    // Whole pretraining through the binary, as a user runs it.
    let shared = std::env::var_os("EEGADAPT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    let data = shared.join("data/eegmmidb");
    let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/eegadapt");
    if !bin.is_file() {
        println!("whole pretraining: build the binary first (cargo build --release), skipped");
        return;
    }
    let out = std::env::temp_dir().join(format!("eegadapt-bench-encoder-{}", std::process::id()));
    let t = Instant::now();
    let status = Command::new(&bin)
        .args(["pretrain", "--data"])
        .arg(&data)
        .args(["--task", "eegmmidb-lr", "--out"])
        .arg(&out)
        .args(["--jobs", "2"])
        .status()
        .expect("run");
    println!(
        "whole pretraining on {} (features from EDF + training, 2 threads): {:.1} s, {}",
        data.display(),
        t.elapsed().as_secs_f64(),
        status
    );
    let _ = std::fs::remove_dir_all(&out);
}
