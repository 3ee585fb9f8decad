//! Shared by the integration tests: an owned int8 layer, plain integer reference kernels
//! (they index explicitly on purpose, to read like the maths), a reference forward pass of
//! a whole model, random layer parameters, and model files written by the real encoder.
//!
//! Each test file compiles this module on its own and uses a part of it.
#![allow(dead_code, clippy::needless_range_loop)]

use generator_core::ops::activation::quantize_input;
use generator_core::ops::requant::quantize_multiplier;
use generator_core::ops::run_layer;
use generator_core::{Image, Layer, LayerParams, LayerShape, float_input};

/// Owned buffers behind a `LayerParams`.
#[derive(Debug, Clone)]
pub struct OwnedLayer {
    pub shape: LayerShape,
    pub relu: bool,
    pub in_zp: i8,
    pub out_zp: i8,
    pub weights: Vec<i8>,
    pub bias: Vec<i32>,
    pub multiplier: Vec<i32>,
    pub shift: Vec<u8>,
}

/// The byte strings of a layer as stored in a file.
pub struct Bytes {
    pub weights: Vec<u8>,
    pub bias: Vec<u8>,
    pub multiplier: Vec<u8>,
}

impl OwnedLayer {
    pub fn bytes(&self) -> Bytes {
        let le = |v: &[i32]| v.iter().flat_map(|x| x.to_le_bytes()).collect();
        Bytes {
            weights: self.weights.iter().map(|&w| w as u8).collect(),
            bias: le(&self.bias),
            multiplier: le(&self.multiplier),
        }
    }

    pub fn params<'a>(&'a self, b: &'a Bytes) -> LayerParams<'a> {
        LayerParams {
            shape: self.shape,
            relu: self.relu,
            in_scale: 1.0,
            in_zero_point: self.in_zp,
            out_scale: 1.0,
            out_zero_point: self.out_zp,
            weights: &b.weights,
            bias: &b.bias,
            multiplier: &b.multiplier,
            shift: &self.shift,
        }
    }

    /// Runs the optimised kernel.
    pub fn run(&self, input: &[i8]) -> Vec<i8> {
        let b = self.bytes();
        let layer = Layer::new(self.params(&b)).expect("valid layer");
        let input: Vec<u8> = input.iter().map(|&x| x as u8).collect();
        let mut out = vec![0u8; layer.output_len()];
        run_layer(&layer, &input, &mut out).expect("kernel runs");
        out.iter().map(|&x| x as i8).collect()
    }
}

/// Reference requantisation: exact rational arithmetic in i128, round half up written
/// as `floor((2p + 2^s) / 2^(s+1))`.
pub fn ref_requant(acc: i64, m: i32, s: u8, zp: i8, relu: bool) -> i8 {
    let p = acc as i128 * m as i128;
    let den = 1i128 << (s as u32 + 1);
    let v = (2 * p + (1i128 << s)).div_euclid(den) + zp as i128;
    let lo = if relu { zp as i128 } else { -128 };
    v.clamp(lo, 127) as i8
}

/// Reference linear: `y[o] = requant(bias[o] + sum_i w[o][i] x[i])`.
pub fn ref_linear(l: &OwnedLayer, x: &[i8]) -> Vec<i8> {
    let LayerShape::Linear { inputs, outputs } = l.shape else {
        unreachable!()
    };
    let (ni, no) = (inputs as usize, outputs as usize);
    (0..no)
        .map(|o| {
            let mut acc = l.bias[o] as i64;
            for i in 0..ni {
                acc += l.weights[o * ni + i] as i64 * x[i] as i64;
            }
            ref_requant(acc, l.multiplier[o], l.shift[o], l.out_zp, l.relu)
        })
        .collect()
}

/// Reference conv: explicit upsample into a padded buffer, then the textbook sum.
pub fn ref_conv(l: &OwnedLayer, x: &[i8]) -> Vec<i8> {
    let LayerShape::Conv3x3 {
        in_ch,
        out_ch,
        in_h,
        in_w,
        upsample,
    } = l.shape
    else {
        unreachable!()
    };
    let (ci, co, ih, iw) = (
        in_ch as usize,
        out_ch as usize,
        in_h as usize,
        in_w as usize,
    );
    let f = if upsample { 2 } else { 1 };
    let (oh, ow) = (ih * f, iw * f);
    // padded[(y+1)][(x+1)][c], HWC input, padding = input zero point.
    let mut padded = vec![vec![vec![l.in_zp; ci]; ow + 2]; oh + 2];
    for y in 0..oh {
        for xx in 0..ow {
            for c in 0..ci {
                padded[y + 1][xx + 1][c] = x[((y / f) * iw + xx / f) * ci + c];
            }
        }
    }
    let mut out = vec![0i8; oh * ow * co];
    for y in 0..oh {
        for xx in 0..ow {
            for o in 0..co {
                let mut acc = l.bias[o] as i64;
                for ky in 0..3 {
                    for kx in 0..3 {
                        for c in 0..ci {
                            let w = l.weights[((o * 3 + ky) * 3 + kx) * ci + c];
                            acc += w as i64 * padded[y + ky][xx + kx][c] as i64;
                        }
                    }
                }
                out[(y * ow + xx) * co + o] =
                    ref_requant(acc, l.multiplier[o], l.shift[o], l.out_zp, l.relu);
            }
        }
    }
    out
}

