//! Finite-difference checks of every encoder layer's gradients, in f64 with tiny sizes.
//!
//! candle 0.11.1 has shipped ops with wrong or missing gradients (conv1d's CPU weight gradient;
//! `softmax_last_dim` and the `LayerNorm` fast path have none), so every layer type the encoder
//! uses is checked here: the gradient of a scalar loss w.r.t. every parameter and every
//! differentiable input must match central differences (eps 1e-6) to a relative error < 1e-5,
//! measured per tensor as |g - fd| / max(|g|, |fd|, 1e-2) in the 2-norm. The floor matters only
//! for gradients that are zero in exact arithmetic (a key bias adds the same logit to a whole
//! softmax row), where both sides are rounding noise (about 1e-9 here).

use std::error::Error;

use candle_core::{DType, Device, Module, ModuleT, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use eegadapt::encoder::{
    cross_entropy, masked_reconstruction_loss, ChannelAttention, ClassHead, CovariancePooling,
    Encoder, EncoderConfig, EncoderInput, FeedForward, LayerNorm, PositionEmbedding,
    ReconstructionHead, TangentHead, TokenEmbedding,
};

type TestResult = Result<(), Box<dyn Error>>;

const EPS: f64 = 1e-6;
const TOL: f64 = 1e-5;
/// Gradient norms below this are compared in absolute terms.
const FLOOR: f64 = 1e-2;
const B: usize = 2;
const C: usize = 3;
const F: usize = 4;
const D: usize = 8;

/// Deterministic normal numbers (64-bit LCG + Box-Muller): the checks must not be flaky.
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

    fn tensor(&mut self, dims: &[usize], scale: f64) -> Tensor {
        let n = dims.iter().product();
        let values: Vec<f64> = (0..n).map(|_| scale * self.normal()).collect();
        Tensor::from_vec(values, dims, &Device::Cpu).expect("shape matches data")
    }

    fn var(&mut self, dims: &[usize], scale: f64) -> Var {
        Var::from_tensor(&self.tensor(dims, scale)).expect("fresh tensor")
    }

    /// A symmetric matrix per batch, like a tangent-space covariance.
    fn covariance(&mut self) -> Var {
        let a = self.tensor(&[B, C, C], 1.0);
        let sym =
            ((&a + a.transpose(1, 2).expect("rank 3")).expect("same shape") * 0.5).expect("scalar");
        Var::from_tensor(&sym).expect("fresh tensor")
    }
}

fn config() -> EncoderConfig {
    EncoderConfig {
        n_features: F,
        d_model: D,
        n_heads: 2,
        n_layers: 2,
        d_ff: 16,
        dropout: 0.1,
        use_covariance: true,
        linear_views: Default::default(),
    }
}

fn builder(varmap: &VarMap) -> VarBuilder<'_> {
    VarBuilder::from_varmap(varmap, DType::F64, &Device::Cpu)
}

fn mask() -> Result<Tensor, candle_core::Error> {
    Tensor::new(&[[1f64, 0., 0.], [0., 1., 1.]], &Device::Cpu)
}

/// Sets every parameter to a deterministic value away from its initial one (LayerNorm ones,
/// zero biases), so that no gradient is checked at a special point and runs are repeatable.
fn randomize(varmap: &VarMap, rng: &mut Rng) -> Vec<(String, Var)> {
    let data = varmap.data().lock().expect("no panic while held");
    let mut vars: Vec<(String, Var)> = data.iter().map(|(n, v)| (n.clone(), v.clone())).collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, var) in &vars {
        let centre = if name.ends_with("norm.weight") {
            1.0
        } else {
            0.0
        };
        let value = (rng.tensor(var.dims(), 0.5) + centre).expect("scalar");
        var.set(&value).expect("same shape and dtype");
    }
    vars
}

fn weighted_sum(out: &Tensor, w: &Tensor) -> candle_core::Result<Tensor> {
    (out * w)?.sum_all()
}

fn values(t: &Tensor) -> Vec<f64> {
    t.flatten_all()
        .and_then(|t| t.to_vec1::<f64>())
        .expect("f64 tensor")
}

