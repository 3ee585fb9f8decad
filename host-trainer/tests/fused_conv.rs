//! The custom operations against Burn's own operations on small shapes: forward
//! values and the gradients of input, weight and bias, with and without the fused output
//! activation, agree within 1e-4 (relative to the largest magnitude), on burn-flex with
//! autodiff.
#![cfg(feature = "flex")]

use burn::prelude::*;
use burn::tensor::Distribution;
use host_trainer::ops::{self, Act, ConvSpec};

/// The generator's "nearest 2x upsample + 3x3" block.
const UPSAMPLE_BLOCK: ConvSpec = ConvSpec {
    k: 3,
    stride: 1,
    pad: 1,
    up: 2,
    act: Act::Identity,
};

/// The discriminator's 4x4 stride-2 layer with its LeakyReLU.
const DOWNSAMPLER: ConvSpec = ConvSpec {
    k: 4,
    stride: 2,
    pad: 1,
    up: 1,
    act: Act::LeakyRelu(0.2),
};

/// Largest absolute difference relative to the largest magnitude of `want`.
fn rel_err(got: Tensor<1>, want: Tensor<1>) -> f32 {
    let g: Vec<f32> = got
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap();
    let w: Vec<f32> = want
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap();
    assert_eq!(g.len(), w.len());
    let scale = w.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
    g.iter()
        .zip(&w)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
        / scale
}

fn flat<const D: usize>(t: Tensor<D>) -> Tensor<1> {
    let n = t.shape().num_elements();
    t.reshape([n])
}

/// A loss whose output gradient differs everywhere: `sum(y * r)` with a fixed `r`.
fn loss(y: &Tensor<4>) -> Tensor<1> {
    let r = Tensor::<4>::from_data(
        TensorData::new(
            (0..y.shape().num_elements())
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
                .collect::<Vec<_>>(),
            y.dims(),
        ),
        &y.device(),
    );
    (y.clone() * r).sum()
}

fn check(batch: usize, c_in: usize, side: usize, c_out: usize, spec: ConvSpec, bias: bool) {
    let device = Device::flex().autodiff();
    // Otherwise both paths below would be Burn's own and the comparison empty.
    assert!(
        ops::is_flex(&device),
        "the custom operation runs on burn-flex"
    );
    device.seed(7);
    let u = Distribution::Uniform(-1.0, 1.0);
    let x0 = Tensor::<4>::random([batch, c_in, side, side], u, &device);
    let w0 = Tensor::<4>::random([c_out, c_in, spec.k, spec.k], u, &device);
    let b0 = Tensor::<1>::random([c_out], u, &device);

    let run = |fused_path: bool| {
        let x = x0.clone().detach().require_grad();
        let w = w0.clone().detach().require_grad();
        let b = if bias {
            b0.clone().detach().require_grad()
        } else {
            ops::no_bias(c_out, &device)
        };
        let y = if fused_path {
            ops::conv(x.clone(), w.clone(), b.clone(), spec)
        } else {
            ops::reference(x.clone(), w.clone(), b.clone(), spec)
        };
        let grads = loss(&y).backward();
        let gx = x.grad(&grads).expect("input gradient");
        let gw = w.grad(&grads).expect("weight gradient");
        let gb = bias.then(|| b.grad(&grads).expect("bias gradient"));
        (flat(y.inner()), flat(gx), flat(gw), gb)
    };
    let (y1, gx1, gw1, gb1) = run(true);
    let (y2, gx2, gw2, gb2) = run(false);
    let what = format!("batch {batch}, {c_in}->{c_out}, side {side}, {spec:?}");
    assert!(rel_err(y1, y2) < 1e-4, "forward: {what}");
    assert!(rel_err(gx1, gx2) < 1e-4, "input gradient: {what}");
    assert!(rel_err(gw1, gw2) < 1e-4, "weight gradient: {what}");
    if let (Some(a), Some(b)) = (gb1, gb2) {
        assert!(rel_err(a, b) < 1e-4, "bias gradient: {what}");
    }
}

#[test]
fn generator_upsample_block() {
    let spec = UPSAMPLE_BLOCK;
    check(5, 4, 7, 6, spec, false);
}

