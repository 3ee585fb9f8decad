//! The custom operations on burn-flex without autodiff: each unwraps its tensors into
//! contiguous `f32` slices, calls its kernel in [`super::kernel`] and wraps the result.
//! [`super::backward`] reuses these functions for the forward half of the autodiff ops.

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::prelude::*;

use super::kernel::conv::{self, ConvGeometry};
use super::kernel::norm::{self, NormShape};
use super::{ConvSpec, FusedBackend};

/// `t` as a tensor whose storage is one contiguous `f32` slice (shared, not copied, when
/// it already is).
pub(super) fn f32_contiguous(t: &FloatTensor<Flex>) -> FloatTensor<Flex> {
    if t.as_slice::<f32>().is_some() {
        t.clone()
    } else {
        FlexTensor::from_data(t.clone().into_data().convert::<f32>())
    }
}

/// The values of a tensor made by [`f32_contiguous`].
pub(super) fn values(t: &FloatTensor<Flex>) -> &[f32] {
    t.as_slice::<f32>().expect("contiguous f32 tensor")
}

pub(super) fn flex_tensor(values: Vec<f32>, shape: Vec<usize>) -> FloatTensor<Flex> {
    FlexTensor::from_data(TensorData::new(values, shape))
}

pub(super) fn geometry(
    x: &FloatTensor<Flex>,
    w: &FloatTensor<Flex>,
    spec: ConvSpec,
) -> ConvGeometry {
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

pub(super) fn flex_forward(
    x: &FloatTensor<Flex>,
    w: &FloatTensor<Flex>,
    b: &FloatTensor<Flex>,
    spec: ConvSpec,
) -> FloatTensor<Flex> {
    let geo = geometry(x, w, spec);
    let (x, w, b) = (f32_contiguous(x), f32_contiguous(w), f32_contiguous(b));
    let y = conv::forward(&geo, values(&x), values(&w), Some(values(&b)), spec.act);
    flex_tensor(y, vec![geo.batch, geo.out_ch, geo.out_h(), geo.out_w()])
}

pub(super) fn norm_shape(x: &FloatTensor<Flex>) -> NormShape {
    let s = x.layout().shape();
    NormShape {
        batch: s[0],
        channels: s[1],
        plane: s[2..].iter().product(),
    }
}

pub(super) fn flex_bn_stats(x: &FloatTensor<Flex>) -> FloatTensor<Flex> {
    let shape = norm_shape(x);
    let x = f32_contiguous(x);
    flex_tensor(norm::stats(&shape, values(&x)), vec![2 * shape.channels])
}

pub(super) fn flex_bn_relu(
    x: &FloatTensor<Flex>,
    gamma: &FloatTensor<Flex>,
    beta: &FloatTensor<Flex>,
    stats: &FloatTensor<Flex>,
    eps: f64,
) -> FloatTensor<Flex> {
    let shape = norm_shape(x);
    let dims = x.layout().shape().to_vec();
    let [x, gamma, beta, stats] = [x, gamma, beta, stats].map(f32_contiguous);
    let y = norm::forward(
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
