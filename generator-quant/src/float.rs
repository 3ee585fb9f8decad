//! The float reference network: what the int8 model approximates, in plain f32 loops.
//!
//! Semantics follow PyTorch/Burn: batch 1, CHW activations, linear weights
//! `[out][in]`, conv weights `[out_ch][in_ch][3][3]`, batch norm already folded in.

use generator_core::splitmix::SplitMix64;
use generator_core::{Arch, IMAGE_PIXELS, Image, LayerShape};

/// A layer shape's dimensions as `usize`.
pub(crate) fn dims(s: &LayerShape) -> LayerDims {
    match *s {
        LayerShape::Linear { inputs, outputs } => LayerDims::Linear {
            inputs: inputs.into(),
            outputs: outputs.into(),
        },
        LayerShape::Conv3x3 {
            in_ch,
            out_ch,
            in_h,
            in_w,
            upsample,
        } => LayerDims::Conv3x3 {
            in_ch: in_ch.into(),
            out_ch: out_ch.into(),
            in_h: in_h.into(),
            in_w: in_w.into(),
            upsample,
        },
    }
}

/// [`LayerShape`] with `usize` dimensions, for indexing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LayerDims {
    Linear {
        inputs: usize,
        outputs: usize,
    },
    Conv3x3 {
        in_ch: usize,
        out_ch: usize,
        in_h: usize,
        in_w: usize,
        upsample: bool,
    },
}

/// One float layer, batch norm already folded in.
#[derive(Debug, Clone, PartialEq)]
pub struct FloatLayer {
    /// Operation and shape (the same type the model file stores).
    pub shape: LayerShape,
    /// Weights in PyTorch/Burn order: linear `[out][in]`, conv `[out][in][3][3]`.
    pub weights: Vec<f32>,
    /// One bias per output channel / feature.
    pub bias: Vec<f32>,
    /// Whether a ReLU follows. The last layer has none: `tanh` is implied.
    pub relu: bool,
}

impl FloatLayer {
    /// Whether the buffer lengths match the shape.
    pub fn is_consistent(&self) -> bool {
        let s = &self.shape;
        self.weights.len() as u64 == s.channels() * s.fan_in()
            && self.bias.len() as u64 == s.channels()
    }

    /// Plain float forward pass, CHW in and out. Panics if `input` or the layer's
    /// buffers do not match its shape.
    pub fn forward(&self, input: &[f32]) -> Vec<f32> {
        assert_eq!(
            input.len() as u64,
            self.shape.input_len(),
            "layer input length"
        );
        assert!(self.is_consistent(), "weight or bias length");
        let mut out = match dims(&self.shape) {
            LayerDims::Linear { inputs, outputs } => (0..outputs)
                .map(|o| {
                    let row = &self.weights[o * inputs..(o + 1) * inputs];
                    self.bias[o] + row.iter().zip(input).map(|(w, x)| w * x).sum::<f32>()
                })
                .collect(),
            LayerDims::Conv3x3 {
                in_ch,
                out_ch,
                in_h,
                in_w,
                upsample,
            } => self.conv3x3(input, in_ch, out_ch, (in_h, in_w), upsample),
        };
        if self.relu {
            out.iter_mut().for_each(|v| *v = v.max(0.0));
        }
        out
    }

    /// 3x3 convolution, padding 1, reading a nearest 2x upsampled view if `upsample`.
    fn conv3x3(
        &self,
        input: &[f32],
        in_ch: usize,
        out_ch: usize,
        (in_h, in_w): (usize, usize),
        upsample: bool,
    ) -> Vec<f32> {
        let f = if upsample { 2 } else { 1 };
        let (oh, ow) = (in_h * f, in_w * f);
        let mut out = vec![0.0; out_ch * oh * ow];
        for oc in 0..out_ch {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = self.bias[oc];
                    for ic in 0..in_ch {
                        for ky in 0..3 {
                            for kx in 0..3 {
                                // Upsampled coordinates, shifted by the padding of 1.
                                let (uy, ux) = (oy + ky, ox + kx);
                                if uy == 0 || ux == 0 || uy > oh || ux > ow {
                                    continue;
                                }
                                let (sy, sx) = ((uy - 1) / f, (ux - 1) / f);
                                let w = self.weights[((oc * in_ch + ic) * 3 + ky) * 3 + kx];
                                acc += w * input[(ic * in_h + sy) * in_w + sx];
                            }
                        }
                    }
                    out[(oc * oh + oy) * ow + ox] = acc;
                }
            }
        }
        out
    }
}

/// A float generator: the reference the int8 model is measured against.
#[derive(Debug, Clone, PartialEq)]
pub struct FloatGenerator {
    /// Layers, first to last.
    pub layers: Vec<FloatLayer>,
}

/// Pixel for a pre-tanh logit: `round((tanh(v) + 1) / 2 * 255)`.
pub fn logit_to_pixel(v: f64) -> u8 {
    ((v.tanh() + 1.0) / 2.0 * 255.0).round().clamp(0.0, 255.0) as u8
}

impl FloatGenerator {
    /// Pre-tanh output for a network input, in plain f32 loops.
    pub fn forward_logits(&self, input: &[f32]) -> Vec<f32> {
        self.layers
            .iter()
            .fold(input.to_vec(), |x, layer| layer.forward(&x))
    }

    /// Every layer's output (after its ReLU), for calibration.
    pub fn forward_all(&self, input: &[f32]) -> Vec<Vec<f32>> {
        let mut outs: Vec<Vec<f32>> = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            let x = outs.last().map_or(input, |v| v.as_slice());
            let y = layer.forward(x);
            outs.push(y);
        }
        outs
    }

    /// The image: `tanh`, then `round((t + 1) / 2 * 255)` per pixel. Panics if the last
    /// layer does not output [`IMAGE_PIXELS`] values.
    pub fn forward_image(&self, input: &[f32]) -> Image {
        let logits = self.forward_logits(input);
        assert_eq!(
            logits.len(),
            IMAGE_PIXELS,
            "the last layer must output one image"
        );
        let mut img = [0u8; IMAGE_PIXELS];
        for (p, &v) in img.iter_mut().zip(&logits) {
            *p = logit_to_pixel(v as f64);
        }
        img
    }

    /// A randomly initialised generator of `arch` (He-uniform weights for ReLU layers,
    /// small biases), reproducible from `seed`.
    pub fn random(arch: Arch, seed: u64) -> FloatGenerator {
        let mut rng = SplitMix64::new(seed ^ 0xD1B5_4A32_D192_ED03);
        let mut uniform = |a: f32| {
            // Uniform in [-a, a) from the top 24 bits.
            ((rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * a
        };
        let shapes = arch.layer_shapes();
        let n = shapes.len();
        let layers = shapes
            .into_iter()
            .enumerate()
            .map(|(i, shape)| {
                let last = i + 1 == n;
                let a = (6.0 / shape.fan_in() as f32).sqrt() * if last { 0.5 } else { 1.0 };
                let weights = (0..shape.channels() * shape.fan_in())
                    .map(|_| uniform(a))
                    .collect();
                let bias = (0..shape.channels()).map(|_| uniform(0.1)).collect();
                FloatLayer {
                    shape,
                    weights,
                    bias,
                    relu: !last,
                }
            })
            .collect();
        FloatGenerator { layers }
    }
}
