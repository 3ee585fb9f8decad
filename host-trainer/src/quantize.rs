//! From a trained Burn generator to generator-core's int8 model file: fold batch norm into
//! the preceding layer, hand the float network to generator-quant with its calibration
//! settings, and write the encoded result.

use std::path::Path;

use anyhow::Context;
use burn::nn::BatchNorm;
use burn::nn::conv::Conv2d;
use generator_core::LayerShape;
use generator_quant::{Calibration, FloatGenerator, FloatLayer, quantize};

use crate::fsutil::write_atomic;
use crate::model::Generator;
use crate::tensor::to_vec_f32;

/// Per-channel (scale, shift) of an inference-mode batch norm.
fn bn_affine(bn: &BatchNorm) -> (Vec<f32>, Vec<f32>) {
    let gamma = to_vec_f32(bn.gamma.val());
    let beta = to_vec_f32(bn.beta.val());
    let mean = to_vec_f32(bn.running_mean.value());
    let var = to_vec_f32(bn.running_var.value());
    let eps = bn.epsilon as f32;
    let scale: Vec<f32> = gamma
        .iter()
        .zip(&var)
        .map(|(g, v)| g / (v + eps).sqrt())
        .collect();
    let shift = beta
        .iter()
        .zip(&mean)
        .zip(&scale)
        .map(|((b, m), s)| b - m * s)
        .collect();
    (scale, shift)
}

/// The linear layer with the following batch norm folded in. Burn stores the weights
/// `[in, out]`; the float reference wants `[out][in]`.
fn fold_linear(g: &Generator, shape: LayerShape) -> FloatLayer {
    let w_io = to_vec_f32(g.fc.weight.val());
    let [inputs, outputs] = g.fc.weight.dims();
    let (scale, shift) = bn_affine(&g.bn0);
    let per_channel = outputs / scale.len(); // BASE_SIDE^2 positions per channel
    let mut w = vec![0f32; inputs * outputs];
    let mut b =
        g.fc.bias
            .as_ref()
            .map_or_else(|| vec![0.0; outputs], |b| to_vec_f32(b.val()));
    for o in 0..outputs {
        let c = o / per_channel;
        for i in 0..inputs {
            w[o * inputs + i] = w_io[i * outputs + o] * scale[c];
        }
        b[o] = b[o] * scale[c] + shift[c];
    }
    FloatLayer {
        shape,
        weights: w,
        bias: b,
        relu: true,
    }
}

/// Conv weights `[out][in][3][3]` and bias, with a following batch norm (if any) folded
/// in; a batch-normed conv is followed by a ReLU, the last one by `tanh`.
fn fold_conv(conv: &Conv2d, bn: Option<&BatchNorm>, shape: LayerShape) -> FloatLayer {
    let [out_ch, in_ch, _, _] = conv.weight.dims();
    let mut w = to_vec_f32(conv.weight.val());
    let mut b = conv
        .bias
        .as_ref()
        .map_or_else(|| vec![0.0; out_ch], |b| to_vec_f32(b.val()));
    if let Some(bn) = bn {
        let (scale, shift) = bn_affine(bn);
        for o in 0..out_ch {
            for v in &mut w[o * in_ch * 9..(o + 1) * in_ch * 9] {
                *v *= scale[o];
            }
            b[o] = b[o] * scale[o] + shift[o];
        }
    }
    FloatLayer {
        shape,
        weights: w,
        bias: b,
        relu: bn.is_some(),
    }
}

/// The generator as plain float layers with batch norm folded (inference semantics),
/// shaped by its [`Arch`](generator_core::Arch).
pub fn to_float(g: &Generator) -> FloatGenerator {
    let [linear, conv1, conv2, conv3] = g.arch().layer_shapes();
    FloatGenerator {
        layers: vec![
            fold_linear(g, linear),
            fold_conv(&g.conv1, Some(&g.bn1), conv1),
            fold_conv(&g.conv2, Some(&g.bn2), conv2),
            fold_conv(&g.conv3, None, conv3),
        ],
    }
}

/// Quantizes `g` with `calibration` and writes the model file to `path`; returns its
/// bytes. Refuses to write a file that generator-core cannot load.
pub fn export(g: &Generator, calibration: &Calibration, path: &Path) -> anyhow::Result<Vec<u8>> {
    let bytes = quantize(&to_float(g), calibration)
        .context("quantizing the generator")?
        .to_bytes()
        .context("encoding the model file")?;
    generator_core::Model::from_bytes(&bytes).context("the quantized model does not load")?;
    write_atomic(path, &bytes)?;
    Ok(bytes)
}
