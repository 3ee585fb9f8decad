//! The custom operations on burn-flex with autodiff: the forward runs as on plain burn-flex
//! ([`super::forward`]) and records what its backward needs; each `Backward` computes the
//! gradients of its op's inputs with the kernels of [`super::kernel`].

use burn::backend::Autodiff;
use burn::backend::Flex;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;

use super::forward::{
    f32_contiguous, flex_bn_relu, flex_bn_stats, flex_forward, flex_tensor, geometry, norm_shape,
    values,
};
use super::kernel::conv::{self, Act, BackwardInputs};
use super::kernel::norm;
use super::{ConvSpec, FusedBackend};

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
        let conv::Grads { dx, dw, db } = conv::backward(&geo, inputs, node_x.is_some(), want_dw);
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
        let (dx, dgamma, dbeta) = norm::backward(
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
