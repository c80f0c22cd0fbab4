//! Behaviour of the assembled encoder: shapes across montages, channel-order invariance,
//! masking, dropout, configuration, and a small training run that must learn.

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};

use super::*;
use crate::montage::TEN_TWENTY_19;

type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

/// The 64 channels of the EEGMMIDB cap.
const CAP_64: [&str; 64] = [
    "FC5", "FC3", "FC1", "FCz", "FC2", "FC4", "FC6", "C5", "C3", "C1", "Cz", "C2", "C4", "C6",
    "CP5", "CP3", "CP1", "CPz", "CP2", "CP4", "CP6", "Fp1", "Fpz", "Fp2", "AF7", "AF3", "AFz",
    "AF4", "AF8", "F7", "F5", "F3", "F1", "Fz", "F2", "F4", "F6", "F8", "FT7", "FT8", "T7", "T8",
    "T9", "T10", "TP7", "TP8", "P7", "P5", "P3", "P1", "Pz", "P2", "P4", "P6", "P8", "PO7", "PO3",
    "POz", "PO4", "PO8", "O1", "Oz", "O2", "Iz",
];

/// Deterministic pseudo-random numbers: candle's CPU generator cannot be seeded.
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    fn tensor(&mut self, dims: &[usize]) -> Tensor {
        let n = dims.iter().product();
        let values: Vec<f32> = (0..n).map(|_| self.normal() as f32).collect();
        Tensor::from_vec(values, dims, &Device::Cpu).expect("shape matches data")
    }

    fn covariance(&mut self, b: usize, c: usize) -> Tensor {
        let a = (self.tensor(&[b, c, c]) * 0.5).expect("scalar");
        (&a + a.transpose(1, 2).expect("rank 3")).expect("same shape")
    }

    fn mask(&mut self, b: usize, c: usize) -> Tensor {
        let values: Vec<f32> = (0..b * c)
            .map(|_| f32::from(self.uniform() < 0.3))
            .collect();
        Tensor::from_vec(values, (b, c), &Device::Cpu).expect("shape matches data")
    }
}

/// Replaces every initial value by a deterministic one with the same mean and spread, so the
/// tests do not depend on candle's unseeded initialization.
fn reseed(varmap: &VarMap, rng: &mut Rng) {
    let data = varmap.data().lock().expect("no panic while held");
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    for name in names {
        let var = &data[name];
        let t = var.as_tensor().to_dtype(DType::F64).expect("float");
        let mean = t
            .mean_all()
            .and_then(|m| m.to_scalar::<f64>())
            .expect("f64");
        let std = t
            .affine(1.0, -mean)
            .and_then(|c| c.sqr()?.mean_all()?.to_scalar::<f64>())
            .expect("f64")
            .sqrt();
        let values: Vec<f64> = (0..t.elem_count())
            .map(|_| mean + std * rng.normal())
            .collect();
        let fresh = Tensor::from_vec(values, t.dims(), &Device::Cpu)
            .and_then(|t| t.to_dtype(var.dtype()))
            .expect("same shape");
        var.set(&fresh).expect("same shape and dtype");
    }
}

fn model(cfg: &EncoderConfig, seed: u64) -> (VarMap, Encoder) {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let encoder = Encoder::new(cfg, vb).expect("valid config");
    reseed(&varmap, &mut Rng(seed));
    (varmap, encoder)
}

fn input(rng: &mut Rng, names: &[&str], b: usize, f: usize) -> EncoderInput {
    let c = names.len();
    EncoderInput {
        tokens: rng.tensor(&[b, c, f]),
        positions: positions(names, &Device::Cpu).expect("standard names"),
        covariance: Some(rng.covariance(b, c)),
        mask: Some(rng.mask(b, c)),
    }
}

/// Largest absolute elementwise difference, in f64 whatever the tensors' dtype.
pub(super) fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b)
        .and_then(|d| d.abs()?.max_all()?.to_dtype(DType::F64)?.to_scalar::<f64>())
        .expect("same shape")
}

