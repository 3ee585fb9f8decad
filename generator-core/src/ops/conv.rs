//! 3x3 convolution (stride 1, padding 1) with an optionally fused nearest-neighbour
//! 2x upsample of its input.
//!
//! Activations are HWC and weights `[out][ky][kx][in]`. Taps outside the image read the
//! input zero point, which contributes exactly zero because the stored bias already
//! includes `-zero_point * sum(w)`. With the upsample, output pixel `(y, x)` of the
//! `2h x 2w` grid reads input pixel `(y / 2, x / 2)`.
//!
//! # Fast path: phase split
//!
//! With nearest 2x upsampling, output pixel `(2i + py, 2j + px)` reads only a 2x2
//! neighbourhood of the low-resolution input: rows `i - 1 + py ..= i + py` and the same
//! for columns. For each of the four phases `(py, px)` the 3x3 convolution therefore
//! equals a 2x2 convolution on the input with merged weights (sums of 1, 2 or 4 original
//! taps, in `i16`), which is the same integer sum with 4/9 of the multiplies, so the
//! result is bit-identical. Tap rows merge as `py = 0: {0}, {1, 2}` and
//! `py = 1: {0, 1}, {2}`, columns likewise.
//!
//! The input is read through a ring of sign-extended (`i16`) rows padded with the zero
//! point on every side, so borders need no special case: padded row `r` holds input row
//! `r - 1`. Every dot product is then a few contiguous `i16 x i16 -> i32` runs
//! (`pmaddwd` on x86-64 SSE2), four output channels per pass sharing the input loads.
//! Without upsampling the same loop runs once with the 3x3 kernel widened to `i16`.
//!
//! # Row bands
//!
//! [`conv3x3_rows`] computes only output rows `rows` from an input band that holds input
//! rows `in_first..` (every row the wanted outputs read must be in it). The streaming
//! generator uses it to produce the last layers a few rows at a time; [`conv3x3`] is the
//! whole-map case (all rows, the band is the whole input). Both paths below take the band.
//!
//! Output channels run in blocks sized so that one phase's merged weights and the row
//! ring fit a fixed 2 KiB stack scratch (the Cortex-M4 stack budget is tight). Layers
//! too wide for even one channel run the generic path: gather a `9 * in_ch` byte patch
//! per output pixel and take one dot product per output channel.

use super::{Channel, channels};
use crate::model::{MAX_CONV_IN_CH, MAX_CONV_OUT_CH};
use crate::ops::requant::Requant;
use crate::{Error, Layer, LayerShape, Result};

/// Most output channels in one fast-path block (their decoded parameters live in a
/// stack array of this length).
pub const FAST_MAX_OUT_CH: usize = 16;

/// `i16` values of fast-path scratch: one phase's merged weights
/// for a block of output channels (`block * k * k * in_ch`) plus `k` padded rows
/// (`k * (in_w + 2) * in_ch`). The default model: 8 of 16 channels at 7x7 (512 + 288),
/// all 8 at 14x14 (512 + 512), the final 8 -> 1 at 28x28 (72 + 720).
const SCRATCH: usize = 1024;

/// Tap rows (or columns) of the 3x3 kernel merged into tap `k'` of phase `p`:
/// `MERGED[p][k']` is the range of original taps.
const MERGED: [[(usize, usize); 2]; 2] = [[(0, 1), (1, 3)], [(0, 2), (2, 3)]];

const NO_CHANNEL: Channel = Channel {
    bias: 0,
    requant: Requant {
        multiplier: 0,
        shift: 1,
        zero_point: 0,
        min: 0,
    },
};

/// Runs a validated `Conv3x3` layer. `input.len()` must be `in_h * in_w * in_ch` and
/// `output.len()` the (upsampled) `out_h * out_w * out_ch`.
pub fn conv3x3(layer: &Layer<'_>, input: &[u8], output: &mut [u8]) -> Result<()> {
    if input.len() != layer.input_len() || output.len() != layer.output_len() {
        return Err(Error::ShapeMismatch);
    }
    let (out_h, _, _) = layer.shape().output_hwc();
    conv3x3_rows(layer, input, 0, output, 0..out_h as usize)
}

