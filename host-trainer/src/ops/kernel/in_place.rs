//! The in-place form: the forward and backward of a plan whose parts are all stride 1, with
//! one `gemm` product per window tap reading the padded planes at that tap's offset.

use super::act::Act;
use super::batch::{BackwardInputs, Partial, Range, zero_partial};
use super::epilogue::{Layout, gather_output_grad, pre_activation_grad, scatter_output};
use super::gemm::{View, gemm_views};
use super::geometry::{ConvGeometry, pad_image, padded_dims, unpad_add};
use super::plan::{Part, Plan};
use super::scratch::Scratch;

/// The in-place form of a plan whose parts all slide their windows at stride 1. The padded
/// planes of a group of images sit channel by channel: channel `c` of image `j` is the
/// `ph x pw` plane at `c * chan + j * plane` (`chan = group * plane`). Output position
/// `(oy, ox)` of image `j` is column `q = j * plane + oy * pw + ox`, and window tap `(ty, tx)`
/// of a part reads `buf[c * chan + q + shift]`, `shift = (y0 + ty) * pw + x0 + tx`: the unfolded
/// matrix of one tap is the buffer itself at offset `shift`, rows `chan` apart, so nothing is
/// unfolded or folded back. The columns between output positions (the padding columns and
/// rows) are computed and thrown away in the forward and carry zero gradient in the backward;
/// they cost `plane / (oh * ow)` times the multiplications of the unfold form (1.15x to 1.65x
/// for the generator's layers), far less than unfolding each value 4 or 9 times did.
#[derive(Debug, Clone, Copy)]
struct InPlace {
    pw: usize,
    plane: usize,
    chan: usize,
}

impl InPlace {
    fn new(plan: &Plan) -> Self {
        let (ph, pw) = padded_dims(&plan.padded);
        let (ph, pw) = (ph / plan.fold, pw / plan.fold);
        Self {
            pw,
            plane: ph * pw,
            chan: plan.group() * ph * pw,
        }
    }

    fn layout(&self) -> Layout {
        Layout {
            chan: self.chan,
            image: self.plane,
            row: self.pw,
        }
    }

    /// Columns a part computes for `g` images: up to the last output position.
    fn columns(&self, part: &Part, g: usize) -> usize {
        (g - 1) * self.plane + (part.oh - 1) * self.pw + part.ow
    }

    /// Offset of window tap `t` (row-major in the `k x k` window) of a part.
    fn shift(&self, part: &Part, t: usize) -> usize {
        (part.y0 + t / part.k) * self.pw + part.x0 + t % part.k
    }

    /// Writes `g` images `[in_ch, in_h, in_w]`, padded, into `buf` (zero borders).
    fn pad(&self, plan: &Plan, x: &[f32], g: usize, buf: &mut [f32]) {
        let geo = &plan.padded;
        for j in 0..g {
            let img = &x[j * geo.in_len()..(j + 1) * geo.in_len()];
            let dst = &mut buf[j * self.plane..];
            if plan.fold == 1 {
                pad_image(geo, img, dst, self.chan);
            } else {
                self.each_folded_row(plan, |i, at, n| {
                    let src = img[i..].iter().step_by(plan.fold);
                    dst[at..at + n]
                        .iter_mut()
                        .zip(src)
                        .for_each(|(d, &v)| *d = v);
                });
            }
        }
    }

    /// The adjoint of [`pad`](Self::pad) for one image: adds its padded gradient at
    /// `buf` (borders ignored) onto `img`.
    fn unpad_add(&self, plan: &Plan, buf: &[f32], img: &mut [f32]) {
        if plan.fold == 1 {
            unpad_add(&plan.padded, buf, img, self.chan);
        } else {
            self.each_folded_row(plan, |i, at, n| {
                let dst = img[i..].iter_mut().step_by(plan.fold);
                dst.zip(&buf[at..at + n]).for_each(|(d, &v)| *d += v);
            });
        }
    }

    /// Calls `f(i, at, n)` for each run of `n` input values `i, i + s, ..` of one image `[in_ch,
    /// in_h, in_w]` (one input row, one component) that lands contiguously at `at, at + 1, ..`
    /// in the space-to-depth planes of that image.
    fn each_folded_row(&self, plan: &Plan, mut f: impl FnMut(usize, usize, usize)) {
        let (geo, s) = (&plan.padded, plan.fold);
        for c in 0..geo.in_ch {
            for y in 0..geo.in_h {
                let (py, row) = (y + geo.pad, (c * geo.in_h + y) * geo.in_w);
                let first = ((c * s + py % s) * s) * self.chan + py / s * self.pw;
                // Column px = x + pad lands in component px % s at px / s: step through the
                // row once per component.
                for b in 0..s {
                    let x0 = (b + s - geo.pad % s) % s;
                    if x0 < geo.in_w {
                        let at = first + b * self.chan + (x0 + geo.pad) / s;
                        f(row + x0, at, (geo.in_w - x0).div_ceil(s));
                    }
                }
            }
        }
    }
}

