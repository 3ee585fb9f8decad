//! The unfolded form, the fallback for geometries the in-place form does not take (a part
//! with a stride above 1: an odd kernel at stride 2, or sizes that are not multiples of the
//! stride): each group of images is unfolded (im2col) into `[K, N]` column buffers, one
//! product per part, and the input gradient is folded back (col2im).

use super::act::Act;
use super::batch::{BackwardInputs, Partial, Range, zero_partial};
use super::epilogue::{Layout, gather_output_grad, pre_activation_grad, scatter_output};
use super::gemm::matmul;
use super::geometry::{ConvGeometry, pad_image, padded_dims, unpad_add};
use super::plan::{Part, Plan};
use super::scratch::Scratch;

/// Unfolds images `[g, in_ch, in_h, in_w]` for every part: `cols[p]` becomes `[K_p, g * N_p]`
/// (image j in columns `j*N_p .. (j+1)*N_p`); `buf` holds one padded image and must have
/// zero borders.
pub(super) fn im2col(plan: &Plan, x: &[f32], g: usize, cols: &mut [Scratch], buf: &mut [f32]) {
    let geo = &plan.padded;
    let (ph, pw) = padded_dims(geo);
    for j in 0..g {
        pad_image(
            geo,
            &x[j * geo.in_len()..(j + 1) * geo.in_len()],
            buf,
            ph * pw,
        );
        for (part, col) in plan.parts.iter().zip(cols.iter_mut()) {
            let (k, s, n) = (part.k, part.stride, part.positions());
            let width = g * n;
            for c in 0..geo.in_ch {
                let plane = &buf[c * ph * pw..][..ph * pw];
                for ky in 0..k {
                    for kx in 0..k {
                        let r = (c * k + ky) * k + kx;
                        let dst = &mut col[r * width + j * n..][..n];
                        for (oy, out_row) in dst.chunks_exact_mut(part.ow).enumerate() {
                            let src = &plane[(part.y0 + oy * s + ky) * pw + part.x0 + kx..];
                            if s == 1 {
                                out_row.copy_from_slice(&src[..part.ow]);
                            } else {
                                for (d, &v) in out_row.iter_mut().zip(src.iter().step_by(s)) {
                                    *d = v;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Folds every part's `cols[p]: [K_p, g * N_p]` back onto images `dx: [g, in_ch, in_h,
/// in_w]`, adding (the adjoint of [`im2col`]); `buf` is scratch for one padded image.
pub(super) fn col2im(plan: &Plan, cols: &[Scratch], g: usize, dx: &mut [f32], buf: &mut [f32]) {
    let geo = &plan.padded;
    let (ph, pw) = padded_dims(geo);
    for j in 0..g {
        buf.fill(0.0);
        for (part, col) in plan.parts.iter().zip(cols) {
            let (k, s, n) = (part.k, part.stride, part.positions());
            let width = g * n;
            for c in 0..geo.in_ch {
                let plane = &mut buf[c * ph * pw..][..ph * pw];
                for ky in 0..k {
                    for kx in 0..k {
                        let r = (c * k + ky) * k + kx;
                        let src = &col[r * width + j * n..][..n];
                        for (oy, in_row) in src.chunks_exact(part.ow).enumerate() {
                            let dst = &mut plane[(part.y0 + oy * s + ky) * pw + part.x0 + kx..];
                            if s == 1 {
                                dst[..part.ow]
                                    .iter_mut()
                                    .zip(in_row)
                                    .for_each(|(d, v)| *d += v);
                            } else {
                                for (d, &v) in dst.iter_mut().step_by(s).zip(in_row) {
                                    *d += v;
                                }
                            }
                        }
                    }
                }
            }
        }
        unpad_add(
            geo,
            buf,
            &mut dx[j * geo.in_len()..(j + 1) * geo.in_len()],
            ph * pw,
        );
    }
}

/// Scratch for each part's unfolded group, `[K_p, group * N_p]` (contents unspecified).
fn part_buffers(plan: &Plan) -> Vec<Scratch> {
    let group = plan.group();
    plan.parts
        .iter()
        .map(|p| Scratch::new(plan.rows(p) * group * p.positions()))
        .collect()
}

/// Scratch for one part's `[out_ch, group * N_p]` product (the largest part's size; contents
/// unspecified).
fn product_buffer(plan: &Plan, out_ch: usize) -> Scratch {
    let n = plan.parts.iter().map(Part::positions).max().unwrap_or(0);
    Scratch::new(out_ch * plan.group() * n)
}

/// [`forward`](super::conv::forward) of the images `x` into `out` by unfolding them ([`im2col`]).
pub(super) fn forward_unfolded(
    plan: &Plan,
    geo: &ConvGeometry,
    x: &[f32],
    bias: Option<&[f32]>,
    act: Act,
    out: &mut [f32],
) {
    let mut cols = part_buffers(plan);
    let mut prod = product_buffer(plan, geo.out_ch);
    let (ph, pw) = padded_dims(&plan.padded);
    let mut buf = Scratch::zeroed(geo.in_ch * ph * pw);
    let (images, group) = (out.len() / geo.out_len(), plan.group());
    let mut i = 0;
    while i < images {
        let g = group.min(images - i);
        let xs = &x[i * geo.in_len()..(i + g) * geo.in_len()];
        im2col(plan, xs, g, &mut cols, &mut buf);
        for ((part, pw), col) in plan.parts.iter().zip(&plan.weights).zip(&cols) {
            let (n, kk) = (part.positions(), plan.rows(part));
            matmul(
                geo.out_ch,
                g * n,
                kk,
                pw,
                false,
                col,
                false,
                &mut prod,
                false,
            );
            let layout = Layout::unfolded(part, g);
            let dst = &mut out[i * geo.out_len()..];
            scatter_output(geo, part, &prod, layout, g, bias, act, dst);
        }
        i += g;
    }
}

/// [`backward`](super::conv::backward) of one range of images by unfolding them ([`im2col`],
/// [`col2im`]).
pub(super) fn backward_unfolded(
    plan: &Plan,
    geo: &ConvGeometry,
    inputs: &BackwardInputs<'_>,
    mut range: Range<'_>,
    want_dw: bool,
) -> Partial {
    let (mut dws, mut db) = zero_partial(plan, geo);
    let group = plan.group();
    let mut cols = part_buffers(plan);
    let mut dprod = Scratch::new(geo.out_ch * group * geo.positions());
    let mut dpart = product_buffer(plan, geo.out_ch);
    let (ph, pw) = padded_dims(&plan.padded);
    let mut buf = Scratch::zeroed(geo.in_ch * ph * pw);
    let mut dbuf = Scratch::new(geo.in_ch * ph * pw);
    let mut i = range.first;
    while i < range.end {
        let g = group.min(range.end - i);
        pre_activation_grad(geo, inputs, i, g, &mut dprod, &mut db);
        if want_dw {
            let xs = &inputs.x[i * geo.in_len()..(i + g) * geo.in_len()];
            im2col(plan, xs, g, &mut cols, &mut buf);
        }
        for (p, part) in plan.parts.iter().enumerate() {
            let (n, kk) = (part.positions(), plan.rows(part));
            // This part's output gradient, [out_ch, g * N_p].
            let dp: &[f32] = if plan.is_direct() {
                &dprod
            } else {
                gather_output_grad(geo, part, &dprod, g, Layout::unfolded(part, g), &mut dpart);
                &dpart
            };
            if want_dw {
                // dW_p += dY_p [out_ch, gN_p] * col_p^T [gN_p, K_p]
                matmul(
                    geo.out_ch,
                    kk,
                    g * n,
                    dp,
                    false,
                    &cols[p],
                    true,
                    &mut dws[p],
                    true,
                );
            }
            if range.dx.is_some() {
                // dcol_p [K_p, gN_p] = W_p^T [K_p, out_ch] * dY_p [out_ch, gN_p]
                let wp = &plan.weights[p];
                matmul(
                    kk,
                    g * n,
                    geo.out_ch,
                    wp,
                    true,
                    dp,
                    false,
                    &mut cols[p],
                    false,
                );
            }
        }
        if let Some(dx) = range.dx.as_deref_mut() {
            let off = (i - range.first) * geo.in_len();
            col2im(
                plan,
                &cols,
                g,
                &mut dx[off..off + g * geo.in_len()],
                &mut dbuf,
            );
        }
        i += g;
    }
    (dws, db)
}