#[test]
fn one_set_of_weights_serves_64_and_19_channels() -> TestResult {
    let cfg = EncoderConfig::new(55);
    let (varmap, encoder) = model(&cfg, 1);
    let count = parameter_count(&varmap);
    let mut rng = Rng(2);
    for names in [&CAP_64[..], TEN_TWENTY_19] {
        let out = encoder.forward_t(&input(&mut rng, names, 2, 55), false)?;
        assert_eq!(out.tokens.dims(), [2, names.len(), 64]);
        assert_eq!(out.embedding.dims(), [2, 64]);
    }
    // No weight was created for a particular channel count.
    assert_eq!(parameter_count(&varmap), count);
    assert_eq!(count, 79_880);
    Ok(())
}

#[test]
fn weight_names_are_the_documented_ones() {
    let cfg = EncoderConfig {
        n_layers: 1,
        ..EncoderConfig::new(5)
    };
    let (varmap, _) = model(&cfg, 1);
    let data = varmap.data().lock().expect("no panic while held");
    let mut names: Vec<&str> = data.keys().map(String::as_str).collect();
    names.sort_unstable();
    let mut expected = vec![
        "token.proj.weight",
        "token.proj.bias",
        "token.mask_token",
        "norm.weight",
        "norm.bias",
        "embedding_norm.weight",
        "embedding_norm.bias",
        "layers.0.attention.cov_scale",
    ];
    let linears = [
        "position.fc1",
        "position.fc2",
        "layers.0.attention.query",
        "layers.0.attention.key",
        "layers.0.attention.value",
        "layers.0.attention.out",
        "layers.0.feed_forward.fc1",
        "layers.0.feed_forward.fc2",
        "covariance.fc1",
        "covariance.fc2",
    ];
    let norms = ["layers.0.attention.norm", "layers.0.feed_forward.norm"];
    let prefixed: Vec<String> = linears
        .iter()
        .chain(&norms)
        .flat_map(|p| [format!("{p}.weight"), format!("{p}.bias")])
        .collect();
    expected.extend(prefixed.iter().map(String::as_str));
    expected.sort_unstable();
    assert_eq!(names, expected);
}

#[test]
fn channel_order_does_not_change_the_embedding() -> TestResult {
    let cfg = EncoderConfig::new(6);
    let (_varmap, encoder) = model(&cfg, 3);
    let mut rng = Rng(4);
    let x = input(&mut rng, TEN_TWENTY_19, 3, 6);
    let c = TEN_TWENTY_19.len();
    let perm: Vec<u32> = (0..c as u32).map(|i| (i * 7 + 3) % c as u32).collect();
    let perm = Tensor::new(perm.as_slice(), &Device::Cpu)?;
    let permuted = EncoderInput {
        tokens: x.tokens.index_select(&perm, 1)?,
        positions: x.positions.index_select(&perm, 0)?,
        covariance: x
            .covariance
            .as_ref()
            .map(|cov| cov.index_select(&perm, 1)?.index_select(&perm, 2))
            .transpose()?,
        mask: x
            .mask
            .as_ref()
            .map(|m| m.index_select(&perm, 1))
            .transpose()?,
    };
    let a = encoder.forward_t(&x, false)?;
    let b = encoder.forward_t(&permuted, false)?;
    assert!(max_abs_diff(&a.embedding, &b.embedding) < 1e-5);
    // The tokens are permuted along with the channels (equivariance).
    assert!(max_abs_diff(&a.tokens.index_select(&perm, 1)?, &b.tokens) < 1e-5);
    Ok(())
}