fn norm(v: impl Iterator<Item = f64>) -> f64 {
    v.map(|x| x * x).sum::<f64>().sqrt()
}

/// Compares backprop with central differences for each var; returns the worst relative error.
fn gradcheck(
    label: &str,
    vars: &[(String, Var)],
    loss: impl Fn() -> candle_core::Result<Tensor>,
) -> Result<f64, Box<dyn Error>> {
    let grads = loss()?.backward()?;
    let mut worst = (0f64, "");
    let mut worst_nonzero = 0f64;
    for (name, var) in vars {
        let original = values(var.as_tensor());
        let analytic = match grads.get(var.as_tensor()) {
            Some(g) => values(g),
            None => vec![0.0; original.len()],
        };
        let mut numeric = Vec::with_capacity(original.len());
        for k in 0..original.len() {
            let at = |delta: f64| -> Result<f64, Box<dyn Error>> {
                let mut v = original.clone();
                v[k] += delta;
                var.set(&Tensor::from_vec(v, var.dims(), &Device::Cpu)?)?;
                Ok(loss()?.to_scalar::<f64>()?)
            };
            numeric.push((at(EPS)? - at(-EPS)?) / (2.0 * EPS));
        }
        var.set(&Tensor::from_vec(original, var.dims(), &Device::Cpu)?)?;
        let diff = norm(analytic.iter().zip(&numeric).map(|(a, n)| a - n));
        let scale = norm(analytic.iter().copied()).max(norm(numeric.iter().copied()));
        let rel = diff / scale.max(FLOOR);
        assert!(
            rel < TOL,
            "{label}: {name}: relative error {rel:.3e}\n \
             analytic {analytic:?}\n numeric {numeric:?}"
        );
        if scale >= FLOOR {
            worst_nonzero = worst_nonzero.max(diff / scale);
        }
        if rel >= worst.0 {
            worst = (rel, name);
        }
    }
    let (rel, name) = worst;
    println!(
        "{label}: worst relative error {rel:.2e} ({name}) over {} tensors; \
         {worst_nonzero:.2e} among gradients with norm >= {FLOOR}",
        vars.len()
    );
    Ok(rel)
}

fn with_inputs(mut vars: Vec<(String, Var)>, inputs: &[(&str, &Var)]) -> Vec<(String, Var)> {
    vars.extend(
        inputs
            .iter()
            .map(|(n, v)| (format!("input.{n}"), (*v).clone())),
    );
    vars
}

#[test]
fn layer_norm() -> TestResult {
    let (varmap, mut rng) = (VarMap::new(), Rng(1));
    let layer = LayerNorm::new(D, builder(&varmap).pp("norm"))?;
    let x = rng.var(&[B, C, D], 1.0);
    let vars = with_inputs(randomize(&varmap, &mut rng), &[("x", &x)]);
    let w = rng.tensor(&[B, C, D], 1.0);
    gradcheck("LayerNorm", &vars, || (layer.forward(&x)? * &w)?.sum_all())?;
    Ok(())
}

#[test]
fn token_embedding_with_and_without_mask() -> TestResult {
    let (varmap, mut rng) = (VarMap::new(), Rng(2));
    let layer = TokenEmbedding::new(F, D, builder(&varmap).pp("token"))?;
    let tokens = rng.var(&[B, C, F], 1.0);
    let vars = with_inputs(randomize(&varmap, &mut rng), &[("tokens", &tokens)]);
    let w = rng.tensor(&[B, C, D], 1.0);
    let mask = mask()?;
    let run = |mask: Option<&Tensor>| -> candle_core::Result<Tensor> {
        let out = layer
            .forward(tokens.as_tensor(), mask)
            .map_err(candle_core::Error::wrap)?;
        (out * &w)?.sum_all()
    };
    gradcheck("TokenEmbedding", &vars, || run(None))?;
    gradcheck("TokenEmbedding (mask)", &vars, || run(Some(&mask)))?;
    Ok(())
}