/// Output rows `rows` of a validated `Conv3x3` layer, from an input band.
///
/// `input` holds whole input rows `in_first..in_first + input.len() / (in_w * in_ch)`
/// and must contain every input row that the wanted output rows read (the rows of the
/// image among `rows.start / f - 1 ..= (rows.end - 1) / f + 1`, `f = 2` with upsampling,
/// else 1). `output` receives exactly the output rows `rows` (`rows.len() * out_w *
/// out_ch` bytes). The result is bit-identical to the same rows of [`conv3x3`].
/// [`Error::ShapeMismatch`] if any of this does not hold.
pub fn conv3x3_rows(
    layer: &Layer<'_>,
    input: &[u8],
    in_first: usize,
    output: &mut [u8],
    rows: core::ops::Range<usize>,
) -> Result<()> {
    let LayerShape::Conv3x3 {
        in_ch,
        in_h,
        in_w,
        upsample,
        ..
    } = layer.shape()
    else {
        return Err(Error::ShapeMismatch);
    };
    let (out_h, out_w, out_ch) = layer.shape().output_hwc();
    let in_row = in_w as usize * in_ch as usize;
    let out_row = (out_w * out_ch) as usize;
    let up = usize::from(upsample);
    let needed_in = if rows.is_empty() {
        0..0
    } else {
        (rows.start >> up).saturating_sub(1)..((((rows.end - 1) >> up) + 2).min(in_h as usize))
    };
    let in_rows = in_first..in_first + input.len() / in_row.max(1);
    let ok = rows.start <= rows.end
        && rows.end <= out_h as usize
        && input.len().is_multiple_of(in_row.max(1))
        && output.len() == rows.len() * out_row
        && (needed_in.is_empty()
            || (in_rows.start <= needed_in.start && needed_in.end <= in_rows.end));
    if !ok {
        return Err(Error::ShapeMismatch);
    }
    let band = Band {
        in_first,
        rows: rows.clone(),
    };
    // Monomorphise the common channel counts so the row copies and dot products have
    // compile-time lengths (fully unrolled, vectorised, no remainder loops); `0` means
    // "read the count at run time".
    let c = in_ch as usize;
    let fast = fits_fast_path(layer);
    match (in_ch, fast) {
        (8, true) => conv_fast_entry::<8>(layer, input, output, c, &band),
        (16, true) => conv_fast_entry::<16>(layer, input, output, c, &band),
        (_, true) => conv_fast_entry::<0>(layer, input, output, c, &band),
        (_, false) => conv_generic::<0>(layer, input, output, c, &band),
    }
    Ok(())
}

/// Whole-map [`conv3x3`] through the generic (patch) path, whatever the layer's size:
/// the reference for tests of the fast path, which the shipped model always takes.
pub fn conv3x3_generic(layer: &Layer<'_>, input: &[u8], output: &mut [u8]) -> Result<()> {
    let LayerShape::Conv3x3 { in_ch, .. } = layer.shape() else {
        return Err(Error::ShapeMismatch);
    };
    if input.len() != layer.input_len() || output.len() != layer.output_len() {
        return Err(Error::ShapeMismatch);
    }
    let (out_h, _, _) = layer.shape().output_hwc();
    let band = Band {
        in_first: 0,
        rows: 0..out_h as usize,
    };
    conv_generic::<0>(layer, input, output, in_ch as usize, &band);
    Ok(())
}

/// The rows a kernel call covers: the input slice holds input rows `in_first..`, the
/// output slice output rows `rows` (both checked by [`conv3x3_rows`]).
struct Band {
    in_first: usize,
    rows: core::ops::Range<usize>,
}

/// Whether the fast path's stack buffers hold this layer.
fn fits_fast_path(layer: &Layer<'_>) -> bool {
    fast_block(layer) > 0
}

/// Output channels per fast-path block: as many as fit the scratch beside the rows
/// (a multiple of four when more than four), at most [`FAST_MAX_OUT_CH`]; `0` if even
/// one channel does not fit.
fn fast_block(layer: &Layer<'_>) -> usize {
    let LayerShape::Conv3x3 {
        in_ch,
        out_ch,
        in_w,
        upsample,
        ..
    } = layer.shape()
    else {
        return 0;
    };
    let k = if upsample { 2 } else { 3 };
    let (c, out_ch, w) = (in_ch as usize, out_ch as usize, in_w as usize);
    let Some(room) = SCRATCH.checked_sub(k * (w + 2) * c) else {
        return 0;
    };
    let n = (room / (k * k * c)).min(out_ch).min(FAST_MAX_OUT_CH);
    if n > 4 && n < out_ch { n - n % 4 } else { n }
}

