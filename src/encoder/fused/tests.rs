//! Each fused op against its composition of candle ops: values and gradients, in f64.

use candle_core::{DType, Device, Result, Tensor, Var};

use super::*;
use crate::encoder::tests::max_abs_diff;

fn random(shape: &[usize], seed: u64) -> Result<Var> {
    let mut rng = crate::pretrain::rng::Rng::new(seed);
    let n: usize = shape.iter().product();
    let data: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
    Var::from_tensor(&Tensor::from_vec(data, shape, &Device::Cpu)?)
}

/// Checks `fused(vars)` against `composed(vars)`: outputs, and the gradient of a random
/// projection of the output with respect to every var.
fn check(
    vars: &[Var],
    fused: impl Fn(&[Tensor]) -> Result<Tensor>,
    composed: impl Fn(&[Tensor]) -> Result<Tensor>,
) -> Result<()> {
    let inputs: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let (a, b) = (fused(&inputs)?, composed(&inputs)?);
    assert_eq!(a.dims(), b.dims());
    let diff = max_abs_diff(&a, &b);
    assert!(diff < 1e-12, "forward differs by {diff}");
    let probe = random(a.dims(), 99)?;
    let ga = (a * probe.as_tensor())?.sum_all()?.backward()?;
    let gb = (b * probe.as_tensor())?.sum_all()?.backward()?;
    for (i, v) in vars.iter().enumerate() {
        let (Some(x), Some(y)) = (ga.get(v), gb.get(v)) else {
            panic!("no gradient for input {i}");
        };
        let diff = max_abs_diff(x, y);
        assert!(diff < 1e-10, "gradient of input {i} differs by {diff}");
    }
    Ok(())
}

#[test]
fn layer_norm_matches_composition() -> Result<()> {
    // 300 rows: more than one rayon task, and a partial last one.
    let vars = [random(&[3, 100, 8], 1)?, random(&[8], 2)?, random(&[8], 3)?];
    check(
        &vars,
        |t| layer_norm(&t[0], &t[1], &t[2], 1e-5),
        |t| layer_norm::composed(&t[0], &t[1], &t[2], 1e-5),
    )
}

#[test]
fn softmax_matches_composition() -> Result<()> {
    let vars = [(random(&[2, 3, 70, 9], 4)?.as_tensor() * 5.0).and_then(|t| Var::from_tensor(&t))?];
    check(
        &vars,
        |t| softmax_last_dim(&t[0]),
        |t| softmax::composed(&t[0]),
    )
}

#[test]
fn gelu_matches_composition() -> Result<()> {
    let vars = [(random(&[40, 7], 5)?.as_tensor() * 3.0).and_then(|t| Var::from_tensor(&t))?];
    check(&vars, |t| gelu(&t[0]), |t| gelu::composed(&t[0]))
}

#[test]
fn row_bias_matches_broadcast_add() -> Result<()> {
    let vars = [random(&[5, 300, 6], 6)?, random(&[300, 6], 7)?];
    check(
        &vars,
        |t| add_row_bias(&t[0], &t[1]),
        |t| t[0].broadcast_add(&t[1]),
    )?;
    let wrong = random(&[6, 300], 8)?;
    assert!(add_row_bias(vars[0].as_tensor(), wrong.as_tensor()).is_err());
    Ok(())
}

#[test]
fn attention_matches_composition() -> Result<()> {
    // qkv [3, B = 2, H = 3, C = 5, dh = 4]; the covariance is a var too, so its gradient is checked.
    let vars = [
        random(&[3, 2, 3, 5, 4], 9)?,
        random(&[3], 10)?,
        random(&[2, 5, 5], 11)?,
    ];
    check(
        &vars,
        |t| attention(&t[0], 0.7, &t[1], &t[2]),
        |t| {
            let (q, k, v) = (t[0].get(0)?, t[0].get(1)?, t[0].get(2)?);
            let bias = t[2]
                .unsqueeze(1)?
                .broadcast_mul(&t[1].reshape((1, 3, 1, 1))?)?;
            let logits = ((q.matmul(&k.t()?)? * 0.7)? + bias)?;
            softmax::composed(&logits)?.matmul(&v)
        },
    )?;
    let wrong = random(&[2, 4, 4], 12)?;
    let refused = attention(
        vars[0].as_tensor(),
        0.7,
        vars[1].as_tensor(),
        wrong.as_tensor(),
    );
    assert!(refused.is_err());
    Ok(())
}

#[test]
fn linear_matches_composition() -> Result<()> {
    // 3-D input of 2 x 150 rows (two rayon tasks and a partial one).
    let vars = [
        random(&[2, 150, 7], 14)?,
        random(&[5, 7], 15)?,
        random(&[5], 16)?,
    ];
    check(
        &vars,
        |t| linear(&t[0], &t[1], &t[2]),
        |t| t[0].broadcast_matmul(&t[1].t()?)?.broadcast_add(&t[2]),
    )?;
    let wrong = random(&[5, 6], 17)?;
    assert!(linear(vars[0].as_tensor(), wrong.as_tensor(), vars[2].as_tensor()).is_err());
    Ok(())
}

#[test]
fn heads_match_reshape_and_permute() -> Result<()> {
    // [B = 2, C = 5, 2 stacks x 3 heads x dh = 2].
    let vars = [random(&[2, 5, 12], 18)?];
    check(
        &vars,
        |t| split_heads(&t[0], 2, 3),
        |t| {
            t[0].reshape((2, 5, 2, 3, 2))?
                .permute((2, 0, 3, 1, 4))?
                .contiguous()
        },
    )?;
    let split = [random(&[2, 3, 5, 4], 19)?];
    check(
        &split,
        |t| merge_heads(&t[0]),
        |t| t[0].transpose(1, 2)?.contiguous()?.reshape((2, 5, 12)),
    )?;
    assert!(split_heads(vars[0].as_tensor(), 5, 1).is_err());
    Ok(())
}

