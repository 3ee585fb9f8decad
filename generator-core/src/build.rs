//! Host-side model building (feature `std`): the float reference network, the
//! post-training int8 quantizer and the model file writer. The trainer hands its
//! folded float weights over as a [`FloatGenerator`] and writes
//! `quantize(&float, &calibration).to_bytes()`.
//!
//! Float semantics follow PyTorch/Burn: batch 1, CHW activations, linear weights
//! `[out][in]`, conv weights `[out_ch][in_ch][3][3]`. The quantizer permutes to the
//! kernels' HWC layout (conv weights `[out][ky][kx][in]`, a linear feeding a conv has
//! its rows reordered to HWC, a linear fed by a conv its columns).

use std::vec::Vec;

use crate::model::{LayerParams, ModelRepr, encode};
use crate::ops::requant::quantize_multiplier;
use crate::{IMAGE_PIXELS, INPUT_DIM, Image, LayerShape, MAX_ABS_BIAS, MAX_LAYERS};

/// `z` is clamped to `[-Z_CLIP, Z_CLIP]` when quantised (scale `Z_CLIP / 127`, zero
/// point 0); the one-hot `1.0` uses the same scale (quantised to 32).
pub const Z_CLIP: f32 = 4.0;
/// The last layer's calibrated logit range is intersected with `[-LOGIT_CLIP,
/// LOGIT_CLIP]`: beyond it `tanh` rounds to pixel 0 or 255 anyway, so the int8 steps
/// are spent where they change pixels.
pub const LOGIT_CLIP: f32 = 4.5;

/// Operation and float-side shape of a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerKind {
    /// Fully connected, weights `[outputs][inputs]`.
    Linear {
        /// Input features.
        inputs: usize,
        /// Output features.
        outputs: usize,
    },
    /// 3x3 convolution, stride 1, padding 1, weights `[out_ch][in_ch][3][3]`; with
    /// `upsample` it reads a nearest 2x upsampled view of its `in_h x in_w` input.
    Conv3x3 {
        /// Input channels.
        in_ch: usize,
        /// Output channels.
        out_ch: usize,
        /// Input height before upsampling.
        in_h: usize,
        /// Input width before upsampling.
        in_w: usize,
        /// Whether the input is upsampled 2x first.
        upsample: bool,
    },
}

impl LayerKind {
    fn shape(&self) -> LayerShape {
        let d = |v: usize| u16::try_from(v).expect("layer dimension exceeds u16");
        match *self {
            LayerKind::Linear { inputs, outputs } => LayerShape::Linear {
                inputs: d(inputs),
                outputs: d(outputs),
            },
            LayerKind::Conv3x3 {
                in_ch,
                out_ch,
                in_h,
                in_w,
                upsample,
            } => LayerShape::Conv3x3 {
                in_ch: d(in_ch),
                out_ch: d(out_ch),
                in_h: d(in_h),
                in_w: d(in_w),
                upsample,
            },
        }
    }

    /// Number of weights.
    pub fn weight_len(&self) -> usize {
        let s = self.shape();
        (s.channels() * s.fan_in()) as usize
    }

    /// Output channels / features (the bias length).
    pub fn channels(&self) -> usize {
        self.shape().channels() as usize
    }

    /// Number of input values.
    pub fn input_len(&self) -> usize {
        self.shape().input_len() as usize
    }

    /// Number of output values.
    pub fn output_len(&self) -> usize {
        self.shape().output_len() as usize
    }

    /// `(channels, height, width)` of the output; a linear layer is `(outputs, 1, 1)`.
    fn out_chw(&self) -> (usize, usize, usize) {
        let (h, w, c) = self.shape().output_hwc();
        (c as usize, h as usize, w as usize)
    }
}

/// The shapes of the default generator: `42 -> 16x7x7 -> 16x14x14 -> 8x28x28 -> 1x28x28`.
pub fn default_architecture() -> Vec<LayerKind> {
    vec![
        LayerKind::Linear {
            inputs: INPUT_DIM,
            outputs: 16 * 7 * 7,
        },
        LayerKind::Conv3x3 {
            in_ch: 16,
            out_ch: 16,
            in_h: 7,
            in_w: 7,
            upsample: true,
        },
        LayerKind::Conv3x3 {
            in_ch: 16,
            out_ch: 8,
            in_h: 14,
            in_w: 14,
            upsample: true,
        },
        LayerKind::Conv3x3 {
            in_ch: 8,
            out_ch: 1,
            in_h: 28,
            in_w: 28,
            upsample: false,
        },
    ]
}