/// Calls [`conv_fast`], which on x86-64 is compiled with SSE2 enabled as a target
/// feature so that the `pmaddwd` helpers in [`x86`] inline into its loops.
#[inline(always)]
fn conv_fast_entry<const C: usize>(
    layer: &Layer<'_>,
    input: &[u8],
    output: &mut [u8],
    c: usize,
    band: &Band,
) {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    #[allow(unsafe_code)]
    // SAFETY: `conv_fast` only requires SSE2, which the cfg above guarantees is enabled
    // for the whole build (it is part of the x86-64 baseline).
    unsafe {
        conv_fast::<C>(layer, input, output, c, band)
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    conv_fast::<C>(layer, input, output, c, band)
}

/// The phase-split / row-ring convolution described in the module docs.
#[inline(never)]
#[cfg_attr(
    all(target_arch = "x86_64", target_feature = "sse2"),
    target_feature(enable = "sse2")
)]
fn conv_fast<const C: usize>(
    layer: &Layer<'_>,
    input: &[u8],
    output: &mut [u8],
    c: usize,
    band: &Band,
) {
    let c = if C == 0 { c } else { C };
    let shape = layer.shape();
    debug_assert!(matches!(shape, LayerShape::Conv3x3 { .. }), "not a conv");
    let LayerShape::Conv3x3 {
        out_ch,
        in_h,
        in_w,
        upsample,
        ..
    } = shape
    else {
        return;
    };
    let (out_ch, h, w) = (out_ch as usize, in_h as usize, in_w as usize);
    let p = layer.params();
    let zp = i16::from(p.in_zero_point);
    let shape = Shape {
        c,
        h,
        w,
        zp,
        in_first: band.in_first,
    };
    let (k, out_w, stride) = if upsample { (2, 2 * w, 2) } else { (3, w, 1) };
    let fan = k * k * c;
    let block = fast_block(layer);
    debug_assert!(
        block > 0,
        "conv_fast on a layer that does not fit the fast path"
    );
    let block = block.max(1);
    // The loader checked `weights.len() == out_ch * 9 * c` (Layer::new).
    debug_assert_eq!(p.weights.len(), out_ch * 9 * c);
    let mut scratch = [0i16; SCRATCH];
    let mut params = [NO_CHANNEL; FAST_MAX_OUT_CH];
    let mut first = 0;
    while first < out_ch {
        let n = block.min(out_ch - first).min(FAST_MAX_OUT_CH);
        for (dst, ch) in params.iter_mut().zip(channels(layer).skip(first).take(n)) {
            *dst = ch;
        }
        let params = &params[..n];
        let weights = &p.weights[first * 9 * c..(first + n) * 9 * c];
        debug_assert!(
            n * fan + k * (w + 2) * c <= SCRATCH,
            "fast_block sized the scratch"
        );
        let (wm, rows) = scratch.split_at_mut((n * fan).min(SCRATCH));
        let place = |phase| Place {
            phase,
            stride,
            out_w,
            out_ch,
            first,
            rows: band.rows.clone(),
        };
        if upsample {
            for phase in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                if place(phase).inputs().is_empty() {
                    continue; // no wanted output row has this row phase
                }
                merge_weights(weights, c, phase, wm);
                run::<C, 2>(shape, place(phase), wm, rows, params, input, output);
            }
        } else {
            for (d, &s) in wm.iter_mut().zip(weights) {
                *d = i16::from(s as i8);
            }
            run::<C, 3>(shape, place((0, 0)), wm, rows, params, input, output);
        }
        first += n;
    }
}

/// Input geometry of the fast path.
#[derive(Clone, Copy)]
struct Shape {
    /// Input channels.
    c: usize,
    /// Input height and width.
    h: usize,
    w: usize,
    /// Input zero point (the padding value).
    zp: i16,
    /// The input slice starts at this input row.
    in_first: usize,
}

/// Where a pass writes: output pixel `(stride * i + py, stride * j + px)` for input
/// position `(i, j)`, channels `first..` of `out_ch`, for the output rows in `rows` (the
/// output slice starts at row `rows.start`).
#[derive(Clone)]
struct Place {
    phase: (usize, usize),
    stride: usize,
    out_w: usize,
    out_ch: usize,
    first: usize,
    rows: core::ops::Range<usize>,
}

impl Place {
    /// The input positions `i` whose output row `stride * i + py` is wanted.
    fn inputs(&self) -> core::ops::Range<usize> {
        let py = self.phase.0;
        let lo = self.rows.start.saturating_sub(py).div_ceil(self.stride);
        let hi = self.rows.end.saturating_sub(py).div_ceil(self.stride);
        lo..hi.max(lo)
    }
}