#[test]
fn position_embedding() -> TestResult {
    let (varmap, mut rng) = (VarMap::new(), Rng(3));
    let layer = PositionEmbedding::new(D, builder(&varmap).pp("position"))?;
    let positions = rng.var(&[C, 3], 0.09);
    let vars = with_inputs(randomize(&varmap, &mut rng), &[("positions", &positions)]);
    let w = rng.tensor(&[C, D], 1.0);
    gradcheck("PositionEmbedding", &vars, || {
        (layer.forward(positions.as_tensor())? * &w)?.sum_all()
    })?;
    Ok(())
}

#[test]
fn channel_attention_with_and_without_covariance() -> TestResult {
    for use_covariance in [false, true] {
        let (varmap, mut rng) = (VarMap::new(), Rng(4));
        let cfg = EncoderConfig {
            use_covariance,
            ..config()
        };
        let layer = ChannelAttention::new(&cfg, builder(&varmap).pp("attention"))?;
        let x = rng.var(&[B, C, D], 1.0);
        let cov = rng.covariance();
        let mut inputs = vec![("x", &x)];
        if use_covariance {
            inputs.push(("covariance", &cov));
        }
        let vars = with_inputs(randomize(&varmap, &mut rng), &inputs);
        let w = rng.tensor(&[B, C, D], 1.0);
        let label = if use_covariance {
            "ChannelAttention (covariance bias)"
        } else {
            "ChannelAttention"
        };
        gradcheck(label, &vars, || {
            let cov = use_covariance.then_some(cov.as_tensor());
            let out = layer
                .forward_t(x.as_tensor(), cov, false)
                .map_err(candle_core::Error::wrap)?;
            (out * &w)?.sum_all()
        })?;
    }
    Ok(())
}

#[test]
fn feed_forward() -> TestResult {
    let (varmap, mut rng) = (VarMap::new(), Rng(5));
    let layer = FeedForward::new(&config(), builder(&varmap).pp("feed_forward"))?;
    let x = rng.var(&[B, C, D], 1.0);
    let vars = with_inputs(randomize(&varmap, &mut rng), &[("x", &x)]);
    let w = rng.tensor(&[B, C, D], 1.0);
    gradcheck("FeedForward", &vars, || {
        (layer.forward_t(x.as_tensor(), false)? * &w)?.sum_all()
    })?;
    Ok(())
}

#[test]
fn covariance_pooling() -> TestResult {
    let (varmap, mut rng) = (VarMap::new(), Rng(6));
    let layer = CovariancePooling::new(D, builder(&varmap).pp("covariance"))?;
    let cov = rng.covariance();
    let positions = rng.var(&[C, 3], 0.09);
    let inputs = [("covariance", &cov), ("positions", &positions)];
    let vars = with_inputs(randomize(&varmap, &mut rng), &inputs);
    let w = rng.tensor(&[B, D], 1.0);
    gradcheck("CovariancePooling", &vars, || {
        let out = layer
            .forward(cov.as_tensor(), positions.as_tensor())
            .map_err(candle_core::Error::wrap)?;
        (out * &w)?.sum_all()
    })?;
    Ok(())
}

#[test]
fn class_head_with_cross_entropy() -> TestResult {
    let (varmap, mut rng) = (VarMap::new(), Rng(7));
    let head = ClassHead::new(D, 3, builder(&varmap).pp("heads.toy"))?;
    let embedding = rng.var(&[B, D], 1.0);
    let labels = Tensor::new(&[2u32, 0], &Device::Cpu)?;
    let vars = with_inputs(randomize(&varmap, &mut rng), &[("embedding", &embedding)]);
    gradcheck("ClassHead + cross_entropy", &vars, || {
        cross_entropy(&head.forward(embedding.as_tensor())?, &labels)
            .map_err(candle_core::Error::wrap)
    })?;
    Ok(())
}

#[test]
fn tangent_head_with_cross_entropy() -> TestResult {
    let (varmap, mut rng) = (VarMap::new(), Rng(9));
    // A vocabulary of 4 channels: 10 pairs.
    let head = TangentHead::new(
        eegadapt::encoder::n_pairs(4),
        3,
        builder(&varmap).pp("heads.toy.tangent"),
    )?;
    let vectors = rng.var(&[B, eegadapt::encoder::n_pairs(4)], 1.0);
    let labels = Tensor::new(&[1u32, 2], &Device::Cpu)?;
    let vars = with_inputs(randomize(&varmap, &mut rng), &[("vectors", &vectors)]);
    gradcheck("TangentHead + cross_entropy", &vars, || {
        cross_entropy(&head.forward(vectors.as_tensor())?, &labels)
            .map_err(candle_core::Error::wrap)
    })?;
    Ok(())
}

