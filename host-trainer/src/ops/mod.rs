//! The trainer's convolutions and batch norms as Burn custom operations with their own
//! backward passes (Burn's backend-extension mechanism), laid out as Burn's custom-kernel
//! example lays out one: the backend trait [`FusedBackend`] here, with the public functions
//! that call it ([`conv`], [`batch_norm_relu`]) and their references in Burn's own
//! operations ([`reference()`], [`batch_norm_relu_reference`]) beside it; its burn-flex
//! implementation in `forward.rs`, the autodiff one with the backward passes in
//! `backward.rs`; the CPU kernels they call, on plain `f32` slices, in [`kernel`].
//!
//! One convolution call is "nearest upsample (optional) + convolution + bias + activation".
//! The kernels compute it from the zero-padded input planes directly, one matrix product per
//! window tap, without unfolding the images, and the backward computes the weight and input
//! gradients from the same padded planes; Burn's own path runs a separate upsample,
//! convolution, input-gradient and weight-gradient kernel with layout copies between them.
//! The batch norm + ReLU op replaces a dozen element-wise ops and two transposes each way.
//! On any other backend (burn-ndarray) [`conv`] and [`batch_norm_relu`] fall back to Burn's
//! own operations, with the same arithmetic.

#[cfg(feature = "flex")]
use burn::backend::{Backend, DispatchDevice, backend_extension, tensor::FloatTensor};
use burn::nn::{BatchNorm, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::{leaky_relu, relu, tanh};
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;

#[cfg(feature = "flex")]
mod backward;
#[cfg(feature = "flex")]
mod forward;
pub mod kernel;

pub use kernel::conv::Act;

/// Kernel side, stride, padding, input upsampling and output activation of one convolution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConvSpec {
    /// Kernel side.
    pub k: usize,
    /// Stride.
    pub stride: usize,
    /// Zero padding on every side.
    pub pad: usize,
    /// Nearest upsampling factor of the input (1: none).
    pub up: usize,
    /// Activation applied to the output.
    pub act: Act,
}

/// The custom operations, implemented for burn-flex (`forward.rs`) and for autodiff over it
/// (`backward.rs`).
#[cfg(feature = "flex")]
#[backend_extension(Flex, Autodiff)]
pub trait FusedBackend: Backend {
    /// Per-channel batch mean and biased variance of an NCHW tensor, `[2 * C]` (a constant
    /// for autodiff: [`fused_bn_relu`](Self::fused_bn_relu) differentiates through it).
    fn bn_stats(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// Training-mode batch norm with the statistics `stats` of `x`, then ReLU.
    fn fused_bn_relu(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        eps: f64,
    ) -> FloatTensor<Self>;

    /// `act(conv(up(x), weight) + bias)` (see [`ConvSpec`]).
    fn fused_conv(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        spec: ConvSpec,
    ) -> FloatTensor<Self>;
}

/// Whether `device` (plain or autodiff) runs on burn-flex, where the custom operation exists.
#[cfg(feature = "flex")]
pub fn is_flex(device: &Device) -> bool {
    matches!(
        device.as_dispatch().clone().inner(),
        DispatchDevice::Flex(_)
    )
}

/// `act(conv(up(x), weight) + bias)`: `x` `[b, c_in, h, w]`, `weight` `[c_out, c_in, k, k]`,
/// `bias` `[c_out]` -> `[b, c_out, h_out, w_out]`. burn-flex runs the custom operation;
/// other backends run Burn's own upsample and `conv2d`.
pub fn conv(x: Tensor<4>, weight: Tensor<4>, bias: Tensor<1>, spec: ConvSpec) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if is_flex(&x.device()) {
        let out = <burn::backend::Dispatch as FusedBackend>::fused_conv(
            x.into_dispatch(),
            weight.into_dispatch(),
            bias.into_dispatch(),
            spec,
        );
        return Tensor::from_dispatch(out);
    }
    reference(x, weight, bias, spec)
}

