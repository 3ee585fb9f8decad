//! How one call's batch is shared among the rayon workers: one contiguous range of images
//! each, what a backward call gives every range to read, and what each range returns.
//!
//! Weight and bias gradients are summed over the ranges in range order (see
//! [`backward`](super::conv::backward)), so a result depends on the thread count but not on
//! scheduling.

use super::act::Act;
use super::geometry::ConvGeometry;
use super::plan::Plan;

/// Splits `batch` images into one contiguous range per worker thread.
pub(super) fn ranges(batch: usize) -> Vec<(usize, usize)> {
    let parts = rayon::current_num_threads().clamp(1, batch.max(1));
    let (base, extra) = (batch / parts, batch % parts);
    let mut start = 0;
    (0..parts)
        .map(|p| {
            let len = base + usize::from(p < extra);
            let r = (start, start + len);
            start += len;
            r
        })
        .collect()
}

/// Splits a batch buffer (`per_image` values per image) into one slice per range of
/// [`ranges`].
pub(super) fn split_by_ranges<'a>(
    mut rest: &'a mut [f32],
    ranges: &[(usize, usize)],
    per_image: usize,
) -> Vec<&'a mut [f32]> {
    ranges
        .iter()
        .map(|&(a, b)| {
            let (head, tail) = std::mem::take(&mut rest).split_at_mut((b - a) * per_image);
            rest = tail;
            head
        })
        .collect()
}

/// What [`backward`](super::conv::backward) is given: the forward's input, weights, output and
/// activation, and the output gradient.
#[derive(Debug, Clone, Copy)]
pub struct BackwardInputs<'a> {
    /// Input `[batch, in_ch, in_h, in_w]`.
    pub x: &'a [f32],
    /// Weights `[out_ch, in_ch, k, k]`.
    pub w: &'a [f32],
    /// The forward's output (after the activation); read only when `act` is not
    /// [`Act::Identity`].
    pub y: &'a [f32],
    /// The activation of the forward.
    pub act: Act,
    /// Gradient of the output.
    pub dy: &'a [f32],
}

/// One range of images of a [`backward`](super::conv::backward) call: the images `first..end`, and
/// the part of the input gradient they fill, when asked for.
pub(super) struct Range<'a> {
    pub(super) first: usize,
    pub(super) end: usize,
    pub(super) dx: Option<&'a mut [f32]>,
}

/// Per-range sums of a [`backward`](super::conv::backward) call: each part's weight gradient and
/// the bias gradient.
pub(super) type Partial = (Vec<Vec<f32>>, Vec<f32>);

/// Zeroed per-part weight gradients and bias gradient of one range.
pub(super) fn zero_partial(plan: &Plan, geo: &ConvGeometry) -> Partial {
    let dws = plan.weights.iter().map(|w| vec![0f32; w.len()]).collect();
    (dws, vec![0f32; geo.out_ch])
}
