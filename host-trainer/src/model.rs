//! The conditional generator, the projection discriminator and the evaluation classifier.
//!
//! The generator uses only what the int8 core runs: linear, 3x3 convolution (stride 1,
//! padding 1), nearest 2x upsampling, batch norm (folded at export), ReLU and a final tanh.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Embedding, EmbeddingConfig, Linear,
    LinearConfig, PaddingConfig2d,
};
use burn::prelude::*;
use burn::tensor::activation::relu;
use generator_core::arch::BASE_SIDE;
use generator_core::{Arch, IMAGE_SIDE, INPUT_DIM, NUM_CLASSES};

use crate::ops::{Act, batch_norm_relu, conv_module};

/// Generator hyper-parameters: the widths of generator-core's [`Arch`] (defaults
/// [`Arch::DEFAULT`]), kept flat so `config.json` reads `"c0": 16, ...`.
#[derive(Config, Debug)]
pub struct GeneratorConfig {
    /// Channels of the `BASE_SIDE x BASE_SIDE` map after the linear layer.
    #[config(default = "Arch::DEFAULT.c0")]
    pub c0: usize,
    /// Channels after the first upsample + conv.
    #[config(default = "Arch::DEFAULT.c1")]
    pub c1: usize,
    /// Channels after the second upsample + conv (image side).
    #[config(default = "Arch::DEFAULT.c2")]
    pub c2: usize,
}

/// Conditional generator: (z, digit) -> 1x28x28 image in [-1, 1].
#[derive(Module, Debug)]
pub struct Generator {
    /// z ++ one-hot(digit) -> c0 x 7 x 7.
    pub fc: Linear,
    /// Batch norm of the 7x7 map.
    pub bn0: BatchNorm,
    /// 3x3 conv after the first upsample.
    pub conv1: Conv2d,
    /// Batch norm after conv1.
    pub bn1: BatchNorm,
    /// 3x3 conv after the second upsample.
    pub conv2: Conv2d,
    /// Batch norm after conv2.
    pub bn2: BatchNorm,
    /// 3x3 conv to one channel, then tanh.
    pub conv3: Conv2d,
}

