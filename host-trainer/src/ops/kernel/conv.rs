//! The convolution kernels' entry points: [`forward`] and [`backward`] split the batch among
//! the rayon workers and run each range by the in-place form, or by the unfolded form where
//! the plan has a part with a stride above 1.

use rayon::prelude::*;

pub use super::act::Act;
pub use super::batch::BackwardInputs;
use super::batch::{Partial, Range, ranges, split_by_ranges, zero_partial};
pub use super::geometry::ConvGeometry;
use super::in_place::{backward_in_place, forward_in_place};
use super::plan::Plan;
use super::unfolded::{backward_unfolded, forward_unfolded};

/// Forward: `y = act(conv(up(x), w) + bias)`, `x: [batch, in_ch, in_h, in_w]`, `w: [out_ch,
/// in_ch, k, k]`, `bias: [out_ch]` (or none) -> `[batch, out_ch, out_h, out_w]`.
pub fn forward(
    geo: &ConvGeometry,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    act: Act,
) -> Vec<f32> {
    geo.check();
    assert_eq!(x.len(), geo.batch * geo.in_len(), "input size");
    assert_eq!(w.len(), geo.weight_len(), "weight size");
    let plan = Plan::new(geo, w);
    let mut y = vec![0f32; geo.batch * geo.out_len()];
    let ranges = ranges(geo.batch);
    let chunks = split_by_ranges(&mut y, &ranges, geo.out_len());
    let firsts = ranges.iter().map(|&(a, _)| a).collect::<Vec<_>>();
    firsts.into_par_iter().zip(chunks).for_each(|(first, out)| {
        let xs = &x[first * geo.in_len()..][..out.len() / geo.out_len() * geo.in_len()];
        if plan.in_place() {
            forward_in_place(&plan, geo, xs, bias, act, out);
        } else {
            forward_unfolded(&plan, geo, xs, bias, act, out);
        }
    });
    y
}

/// Gradients computed by [`backward`].
#[derive(Debug, Clone, PartialEq)]
pub struct Grads {
    /// Input gradient, when asked for.
    pub dx: Option<Vec<f32>>,
    /// Weight gradient, when asked for.
    pub dw: Option<Vec<f32>>,
    /// Bias gradient, with the weight gradient.
    pub db: Option<Vec<f32>>,
}