#[test]
fn reconstruction_head_with_masked_loss() -> TestResult {
    let (varmap, mut rng) = (VarMap::new(), Rng(8));
    let head = ReconstructionHead::new(D, F, builder(&varmap).pp("reconstruction"))?;
    let tokens = rng.var(&[B, C, D], 1.0);
    let target = rng.tensor(&[B, C, F], 1.0);
    let mask = mask()?;
    let vars = with_inputs(randomize(&varmap, &mut rng), &[("tokens", &tokens)]);
    gradcheck("ReconstructionHead + masked loss", &vars, || {
        let pred = head.forward(tokens.as_tensor())?;
        masked_reconstruction_loss(&pred, &target, &mask).map_err(candle_core::Error::wrap)
    })?;
    Ok(())
}

#[test]
fn full_encoder() -> TestResult {
    for use_covariance in [true, false] {
        let (varmap, mut rng) = (VarMap::new(), Rng(9));
        let cfg = EncoderConfig {
            use_covariance,
            ..config()
        };
        let encoder = Encoder::new(&cfg, builder(&varmap))?;
        let tokens = rng.var(&[B, C, F], 1.0);
        let positions = rng.var(&[C, 3], 0.09);
        let cov = rng.covariance();
        let inputs = [
            ("tokens", &tokens),
            ("positions", &positions),
            ("covariance", &cov),
        ];
        let vars = with_inputs(randomize(&varmap, &mut rng), &inputs);
        let (w_tokens, w_embedding) = (rng.tensor(&[B, C, D], 1.0), rng.tensor(&[B, D], 1.0));
        let mask = mask()?;
        let label = if use_covariance {
            "Encoder"
        } else {
            "Encoder (no covariance)"
        };
        gradcheck(label, &vars, || {
            let input = EncoderInput {
                tokens: tokens.as_tensor().clone(),
                positions: positions.as_tensor().clone(),
                covariance: Some(cov.as_tensor().clone()),
                mask: Some(mask.clone()),
            };
            let out = encoder
                .forward_t(&input, false)
                .map_err(candle_core::Error::wrap)?;
            let tokens_part = weighted_sum(&out.tokens, &w_tokens)?;
            tokens_part + weighted_sum(&out.embedding, &w_embedding)?
        })?;
    }
    Ok(())
}

/// Why the encoder has its own softmax and LayerNorm: candle's fast versions drop gradients.
/// If a candle upgrade makes this fail, the workaround in `encoder::ops` may be retired.
#[test]
fn candle_0_11_1_fast_softmax_and_layer_norm_have_no_backward() -> TestResult {
    let mut rng = Rng(10);
    let x = rng.var(&[B, C, D], 1.0);
    let fast = candle_nn::ops::softmax_last_dim(x.as_tensor())?;
    let ours = eegadapt::encoder::ops::softmax_last_dim(x.as_tensor())?;
    let gap = (&fast - &ours)?.abs()?.max_all()?.to_scalar::<f64>()?;
    assert!(gap < 1e-12, "same forward, gap {gap}");
    assert!(fast.sum_all()?.backward()?.get(x.as_tensor()).is_none());

    let x32 = Var::from_tensor(&x.as_tensor().to_dtype(DType::F32)?)?;
    let ones = Tensor::ones(D, DType::F32, &Device::Cpu)?;
    let norm = candle_nn::LayerNorm::new(ones.clone(), ones.zeros_like()?, 1e-5);
    let out =
        (norm.forward(x32.as_tensor())? * rng.tensor(&[B, C, D], 1.0).to_dtype(DType::F32)?)?;
    assert!(out.sum_all()?.backward()?.get(x32.as_tensor()).is_none());
    Ok(())
}
