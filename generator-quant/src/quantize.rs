//! Post-training int8 quantisation: per-tensor activation ranges from calibration,
//! symmetric per-channel weights, integer requantisation parameters, and the output
//! table that folds in `tanh`.
//!
//! The kernels read activations HWC, so the quantizer also permutes weights: conv
//! weights to `[out][ky][kx][in]`, and the rows of a linear layer feeding a convolution
//! to HWC order.

use core::fmt;

use generator_core::encode::{QuantizedLayer, QuantizedModel};
use generator_core::ops::requant::quantize_multiplier;
use generator_core::{LayerShape, MAX_ABS_BIAS, MAX_LAYERS};

use crate::calibration::Calibration;
use crate::float::{FloatGenerator, FloatLayer, LayerDims, dims, logit_to_pixel};

/// `z` is clamped to `[-Z_CLIP, Z_CLIP]` when quantised (scale `Z_CLIP / 127`, zero
/// point 0); the one-hot `1.0` uses the same scale (quantised to 32).
pub const Z_CLIP: f32 = 4.0;
/// The last layer's calibrated logit range is intersected with `[-LOGIT_CLIP,
/// LOGIT_CLIP]`: beyond it `tanh` rounds to pixel 0 or 255 anyway, so the int8 steps
/// are spent where they change pixels.
pub const LOGIT_CLIP: f32 = 4.5;

/// Why a float generator cannot be quantised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum QuantizeError {
    /// No layers, or more than [`MAX_LAYERS`].
    LayerCount,
    /// The calibration has no inputs.
    NoCalibration,
    /// A layer's weight or bias length does not match its shape.
    Inconsistent {
        /// Index of the layer.
        layer: usize,
    },
    /// A layer's input length is not the previous layer's output length.
    ShapeMismatch {
        /// Index of the layer.
        layer: usize,
    },
    /// A linear layer reads a convolution's output. No architecture has one, so the
    /// column permutation it would need is not implemented.
    LinearAfterConv {
        /// Index of the layer.
        layer: usize,
    },
}

impl fmt::Display for QuantizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QuantizeError::LayerCount => write!(f, "a model has 1..={MAX_LAYERS} layers"),
            QuantizeError::NoCalibration => write!(f, "calibration needs at least one input"),
            QuantizeError::Inconsistent { layer } => {
                write!(
                    f,
                    "layer {layer}: weight or bias length does not match its shape"
                )
            }
            QuantizeError::ShapeMismatch { layer } => {
                write!(
                    f,
                    "layer {layer}: input length is not the previous output length"
                )
            }
            QuantizeError::LinearAfterConv { layer } => {
                write!(
                    f,
                    "layer {layer}: a linear layer after a convolution is not supported"
                )
            }
        }
    }
}

impl std::error::Error for QuantizeError {}

/// Scale and zero point of an int8 activation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ActivationQuant {
    /// Real value of one int8 step.
    pub scale: f32,
    /// The int8 value of real 0.
    pub zero_point: i8,
}

impl ActivationQuant {
    /// The network input: `z` and the one-hot label share the scale `Z_CLIP / 127`.
    pub const INPUT: ActivationQuant = ActivationQuant {
        scale: Z_CLIP / 127.0,
        zero_point: 0,
    };

    /// Parameters for a range (widened to contain 0), spending all 256 int8 steps:
    /// `zp = -128 - lo / scale`, so a ReLU output (`lo = 0`) gets -128.
    pub fn for_range(lo: f32, hi: f32) -> ActivationQuant {
        let (lo, hi) = (lo.min(0.0) as f64, hi.max(0.0) as f64);
        let range = (hi - lo).max(1e-6);
        let scale = range / 255.0;
        let zp = (-128.0 - lo / scale).round().clamp(-128.0, 127.0);
        ActivationQuant {
            scale: scale as f32,
            zero_point: zp as i8,
        }
    }
}

/// Quantises `float` to int8, with activation ranges measured on `calibration`.
pub fn quantize(
    float: &FloatGenerator,
    calibration: &Calibration,
) -> Result<QuantizedModel, QuantizeError> {
    check(float)?;
    if calibration.count == 0 {
        return Err(QuantizeError::NoCalibration);
    }
    let mut ranges = calibration.ranges(float);
    if let Some(last) = ranges.last_mut() {
        *last = (last.0.max(-LOGIT_CLIP), last.1.min(LOGIT_CLIP));
    }
    let mut input = ActivationQuant::INPUT;
    let mut layers = Vec::with_capacity(float.layers.len());
    for (i, &(lo, hi)) in ranges.iter().enumerate() {
        let output = ActivationQuant::for_range(lo, hi);
        layers.push(quantize_layer(float, i, input, output));
        input = output;
    }
    Ok(QuantizedModel {
        layers,
        output_lut: output_lut(input),
    })
}