#[test]
fn mask_hides_the_token_features() -> TestResult {
    let cfg = EncoderConfig::new(6);
    let (_varmap, encoder) = model(&cfg, 5);
    let mut rng = Rng(6);
    let mut x = input(&mut rng, TEN_TWENTY_19, 2, 6);
    let (b, c) = (2, TEN_TWENTY_19.len());
    let mut mask = vec![0f32; b * c];
    mask[4] = 1.0;
    x.mask = Some(Tensor::from_vec(mask, (b, c), &Device::Cpu)?);
    let masked = encoder.forward_t(&x, false)?;

    // Changing the hidden token's features changes nothing...
    let mut bump = vec![0f32; b * c * 6];
    bump[4 * 6..5 * 6].fill(3.0);
    let bump = Tensor::from_vec(bump, (b, c, 6), &Device::Cpu)?;
    let changed = EncoderInput {
        tokens: (&x.tokens + &bump)?,
        ..x.clone()
    };
    let same = encoder.forward_t(&changed, false)?;
    assert!(max_abs_diff(&masked.embedding, &same.embedding) < 1e-6);

    // ...while unmasking it does.
    let unmasked = EncoderInput { mask: None, ..x };
    let open = encoder.forward_t(&unmasked, false)?;
    assert!(max_abs_diff(&masked.embedding, &open.embedding) > 1e-3);
    Ok(())
}

#[test]
fn dropout_only_in_training() -> TestResult {
    let cfg = EncoderConfig {
        dropout: 0.5,
        ..EncoderConfig::new(6)
    };
    let (_varmap, encoder) = model(&cfg, 7);
    let x = input(&mut Rng(8), TEN_TWENTY_19, 2, 6);
    let eval = encoder.forward_t(&x, false)?.embedding;
    assert_eq!(
        max_abs_diff(&eval, &encoder.forward_t(&x, false)?.embedding),
        0.0
    );
    assert!(max_abs_diff(&eval, &encoder.forward_t(&x, true)?.embedding) > 1e-4);
    Ok(())
}

#[test]
fn bad_shapes_are_typed_errors() {
    let cfg = EncoderConfig::new(6);
    let (_varmap, encoder) = model(&cfg, 9);
    let mut x = input(&mut Rng(10), TEN_TWENTY_19, 2, 6);
    x.positions = positions(&CAP_64[..3], &Device::Cpu).expect("standard names");
    let err = encoder.forward_t(&x, false).map(|_| ()).unwrap_err();
    assert!(
        matches!(
            err,
            EncoderError::Shape {
                name: "positions",
                ..
            }
        ),
        "{err}"
    );
    assert!(matches!(
        positions(&["Fp1", "Status"], &Device::Cpu),
        Err(EncoderError::UnknownElectrode(name)) if name == "Status"
    ));
}

