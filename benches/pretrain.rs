//! Pretraining speed: optimisation steps/s and epochs/s of the encoder at batch 64 on 1 and 2
//! threads (each in its own process, since candle reads RAYON_NUM_THREADS once per kernel call
//! and rayon's pool is per process), for the default model and a wider one; beside each, the
//! same model in PyTorch (`benches/pretrain_torch.py`) when `python3` can import torch (or the
//! interpreter in `EEGADAPT_TORCH_PYTHON`); then the wall time of a whole pretraining on the
//! shared EEGMMIDB subjects (features included, from EDF).
//!
//! Run: `cargo bench --bench pretrain` (release). Data: ../shared/data/eegmmidb.

/// The allocator the `eegadapt` binary uses (see src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
            extra_tangents: Vec::new(),
            evoked: Vec::new(),
            label: Some(i % 2),
            task: 0,
            run: None,
        })
        .collect()
}

/// Model widths compared: (name, d_model, d_ff). The default, and one near the 189k parameters
/// of the PyTorch figure quoted in the encoder's issue.
const SIZES: [(&str, usize, usize); 2] = [("default", 64, 128), ("wide", 96, 192)];

/// Child process: time training steps with the thread count in RAYON_NUM_THREADS.
fn steps(d_model: usize, d_ff: usize) {
    let layout = RowLayout {
        channels: CHANNELS,
        freqs: 45,
        bands: 5,
        covariance_bands: 1,
        evoked: 0,
    };
    let channels: Vec<String> = eegadapt::montage::STANDARD_1005
        .iter()
        .take(CHANNELS)
        .map(|(n, _)| n.to_string())
        .collect();
    let mut config = PretrainConfig::new(FEATURES);
    config.encoder.d_model = d_model;
    config.encoder.d_ff = d_ff;
    let tasks = vec![TaskInfo {
        name: "bench".into(),
        classes: vec!["a".into(), "b".into()],
    }];
    let model = PopulationModel::new(&config.encoder, &tasks, &channels, 1).expect("model");
    let vars = model.encoder_vars().expect("vars");
    // The parameters this step trains (the tangent heads are fitted separately).
    let params: usize = vars.iter().map(|v| v.elem_count()).sum();
    let mut opt = AdamW::new(vars, ParamsAdamW::default()).expect("optimizer");
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

/// The PyTorch twin's `threads params steps/s epochs/s`, or why it did not run.
fn torch_twin(threads: usize, d_model: usize, d_ff: usize) -> String {
    let python = std::env::var("EEGADAPT_TORCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/pretrain_torch.py");
    match Command::new(&python)
        .arg(&script)
        .args([threads, d_model, d_ff].map(|v| v.to_string()))
        .output()
    {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            let f: Vec<&str> = text.split_whitespace().collect();
            match f.as_slice() {
                [_, params, steps, epochs] => format!("{params:>10} {steps:>10} {epochs:>12}"),
                _ => format!("unexpected output: {}", text.trim()),
            }
        }
        Ok(_) => "not run (torch not importable)".into(),
        Err(e) => format!("not run ({python}: {e})"),
    }
}

fn main() {
    eegadapt::allocator::keep_freed_memory();
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child-steps") {
        let size = |k: usize| args.get(i + k).and_then(|v| v.parse().ok());
        steps(size(1).unwrap_or(64), size(2).unwrap_or(128));
        return;
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at start: {}", load.trim());
    println!("encoder (2 layers, 4 heads, covariance on), batch {BATCH}, {CHANNELS} channels, {FEATURES} features, masked reconstruction + classification, one AdamW step");
    println!(
        "{:>8} {:>8} {:>8} {:>10} {:>10} {:>12}",
        "model", "engine", "threads", "params", "steps/s", "epochs/s"
    );
    let exe = std::env::current_exe().expect("exe");
    for (name, d_model, d_ff) in SIZES {
        for threads in [1, 2] {
            let out = Command::new(&exe)
                .args(["--child-steps", &d_model.to_string(), &d_ff.to_string()])
                .env("RAYON_NUM_THREADS", threads.to_string())
                // As the CLI sets it (see `limit_threads` in src/cli/mod.rs).
                .env("CANDLE_NUM_THREADS", "1")
                .output()
                .expect("child");
            let text = String::from_utf8_lossy(&out.stdout);
            let f: Vec<&str> = text.split_whitespace().collect();
            if f.len() == 3 {
                println!(
                    "{name:>8} {:>8} {threads:>8} {:>10} {:>10} {:>12}",
                    "candle", f[0], f[1], f[2]
                );
            } else {
                println!(
                    "{name:>8} {:>8} {threads:>8} failed: {}",
                    "candle",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            println!(
                "{name:>8} {:>8} {threads:>8} {}",
                "pytorch",
                torch_twin(threads, d_model, d_ff)
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