#[test]
fn generator_output_conv_with_bias() {
    let spec = ConvSpec {
        k: 3,
        stride: 1,
        pad: 1,
        up: 1,
        act: Act::Identity,
    };
    check(3, 8, 12, 1, spec, true);
    check(
        3,
        8,
        12,
        1,
        ConvSpec {
            act: Act::Tanh,
            ..spec
        },
        true,
    );
}

#[test]
fn discriminator_downsamplers() {
    let spec = DOWNSAMPLER;
    check(6, 1, 28, 5, spec, true);
    check(4, 5, 14, 7, spec, true);
}

#[test]
fn batch_larger_than_one_unfold_group() {
    let spec = UPSAMPLE_BLOCK;
    check(80, 2, 7, 3, spec, false);
}

/// The discriminator in the generator step: weights and bias are constants, so only the input
/// gradient is computed (the kernel skips the unfold and the weight product).
#[test]
fn input_gradient_alone_when_the_weights_are_constants() {
    let device = Device::flex().autodiff();
    device.seed(11);
    let u = Distribution::Uniform(-1.0, 1.0);
    let spec = DOWNSAMPLER;
    let x0 = Tensor::<4>::random([5, 3, 14, 14], u, &device);
    let w = Tensor::<4>::random([6, 3, 4, 4], u, &device).detach();
    let b = Tensor::<1>::random([6], u, &device).detach();
    let gx = |fused_path: bool| {
        let x = x0.clone().detach().require_grad();
        let y = if fused_path {
            ops::conv(x.clone(), w.clone(), b.clone(), spec)
        } else {
            ops::reference(x.clone(), w.clone(), b.clone(), spec)
        };
        let grads = loss(&y).backward();
        assert!(
            w.grad(&grads).is_none(),
            "no weight gradient for a constant"
        );
        flat(x.grad(&grads).expect("input gradient"))
    };
    assert!(rel_err(gx(true), gx(false)) < 1e-4);
}

/// Batch norm + ReLU as one op against `relu(BatchNorm::forward)`: output, the gradients of
/// input, gamma and beta (through the batch statistics), and the running statistics after
/// the update, within 1e-4 relative.
#[test]
fn batch_norm_relu_matches_burn() {
    use burn::module::Param;
    use burn::nn::BatchNormConfig;
    let device = Device::flex().autodiff();
    device.seed(13);
    let u = Distribution::Uniform(-2.0, 2.0);
    let x0 = Tensor::<4>::random([6, 3, 5, 5], u, &device);
    let run = |fused_path: bool| {
        let bn = BatchNormConfig::new(3).init(&device);
        // Non-trivial affine parameters, the same for both paths.
        let bn = burn::nn::BatchNorm {
            gamma: Param::from_tensor(Tensor::from_floats([1.5, -0.5, 0.8], &device)),
            beta: Param::from_tensor(Tensor::from_floats([0.1, 0.3, -0.2], &device)),
            ..bn
        };
        let x = x0.clone().detach().require_grad();
        let y = if fused_path {
            ops::batch_norm_relu(&bn, x.clone())
        } else {
            ops::batch_norm_relu_reference(&bn, x.clone())
        };
        let grads = loss(&y).backward();
        let gx = flat(x.grad(&grads).expect("input gradient"));
        let gg = bn.gamma.val().grad(&grads).expect("gamma gradient");
        let gb = bn.beta.val().grad(&grads).expect("beta gradient");
        let bn = bn.valid();
        let stats = [bn.running_mean.value(), bn.running_var.value()];
        (flat(y.inner()), gx, gg, gb, stats)
    };
    let (y1, gx1, gg1, gb1, [m1, v1]) = run(true);
    let (y2, gx2, gg2, gb2, [m2, v2]) = run(false);
    assert!(rel_err(y1, y2) < 1e-4, "forward");
    assert!(rel_err(gx1, gx2) < 1e-4, "input gradient");
    assert!(rel_err(gg1, gg2) < 1e-4, "gamma gradient");
    assert!(rel_err(gb1, gb2) < 1e-4, "beta gradient");
    assert!(rel_err(m1, m2) < 1e-5, "running mean");
    assert!(rel_err(v1, v2) < 1e-5, "running variance");
}
