//! From a trained Burn generator to generator-core's int8 model file: fold batch norm into
//! the preceding layer, hand the float network to generator-core's quantizer with
//! calibration inputs, and write the result.

use std::path::Path;

use burn::nn::BatchNorm;
use generator_core::build::{FloatGenerator, FloatLayer, LayerKind};

use crate::fsutil::write_atomic;
use crate::model::Generator;
use crate::train::to_vec_f32;

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

/// Conv weights `[out][in][3][3]` and bias, with a following batch norm folded in.
fn fold_conv(
    conv: &burn::nn::conv::Conv2d,
    bn: Option<&BatchNorm>,
    in_h: usize,
    upsample: bool,
    relu: bool,
) -> FloatLayer {
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
        kind: LayerKind::Conv3x3 {
            in_ch,
            out_ch,
            in_h,
            in_w: in_h,
            upsample,
        },
        weights: w,
        bias: b,
        relu,
    }
}

/// The generator as plain float layers with batch norm folded (inference semantics).
pub fn to_float(g: &Generator) -> FloatGenerator {
    // Linear: Burn stores [in, out]; generator-core wants [out][in].
    let w_io = to_vec_f32(g.fc.weight.val());
    let [inputs, outputs] = g.fc.weight.dims();
    let (scale, shift) = bn_affine(&g.bn0);
    let per_channel = outputs / scale.len(); // 49 positions per channel
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
    FloatGenerator {
        layers: vec![
            FloatLayer {
                kind: LayerKind::Linear { inputs, outputs },
                weights: w,
                bias: b,
                relu: true,
            },
            fold_conv(&g.conv1, Some(&g.bn1), 7, true, true),
            fold_conv(&g.conv2, Some(&g.bn2), 14, true, true),
            fold_conv(&g.conv3, None, 28, false, false),
        ],
    }
}

/// Calibration inputs: `n` (digit, seed) pairs cycling through the digits.
pub fn calibration_inputs(n: usize) -> Vec<[f32; 42]> {
    (0..n)
        .map(|i| FloatGenerator::input((i % 10) as u8, 1_000_000 + i as u32))
        .collect()
}

/// Quantizes `g` and writes the model file; returns its bytes.
pub fn export(g: &Generator, calibration: usize, path: &Path) -> anyhow::Result<Vec<u8>> {
    let float = to_float(g);
    let q = generator_core::build::quantize(&float, &calibration_inputs(calibration));
    let bytes = q.to_bytes();
    // Refuse to write a file the core cannot load.
    generator_core::Model::from_bytes(&bytes)
        .map_err(|e| anyhow::anyhow!("quantized model does not load: {e}"))?;
    write_atomic(path, &bytes)?;
    Ok(bytes)
}