/// [`forward`](super::conv::forward) of the images `x` into `out` by the in-place form
/// ([`InPlace`]).
pub(super) fn forward_in_place(
    plan: &Plan,
    geo: &ConvGeometry,
    x: &[f32],
    bias: Option<&[f32]>,
    act: Act,
    out: &mut [f32],
) {
    let ip = InPlace::new(plan);
    let mut buf = Scratch::zeroed(plan.channels() * ip.chan);
    let mut prod = Scratch::new(geo.out_ch * ip.chan);
    let (images, group) = (out.len() / geo.out_len(), plan.group());
    let mut i = 0;
    while i < images {
        let g = group.min(images - i);
        ip.pad(plan, &x[i * geo.in_len()..], g, &mut buf);
        for (part, pw) in plan.parts.iter().zip(&plan.weights) {
            let (kk, n) = (part.k * part.k, ip.columns(part, g));
            let rows = plan.rows(part);
            for t in 0..kk {
                // prod[o, q] (+)= sum_c w[o, c, t] * buf[c, q + shift]
                let wv = View {
                    offset: t,
                    rs: rows,
                    cs: kk,
                };
                let xv = View {
                    offset: ip.shift(part, t),
                    rs: ip.chan,
                    cs: 1,
                };
                let pv = View {
                    offset: 0,
                    rs: ip.chan,
                    cs: 1,
                };
                gemm_views(
                    (geo.out_ch, n, plan.channels()),
                    (pw, wv),
                    (&buf, xv),
                    (&mut prod, pv),
                    t > 0,
                );
            }
            let dst = &mut out[i * geo.out_len()..];
            scatter_output(geo, part, &prod, ip.layout(), g, bias, act, dst);
        }
        i += g;
    }
}

/// [`backward`](super::conv::backward) of one range of images by the in-place form ([`InPlace`]).
pub(super) fn backward_in_place(
    plan: &Plan,
    geo: &ConvGeometry,
    inputs: &BackwardInputs<'_>,
    mut range: Range<'_>,
    want_dw: bool,
) -> Partial {
    let (mut dws, mut db) = zero_partial(plan, geo);
    let ip = InPlace::new(plan);
    let group = plan.group();
    let mut dprod = Scratch::new(geo.out_ch * group * geo.positions());
    // Zero between output positions, and every part writes the same positions.
    let mut dpart = Scratch::zeroed(geo.out_ch * ip.chan);
    let mut buf = Scratch::zeroed(plan.channels() * ip.chan);
    let mut dbuf = Scratch::new(plan.channels() * ip.chan);
    let dv = View {
        offset: 0,
        rs: ip.chan,
        cs: 1,
    };
    let mut i = range.first;
    while i < range.end {
        let g = group.min(range.end - i);
        pre_activation_grad(geo, inputs, i, g, &mut dprod, &mut db);
        if want_dw {
            ip.pad(plan, &inputs.x[i * geo.in_len()..], g, &mut buf);
        }
        if range.dx.is_some() {
            dbuf.fill(0.0);
        }
        for (p, part) in plan.parts.iter().enumerate() {
            let (kk, n, rows) = (part.k * part.k, ip.columns(part, g), plan.rows(part));
            gather_output_grad(geo, part, &dprod, g, ip.layout(), &mut dpart);
            for t in 0..kk {
                let shift = ip.shift(part, t);
                // Weight taps w[o, c, t] and the tap's unfolded input, read in place.
                let wv = View {
                    offset: t,
                    rs: rows,
                    cs: kk,
                };
                let xv = View {
                    offset: shift,
                    rs: ip.chan,
                    cs: 1,
                };
                if want_dw {
                    // dw[o, c, t] += sum_q dy[o, q] * buf[c, q + shift]
                    let xt = View {
                        offset: shift,
                        rs: 1,
                        cs: ip.chan,
                    };
                    gemm_views(
                        (geo.out_ch, plan.channels(), n),
                        (&dpart, dv),
                        (&buf, xt),
                        (&mut dws[p], wv),
                        true,
                    );
                }
                if range.dx.is_some() {
                    // dbuf[c, q + shift] += sum_o w[o, c, t] * dy[o, q]
                    let wt = View {
                        offset: t,
                        rs: kk,
                        cs: rows,
                    };
                    gemm_views(
                        (plan.channels(), n, geo.out_ch),
                        (&plan.weights[p], wt),
                        (&dpart, dv),
                        (&mut dbuf, xv),
                        true,
                    );
                }
            }
        }
        if let Some(dx) = range.dx.as_deref_mut() {
            for j in 0..g {
                let img = &mut dx[(i - range.first + j) * geo.in_len()..][..geo.in_len()];
                ip.unpad_add(plan, &dbuf[j * ip.plane..], img);
            }
        }
        i += g;
    }
    (dws, db)
}