/// Merged `i16` weights of phase `(py, px)` for every output channel, laid out
/// `[out][ky'][kx'][in]` (`4 * c` per channel) from the `[out][ky][kx][in]` int8 weights.
#[inline(always)]
fn merge_weights(weights: &[u8], c: usize, (py, px): (usize, usize), wm: &mut [i16]) {
    for (w, m) in weights.chunks_exact(9 * c).zip(wm.chunks_exact_mut(4 * c)) {
        for (t, dst) in m.chunks_exact_mut(c).enumerate() {
            let (ys, xs) = (MERGED[py][t / 2], MERGED[px][t % 2]);
            dst.fill(0);
            for ky in ys.0..ys.1 {
                for kx in xs.0..xs.1 {
                    let src = &w[(3 * ky + kx) * c..][..c];
                    for (d, &s) in dst.iter_mut().zip(src) {
                        *d += i16::from(s as i8);
                    }
                }
            }
        }
    }
}

/// Writes padded row `r` (input row `r - 1`, zero point outside) sign-extended to `i16`.
#[inline(always)]
fn fill_row(dst: &mut [i16], input: &[u8], r: usize, s: Shape, c: usize) {
    let row = s.w * c;
    let src = match r.checked_sub(1) {
        Some(y) if y < s.h => {
            // conv3x3 / conv3x3_rows checked that `input` holds the band's rows.
            let y = y.checked_sub(s.in_first);
            debug_assert!(
                y.is_some_and(|y| input.len() >= (y + 1) * row),
                "input row out of the band"
            );
            y.and_then(|y| input.get(y * row..(y + 1) * row))
        }
        _ => None,
    };
    let Some(src) = src else {
        dst.fill(s.zp);
        return;
    };
    let (left, rest) = dst.split_at_mut(c.min(dst.len()));
    left.fill(s.zp);
    let (mid, right) = rest.split_at_mut(row.min(rest.len()));
    for (d, &x) in mid.iter_mut().zip(src) {
        *d = i16::from(x as i8);
    }
    right.fill(s.zp);
}

/// One `k x k` pass over every input position: output `(i, j)` of the pass is the dot
/// product of the weights with padded rows `i + py .. i + py + k`, columns
/// `j + px .. j + px + k`.
#[inline]
#[cfg_attr(
    all(target_arch = "x86_64", target_feature = "sse2"),
    target_feature(enable = "sse2")
)]
fn run<const C: usize, const K: usize>(
    s: Shape,
    at: Place,
    wm: &[i16],
    rows: &mut [i16],
    params: &[Channel],
    input: &[u8],
    output: &mut [u8],
) {
    let c = if C == 0 { s.c } else { C };
    let row_len = (s.w + 2) * c;
    let seg = K * c;
    let fan = K * seg;
    let n = params.len();
    let (py, px) = at.phase;
    debug_assert!(rows.len() >= K * row_len, "row ring shorter than {K} rows");
    debug_assert!(
        wm.len() >= n * fan,
        "merged weights shorter than {n} channels"
    );
    let Some(rows) = rows.get_mut(..K * row_len) else {
        return;
    };
    let inputs = at.inputs();
    let first_i = inputs.start;
    for i in inputs {
        let base = i + py;
        // Padded rows base .. base + K; all but the last are already in the ring.
        let first_new = if i == first_i { base } else { base + K - 1 };
        for r in first_new..base + K {
            let slot = &mut rows[(r % K) * row_len..][..row_len];
            fill_row(slot, input, r, s, c);
        }
        let ring: &[i16] = rows;
        let x: [&[i16]; K] =
            core::array::from_fn(|ky| &ring[((base + ky) % K) * row_len..][..row_len]);
        let oy = at.stride * i + py - at.rows.start;
        for j in 0..s.w {
            let col = (j + px) * c;
            let ox = at.stride * j + px;
            let start = (oy * at.out_w + ox) * at.out_ch + at.first;
            // conv3x3 checked `output.len() == out_h * out_w * out_ch`.
            debug_assert!(output.len() >= start + n, "output pixel out of range");
            let Some(out_px) = output.get_mut(start..start + n) else {
                return;
            };
            let mut outs = out_px.chunks_exact_mut(4);
            let mut ws = wm.chunks_exact(4 * fan);
            let mut chans = params.chunks_exact(4);
            for ((o4, w4), c4) in (&mut outs).zip(&mut ws).zip(&mut chans) {
                let acc = dot4_rows::<K>(w4, seg, &x, col);
                for ((o, ch), a) in o4.iter_mut().zip(c4).zip(acc) {
                    *o = ch.requant.apply(ch.bias + a) as u8;
                }
            }
            let rest = n % 4;
            let first_rest = n - rest;
            let rest_w = &wm[first_rest * fan..];
            for ((o, w), ch) in out_px[first_rest..]
                .iter_mut()
                .zip(rest_w.chunks_exact(fan))
                .zip(&params[first_rest..])
            {
                let a = dot_rows::<K>(w, seg, &x, col);
                *o = ch.requant.apply(ch.bias + a) as u8;
            }
        }
    }
}