/// The same computation with Burn's own operations (the fallback, and the tests' reference).
pub fn reference(x: Tensor<4>, weight: Tensor<4>, bias: Tensor<1>, spec: ConvSpec) -> Tensor<4> {
    let x = if spec.up == 1 {
        x
    } else {
        let [b, c, h, w] = x.dims();
        let u = spec.up;
        x.reshape([b, c, h, 1, w, 1])
            .expand([b, c, h, u, w, u])
            .reshape([b, c, u * h, u * w])
    };
    let options = ConvOptions::new([spec.stride; 2], [spec.pad; 2], [1, 1], 1);
    let y = conv2d(x, weight, Some(bias), options);
    match spec.act {
        Act::Identity => y,
        Act::LeakyRelu(slope) => leaky_relu(y, f64::from(slope)),
        Act::Tanh => tanh(y),
    }
}

/// A zero bias for a convolution without one (a constant: no gradient is tracked for it).
pub fn no_bias(c_out: usize, device: &Device) -> Tensor<1> {
    Tensor::zeros([c_out], device)
}

/// Bias of `conv` as a tensor, or a zero constant when it has none.
pub fn bias_of(conv: &burn::nn::conv::Conv2d) -> Tensor<1> {
    match &conv.bias {
        Some(b) => b.val(),
        None => {
            let w = conv.weight.val();
            no_bias(w.dims()[0], &w.device())
        }
    }
}

/// The spec of a Burn `Conv2d` with symmetric explicit padding, optionally after an
/// upsampling by `up`, followed by `act`.
pub fn spec_of(conv: &burn::nn::conv::Conv2d, up: usize, act: Act) -> ConvSpec {
    let k = conv.kernel_size[0];
    let pad = match &conv.padding {
        PaddingConfig2d::Explicit(t, l, b, r) if t == l && l == b && b == r => *t,
        other => panic!("fused conv needs symmetric explicit padding, got {other:?}"),
    };
    ConvSpec {
        k,
        stride: conv.stride[0],
        pad,
        up,
        act,
    }
}

/// Runs a Burn `Conv2d` (after nearest upsampling by `up`, followed by `act`) through
/// [`conv`].
pub fn conv_module(
    module: &burn::nn::conv::Conv2d,
    x: Tensor<4>,
    up: usize,
    act: Act,
) -> Tensor<4> {
    conv(
        x,
        module.weight.val(),
        bias_of(module),
        spec_of(module, up, act),
    )
}

/// ReLU after the training-mode batch norm `bn` (batch statistics; the running statistics are
/// updated the way Burn's `BatchNorm::forward` updates them). On burn-flex with autodiff this
/// is one custom op, with one backward pass through the batch statistics where Burn runs a
/// dozen element-wise ops and two transposes each way; elsewhere, and in inference mode, it
/// is `relu(bn.forward(x))`.
pub fn batch_norm_relu(bn: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if x.device().is_autodiff() && bn.training.is_enabled() && is_flex(&x.device()) {
        type D = burn::backend::Dispatch;
        let stats =
            Tensor::<1>::from_dispatch(<D as FusedBackend>::bn_stats(x.clone().into_dispatch()));
        let y = <D as FusedBackend>::fused_bn_relu(
            x.into_dispatch(),
            bn.gamma.val().into_dispatch(),
            bn.beta.val().into_dispatch(),
            stats.clone().into_dispatch(),
            bn.epsilon,
        );
        update_running_stats(bn, stats);
        return Tensor::from_dispatch(y);
    }
    batch_norm_relu_reference(bn, x)
}

/// [`batch_norm_relu`] with Burn's own operations (the fallback, and the tests' reference).
pub fn batch_norm_relu_reference(bn: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    relu(bn.forward(x))
}

/// `running <- (1 - momentum) * running + momentum * batch`, as `BatchNorm::forward_train`.
#[cfg(feature = "flex")]
fn update_running_stats(bn: &BatchNorm, stats: Tensor<1>) {
    let c = bn.gamma.dims()[0];
    let device = stats.device();
    let m = bn.momentum;
    let mean = stats.clone().narrow(0, 0, c).detach();
    let var = stats.narrow(0, c, c).detach();
    let running_mean = bn.running_mean.value_sync().to_device(&device);
    let running_var = bn.running_var.value_sync().to_device(&device);
    bn.running_mean.update(
        running_mean
            .mul_scalar(1.0 - m)
            .add(mean.mul_scalar(m))
            .detach(),
    );
    bn.running_var.update(
        running_var
            .mul_scalar(1.0 - m)
            .add(var.mul_scalar(m))
            .detach(),
    );
}
