//! How a convolution is computed: the [`Plan`] that turns every geometry the networks use
//! into stride-1 convolutions ([`Part`]s) with their own weights, and folds their weight
//! gradients back.

use super::geometry::{ConvGeometry, padded_dims};

/// One convolution over the padded input plane that produces part of the output: a `k x k`
/// window at `stride`, for `oh x ow` positions whose windows start at padded coordinates
/// `(y0 + oy * stride, x0 + ox * stride)`; position `(oy, ox)` is output pixel
/// `(oy * step + y0, ox * step + x0)`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Part {
    pub(super) k: usize,
    pub(super) stride: usize,
    pub(super) y0: usize,
    pub(super) x0: usize,
    pub(super) oh: usize,
    pub(super) ow: usize,
    pub(super) step: usize,
}

impl Part {
    pub(super) fn positions(&self) -> usize {
        self.oh * self.ow
    }
}

/// How a convolution is computed: as one part (the convolution itself), or, for "nearest 2x
/// upsample + 3x3 convolution with padding 1", as four 2x2 convolutions of the input at its own
/// resolution, one per output phase `(oy % 2, ox % 2)`, whose weights are sums of the 3x3
/// taps that read the same input pixel. The phase form does 4/9 of the multiplications; its
/// sums are ordered differently, so results agree with the direct form to rounding.
///
/// A convolution at stride `s` whose kernel side and padded input sides are multiples of `s`
/// (the discriminator's 4x4 stride-2 layers) is computed as a stride-1 convolution with a
/// `k/s x k/s` kernel over the `s * s` polyphase components of the padded input (space to
/// depth): component `(a, b)` of channel `c` holds padded pixels `(s * y + a, s * x + b)`.
/// It does the same multiplications; only their order of summation differs.
pub(super) struct Plan {
    /// Geometry of the padded input plane the parts read.
    pub(super) padded: ConvGeometry,
    /// Space-to-depth factor `s` (1: none): the parts read `in_ch * s * s` planes of
    /// `ph / s x pw / s`.
    pub(super) fold: usize,
    pub(super) parts: Vec<Part>,
    /// Weights of each part, `[out_ch, in_ch * s * s * k * k]`.
    pub(super) weights: Vec<Vec<f32>>,
}

/// Row (or column) of the 2x2 phase kernel that 3x3 tap `t` falls on, in phase `phase`: the
/// upsampled row `2i + phase - 1 + t` is input row `i - 1 + phase + tap`.
fn phase_tap(phase: usize, t: usize) -> usize {
    (phase + t).div_ceil(2) - phase
}

impl Plan {
    pub(super) fn new(geo: &ConvGeometry, w: &[f32]) -> Self {
        let (ph, pw) = padded_dims(geo);
        let s = geo.stride;
        let fits = |v: usize| v.is_multiple_of(s);
        if geo.up == 1 && s > 1 && fits(geo.k) && fits(ph) && fits(pw) {
            let k = geo.k / s;
            let part = Part {
                k,
                stride: 1,
                y0: 0,
                x0: 0,
                oh: geo.out_h(),
                ow: geo.out_w(),
                step: 1,
            };
            let table = Self::fold_table(geo);
            let mut folded = vec![0f32; w.len()];
            for (dst, src) in folded
                .chunks_exact_mut(table.len())
                .zip(w.chunks_exact(table.len()))
            {
                table.iter().zip(src).for_each(|(&t, &v)| dst[t] = v);
            }
            return Self {
                padded: *geo,
                fold: s,
                parts: vec![part],
                weights: vec![folded],
            };
        }
        if !(geo.up == 2 && geo.k == 3 && geo.pad == 1 && geo.stride == 1) {
            let part = Part {
                k: geo.k,
                stride: geo.stride,
                y0: 0,
                x0: 0,
                oh: geo.out_h(),
                ow: geo.out_w(),
                step: 1,
            };
            return Self {
                padded: *geo,
                fold: 1,
                parts: vec![part],
                weights: vec![w.to_vec()],
            };
        }
        let padded = ConvGeometry { up: 1, ..*geo };
        let (mut parts, mut weights) = (Vec::new(), Vec::new());
        for (a, b) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
            parts.push(Part {
                k: 2,
                stride: 1,
                y0: a,
                x0: b,
                oh: geo.in_h,
                ow: geo.in_w,
                step: 2,
            });
            let mut pw = vec![0f32; geo.out_ch * geo.in_ch * 4];
            for (oc, taps) in w.chunks_exact(9).enumerate() {
                for (t, &v) in taps.iter().enumerate() {
                    let (ty, tx) = (phase_tap(a, t / 3), phase_tap(b, t % 3));
                    pw[oc * 4 + ty * 2 + tx] += v;
                }
            }
            weights.push(pw);
        }
        Self {
            padded,
            fold: 1,
            parts,
            weights,
        }
    }

    /// Where each tap `ky * k + kx` of a `k x k` kernel goes in the space-to-depth weights of
    /// its `(out, in)` channel pair, `[s, s, k / s, k / s]`: tap `(s * ty + a, s * tx + b)` is
    /// tap `(ty, tx)` of component `(a, b)`. The pair's block keeps its place (`k * k`
    /// values either way).
    fn fold_table(geo: &ConvGeometry) -> Vec<usize> {
        let (s, k) = (geo.stride, geo.k);
        let kf = k / s;
        (0..k * k)
            .map(|t| {
                let (ky, kx) = (t / k, t % k);
                ((ky % s * s + kx % s) * kf + ky / s) * kf + kx / s
            })
            .collect()
    }

    /// Whether the plan is the convolution itself (its output needs no reordering).
    pub(super) fn is_direct(&self) -> bool {
        self.parts.len() == 1 && self.fold == 1
    }

    /// Input planes the parts read: `in_ch * s * s`.
    pub(super) fn channels(&self) -> usize {
        self.padded.in_ch * self.fold * self.fold
    }

    /// Weights per output channel of a part (the rows of its unfolded input).
    pub(super) fn rows(&self, part: &Part) -> usize {
        self.channels() * part.k * part.k
    }

    /// Images a form handles together (padded side by side, or unfolded): enough columns for
    /// an efficient product, few enough to stay in cache.
    pub(super) fn group(&self) -> usize {
        (2048 / self.parts[0].positions()).clamp(1, 64)
    }

    /// The weight gradient of the convolution from those of the parts.
    pub(super) fn fold_weight_grads(&self, geo: &ConvGeometry, parts: Vec<Vec<f32>>) -> Vec<f32> {
        if self.is_direct() {
            return parts.into_iter().next().expect("one part");
        }
        let mut dw = vec![0f32; geo.weight_len()];
        if self.fold > 1 {
            let table = Self::fold_table(geo);
            for (dst, src) in dw
                .chunks_exact_mut(table.len())
                .zip(parts[0].chunks_exact(table.len()))
            {
                dst.iter_mut().zip(&table).for_each(|(d, &t)| *d = src[t]);
            }
            return dw;
        }
        for (part, dp) in self.parts.iter().zip(&parts) {
            for (oc, taps) in dw.chunks_exact_mut(9).enumerate() {
                for (t, d) in taps.iter_mut().enumerate() {
                    let (ty, tx) = (phase_tap(part.y0, t / 3), phase_tap(part.x0, t % 3));
                    *d += dp[oc * 4 + ty * 2 + tx];
                }
            }
        }
        dw
    }

    /// Whether every part slides its window at stride 1, so the in-place form applies.
    pub(super) fn in_place(&self) -> bool {
        self.parts.iter().all(|p| p.stride == 1)
    }
}