/// Four dot products (output channels `g` of the weight block `w4`, `4 * K * seg`
/// values) with the same `K` input runs `x[ky][col..col + seg]`.
#[inline]
#[cfg_attr(
    all(target_arch = "x86_64", target_feature = "sse2"),
    target_feature(enable = "sse2")
)]
fn dot4_rows<const K: usize>(w4: &[i16], seg: usize, x: &[&[i16]; K], col: usize) -> [i32; 4] {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    return x86::dot4_rows::<K>(w4, seg, x, col);
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    return dual::dot4_rows::<K>(w4, seg, x, col);
}

/// The portable [`dot4_rows`]: plain `i16 x i16 -> i32` sums. The reference for the
/// pairwise ([`dual`]) and SSE2 versions in the tests.
#[allow(dead_code)]
#[inline]
fn dot4_rows_plain<const K: usize>(
    w4: &[i16],
    seg: usize,
    x: &[&[i16]; K],
    col: usize,
) -> [i32; 4] {
    {
        let fan = K * seg;
        let mut acc = [0i32; 4];
        for (ky, x) in x.iter().enumerate() {
            let x = &x[col..][..seg];
            let w: [&[i16]; 4] = core::array::from_fn(|g| &w4[g * fan + ky * seg..][..seg]);
            for ((((&x, &w0), &w1), &w2), &w3) in x.iter().zip(w[0]).zip(w[1]).zip(w[2]).zip(w[3]) {
                let x = i32::from(x);
                acc[0] += i32::from(w0) * x;
                acc[1] += i32::from(w1) * x;
                acc[2] += i32::from(w2) * x;
                acc[3] += i32::from(w3) * x;
            }
        }
        acc
    }
}

/// One dot product of `K * seg` weights with the input runs `x[ky][col..col + seg]`.
#[inline(always)]
fn dot_rows<const K: usize>(w: &[i16], seg: usize, x: &[&[i16]; K], col: usize) -> i32 {
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    return dual::dot_rows::<K>(w, seg, x, col);
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    dot_rows_plain::<K>(w, seg, x, col)
}

/// The portable [`dot_rows`].
#[allow(dead_code)]
#[inline(always)]
fn dot_rows_plain<const K: usize>(w: &[i16], seg: usize, x: &[&[i16]; K], col: usize) -> i32 {
    let mut acc = 0;
    for (ky, x) in x.iter().enumerate() {
        acc += w[ky * seg..][..seg]
            .iter()
            .zip(&x[col..][..seg])
            .map(|(&w, &x)| i32::from(w) * i32::from(x))
            .sum::<i32>();
    }
    acc
}

/// Dot products two `i16` products at a time, in the shape of the Arm DSP extension's
/// `SMLAD` (`acc + lo(a) * lo(b) + hi(a) * hi(b)` on two packed halfwords). On
/// `cfg(arm_dsp)` targets (thumbv7em: Cortex-M4/M7, set by `build.rs`) [`dual::smlad`]
/// is that one instruction; elsewhere it is its portable model, so the host tests run
/// the very same pairing code (x86-64 uses the SSE2 kernels and only tests this).
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))]
pub(crate) mod dual {
    /// Two consecutive `i16` packed as `SMLAD` reads them (first in the low half).
    #[inline(always)]
    fn pair(v: &[i16]) -> u32 {
        u32::from(v[0] as u16) | (u32::from(v[1] as u16) << 16)
    }

    /// `acc + lo(a) * lo(b) + hi(a) * hi(b)` with the halves as signed 16-bit values,
    /// wrapping in `i32` as `SMLAD` does (the kernels' sums never overflow).
    #[cfg(not(arm_dsp))]
    #[inline(always)]
    pub(crate) fn smlad(a: u32, b: u32, acc: i32) -> i32 {
        let lo = i32::from(a as i16) * i32::from(b as i16);
        let hi = i32::from((a >> 16) as i16) * i32::from((b >> 16) as i16);
        acc.wrapping_add(lo).wrapping_add(hi)
    }

    /// `acc + lo(a) * lo(b) + hi(a) * hi(b)`: one `SMLAD` instruction.
    #[cfg(arm_dsp)]
    #[inline(always)]
    #[allow(unsafe_code)]
    pub(crate) fn smlad(a: u32, b: u32, acc: i32) -> i32 {
        let out: i32;
        // SAFETY: `smlad` only reads three registers and writes one (plus the sticky Q
        // flag in APSR, which nothing here reads); no memory, no stack. `cfg(arm_dsp)`
        // is set only for thumbv7em targets, whose CPUs all implement it.
        unsafe {
            core::arch::asm!(
                "smlad {out}, {a}, {b}, {acc}",
                out = lateout(reg) out,
                a = in(reg) a,
                b = in(reg) b,
                acc = in(reg) acc,
                options(pure, nomem, nostack, preserves_flags),
            );
        }
        out
    }