/// One float layer, batch norm already folded in.
#[derive(Debug, Clone, PartialEq)]
pub struct FloatLayer {
    /// Operation and shape.
    pub kind: LayerKind,
    /// Weights in PyTorch/Burn order (see [`LayerKind`]).
    pub weights: Vec<f32>,
    /// One bias per output channel / feature.
    pub bias: Vec<f32>,
    /// Whether a ReLU follows. The last layer has none: `tanh` is implied.
    pub relu: bool,
}

impl FloatLayer {
    /// Plain float forward pass, CHW in and out.
    pub fn forward(&self, input: &[f32]) -> Vec<f32> {
        assert_eq!(input.len(), self.kind.input_len(), "layer input length");
        assert_eq!(self.weights.len(), self.kind.weight_len(), "weight length");
        assert_eq!(self.bias.len(), self.kind.channels(), "bias length");
        let mut out = match self.kind {
            LayerKind::Linear { inputs, outputs } => (0..outputs)
                .map(|o| {
                    let row = &self.weights[o * inputs..(o + 1) * inputs];
                    self.bias[o] + row.iter().zip(input).map(|(w, x)| w * x).sum::<f32>()
                })
                .collect(),
            LayerKind::Conv3x3 {
                in_ch,
                out_ch,
                in_h,
                in_w,
                upsample,
            } => {
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
                                        let (uy, ux) = (oy + ky, ox + kx); // +1 padding offset
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
        };
        if self.relu {
            out.iter_mut().for_each(|v| *v = v.max(0.0));
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

/// SplitMix64, for reproducible random weights.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[-a, a)`.
    fn uniform(&mut self, a: f32) -> f32 {
        ((self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * a
    }
}

/// Pixel for a pre-tanh logit: `round((tanh(v) + 1) / 2 * 255)`.
pub fn logit_to_pixel(v: f64) -> u8 {
    ((v.tanh() + 1.0) / 2.0 * 255.0).round().clamp(0.0, 255.0) as u8
}

impl FloatGenerator {
    /// The float network input for `(digit, seed)`: `z` from
    /// [`crate::noise::gaussian`], then the one-hot label. Panics if `digit > 9`.
    pub fn input(digit: u8, seed: u32) -> [f32; INPUT_DIM] {
        crate::float_input(digit, seed).expect("digit must be 0..=9")
    }

    /// Pre-tanh output (784 values) for a 42-value input, in plain f32 loops.
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

    /// The image: `tanh`, then `round((t + 1) / 2 * 255)` per pixel.
    pub fn forward_image(&self, input: &[f32]) -> Image {
        let logits = self.forward_logits(input);
        assert_eq!(
            logits.len(),
            IMAGE_PIXELS,
            "the last layer must output 784 values"
        );
        let mut img = [0u8; IMAGE_PIXELS];
        for (p, &v) in img.iter_mut().zip(&logits) {
            *p = logit_to_pixel(v as f64);
        }
        img
    }

    /// A randomly initialised generator of the default architecture (He-uniform
    /// weights for ReLU layers, small biases), reproducible from `seed`.
    pub fn random(seed: u64) -> FloatGenerator {
        let mut rng = SplitMix64(seed ^ 0xD1B5_4A32_D192_ED03);
        let kinds = default_architecture();
        let n = kinds.len();
        let layers = kinds
            .into_iter()
            .enumerate()
            .map(|(i, kind)| {
                let fan_in = kind.shape().fan_in() as f32;
                let last = i + 1 == n;
                let a = (6.0 / fan_in).sqrt() * if last { 0.5 } else { 1.0 };
                FloatLayer {
                    kind,
                    weights: (0..kind.weight_len()).map(|_| rng.uniform(a)).collect(),
                    bias: (0..kind.channels()).map(|_| rng.uniform(0.1)).collect(),
                    relu: !last,
                }
            })
            .collect();
        FloatGenerator { layers }
    }
}

/// An int8 layer with owned buffers, in the kernels' layout.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedLayer {
    /// Operation and shape.
    pub shape: LayerShape,
    /// Whether a ReLU follows.
    pub relu: bool,
    /// Input scale.
    pub in_scale: f32,
    /// Input zero point.
    pub in_zero_point: i8,
    /// Output scale.
    pub out_scale: f32,
    /// Output zero point.
    pub out_zero_point: i8,
    /// Weights, linear `[out][in]`, conv `[out][ky][kx][in]`, HWC-permuted.
    pub weights: Vec<i8>,
    /// Per-channel weight scales (not stored in the file; for analysis).
    pub weight_scales: Vec<f32>,
    /// Effective bias per channel (includes `-in_zero_point * sum(w)`).
    pub bias: Vec<i32>,
    /// Q0.31 multiplier per channel.
    pub multiplier: Vec<i32>,
    /// Total right shift per channel.
    pub shift: Vec<u8>,
}

/// A quantised model ready to be written.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedModel {
    /// Layers, first to last.
    pub layers: Vec<QuantizedLayer>,
    /// Pixel per last-layer int8 output, indexed by `q + 128`.
    pub output_lut: [u8; 256],
}

fn le_bytes(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

impl QuantizedModel {
    /// Encodes the model file (magic, version, postcard payload, CRC-32).
    pub fn to_bytes(&self) -> Vec<u8> {
        let owned: Vec<[Vec<u8>; 4]> = self
            .layers
            .iter()
            .map(|l| {
                [
                    l.weights.iter().map(|&w| w as u8).collect(),
                    le_bytes(&l.bias),
                    le_bytes(&l.multiplier),
                    l.shift.clone(),
                ]
            })
            .collect();
        let mut layers = heapless::Vec::new();
        for (l, [weights, bias, multiplier, shift]) in self.layers.iter().zip(&owned) {
            let params = LayerParams {
                shape: l.shape,
                relu: l.relu,
                in_scale: l.in_scale,
                in_zero_point: l.in_zero_point,
                out_scale: l.out_scale,
                out_zero_point: l.out_zero_point,
                weights,
                bias,
                multiplier,
                shift,
            };
            layers.push(params).expect("at most MAX_LAYERS layers");
        }
        encode(&ModelRepr {
            layers,
            output_lut: &self.output_lut,
        })
    }
}

/// Scale and zero point for an activation range (widened to contain 0), spending all
/// 256 int8 steps: `zp = -128 - lo / scale`, so a ReLU output (`lo = 0`) gets -128.
pub fn activation_params(lo: f32, hi: f32) -> (f32, i8) {
    let (lo, hi) = (lo.min(0.0) as f64, hi.max(0.0) as f64);
    let range = (hi - lo).max(1e-6);
    let scale = range / 255.0;
    let zp = (-128.0 - lo / scale).round().clamp(-128.0, 127.0);
    (scale as f32, zp as i8)
}

/// Symmetric per-channel weight quantisation: scale `max|w| / 127`, values in
/// `[-127, 127]`, rounded half away from zero.
fn quantize_weights(w: &[f32]) -> (Vec<i8>, f32) {
    let max = w.iter().fold(0f32, |m, v| m.max(v.abs()));
    let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
    let q = w
        .iter()
        .map(|&v| (v / scale).round().clamp(-127.0, 127.0) as i8)
        .collect();
    (q, scale)
}

/// HWC index of the CHW element `(c, y, x)`.
fn hwc(c: usize, y: usize, x: usize, (ch, _h, w): (usize, usize, usize)) -> usize {
    (y * w + x) * ch + c
}

/// Quantises `float` to int8 with per-tensor activation ranges taken from running the
/// float network on `calibration_inputs` (min/max of each layer's output; the
/// trainer passes 1000 or more). Panics if the float model is inconsistent or does
/// not fit the file format.
pub fn quantize(float: &FloatGenerator, calibration_inputs: &[[f32; INPUT_DIM]]) -> QuantizedModel {
    let n = float.layers.len();
    assert!((1..=MAX_LAYERS).contains(&n), "1..=MAX_LAYERS layers");
    assert!(!calibration_inputs.is_empty(), "need calibration inputs");
    // Calibration ranges.
    let mut ranges = vec![(0f32, 0f32); n];
    for x in calibration_inputs {
        for (r, out) in ranges.iter_mut().zip(float.forward_all(x)) {
            for v in out {
                *r = (r.0.min(v), r.1.max(v));
            }
        }
    }
    if let Some(last) = ranges.last_mut() {
        *last = (last.0.max(-LOGIT_CLIP), last.1.min(LOGIT_CLIP));
    }

    let mut in_scale = Z_CLIP / 127.0;
    let mut in_zp: i8 = 0;
    let mut layers = Vec::with_capacity(n);
    for (i, fl) in float.layers.iter().enumerate() {
        let kind = fl.kind;
        assert_eq!(
            fl.weights.len(),
            kind.weight_len(),
            "layer {i}: weight length"
        );
        assert_eq!(fl.bias.len(), kind.channels(), "layer {i}: bias length");
        let (out_scale, out_zp) = activation_params(ranges[i].0, ranges[i].1);
        let channels = kind.channels();
        // Reorder to the kernels' layout: `rows[new_channel]` = float weights of one
        // output channel (already in kernel order within the row), plus its bias.
        let (rows, biases): (Vec<Vec<f32>>, Vec<f32>) = match kind {
            LayerKind::Linear { inputs, outputs } => {
                // Output order: HWC if a conv consumes this layer.
                let next_chw = float.layers.get(i + 1).and_then(|l| match l.kind {
                    LayerKind::Conv3x3 {
                        in_ch, in_h, in_w, ..
                    } => Some((in_ch, in_h, in_w)),
                    _ => None,
                });
                // Input order: HWC if a conv produced our input.
                let prev_chw = i
                    .checked_sub(1)
                    .map(|p| float.layers[p].kind)
                    .filter(|k| matches!(k, LayerKind::Conv3x3 { .. }))
                    .map(|k| k.out_chw());
                let mut order = (0..outputs).collect::<Vec<_>>();
                if let Some(chw) = next_chw {
                    assert_eq!(chw.0 * chw.1 * chw.2, outputs, "layer {i}: output shape");
                    for c in 0..chw.0 {
                        for y in 0..chw.1 {
                            for x in 0..chw.2 {
                                order[hwc(c, y, x, chw)] = (c * chw.1 + y) * chw.2 + x;
                            }
                        }
                    }
                }
                let rows = order
                    .iter()
                    .map(|&f| {
                        let row = &fl.weights[f * inputs..(f + 1) * inputs];
                        match prev_chw {
                            None => row.to_vec(),
                            Some(chw) => {
                                let mut r = vec![0.0; inputs];
                                for c in 0..chw.0 {
                                    for y in 0..chw.1 {
                                        for x in 0..chw.2 {
                                            r[hwc(c, y, x, chw)] = row[(c * chw.1 + y) * chw.2 + x];
                                        }
                                    }
                                }
                                r
                            }
                        }
                    })
                    .collect();
                (rows, order.iter().map(|&f| fl.bias[f]).collect())
            }
            LayerKind::Conv3x3 { in_ch, out_ch, .. } => {
                let rows = (0..out_ch)
                    .map(|oc| {
                        let mut r = vec![0.0; 9 * in_ch];
                        for ic in 0..in_ch {
                            for t in 0..9 {
                                r[t * in_ch + ic] = fl.weights[(oc * in_ch + ic) * 9 + t];
                            }
                        }
                        r
                    })
                    .collect();
                (rows, fl.bias.clone())
            }
        };
        let mut weights = Vec::with_capacity(kind.weight_len());
        let (mut weight_scales, mut bias, mut multiplier, mut shift) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (row, &b) in rows.iter().zip(&biases) {
            let (q, ws) = quantize_weights(row);
            let acc_scale = in_scale as f64 * ws as f64;
            let sum_w: i64 = q.iter().map(|&w| i64::from(w)).sum();
            let b_q = (b as f64 / acc_scale).round() as i64 - i64::from(in_zp) * sum_w;
            let lim = i64::from(MAX_ABS_BIAS);
            bias.push(b_q.clamp(-lim, lim) as i32);
            let (m, s) = quantize_multiplier(acc_scale / out_scale as f64);
            multiplier.push(m);
            shift.push(s);
            weight_scales.push(ws);
            weights.extend(q);
        }
        debug_assert_eq!(bias.len(), channels);
        layers.push(QuantizedLayer {
            shape: kind.shape(),
            relu: fl.relu,
            in_scale,
            in_zero_point: in_zp,
            out_scale,
            out_zero_point: out_zp,
            weights,
            weight_scales,
            bias,
            multiplier,
            shift,
        });
        in_scale = out_scale;
        in_zp = out_zp;
    }
    let mut output_lut = [0u8; 256];
    for (i, p) in output_lut.iter_mut().enumerate() {
        let q = i as i32 - 128;
        *p = logit_to_pixel((q - i32::from(in_zp)) as f64 * in_scale as f64);
    }
    QuantizedModel { layers, output_lut }
}
