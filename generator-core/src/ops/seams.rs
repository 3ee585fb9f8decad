//! Entry points for tests and benchmarks: run a layer with a chosen kernel and learn
//! which kernel actually ran, so that a fast kernel that silently falls back to
//! another fails its test. Not part of the stable API.

use super::select::Kernel;
use crate::{Error, Layer, LayerShape, Result};

/// Runs `layer` whole with `kernel` (its weights merged per call), or with the
/// reference if `kernel` does not run here or does not take the layer; returns the
/// kernel that ran.
pub fn run_with(
    kernel: Kernel,
    layer: &Layer<'_>,
    input: &[u8],
    output: &mut [u8],
) -> Result<Kernel> {
    let kernel = here(kernel, layer);
    match layer.shape() {
        LayerShape::Linear { .. } => super::linear::run(kernel, layer, input, output),
        LayerShape::Conv3x3 { .. } => {
            let out_h = layer.shape().output_hwc().0 as usize;
            super::conv::run(kernel, layer, None, None, input, 0, output, 0..out_h)
        }
    }
}

/// Output rows `rows` of a conv `layer` from an input band (as
/// [`super::conv::conv3x3_rows`]) with `kernel`, from `prepared` weights in its layout
/// ([`prepare_with`]) unless `prepared` is empty; returns the kernel that ran.
pub fn rows_with(
    kernel: Kernel,
    layer: &Layer<'_>,
    prepared: &[u32],
    input: &[u8],
    in_first: usize,
    output: &mut [u8],
    rows: core::ops::Range<usize>,
) -> Result<Kernel> {
    let prepared = (!prepared.is_empty()).then_some(prepared);
    let kernel = here(kernel, layer);
    super::conv::run(kernel, layer, prepared, None, input, in_first, output, rows)
}

/// Words of prepared weights of a conv `layer` for any kernel but the reference.
pub fn prepared_words_any(layer: &Layer<'_>) -> usize {
    super::conv::phase::prepared_words(layer)
}

/// Writes `kernel`'s prepared weights of a conv `layer` ([`prepared_words_any`] long).
pub fn prepare_with(kernel: Kernel, layer: &Layer<'_>, dst: &mut [u32]) -> Result<()> {
    if !matches!(layer.shape(), LayerShape::Conv3x3 { .. }) {
        return Err(Error::ShapeMismatch);
    }
    super::conv::prepare_for(kernel, layer, dst)
}

/// `kernel` if it runs here and takes `layer`, else the reference.
fn here(kernel: Kernel, layer: &Layer<'_>) -> Kernel {
    if kernel.runs(layer) {
        kernel
    } else {
        Kernel::Reference
    }
}