    /// `acc + sum(w[k] * x[k])` over one run, pairs first, then an odd last term.
    #[inline(always)]
    fn run(w: &[i16], x: &[i16], mut acc: i32) -> i32 {
        let (wp, xp) = (w.chunks_exact(2), x.chunks_exact(2));
        let tail = wp.remainder().iter().zip(xp.remainder());
        for (w, x) in wp.zip(xp) {
            acc = smlad(pair(w), pair(x), acc);
        }
        for (&w, &x) in tail {
            acc = acc.wrapping_add(i32::from(w) * i32::from(x));
        }
        acc
    }

    /// `sum(w[k] as i8 * x[k])` by pairs: int8 weights (sign-extended two at a time)
    /// against inputs already widened to `i16`. The linear layer's dot product.
    #[inline]
    pub(crate) fn dot_i8(w: &[u8], x: &[i16]) -> i32 {
        let (wp, xp) = (w.chunks_exact(2), x.chunks_exact(2));
        let tail = wp.remainder().iter().zip(xp.remainder());
        let mut acc = 0i32;
        for (w, x) in wp.zip(xp) {
            let lo = u32::from(i16::from(w[0] as i8) as u16);
            let hi = u32::from(i16::from(w[1] as i8) as u16);
            acc = smlad(lo | (hi << 16), pair(x), acc);
        }
        for (&w, &x) in tail {
            acc = acc.wrapping_add(i32::from(w as i8) * i32::from(x));
        }
        acc
    }

    /// [`super::dot4_rows`] by pairs: each input pair is loaded once for four channels.
    /// Inlined on `cfg(arm_dsp)` so that `seg` is a constant of the monomorphised
    /// caller (loops unrolled, bounds checks hoisted out of the pixel loop).
    #[cfg_attr(arm_dsp, inline(always))]
    #[cfg_attr(not(arm_dsp), inline)]
    pub(super) fn dot4_rows<const K: usize>(
        w4: &[i16],
        seg: usize,
        x: &[&[i16]; K],
        col: usize,
    ) -> [i32; 4] {
        let fan = K * seg;
        let mut acc = [0i32; 4];
        for (ky, x) in x.iter().enumerate() {
            let x = &x[col..][..seg];
            let w: [&[i16]; 4] = core::array::from_fn(|g| &w4[g * fan + ky * seg..][..seg]);
            let (xp, wp) = (x.chunks_exact(2), w.map(|w| w.chunks_exact(2)));
            let [w0, w1, w2, w3] = wp;
            let rem = [
                w0.remainder(),
                w1.remainder(),
                w2.remainder(),
                w3.remainder(),
            ];
            let xr = xp.remainder();
            for ((((x, w0), w1), w2), w3) in xp.zip(w0).zip(w1).zip(w2).zip(w3) {
                let x = pair(x);
                acc[0] = smlad(pair(w0), x, acc[0]);
                acc[1] = smlad(pair(w1), x, acc[1]);
                acc[2] = smlad(pair(w2), x, acc[2]);
                acc[3] = smlad(pair(w3), x, acc[3]);
            }
            for (a, r) in acc.iter_mut().zip(rem) {
                *a = run(r, xr, *a);
            }
        }
        acc
    }

    /// [`super::dot_rows`] by pairs.
    #[inline(always)]
    pub(super) fn dot_rows<const K: usize>(
        w: &[i16],
        seg: usize,
        x: &[&[i16]; K],
        col: usize,
    ) -> i32 {
        let mut acc = 0;
        for (ky, x) in x.iter().enumerate() {
            acc = run(&w[ky * seg..][..seg], &x[col..][..seg], acc);
        }
        acc
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// The pairing code equals the plain sums (on the host `smlad` is the
            /// portable model; on a DSP target the same code runs the instruction).
            #[test]
            fn pairwise_equals_plain(
                w in proptest::collection::vec(-1024i16..=1024, 4 * 3 * 40),
                x in proptest::collection::vec(-128i16..=127, 3 * 48),
                seg in 1usize..=40,
                col in 0usize..=8,
            ) {
                let rows: [&[i16]; 3] = [&x[..48], &x[48..96], &x[96..]];
                prop_assert_eq!(
                    dot4_rows::<3>(&w, seg, &rows, col),
                    super::super::dot4_rows_plain::<3>(&w, seg, &rows, col)
                );
                prop_assert_eq!(
                    dot_rows::<3>(&w, seg, &rows, col),
                    super::super::dot_rows_plain::<3>(&w, seg, &rows, col)
                );
            }
        }

