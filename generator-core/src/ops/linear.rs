//! Fully connected layer.

use super::{channels, dot};
use crate::{Error, Layer, LayerShape, Result};

/// `output[o] = requant(bias[o] + sum_i w[o][i] * input[i])`.
///
/// Weights are `[outputs][inputs]` row-major, so each output is one contiguous dot
/// product. `input.len()` must equal `inputs` and `output.len()` `outputs`.
pub fn linear(layer: &Layer<'_>, input: &[u8], output: &mut [u8]) -> Result<()> {
    let LayerShape::Linear { inputs, outputs } = layer.shape() else {
        return Err(Error::ShapeMismatch);
    };
    if input.len() != inputs as usize || output.len() != outputs as usize {
        return Err(Error::ShapeMismatch);
    }
    let rows = layer.params().weights.chunks_exact(input.len());
    for ((out, row), ch) in output.iter_mut().zip(rows).zip(channels(layer)) {
        *out = ch.requant.apply(ch.bias + dot(row, input)) as u8;
    }
    Ok(())
}
