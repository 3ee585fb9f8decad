//! What happens to a part's product on its way into the output, shared by both forms: the
//! bias, the fused activation and the placement at the part's output positions; and, in the
//! backward, the gradient of the pre-activation output, the bias gradient and the gather of
//! a part's positions.

use super::act::Act;
use super::batch::BackwardInputs;
use super::geometry::ConvGeometry;
use super::plan::Part;

/// Where a product buffer keeps output position `(oy, ox)` of a part, for output channel `o`
/// of image `j` of a group: at `o * chan + j * image + oy * row + ox`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Layout {
    pub(super) chan: usize,
    pub(super) image: usize,
    pub(super) row: usize,
}

impl Layout {
    /// The unfold form's `[out_ch, g * N_p]` product.
    pub(super) fn unfolded(part: &Part, g: usize) -> Self {
        Self {
            chan: g * part.positions(),
            image: part.positions(),
            row: part.ow,
        }
    }

    /// Start of row `oy` of output channel `o` of image `j`.
    pub(super) fn at(&self, o: usize, j: usize, oy: usize) -> usize {
        o * self.chan + j * self.image + oy * self.row
    }
}

/// Writes a part's product (`layout`) for `g` images into their output planes, adding the bias
/// and applying the activation.
#[allow(clippy::too_many_arguments)]
pub(super) fn scatter_output(
    geo: &ConvGeometry,
    part: &Part,
    prod: &[f32],
    layout: Layout,
    g: usize,
    bias: Option<&[f32]>,
    act: Act,
    out: &mut [f32],
) {
    let (ow_full, n_full) = (geo.out_w(), geo.positions());
    // One copy of the loops per activation, so the inner loop has no branch on it.
    let mut rows = |f: &RowWriter<'_>| {
        for j in 0..g {
            for o in 0..geo.out_ch {
                let b = bias.map_or(0.0, |b| b[o]);
                let plane = &mut out[j * geo.out_len() + o * n_full..][..n_full];
                for oy in 0..part.oh {
                    let row = &prod[layout.at(o, j, oy)..][..part.ow];
                    let at = (oy * part.step + part.y0) * ow_full + part.x0;
                    f(&mut plane[at..], part.step, row, b);
                }
            }
        }
    };
    match act {
        Act::Identity => rows(&|d, s, r, b| write_row(d, s, r, |v| v + b)),
        Act::LeakyRelu(k) => {
            rows(&|d, s, r, b| write_row(d, s, r, |v| Act::LeakyRelu(k).apply(v + b)))
        }
        Act::Tanh => rows(&|d, s, r, b| write_row(d, s, r, |v| (v + b).tanh())),
    }
}

/// Writes one row of a part's output: `(destination, step, product row, bias)`.
type RowWriter<'a> = dyn Fn(&mut [f32], usize, &[f32], f32) + 'a;

/// `dst[i * step] = f(row[i])`; contiguous when `step` is 1.
#[inline(always)]
fn write_row(dst: &mut [f32], step: usize, row: &[f32], f: impl Fn(f32) -> f32) {
    if step == 1 {
        dst[..row.len()]
            .iter_mut()
            .zip(row)
            .for_each(|(d, &v)| *d = f(v));
    } else {
        let dst = dst.iter_mut().step_by(step);
        dst.zip(row).for_each(|(d, &v)| *d = f(v));
    }
}

/// The adjoint of [`scatter_output`] (without the activation): copies a part's positions of
/// the output gradient `dprod` (`[out_ch, g * N]`, full resolution) into `dst` (`layout`).
pub(super) fn gather_output_grad(
    geo: &ConvGeometry,
    part: &Part,
    dprod: &[f32],
    g: usize,
    layout: Layout,
    dst: &mut [f32],
) {
    let (ow_full, n_full) = (geo.out_w(), geo.positions());
    for o in 0..geo.out_ch {
        for j in 0..g {
            let src = &dprod[o * g * n_full + j * n_full..][..n_full];
            for oy in 0..part.oh {
                let at = (oy * part.step + part.y0) * ow_full + part.x0;
                let s = src[at..].iter().step_by(part.step);
                let row = &mut dst[layout.at(o, j, oy)..][..part.ow];
                row.iter_mut().zip(s).for_each(|(d, &v)| *d = v);
            }
        }
    }
}

/// Gradient of the pre-activation output of images `i..i + g` into `dprod` (`[out_ch, g * N]`),
/// adding its sums to the bias gradient `db`.
pub(super) fn pre_activation_grad(
    geo: &ConvGeometry,
    inputs: &BackwardInputs<'_>,
    i: usize,
    g: usize,
    dprod: &mut [f32],
    db: &mut [f32],
) {
    let (act, n_full) = (inputs.act, geo.positions());
    for j in 0..g {
        for o in 0..geo.out_ch {
            let at = (i + j) * geo.out_len() + o * n_full;
            let dst = &mut dprod[o * g * n_full + j * n_full..][..n_full];
            let dy = &inputs.dy[at..at + n_full];
            let y = &inputs.y[at.min(inputs.y.len())..];
            match act {
                Act::Identity => dst.copy_from_slice(dy),
                Act::LeakyRelu(k) => grad_row(dst, dy, y, |yv, dv| Act::LeakyRelu(k).grad(yv, dv)),
                Act::Tanh => grad_row(dst, dy, y, |yv, dv| Act::Tanh.grad(yv, dv)),
            }
            db[o] += lane_sum(dst);
        }
    }
}

/// `dst[i] = f(y[i], dy[i])`.
#[inline(always)]
fn grad_row(dst: &mut [f32], dy: &[f32], y: &[f32], f: impl Fn(f32, f32) -> f32) {
    let y = &y[..dst.len()];
    dst.iter_mut()
        .zip(dy)
        .zip(y)
        .for_each(|((d, &dv), &yv)| *d = f(yv, dv));
}

/// The sum of `v` in eight interleaved partial sums (a fixed order the compiler can
/// vectorise).
fn lane_sum(v: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = v.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        acc.iter_mut().zip(c).for_each(|(a, &x)| *a += x);
    }
    acc.iter().sum::<f32>() + tail
}
