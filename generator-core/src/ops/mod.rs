//! Integer kernels.
//!
//! Activations are int8 stored as raw bytes (`b as i8`), laid out HWC so that the
//! dot product over input channels is contiguous. Each kernel checks its buffer
//! lengths once on entry ([`Error::ShapeMismatch`]) and then runs without bounds
//! failures; the shapes and parameters themselves were validated by [`Layer::new`].
//!
//! - [`requant`]: the fixed-point rescaling and its rounding rule.
//! - [`linear`]: fully connected layer.
//! - [`conv`]: 3x3 convolution with fused nearest 2x upsampling; its fast kernels all
//!   run one driver, the phase split (`conv::phase`).
//! - [`activation`]: input quantisation and the output table.
//! - `isa`: the instruction sets' inner loops (portable, Arm DSP, x86 SSE2/AVX2).
//! - `reference`: the reference kernels every fast one is tested against.
//! - [`select`]: which kernel runs a layer, decided in one function (the names of the
//!   kernels, [`select::Kernel`], sit in the leaf module `kernel`).
//! - [`self_test`] and [`seams`]: the firmware's start-up check, and entry points that
//!   force a kernel, for tests.

pub mod activation;
pub mod conv;
mod isa;
mod kernel;
pub mod linear;
mod reference;
pub mod requant;
#[doc(hidden)]
pub mod seams;
pub mod select;
#[doc(hidden)]
pub mod self_test;

use crate::{Error, Layer, LayerShape, Result};

/// Runs one validated layer: `input.len()` must be [`Layer::input_len`] and
/// `output.len()` must be [`Layer::output_len`].
pub fn run_layer(layer: &Layer<'_>, input: &[u8], output: &mut [u8]) -> Result<()> {
    if input.len() != layer.input_len() || output.len() != layer.output_len() {
        return Err(Error::ShapeMismatch);
    }
    match layer.shape() {
        LayerShape::Linear { .. } => linear::linear(layer, input, output),
        LayerShape::Conv3x3 { .. } => conv::conv3x3(layer, input, output),
    }
}

/// [`run_layer`] with the layer's prepared convolution weights
/// ([`conv::prepare`]; `None` to merge them on the fly): the same bytes.
pub fn run_layer_prepared(
    layer: &Layer<'_>,
    prepared: Option<&[u32]>,
    input: &[u8],
    output: &mut [u8],
) -> Result<()> {
    match (layer.shape(), prepared) {
        (LayerShape::Conv3x3 { .. }, Some(prepared)) => {
            if input.len() != layer.input_len() || output.len() != layer.output_len() {
                return Err(Error::ShapeMismatch);
            }
            let (out_h, _, _) = layer.shape().output_hwc();
            conv::conv3x3_rows_prepared(layer, prepared, input, 0, output, 0..out_h as usize)
        }
        _ => run_layer(layer, input, output),
    }
}

/// Dot product of two equally long int8 byte slices, in `i32`.
///
/// Written as a plain zip so that LLVM vectorises it (`pmaddwd` on x86, `smlabb`
/// pairs on Cortex-M4).
#[inline(always)]
pub fn dot(a: &[u8], b: &[u8]) -> i32 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| i32::from(x as i8) * i32::from(y as i8))
        .sum()
}

/// Per-output-channel parameters decoded from a layer's byte slices.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Channel {
    pub bias: i32,
    pub requant: requant::Requant,
}

/// Iterates the per-channel bias, multiplier and shift of a layer.
pub(crate) fn channels<'a>(layer: &Layer<'a>) -> impl Iterator<Item = Channel> + Clone + 'a {
    let p = *layer.params();
    let out_zp = p.out_zero_point;
    let lo = if p.relu { out_zp } else { i8::MIN };
    p.bias
        .chunks_exact(4)
        .zip(p.multiplier.chunks_exact(4))
        .zip(p.shift.iter())
        .map(move |((b, m), &shift)| Channel {
            bias: i32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            requant: requant::Requant {
                multiplier: i32::from_le_bytes([m[0], m[1], m[2], m[3]]),
                shift,
                zero_point: out_zp,
                min: lo,
            },
        })
}