/// The reference kernel for any layer.
pub fn reference(l: &OwnedLayer, x: &[i8]) -> Vec<i8> {
    match l.shape {
        LayerShape::Linear { .. } => ref_linear(l, x),
        LayerShape::Conv3x3 { .. } => ref_conv(l, x),
    }
}

/// Scale of the network input in the models written by [`encode`] (every other scale
/// is 1.0: the kernels never read scales, the loader only checks that they chain).
pub const INPUT_SCALE: f32 = 4.0 / 127.0;

/// The image the reference kernels compute for `(digit, seed)`: the library's input
/// quantisation (table-tested in `activation.rs`), the reference layers, the table.
pub fn reference_image(layers: &[OwnedLayer], lut: &[u8; 256], digit: u8, seed: u32) -> Image {
    let x = float_input(digit, seed).expect("digit 0..=9");
    let mut act: Vec<i8> = x
        .iter()
        .map(|&v| quantize_input(v, INPUT_SCALE, layers[0].in_zp))
        .collect();
    for l in layers {
        act = reference(l, &act);
    }
    let mut img = [0u8; 784];
    for (p, &q) in img.iter_mut().zip(&act) {
        *p = lut[(q as i32 + 128) as usize];
    }
    img
}

/// SplitMix64: a small deterministic generator for test parameters.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as i64
    }

    pub fn i8(&mut self) -> i8 {
        self.next_u64() as i8
    }
}

/// A layer of `shape` with random int8 weights and requantisation parameters scaled so
/// that outputs spread over the int8 range instead of saturating (so a wrong sum shows).
pub fn random_layer(
    shape: LayerShape,
    in_zp: i8,
    out_zp: i8,
    relu: bool,
    rng: &mut Rng,
) -> OwnedLayer {
    let ch = shape.channels() as usize;
    let fan = shape.fan_in() as usize;
    let weights = (0..ch * fan).map(|_| rng.i8()).collect();
    // sum(w * x) has a standard deviation of about 74 * 74 * sqrt(fan).
    let spread = 5500.0 * (fan as f64).sqrt();
    let bias = (0..ch)
        .map(|_| rng.range(-spread as i64, spread as i64) as i32)
        .collect();
    let (mut multiplier, mut shift) = (Vec::new(), Vec::new());
    for _ in 0..ch {
        let real = rng.range(20, 80) as f64 / spread;
        let (m, s) = quantize_multiplier(real);
        multiplier.push(m);
        shift.push(s);
    }
    OwnedLayer {
        shape,
        relu,
        in_zp,
        out_zp,
        weights,
        bias,
        multiplier,
        shift,
    }
}

/// Random layers for a chain of shapes: zero points chain, ReLU on all but the last.
pub fn random_layers(shapes: &[LayerShape], rng: &mut Rng) -> Vec<OwnedLayer> {
    let mut zp = rng.i8();
    let mut layers = Vec::new();
    for (i, &shape) in shapes.iter().enumerate() {
        let out_zp = rng.i8();
        let relu = i + 1 < shapes.len() && !rng.next_u64().is_multiple_of(4);
        layers.push(random_layer(shape, zp, out_zp, relu, rng));
        zp = out_zp;
    }
    layers
}

/// A random output table.
pub fn random_lut(rng: &mut Rng) -> [u8; 256] {
    core::array::from_fn(|_| rng.next_u64() as u8)
}

/// Writes a model file with the crate's own encoder (`build::QuantizedModel::to_bytes`).
/// Layer 0 reads with [`INPUT_SCALE`]; every other scale is 1.0.
#[cfg(feature = "std")]
pub fn encode(layers: &[OwnedLayer], lut: &[u8; 256]) -> Vec<u8> {
    use generator_core::build::{QuantizedLayer, QuantizedModel};
    let layers = layers
        .iter()
        .enumerate()
        .map(|(i, l)| QuantizedLayer {
            shape: l.shape,
            relu: l.relu,
            in_scale: if i == 0 { INPUT_SCALE } else { 1.0 },
            in_zero_point: l.in_zp,
            out_scale: 1.0,
            out_zero_point: l.out_zp,
            weights: l.weights.clone(),
            weight_scales: vec![1.0; l.shift.len()],
            bias: l.bias.clone(),
            multiplier: l.multiplier.clone(),
            shift: l.shift.clone(),
        })
        .collect();
    QuantizedModel {
        layers,
        output_lut: *lut,
    }
    .to_bytes()
}

/// A three-layer model whose middle conv has `out_ch` output channels and takes the
/// generic conv path (64 input channels on a 1x4 map are too wide for the fast path's
/// scratch): linear 42 -> 256 (1x4x64), conv 64 -> `out_ch` on 1x4, linear -> 784.
pub fn wide_conv_shapes(out_ch: u16) -> Vec<LayerShape> {
    vec![
        LayerShape::Linear {
            inputs: 42,
            outputs: 256,
        },
        LayerShape::Conv3x3 {
            in_ch: 64,
            out_ch,
            in_h: 1,
            in_w: 4,
            upsample: false,
        },
        LayerShape::Linear {
            inputs: 4 * out_ch,
            outputs: 784,
        },
    ]
}
