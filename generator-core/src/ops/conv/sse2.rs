//! The x86-64 host's fast path: the `i16`-row version of the phase-split convolution
//! (the module docs of `conv` describe the method), with SSE2 `pmaddwd` dot products
//! over eight `i16` of one channel at a time.
//!
//! The packed-pair kernel in `conv` (built for the Cortex-M4's `SMLAD`) computes the same
//! bytes but measured about 30% slower on the host (`cargo bench -p generator-core`,
//! one run, medians); so the host's whole-image `Generator` keeps this one, and x86-64
//! runs the packed-pair kernel for prepared weights and in the tests.

use super::{Band, FAST_MAX_OUT_CH, MERGED, NO_CHANNEL};
use crate::ops::{Channel, channels};
use crate::{Layer, LayerShape};

/// `i16` values of scratch: one phase's merged weights for a block of output channels
/// (`block * k * k * in_ch`) plus `k` padded rows (`k * (in_w + 2) * in_ch`).
const SCRATCH: usize = 1024;

/// Output channels per fast-path block: as many as fit the scratch beside the rows
/// (a multiple of four when more than four), at most [`FAST_MAX_OUT_CH`]; `0` if even
/// one channel does not fit.
pub(super) fn fast_block(layer: &Layer<'_>) -> usize {
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

/// Runs [`conv_fast`], compiled with SSE2 enabled so that the `pmaddwd` helpers in
/// [`x86`] inline into its loops.
#[inline(always)]
pub(super) fn conv_fast_entry<const C: usize>(
    layer: &Layer<'_>,
    input: &[u8],
    output: &mut [u8],
    c: usize,
    band: &Band<'_>,
) {
    #[allow(unsafe_code)]
    // SAFETY: `conv_fast` only requires SSE2, which this module's cfg guarantees is
    // enabled for the whole build (it is part of the x86-64 baseline).
    unsafe {
        conv_fast::<C>(layer, input, output, c, band)
    }
}

/// The phase-split / row-ring convolution described in the module docs.
#[inline(never)]
#[target_feature(enable = "sse2")]
fn conv_fast<const C: usize>(
    layer: &Layer<'_>,
    input: &[u8],
    output: &mut [u8],
    c: usize,
    band: &Band<'_>,
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
#[target_feature(enable = "sse2")]
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
#[target_feature(enable = "sse2")]
fn dot4_rows<const K: usize>(w4: &[i16], seg: usize, x: &[&[i16]; K], col: usize) -> [i32; 4] {
    x86::dot4_rows::<K>(w4, seg, x, col)
}

/// One dot product of `K * seg` weights with the input runs `x[ky][col..col + seg]`.
#[inline(always)]
fn dot_rows<const K: usize>(w: &[i16], seg: usize, x: &[&[i16]; K], col: usize) -> i32 {
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

/// The SSE2 version of [`dot4_rows`] (`pmaddwd`: eight `i16` products summed in pairs
/// per instruction). SSE2 is part of the x86-64 baseline, so no run-time detection.
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