fn conv3x3(cin: usize, cout: usize, bias: bool, device: &Device) -> Conv2d {
    Conv2dConfig::new([cin, cout], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_bias(bias)
        .init(device)
}

impl GeneratorConfig {
    /// The config of an architecture.
    pub fn from_arch(arch: Arch) -> Self {
        Self::new()
            .with_c0(arch.c0)
            .with_c1(arch.c1)
            .with_c2(arch.c2)
    }

    /// The architecture these widths describe.
    pub fn arch(&self) -> Arch {
        Arch {
            c0: self.c0,
            c1: self.c1,
            c2: self.c2,
        }
    }

    /// Builds a freshly initialised generator.
    pub fn init(&self, device: &Device) -> Generator {
        Generator {
            fc: LinearConfig::new(INPUT_DIM, self.c0 * BASE_SIDE * BASE_SIDE)
                .with_bias(false)
                .init(device),
            bn0: BatchNormConfig::new(self.c0).init(device),
            conv1: conv3x3(self.c0, self.c1, false, device),
            bn1: BatchNormConfig::new(self.c1).init(device),
            conv2: conv3x3(self.c1, self.c2, false, device),
            bn2: BatchNormConfig::new(self.c2).init(device),
            conv3: conv3x3(self.c2, 1, true, device),
        }
    }
}

impl Generator {
    /// The architecture of this generator, read off its batch-norm widths.
    pub fn arch(&self) -> Arch {
        Arch {
            c0: self.bn0.gamma.dims()[0],
            c1: self.bn1.gamma.dims()[0],
            c2: self.bn2.gamma.dims()[0],
        }
    }

    /// `z`: `[b, 32]`, `onehot`: `[b, 10]` -> the last block's output `[b, c2, 28, 28]`.
    fn features(&self, z: Tensor<2>, onehot: Tensor<2>) -> Tensor<4> {
        let x = Tensor::cat(vec![z, onehot], 1); // [b, 42]
        let [b, _] = x.dims();
        let c0 = self.bn0.gamma.dims()[0];
        let x = self.fc.forward(x).reshape([b, c0, BASE_SIDE, BASE_SIDE]); // [b, c0, 7, 7]
        let x = batch_norm_relu(&self.bn0, x);
        let x = conv_module(&self.conv1, x, 2, Act::Identity); // [b, c1, 14, 14]
        let x = batch_norm_relu(&self.bn1, x);
        let x = conv_module(&self.conv2, x, 2, Act::Identity); // [b, c2, 28, 28]
        batch_norm_relu(&self.bn2, x)
    }

    /// `z`: `[b, 32]`, `onehot`: `[b, 10]` -> images `[b, 1, 28, 28]` in [-1, 1] (the tanh
    /// fused into the last convolution).
    pub fn forward(&self, z: Tensor<2>, onehot: Tensor<2>) -> Tensor<4> {
        conv_module(&self.conv3, self.features(z, onehot), 1, Act::Tanh)
    }
}

/// Discriminator hyper-parameters.
#[derive(Config, Debug)]
pub struct DiscriminatorConfig {
    /// Channels of the first 4x4/2 conv (14x14).
    #[config(default = 16)]
    pub c1: usize,
    /// Channels of the second 4x4/2 conv (7x7).
    #[config(default = 32)]
    pub c2: usize,
}

/// Negative slope of the discriminator's LeakyReLU.
const LEAKY_SLOPE: f32 = 0.2;

/// Side of the discriminator's last feature map: two stride-2 convolutions.
const D_SIDE: usize = IMAGE_SIDE / 4;

/// Projection discriminator: score = w . h + <embed(y), h>.
#[derive(Module, Debug)]
pub struct Discriminator {
    conv1: Conv2d,
    conv2: Conv2d,
    out: Linear,
    embed: Embedding,
}

impl DiscriminatorConfig {
    /// Builds a freshly initialised discriminator.
    pub fn init(&self, device: &Device) -> Discriminator {
        let down = |cin, cout| {
            Conv2dConfig::new([cin, cout], [4, 4])
                .with_stride([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device)
        };
        let feat = self.c2 * D_SIDE * D_SIDE;
        Discriminator {
            conv1: down(1, self.c1),
            conv2: down(self.c1, self.c2),
            out: LinearConfig::new(feat, 1).init(device),
            embed: EmbeddingConfig::new(NUM_CLASSES, feat)
                .with_initializer(burn::nn::Initializer::Normal {
                    mean: 0.0,
                    std: 0.02,
                })
                .init(device),
        }
    }
}

impl Discriminator {
    /// `x`: `[b, 1, 28, 28]`, `labels`: `[b]` -> scores `[b]`.
    pub fn forward(&self, x: Tensor<4>, labels: Tensor<1, Int>) -> Tensor<1> {
        let (h, proj, b) = self.features(x, labels);
        (self.out.forward(h) + proj).reshape([b])
    }

    /// Scores `[b]` and class logits `[b, 10]`: the features' projections on every
    /// class embedding, the same products the score takes for the label's class.
    pub fn forward_with_logits(
        &self,
        x: Tensor<4>,
        labels: Tensor<1, Int>,
    ) -> (Tensor<1>, Tensor<2>) {
        let (h, proj, b) = self.features(x, labels);
        let logits = h.clone().matmul(self.embed.weight.val().transpose());
        ((self.out.forward(h) + proj).reshape([b]), logits)
    }

    /// Features `[b, c2 * 49]`, their projection on the label's embedding `[b, 1]`, and `b`.
    fn features(&self, x: Tensor<4>, labels: Tensor<1, Int>) -> (Tensor<2>, Tensor<2>, usize) {
        let [b, ..] = x.dims();
        let leaky = Act::LeakyRelu(LEAKY_SLOPE);
        let h = conv_module(&self.conv1, x, 1, leaky); // [b, c1, 14, 14]
        let h = conv_module(&self.conv2, h, 1, leaky); // [b, c2, 7, 7]
        let h = h.flatten::<2>(1, 3); // [b, c2 * 49]
        let e = self
            .embed
            .forward(labels.reshape([b, 1]))
            .squeeze_dim::<2>(1); // [b, c2 * 49]
        let proj = (e * h.clone()).sum_dim(1); // [b, 1]
        (h, proj, b)
    }
}

/// The evaluation classifier: a small CNN reaching > 99.2% on MNIST's test set.
#[derive(Module, Debug)]
pub struct Classifier {
    conv1: Conv2d,
    conv2: Conv2d,
    conv3: Conv2d,
    pool: MaxPool2d,
    fc1: Linear,
    dropout: Dropout,
    fc2: Linear,
}

/// Width of the classifier's penultimate layer (the features used for the Frechet distance).
pub const FEATURES: usize = 128;

/// Side of the classifier's last feature map: three 2x2 max pools (rounding down).
const C_SIDE: usize = IMAGE_SIDE / 8;

impl Classifier {
    /// Builds a freshly initialised classifier.
    pub fn new(device: &Device) -> Self {
        Self {
            conv1: conv3x3(1, 32, true, device),
            conv2: conv3x3(32, 64, true, device),
            conv3: conv3x3(64, 64, true, device),
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            fc1: LinearConfig::new(64 * C_SIDE * C_SIDE, FEATURES).init(device),
            dropout: DropoutConfig::new(0.3).init(),
            fc2: LinearConfig::new(FEATURES, NUM_CLASSES).init(device),
        }
    }

    /// The device the classifier's weights live on.
    pub fn device(&self) -> Device {
        self.fc2.weight.device()
    }

    /// `x`: `[b, 1, 28, 28]` in [-1, 1] -> penultimate features `[b, 128]`.
    pub fn features(&self, x: Tensor<4>) -> Tensor<2> {
        let x = self.pool.forward(relu(self.conv1.forward(x))); // [b, 32, 14, 14]
        let x = self.pool.forward(relu(self.conv2.forward(x))); // [b, 64, 7, 7]
        let x = self.pool.forward(relu(self.conv3.forward(x))); // [b, 64, 3, 3]
        relu(self.fc1.forward(x.flatten::<2>(1, 3))) // [b, 128]
    }

    /// Features -> logits `[b, 10]`.
    pub fn head(&self, features: Tensor<2>) -> Tensor<2> {
        self.fc2.forward(self.dropout.forward(features))
    }

    /// `x`: `[b, 1, 28, 28]` -> logits `[b, 10]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.head(self.features(x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::{label_tensor, to_vec_f32};

    /// The class logits are the projections the score takes: for any two labels, the
    /// difference of the scores equals the difference of those labels' logits, and the
    /// score of `forward_with_logits` is `forward`'s.
    #[test]
    fn class_logits_match_the_projection_term() {
        let device = Device::flex();
        device.seed(3);
        let d = DiscriminatorConfig::new()
            .with_c1(4)
            .with_c2(8)
            .init(&device);
        let b = 5;
        let x = Tensor::<4>::random(
            [b, 1, IMAGE_SIDE, IMAGE_SIDE],
            burn::tensor::Distribution::Uniform(-1.0, 1.0),
            &device,
        );
        let ya: Vec<u8> = vec![0, 3, 7, 9, 2];
        let yb: Vec<u8> = vec![5, 1, 7, 4, 8];
        let (sa, logits) = d.forward_with_logits(x.clone(), label_tensor(&ya, &device));
        let plain = to_vec_f32(d.forward(x.clone(), label_tensor(&ya, &device)));
        let sb = to_vec_f32(d.forward(x, label_tensor(&yb, &device)));
        let (sa, logits) = (to_vec_f32(sa), to_vec_f32(logits));
        assert_eq!(logits.len(), b * NUM_CLASSES);
        for i in 0..b {
            assert_eq!(sa[i], plain[i]);
            let want = logits[i * NUM_CLASSES + usize::from(ya[i])]
                - logits[i * NUM_CLASSES + usize::from(yb[i])];
            let got = sa[i] - sb[i];
            assert!(
                (want - got).abs() <= 1e-5 * (1.0 + want.abs()),
                "row {i}: logit difference {want}, score difference {got}"
            );
        }
    }
}