/// Checks what [`quantize`] relies on: layer count, buffer lengths, chaining, and no
/// linear layer after a convolution.
fn check(float: &FloatGenerator) -> Result<(), QuantizeError> {
    let layers = &float.layers;
    if !(1..=MAX_LAYERS).contains(&layers.len()) {
        return Err(QuantizeError::LayerCount);
    }
    for (i, l) in layers.iter().enumerate() {
        if !l.is_consistent() {
            return Err(QuantizeError::Inconsistent { layer: i });
        }
        let Some(prev) = i.checked_sub(1).map(|p| &layers[p]) else {
            continue;
        };
        if prev.shape.output_len() != l.shape.input_len() {
            return Err(QuantizeError::ShapeMismatch { layer: i });
        }
        let conv_then_linear = matches!(prev.shape, LayerShape::Conv3x3 { .. })
            && matches!(l.shape, LayerShape::Linear { .. });
        if conv_then_linear {
            return Err(QuantizeError::LinearAfterConv { layer: i });
        }
    }
    Ok(())
}

/// Quantises layer `i` of `float`, given its input and output activation parameters.
fn quantize_layer(
    float: &FloatGenerator,
    i: usize,
    input: ActivationQuant,
    output: ActivationQuant,
) -> QuantizedLayer {
    let fl = &float.layers[i];
    let (rows, biases) = kernel_rows(fl, float.layers.get(i + 1));
    let mut layer = QuantizedLayer {
        shape: fl.shape,
        relu: fl.relu,
        in_scale: input.scale,
        in_zero_point: input.zero_point,
        out_scale: output.scale,
        out_zero_point: output.zero_point,
        weights: Vec::with_capacity(rows.iter().map(Vec::len).sum()),
        bias: Vec::with_capacity(rows.len()),
        multiplier: Vec::with_capacity(rows.len()),
        shift: Vec::with_capacity(rows.len()),
    };
    for (row, &b) in rows.iter().zip(&biases) {
        let (q, weight_scale) = quantize_weights(row);
        let acc_scale = input.scale as f64 * weight_scale as f64;
        let sum_w: i64 = q.iter().map(|&w| i64::from(w)).sum();
        // The input zero point's contribution is folded into the bias, so padding with
        // the zero point is exact.
        let b_q = (b as f64 / acc_scale).round() as i64 - i64::from(input.zero_point) * sum_w;
        let lim = i64::from(MAX_ABS_BIAS);
        layer.bias.push(b_q.clamp(-lim, lim) as i32);
        let (m, s) = quantize_multiplier(acc_scale / output.scale as f64);
        layer.multiplier.push(m);
        layer.shift.push(s);
        layer.weights.extend(q);
    }
    layer
}

/// The layer's weights regrouped for the kernels: one row per output channel, in the
/// order the kernel reads its input, with the bias of that channel.
fn kernel_rows(layer: &FloatLayer, next: Option<&FloatLayer>) -> (Vec<Vec<f32>>, Vec<f32>) {
    match dims(&layer.shape) {
        LayerDims::Linear { inputs, outputs } => {
            // A convolution reads this layer's output as HWC: permute the rows to match.
            let order = match next.map(|n| dims(&n.shape)) {
                Some(LayerDims::Conv3x3 {
                    in_ch, in_h, in_w, ..
                }) => chw_index_in_hwc_order(in_ch, in_h, in_w),
                _ => (0..outputs).collect(),
            };
            let rows = order
                .iter()
                .map(|&f| layer.weights[f * inputs..(f + 1) * inputs].to_vec())
                .collect();
            (rows, order.iter().map(|&f| layer.bias[f]).collect())
        }
        LayerDims::Conv3x3 { in_ch, out_ch, .. } => {
            // `[out][in][ky][kx]` to `[out][ky][kx][in]`.
            let rows = (0..out_ch)
                .map(|oc| {
                    let mut r = vec![0.0; 9 * in_ch];
                    for ic in 0..in_ch {
                        for t in 0..9 {
                            r[t * in_ch + ic] = layer.weights[(oc * in_ch + ic) * 9 + t];
                        }
                    }
                    r
                })
                .collect();
            (rows, layer.bias.clone())
        }
    }
}

/// For each HWC position of a `ch x h x w` map, the CHW index of the same element.
fn chw_index_in_hwc_order(ch: usize, h: usize, w: usize) -> Vec<usize> {
    let mut order = vec![0; ch * h * w];
    for c in 0..ch {
        for y in 0..h {
            for x in 0..w {
                order[(y * w + x) * ch + c] = (c * h + y) * w + x;
            }
        }
    }
    order
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

/// Pixel per last-layer int8 output `q` (indexed by `q + 128`): `tanh` of its real value.
fn output_lut(last: ActivationQuant) -> [u8; 256] {
    let mut lut = [0u8; 256];
    for (i, p) in lut.iter_mut().enumerate() {
        let q = i as i32 - 128;
        *p = logit_to_pixel((q - i32::from(last.zero_point)) as f64 * last.scale as f64);
    }
    lut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hwc_order_of_a_small_map() {
        // 2 channels of 1x2: CHW [c0(0,0), c0(0,1), c1(0,0), c1(0,1)].
        assert_eq!(chw_index_in_hwc_order(2, 1, 2), vec![0, 2, 1, 3]);
    }

    #[test]
    fn activation_ranges_spend_all_steps() {
        let relu = ActivationQuant::for_range(0.0, 2.55);
        assert_eq!(relu.zero_point, -128);
        assert!((relu.scale - 0.01).abs() < 1e-7);
        // -128 + 127.5 rounds half away from zero.
        let symmetric = ActivationQuant::for_range(-1.0, 1.0);
        assert_eq!(symmetric.zero_point, -1);
    }
}