        #[test]
        fn smlad_model_table() {
            let p = |lo: i16, hi: i16| u32::from(lo as u16) | (u32::from(hi as u16) << 16);
            assert_eq!(smlad(p(3, -4), p(5, 6), 10), 10 + 15 - 24);
            assert_eq!(smlad(p(-32768, -32768), p(-32768, -32768), 0), i32::MIN); // wraps
            assert_eq!(smlad(p(-1, 0), p(1, 0), 0), -1);
        }
    }
}

/// The SSE2 version of [`dot4_rows`] (`pmaddwd`: eight `i16` products summed in pairs
/// per instruction). SSE2 is part of the x86-64 baseline, so no run-time detection.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
mod x86 {
    use core::arch::x86_64::{
        __m128i, _mm_add_epi32, _mm_cvtsi128_si32, _mm_madd_epi16, _mm_set_epi16,
        _mm_setzero_si128, _mm_shuffle_epi32, _mm_unpackhi_epi32, _mm_unpackhi_epi64,
        _mm_unpacklo_epi32, _mm_unpacklo_epi64,
    };

    /// Eight `i16` from the start of `x` (compiles to one unaligned load).
    #[inline]
    #[target_feature(enable = "sse2")]
    fn load(x: &[i16]) -> __m128i {
        let x = &x[..8];
        _mm_set_epi16(x[7], x[6], x[5], x[4], x[3], x[2], x[1], x[0])
    }

    #[inline]
    #[target_feature(enable = "sse2")]
    pub(super) fn dot4_rows<const K: usize>(
        w4: &[i16],
        seg: usize,
        x: &[&[i16]; K],
        col: usize,
    ) -> [i32; 4] {
        let fan = K * seg;
        debug_assert!(w4.len() >= 4 * fan, "weights of four channels expected");
        let Some(w4) = w4.get(..4 * fan) else {
            return [0; 4];
        };
        let mut acc = [_mm_setzero_si128(); 4];
        let mut tail = [0i32; 4];
        let body = seg / 8 * 8;
        for (ky, x) in x.iter().enumerate() {
            debug_assert!(x.len() >= col + seg, "padded row too short");
            let Some(x) = x.get(col..col + seg) else {
                return [0; 4];
            };
            for k in (0..body).step_by(8) {
                let xv = load(&x[k..]);
                for (g, a) in acc.iter_mut().enumerate() {
                    let wv = load(&w4[g * fan + ky * seg + k..]);
                    *a = _mm_add_epi32(*a, _mm_madd_epi16(wv, xv));
                }
            }
            for k in body..seg {
                for (g, t) in tail.iter_mut().enumerate() {
                    *t += i32::from(w4[g * fan + ky * seg + k]) * i32::from(x[k]);
                }
            }
        }
        // Transpose-add the four accumulators into one vector of four sums.
        let t0 = _mm_add_epi32(
            _mm_unpacklo_epi32(acc[0], acc[1]),
            _mm_unpackhi_epi32(acc[0], acc[1]),
        );
        let t1 = _mm_add_epi32(
            _mm_unpacklo_epi32(acc[2], acc[3]),
            _mm_unpackhi_epi32(acc[2], acc[3]),
        );
        let s = _mm_add_epi32(_mm_unpacklo_epi64(t0, t1), _mm_unpackhi_epi64(t0, t1));
        [
            _mm_cvtsi128_si32(s) + tail[0],
            _mm_cvtsi128_si32(_mm_shuffle_epi32::<0b01>(s)) + tail[1],
            _mm_cvtsi128_si32(_mm_shuffle_epi32::<0b10>(s)) + tail[2],
            _mm_cvtsi128_si32(_mm_shuffle_epi32::<0b11>(s)) + tail[3],
        ]
    }
}

/// The input coordinate read by tap `k` (0, 1, 2) of output coordinate `o`, or `None`
/// in the padding. `len` is the (upsampled) output extent, `up` 1 for upsampling.
#[inline(always)]
fn source(o: usize, k: usize, len: usize, up: u32) -> Option<usize> {
    let u = (o + k).checked_sub(1)?;
    (u < len).then_some(u >> up)
}