#[test]
fn config_defaults_round_trip_and_validation() {
    let cfg: EncoderConfig = serde_json::from_str(r#"{"n_features": 55}"#).expect("valid json");
    assert_eq!(cfg, EncoderConfig::new(55));
    let json = serde_json::to_string(&cfg).expect("serializable");
    assert_eq!(
        serde_json::from_str::<EncoderConfig>(&json).ok(),
        Some(cfg.clone())
    );
    let bad = EncoderConfig { n_heads: 5, ..cfg };
    assert!(matches!(bad.validate(), Err(EncoderError::Config(_))));
}

#[test]
fn masked_loss_counts_masked_tokens_only() -> TestResult {
    let dev = &Device::Cpu;
    let pred = Tensor::new(&[[[1f32, 1.], [5., 5.]]], dev)?;
    let target = Tensor::zeros((1, 2, 2), DType::F32, dev)?;
    let mask = Tensor::new(&[[1f32, 0.]], dev)?;
    let loss = masked_reconstruction_loss(&pred, &target, &mask)?.to_scalar::<f32>()?;
    assert!((loss - 1.0).abs() < 1e-6);
    let none = masked_reconstruction_loss(&pred, &target, &mask.zeros_like()?)?;
    assert_eq!(none.to_scalar::<f32>()?, 0.0);
    Ok(())
}

/// Two classes that differ in which hemisphere carries extra power, plus a covariance cue:
/// separable, but only by combining features with positions.
fn toy_problem(rng: &mut Rng, n: usize, f: usize) -> Result<(EncoderInput, Tensor)> {
    let dev = &Device::Cpu;
    let names = TEN_TWENTY_19;
    let c = names.len();
    let xs: Vec<f64> = names
        .iter()
        .map(|n| crate::montage::position(n).map_or(0.0, |p| p[0]))
        .collect();
    let labels: Vec<u32> = (0..n as u32).map(|i| i % 2).collect();
    let mut tokens = (rng.tensor(&[n, c, f]) * 0.5)?.to_vec3::<f32>()?;
    for (epoch, &label) in tokens.iter_mut().zip(&labels) {
        for (channel, &x) in epoch.iter_mut().zip(&xs) {
            let side = if label == 0 { -x } else { x };
            if side > 0.01 {
                channel[0] += 1.0;
            }
        }
    }
    let flat: Vec<f32> = tokens.into_iter().flatten().flatten().collect();
    let input = EncoderInput {
        tokens: Tensor::from_vec(flat, (n, c, f), dev)?,
        positions: positions(names, dev)?,
        covariance: Some((rng.covariance(n, c) * 0.3)?),
        mask: None,
    };
    Ok((input, Tensor::new(labels.as_slice(), dev)?))
}

#[test]
fn a_short_training_run_separates_a_toy_problem() -> TestResult {
    let f = 8;
    let cfg = EncoderConfig {
        d_model: 32,
        n_layers: 1,
        d_ff: 64,
        ..EncoderConfig::new(f)
    };
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let encoder = Encoder::new(&cfg, vb.clone())?;
    let head = ClassHead::new(cfg.d_model, 2, vb.pp("heads.toy"))?;
    reseed(&varmap, &mut Rng(11));
    let (x, labels) = toy_problem(&mut Rng(12), 64, f)?;
    let params = ParamsAdamW {
        lr: 1e-2,
        ..ParamsAdamW::default()
    };
    let mut opt = AdamW::new(varmap.all_vars(), params)?;
    for _ in 0..100 {
        let logits = head.forward(&encoder.forward_t(&x, true)?.embedding)?;
        opt.backward_step(&cross_entropy(&logits, &labels)?)?;
    }
    let logits = head.forward(&encoder.forward_t(&x, false)?.embedding)?;
    let correct = logits
        .argmax(1)?
        .eq(&labels)?
        .to_dtype(DType::F32)?
        .mean_all()?
        .to_scalar::<f32>()?;
    assert!(correct > 0.95, "training accuracy {correct}");
    Ok(())
}

#[test]
fn masked_pretraining_reduces_reconstruction_error() -> TestResult {
    let f = 8;
    let cfg = EncoderConfig {
        d_model: 32,
        n_layers: 1,
        d_ff: 64,
        ..EncoderConfig::new(f)
    };
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let encoder = Encoder::new(&cfg, vb.clone())?;
    let head = ReconstructionHead::new(cfg.d_model, f, vb.pp("reconstruction"))?;
    reseed(&varmap, &mut Rng(13));
    let mut rng = Rng(14);
    let (mut x, _) = toy_problem(&mut rng, 32, f)?;
    let mask = rng.mask(32, TEN_TWENTY_19.len());
    x.mask = Some(mask.clone());
    let target = x.tokens.clone();
    let loss = |train| -> Result<Tensor> {
        let pred = head.forward(&encoder.forward_t(&x, train)?.tokens)?;
        masked_reconstruction_loss(&pred, &target, &mask)
    };
    let before = loss(false)?.to_scalar::<f32>()?;
    let params = ParamsAdamW {
        lr: 1e-2,
        ..ParamsAdamW::default()
    };
    let mut opt = AdamW::new(varmap.all_vars(), params)?;
    for _ in 0..50 {
        opt.backward_step(&loss(true)?)?;
    }
    let after = loss(false)?.to_scalar::<f32>()?;
    assert!(after < 0.8 * before, "masked MSE {before} -> {after}");
    Ok(())
}

#[test]
fn works_in_f64() -> TestResult {
    let cfg = EncoderConfig::new(6);
    let varmap = VarMap::new();
    let encoder = Encoder::new(
        &cfg,
        VarBuilder::from_varmap(&varmap, DType::F64, &Device::Cpu),
    )?;
    // f32 inputs are converted to the weights' dtype.
    let out = encoder.forward_t(&input(&mut Rng(15), TEN_TWENTY_19, 2, 6), false)?;
    assert_eq!(out.embedding.dtype(), DType::F64);
    Ok(())
}