/// Gradients of [`forward`]: `dx` only when `want_dx`, `dw` and `db` only when `want_dw` (only
/// those read the padded or unfolded input).
pub fn backward(
    geo: &ConvGeometry,
    inputs: BackwardInputs<'_>,
    want_dx: bool,
    want_dw: bool,
) -> Grads {
    let BackwardInputs { x, w, y, act, dy } = inputs;
    geo.check();
    assert_eq!(x.len(), geo.batch * geo.in_len(), "input size");
    assert_eq!(w.len(), geo.weight_len(), "weight size");
    assert_eq!(dy.len(), geo.batch * geo.out_len(), "output gradient size");
    if act != Act::Identity {
        assert_eq!(y.len(), dy.len(), "output size");
    }
    let plan = Plan::new(geo, w);
    let mut dx = want_dx.then(|| vec![0f32; geo.batch * geo.in_len()]);
    let ranges = ranges(geo.batch);
    let dx_chunks: Vec<Option<&mut [f32]>> = match dx.as_mut() {
        Some(dx) => split_by_ranges(dx, &ranges, geo.in_len())
            .into_iter()
            .map(Some)
            .collect(),
        None => ranges.iter().map(|_| None).collect(),
    };
    let partials: Vec<Partial> = ranges
        .par_iter()
        .zip(dx_chunks.into_par_iter())
        .map(|(&(first, end), dx)| {
            let range = Range { first, end, dx };
            if plan.in_place() {
                backward_in_place(&plan, geo, &inputs, range, want_dw)
            } else {
                backward_unfolded(&plan, geo, &inputs, range, want_dw)
            }
        })
        .collect();
    if !want_dw {
        return Grads {
            dx,
            dw: None,
            db: None,
        };
    }
    let (mut dws, mut db) = zero_partial(&plan, geo);
    for (pws, pb) in partials {
        for (acc, pw) in dws.iter_mut().zip(&pws) {
            acc.iter_mut().zip(pw).for_each(|(a, b)| *a += b);
        }
        db.iter_mut().zip(&pb).for_each(|(a, b)| *a += b);
    }
    Grads {
        dx,
        dw: Some(plan.fold_weight_grads(geo, dws)),
        db: Some(db),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct definition of the convolution, for checking the kernels.
    fn naive(geo: &ConvGeometry, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
        let (oh, ow) = (geo.out_h(), geo.out_w());
        let (vh, vw) = (geo.in_h * geo.up, geo.in_w * geo.up);
        let mut y = vec![0f32; geo.batch * geo.out_len()];
        for b in 0..geo.batch {
            for o in 0..geo.out_ch {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut s = bias.map_or(0.0, |b| b[o]);
                        for c in 0..geo.in_ch {
                            for ky in 0..geo.k {
                                for kx in 0..geo.k {
                                    let yy = (oy * geo.stride + ky) as isize - geo.pad as isize;
                                    let xx = (ox * geo.stride + kx) as isize - geo.pad as isize;
                                    if yy < 0 || xx < 0 || yy >= vh as isize || xx >= vw as isize {
                                        continue;
                                    }
                                    let (iy, ix) = (yy as usize / geo.up, xx as usize / geo.up);
                                    s += w[((o * geo.in_ch + c) * geo.k + ky) * geo.k + kx]
                                        * x[((b * geo.in_ch + c) * geo.in_h + iy) * geo.in_w + ix];
                                }
                            }
                        }
                        y[((b * geo.out_ch + o) * oh + oy) * ow + ox] = s;
                    }
                }
            }
        }
        y
    }

    fn values(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(12345);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    fn geometries() -> Vec<ConvGeometry> {
        let g = |batch, in_ch, in_h, out_ch, k, stride, pad, up| ConvGeometry {
            batch,
            in_ch,
            in_h,
            in_w: in_h,
            out_ch,
            k,
            stride,
            pad,
            up,
        };
        vec![
            g(3, 2, 4, 3, 3, 1, 1, 2),  // generator block, small
            g(5, 3, 5, 2, 3, 1, 1, 1),  // plain 3x3
            g(4, 1, 8, 3, 4, 2, 1, 1),  // discriminator downsampler
            g(2, 3, 6, 4, 4, 2, 1, 1),  // second downsampler
            g(3, 2, 7, 3, 3, 2, 1, 1),  // stride 2, odd kernel: the unfold form
            g(2, 2, 5, 3, 3, 1, 0, 1),  // no padding
            g(70, 2, 7, 2, 3, 1, 1, 2), // more images than one group
            g(70, 1, 8, 2, 4, 2, 1, 1), // the same, space to depth
        ]
    }

    #[test]
    fn forward_matches_the_definition() {
        for (i, geo) in geometries().into_iter().enumerate() {
            let x = values(geo.batch * geo.in_len(), i as u32);
            let w = values(geo.weight_len(), 100 + i as u32);
            let b = values(geo.out_ch, 200 + i as u32);
            let got = forward(&geo, &x, &w, Some(&b), Act::Identity);
            let want = naive(&geo, &x, &w, Some(&b));
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-4, "{geo:?}: {g} vs {w}");
            }
        }
    }

    /// Gradients against the adjoint identity <conv(x), dy> = <x, dx> = <w, dw>, checked
    /// elementwise by central differences of the (linear) forward map.
    #[test]
    fn gradients_match_finite_differences() {
        for (i, geo) in geometries().into_iter().enumerate() {
            let x = values(geo.batch * geo.in_len(), i as u32);
            let w = values(geo.weight_len(), 100 + i as u32);
            let dy = values(geo.batch * geo.out_len(), 300 + i as u32);
            let inputs = BackwardInputs {
                x: &x,
                w: &w,
                y: &[],
                act: Act::Identity,
                dy: &dy,
            };
            let grads = backward(&geo, inputs, true, true);
            let (dx, dw, db) = (grads.dx.unwrap(), grads.dw.unwrap(), grads.db.unwrap());
            let loss = |x: &[f32], w: &[f32], b: &[f32]| -> f64 {
                forward(&geo, x, w, Some(b), Act::Identity)
                    .iter()
                    .zip(&dy)
                    .map(|(a, b)| *a as f64 * *b as f64)
                    .sum()
            };
            let zero_b = vec![0f32; geo.out_ch];
            // The loss is linear in each argument, so a unit step gives the exact derivative.
            for idx in [0, x.len() / 2, x.len() - 1] {
                let mut xp = x.clone();
                xp[idx] += 1.0;
                let d = loss(&xp, &w, &zero_b) - loss(&x, &w, &zero_b);
                assert!((d - dx[idx] as f64).abs() < 1e-3, "{geo:?} dx[{idx}]");
            }
            for idx in 0..w.len() {
                let mut wp = w.clone();
                wp[idx] += 1.0;
                let d = loss(&x, &wp, &zero_b) - loss(&x, &w, &zero_b);
                assert!((d - dw[idx] as f64).abs() < 1e-3, "{geo:?} dw[{idx}]");
            }
            for o in 0..geo.out_ch {
                let want: f32 = dy[..]
                    .chunks(geo.out_len())
                    .map(|img| {
                        img[o * geo.out_h() * geo.out_w()..][..geo.out_h() * geo.out_w()]
                            .iter()
                            .sum::<f32>()
                    })
                    .sum();
                assert!((want - db[o]).abs() < 1e-3, "{geo:?} db[{o}]");
            }
        }
    }
}