/// The generic path: for each output pixel gather the 3x3 neighbourhood into a
/// contiguous patch of `9 * in_ch` bytes, then one dot product per output channel.
#[inline(never)]
fn conv_generic<const C: usize>(
    layer: &Layer<'_>,
    input: &[u8],
    output: &mut [u8],
    c: usize,
    band: &Band,
) {
    let c = if C == 0 { c } else { C };
    let shape = layer.shape();
    debug_assert!(matches!(shape, LayerShape::Conv3x3 { .. }), "not a conv");
    let LayerShape::Conv3x3 {
        out_ch,
        in_w,
        upsample,
        ..
    } = shape
    else {
        return;
    };
    // Layer::new checked both channel limits and `weights.len() == out_ch * 9 * c`.
    debug_assert!(c <= MAX_CONV_IN_CH && out_ch as usize <= MAX_CONV_OUT_CH);
    debug_assert_eq!(layer.params().weights.len(), out_ch as usize * 9 * c);
    let (out_h, out_w, _) = layer.shape().output_hwc();
    let (out_h, out_w, in_w) = (out_h as usize, out_w as usize, in_w as usize);
    let up = u32::from(upsample);
    let p = layer.params();
    let zp = p.in_zero_point as u8;
    let k = 9 * c;
    // The patch is gathered once per pixel and reused by every output channel.
    let mut buf = [0u8; 9 * MAX_CONV_IN_CH];
    let patch = &mut buf[..k.min(9 * MAX_CONV_IN_CH)];
    // Per-channel parameters decoded once per layer, not once per pixel.
    let mut params = [NO_CHANNEL; MAX_CONV_OUT_CH];
    for (dst, ch) in params.iter_mut().zip(channels(layer)) {
        *dst = ch;
    }
    let params = &params[..(out_ch as usize).min(MAX_CONV_OUT_CH)];

    for (pix, out_px) in output.chunks_exact_mut(out_ch as usize).enumerate() {
        let (oy, ox) = (band.rows.start + pix / out_w, pix % out_w);
        for (ky, row) in patch.chunks_exact_mut(3 * c).enumerate() {
            let sy = source(oy, ky, out_h, up);
            for (kx, tap) in row.chunks_exact_mut(c).enumerate() {
                let src = match (sy, source(ox, kx, out_w, up)) {
                    (Some(sy), Some(sx)) => {
                        let base = sy.checked_sub(band.in_first).map(|y| (y * in_w + sx) * c);
                        debug_assert!(
                            base.is_some_and(|base| input.len() >= base + c),
                            "input pixel out of the band"
                        );
                        base.and_then(|base| input.get(base..base + c))
                    }
                    _ => None,
                };
                match src {
                    Some(src) => tap.copy_from_slice(src),
                    None => tap.fill(zp),
                }
            }
        }
        let patch: &[u8] = patch;
        // Four output channels per pass share each patch load; the rest one at a time.
        // Measured on the Cortex-M4 (QEMU instruction count, whole digit): 4.60
        // instructions per MAC with an i16 patch and one channel per pass, 4.22 with
        // four channels per pass, 3.55 with this int8 patch (byte copies instead of
        // widening). On x86-64 the i16 patch was ~15% faster; the MCU is the product.
        let mut outs = out_px.chunks_exact_mut(4);
        let mut rows = p.weights.chunks_exact(4 * k);
        let mut chans = params.chunks_exact(4);
        for ((o4, w4), c4) in (&mut outs).zip(&mut rows).zip(&mut chans) {
            let (w01, w23) = w4.split_at(2 * k);
            let (w0, w1) = w01.split_at(k);
            let (w2, w3) = w23.split_at(k);
            let acc = dot4([w0, w1, w2, w3], patch);
            for ((o, ch), a) in o4.iter_mut().zip(c4).zip(acc) {
                *o = ch.requant.apply(ch.bias + a) as u8;
            }
        }
        let rest = out_px.len() % 4;
        let first_rest = out_px.len() - rest;
        let rest_rows = &p.weights[first_rest * k..];
        for ((o, w), ch) in out_px[first_rest..]
            .iter_mut()
            .zip(rest_rows.chunks_exact(k))
            .zip(&params[first_rest..])
        {
            *o = ch.requant.apply(ch.bias + super::dot(w, patch)) as u8;
        }
    }
}

/// Four dot products of int8 weight rows with one int8 patch (generic path).
#[inline(always)]
fn dot4(w: [&[u8]; 4], x: &[u8]) -> [i32; 4] {
    let mut a = [0i32; 4];
    for ((((&x, &w0), &w1), &w2), &w3) in x.iter().zip(w[0]).zip(w[1]).zip(w[2]).zip(w[3]) {
        let x = i32::from(x as i8);
        a[0] += i32::from(w0 as i8) * x;
        a[1] += i32::from(w1 as i8) * x;
        a[2] += i32::from(w2 as i8) * x;
        a[3] += i32::from(w3 as i8) * x;
    }
    a
}