#[test]
fn f32_kernels_agree_with_f64() -> Result<()> {
    let x = random(&[64, 16], 13)?.as_tensor().clone();
    let x32 = x.to_dtype(DType::F32)?;
    for (a, b) in [
        (softmax_last_dim(&x)?, softmax_last_dim(&x32)?),
        (gelu(&x)?, gelu(&x32)?),
    ] {
        let diff = max_abs_diff(&a, &b.to_dtype(DType::F64)?);
        assert!(diff < 1e-5, "f32 differs by {diff}");
    }
    Ok(())
}

#[test]
fn feed_forward_block_matches_its_kernels() -> Result<()> {
    // [B = 3, C = 100, d = 6] rows with d_ff = 10: several rayon tasks and a partial one.
    let vars = [
        random(&[3, 100, 6], 20)?,
        random(&[6], 21)?,
        random(&[6], 22)?,
        random(&[10, 6], 23)?,
        random(&[10], 24)?,
        random(&[6, 10], 25)?,
        random(&[6], 26)?,
    ];
    fn weights(t: &[Tensor]) -> FeedForwardWeights<'_> {
        FeedForwardWeights {
            norm: (&t[1], &t[2]),
            fc1: (&t[3], &t[4]),
            fc2: (&t[5], &t[6]),
        }
    }
    check(
        &vars,
        |t| feed_forward(&t[0], weights(t), 1e-5),
        |t| feed_forward::composed(&t[0], weights(t), 1e-5),
    )?;
    let t: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let swapped = FeedForwardWeights {
        fc1: (&t[5], &t[4]),
        ..weights(&t)
    };
    assert!(feed_forward(&t[0], swapped, 1e-5).is_err());
    Ok(())
}

#[test]
fn attention_block_matches_its_kernels() -> Result<()> {
    // [B = 3, C = 50, d = 6] with 2 heads: several epochs per rayon task count and d_head 3.
    let vars = [
        random(&[3, 50, 6], 27)?,
        random(&[6], 28)?,
        random(&[6], 29)?,
        random(&[18, 6], 30)?,
        random(&[18], 31)?,
        random(&[6, 6], 32)?,
        random(&[6], 33)?,
        random(&[2], 34)?,
    ];
    let cov = random(&[3, 50, 50], 35)?.as_tensor().detach();
    fn weights(t: &[Tensor]) -> AttentionWeights<'_> {
        AttentionWeights {
            norm: (&t[1], &t[2]),
            qkv: (&t[3], &t[4]),
            out: (&t[5], &t[6]),
            scale: &t[7],
        }
    }
    check(
        &vars,
        |t| attention_block(&t[0], weights(t), &cov, 1e-5),
        |t| attention_block::composed(&t[0], weights(t), &cov, 1e-5),
    )?;
    let t: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let wrong_cov = random(&[3, 50, 49], 36)?;
    assert!(attention_block(&t[0], weights(&t), wrong_cov.as_tensor(), 1e-5).is_err());
    Ok(())
}

#[test]
fn masked_ops_match_their_compositions() -> Result<()> {
    // 0/1 mask over [B = 3, C = 60] tokens of width 5.
    let mask_values: Vec<f64> = (0..180).map(|i| ((i * 7) % 3 == 0) as u8 as f64).collect();
    let mask = Tensor::from_vec(mask_values, (3, 60), &Device::Cpu)?;
    let vars = [random(&[3, 60, 5], 37)?, random(&[5], 38)?];
    check(
        &vars,
        |t| mask_tokens(&t[0], &mask, &t[1]),
        |t| masked::mask_tokens_composed(&t[0], &mask, &t[1]),
    )?;
    let target = random(&[3, 60, 5], 39)?.as_tensor().detach();
    let pred = [random(&[3, 60, 5], 40)?];
    check(
        &pred,
        |t| masked_squared_error(&t[0], &target, &mask),
        |t| masked::masked_squared_error_composed(&t[0], &target, &mask),
    )?;
    assert!(mask_tokens(vars[0].as_tensor(), &mask.t()?, vars[1].as_tensor()).is_err());
    assert!(masked_squared_error(pred[0].as_tensor(), &target, &mask.t()?).is_err());
    Ok(())
}

#[test]
fn poolings_match_candle_ops() -> Result<()> {
    let tokens = [random(&[3, 70, 4], 41)?];
    check(&tokens, |t| mean_over_channels(&t[0]), |t| t[0].mean(1))?;
    // The data is a constant; only the kernel is differentiated.
    let data = random(&[5, 30], 42)?.as_tensor().detach();
    let kernel = [random(&[30, 4], 43)?];
    check(
        &kernel,
        |t| data_product(&data, &t[0], 0.25),
        |t| data.matmul(&t[0])? * 0.25,
    )?;
    // A tracked data input gets its gradient through candle's ops.
    let tracked = random(&[5, 30], 44)?;
    let grads = data_product(tracked.as_tensor(), kernel[0].as_tensor(), 0.25)?
        .sum_all()?
        .backward()?;
    assert!(grads.get(&tracked).is_some());
    assert!(data_product(&data, &data, 1.0).is_err());
    Ok(())
}
