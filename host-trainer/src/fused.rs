//! The trainer's convolutions as one Burn custom operation with its own backward pass
//! (Burn's backend-extension mechanism), computed by [`crate::conv_kernel`] on burn-flex.
//!
//! One call is "nearest upsample (optional) + convolution + bias": the forward unfolds each
//! image once, and the backward shares one unfold between the weight and input gradients,
//! where Burn's own path runs a separate upsample, convolution, input-gradient and
//! weight-gradient kernel with layout copies between them. On any other backend (burn-ndarray)
//! [`conv`] falls back to Burn's own operations, with the same arithmetic.

use burn::nn::{BatchNorm, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::{leaky_relu, relu, tanh};
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;

#[cfg(feature = "flex")]
pub use flex::{FusedBackend, is_flex};

pub use crate::conv_kernel::Act;

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

#[cfg(feature = "flex")]
mod flex {
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
    use burn::backend::flex::FlexTensor;
    use burn::backend::tensor::FloatTensor;
    use burn::backend::{Autodiff, Backend, DispatchDevice, Flex, backend_extension};
    use burn::prelude::*;

    use super::ConvSpec;
    use crate::conv_kernel::{self, Act, BackwardInputs, ConvGeometry};
    use crate::norm_kernel::{self, NormShape};

    /// The custom operations.
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

    /// `t` as a tensor whose storage is one contiguous `f32` slice (shared, not copied, when
    /// it already is).
    fn f32_contiguous(t: &FloatTensor<Flex>) -> FloatTensor<Flex> {
        if t.as_slice::<f32>().is_some() {
            t.clone()
        } else {
            FlexTensor::from_data(t.clone().into_data().convert::<f32>())
        }
    }

    /// The values of a tensor made by [`f32_contiguous`].
    fn values(t: &FloatTensor<Flex>) -> &[f32] {
        t.as_slice::<f32>().expect("contiguous f32 tensor")
    }

    fn flex_tensor(values: Vec<f32>, shape: Vec<usize>) -> FloatTensor<Flex> {
        FlexTensor::from_data(TensorData::new(values, shape))
    }

    fn geometry(x: &FloatTensor<Flex>, w: &FloatTensor<Flex>, spec: ConvSpec) -> ConvGeometry {
        let xs = x.layout().shape();
        let ws = w.layout().shape();
        assert_eq!(ws[1], xs[1], "input channels of weight and input");
        assert_eq!((ws[2], ws[3]), (spec.k, spec.k), "kernel size");
        ConvGeometry {
            batch: xs[0],
            in_ch: xs[1],
            in_h: xs[2],
            in_w: xs[3],
            out_ch: ws[0],
            k: spec.k,
            stride: spec.stride,
            pad: spec.pad,
            up: spec.up,
        }
    }

    fn flex_forward(
        x: &FloatTensor<Flex>,
        w: &FloatTensor<Flex>,
        b: &FloatTensor<Flex>,
        spec: ConvSpec,
    ) -> FloatTensor<Flex> {
        let geo = geometry(x, w, spec);
        let (x, w, b) = (f32_contiguous(x), f32_contiguous(w), f32_contiguous(b));
        let y = conv_kernel::forward(&geo, values(&x), values(&w), Some(values(&b)), spec.act);
        flex_tensor(y, vec![geo.batch, geo.out_ch, geo.out_h(), geo.out_w()])
    }

    fn norm_shape(x: &FloatTensor<Flex>) -> NormShape {
        let s = x.layout().shape();
        NormShape {
            batch: s[0],
            channels: s[1],
            plane: s[2..].iter().product(),
        }
    }

    fn flex_bn_stats(x: &FloatTensor<Flex>) -> FloatTensor<Flex> {
        let shape = norm_shape(x);
        let x = f32_contiguous(x);
        flex_tensor(
            norm_kernel::stats(&shape, values(&x)),
            vec![2 * shape.channels],
        )
    }

    fn flex_bn_relu(
        x: &FloatTensor<Flex>,
        gamma: &FloatTensor<Flex>,
        beta: &FloatTensor<Flex>,
        stats: &FloatTensor<Flex>,
        eps: f64,
    ) -> FloatTensor<Flex> {
        let shape = norm_shape(x);
        let dims = x.layout().shape().to_vec();
        let [x, gamma, beta, stats] = [x, gamma, beta, stats].map(f32_contiguous);
        let y = norm_kernel::forward(
            &shape,
            values(&x),
            values(&gamma),
            values(&beta),
            values(&stats),
            eps,
        );
        flex_tensor(y, dims)
    }

    impl FusedBackend for Flex {
        fn bn_stats(x: FloatTensor<Self>) -> FloatTensor<Self> {
            flex_bn_stats(&x)
        }

        fn fused_bn_relu(
            x: FloatTensor<Self>,
            gamma: FloatTensor<Self>,
            beta: FloatTensor<Self>,
            stats: FloatTensor<Self>,
            eps: f64,
        ) -> FloatTensor<Self> {
            flex_bn_relu(&x, &gamma, &beta, &stats, eps)
        }

        fn fused_conv(
            x: FloatTensor<Self>,
            weight: FloatTensor<Self>,
            bias: FloatTensor<Self>,
            spec: ConvSpec,
        ) -> FloatTensor<Self> {
            flex_forward(&x, &weight, &bias, spec)
        }
    }

    #[derive(Debug)]
    struct FusedConvBackward;

    impl Backward<Flex, 3> for FusedConvBackward {
        /// Input, weights, output (kept only when the activation needs it) and spec.
        type State = (
            FloatTensor<Flex>,
            FloatTensor<Flex>,
            Option<FloatTensor<Flex>>,
            ConvSpec,
        );

        fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
            let [node_x, node_w, node_b] = ops.parents;
            let dy = grads.consume::<Flex>(&ops.node);
            let (x, w, y, spec) = ops.state;
            let geo = geometry(&x, &w, spec);
            let (x, w, dy) = (f32_contiguous(&x), f32_contiguous(&w), f32_contiguous(&dy));
            let y = y.as_ref().map(f32_contiguous);
            let inputs = BackwardInputs {
                x: values(&x),
                w: values(&w),
                y: y.as_ref().map_or(&[], values),
                act: spec.act,
                dy: values(&dy),
            };
            let want_dw = node_w.is_some() || node_b.is_some();
            let conv_kernel::Grads { dx, dw, db } =
                conv_kernel::backward(&geo, inputs, node_x.is_some(), want_dw);
            if let (Some(node), Some(dx)) = (node_x, dx) {
                grads.register::<Flex>(
                    node.id,
                    flex_tensor(dx, vec![geo.batch, geo.in_ch, geo.in_h, geo.in_w]),
                );
            }
            if let (Some(node), Some(dw)) = (node_w, dw) {
                grads.register::<Flex>(
                    node.id,
                    flex_tensor(dw, vec![geo.out_ch, geo.in_ch, geo.k, geo.k]),
                );
            }
            if let (Some(node), Some(db)) = (node_b, db) {
                grads.register::<Flex>(node.id, flex_tensor(db, vec![geo.out_ch]));
            }
        }
    }

    /// The statistics are a constant to autodiff: [`BnReluBackward`] differentiates through
    /// them.
    #[derive(Debug)]
    struct NoGradient;

    impl Backward<Flex, 1> for NoGradient {
        type State = ();

        fn backward(self, _: Ops<(), 1>, _: &mut Gradients, _: &mut Checkpointer) {}
    }

    #[derive(Debug)]
    struct BnReluBackward;

    impl Backward<Flex, 3> for BnReluBackward {
        /// Input, output, gamma, statistics, epsilon.
        type State = (
            FloatTensor<Flex>,
            FloatTensor<Flex>,
            FloatTensor<Flex>,
            FloatTensor<Flex>,
            f64,
        );

        fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
            let [node_x, node_gamma, node_beta] = ops.parents;
            let dy = grads.consume::<Flex>(&ops.node);
            let (x, y, gamma, stats, eps) = ops.state;
            let shape = norm_shape(&x);
            let dims = x.layout().shape().to_vec();
            let [x, y, dy, gamma, stats] = [&x, &y, &dy, &gamma, &stats].map(f32_contiguous);
            let (dx, dgamma, dbeta) = norm_kernel::backward(
                &shape,
                values(&x),
                values(&y),
                values(&dy),
                values(&gamma),
                values(&stats),
                eps,
            );
            let c = shape.channels;
            if let Some(node) = node_x {
                grads.register::<Flex>(node.id, flex_tensor(dx, dims));
            }
            if let Some(node) = node_gamma {
                grads.register::<Flex>(node.id, flex_tensor(dgamma, vec![c]));
            }
            if let Some(node) = node_beta {
                grads.register::<Flex>(node.id, flex_tensor(dbeta, vec![c]));
            }
        }
    }

    impl<C: CheckpointStrategy> FusedBackend for Autodiff<Flex, C> {
        fn bn_stats(x: FloatTensor<Self>) -> FloatTensor<Self> {
            let stats = flex_bn_stats(x.primitive());
            NoGradient
                .prepare::<C>([x.node()])
                .compute_bound()
                .stateless(stats)
        }

        fn fused_bn_relu(
            x: FloatTensor<Self>,
            gamma: FloatTensor<Self>,
            beta: FloatTensor<Self>,
            stats: FloatTensor<Self>,
            eps: f64,
        ) -> FloatTensor<Self> {
            let st = stats.primitive().clone();
            match BnReluBackward
                .prepare::<C>([x.node(), gamma.node(), beta.node()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(prep) => {
                    let (xp, gp) = (x.primitive().clone(), gamma.primitive().clone());
                    let y = flex_bn_relu(&xp, &gp, beta.primitive(), &st, eps);
                    prep.finish((xp, y.clone(), gp, st, eps), y)
                }
                OpsKind::UnTracked(prep) => prep.finish(flex_bn_relu(
                    x.primitive(),
                    gamma.primitive(),
                    beta.primitive(),
                    &st,
                    eps,
                )),
            }
        }

        fn fused_conv(
            x: FloatTensor<Self>,
            weight: FloatTensor<Self>,
            bias: FloatTensor<Self>,
            spec: ConvSpec,
        ) -> FloatTensor<Self> {
            match FusedConvBackward
                .prepare::<C>([x.node(), weight.node(), bias.node()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(prep) => {
                    let (xp, wp) = (x.primitive().clone(), weight.primitive().clone());
                    let y = flex_forward(&xp, &wp, bias.primitive(), spec);
                    let kept = (spec.act != Act::Identity).then(|| y.clone());
                    prep.finish((xp, wp, kept, spec), y)
                }
                OpsKind::UnTracked(prep) => prep.finish(flex_forward(
                    x.primitive(),
                    weight.primitive(),
                    bias.primitive(),
                    spec,
                )),
            }
        }
    }

    /// Whether `device` (plain or autodiff) runs on burn-flex, where the custom operation exists.
    pub fn is_flex(device: &Device) -> bool {
        matches!(
            device.as_dispatch().clone().inner(),
            DispatchDevice::Flex(_)
        )
    }
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
