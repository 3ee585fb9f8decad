//! The x86-64 host's AVX2 fast path for whole-map convolutions whose output channels
//! come in groups of eight (the default model's two upsampling layers).
//!
//! The method is the phase split of the `conv` module docs, laid out for 256-bit
//! vectors: one `i32` lane per output channel, eight channels per vector. The input is
//! widened once into a padded image of packed `i16` channel pairs (the zero point all
//! round, the padding channel of an odd count 0), and each phase's merged weights are
//! stored as one vector per (tap, input pair): lane `g` holds the pair's two weights of
//! channel `g`. An output pixel is then `taps * cp / 2` times `acc += pmaddwd(weights,
//! broadcast(input pair))` (`vpmaddwd`: two exact `i16` products summed into each
//! `i32` lane, the same integer sum as the reference), four pixels at a time sharing
//! the weight loads. The eight sums are requantised together ([`Requant8`]) and stored
//! as eight bytes.
//!
//! Used only when the CPU has AVX2: compile-time `target_feature = "avx2"`, or with
//! the `std` feature, run-time detection ([`crate::ops::avx2::available`]). Everything else keeps the
//! SSE2 kernels.

use core::arch::x86_64::{
    __m128i, __m256i, _mm_loadu_si128, _mm_set_epi64x, _mm256_add_epi32, _mm256_cvtepi8_epi16,
    _mm256_madd_epi16, _mm256_permutevar8x32_epi32, _mm256_set1_epi32, _mm256_setr_epi32,
    _mm256_storeu_si256, _mm256_unpackhi_epi32, _mm256_unpackhi_epi64, _mm256_unpacklo_epi32,
    _mm256_unpacklo_epi64,
};

use super::{MERGED, pack, padded};
use crate::ops::avx2::{LANES, Requant8, load8};
use crate::ops::channels;
use crate::ops::requant::Rescale;
use crate::{Layer, LayerShape};

/// Most output channels this path takes (their parameters live on the stack).
const MAX_OUT_CH: usize = 32;
/// `u32` words of the padded input image, `(h + 2) * (w + 2) * cp / 2` (16 KiB).
const MAX_IN_WORDS: usize = 4096;
/// `u32` words of merged weights, `phases * taps * cp / 2 * out_ch` (16 KiB).
const MAX_W_WORDS: usize = 4096;
/// Pixels per pass sharing the weight loads.
const PIXELS: usize = 4;

/// Which AVX2 kernel runs a layer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Kind {
    /// [`conv_whole`]: one lane per output channel, eight channels per vector.
    Channels,
    /// [`conv_pixels`]: one lane per output pixel, eight pixels of a row per vector.
    Pixels,
}

/// Words of a row of one pair plane of [`conv_pixels`]: the padded row rounded so that
/// eight-pixel loads at every column start stay inside it.
const fn plane_row(w: usize) -> usize {
    w.next_multiple_of(LANES) + 2
}

/// The AVX2 kernel that takes `layer`, if one does: [`Kind::Channels`] for a multiple
/// of eight output channels (at most [`MAX_OUT_CH`]), [`Kind::Pixels`] for other
/// counts without upsampling; in both cases the padded input and the weights must fit
/// the stack buffers.
pub(super) fn kind(layer: &Layer<'_>) -> Option<Kind> {
    let LayerShape::Conv3x3 {
        in_ch,
        out_ch,
        in_h,
        in_w,
        upsample,
    } = layer.shape()
    else {
        return None;
    };
    let (c, out_ch, h, w) = (
        in_ch as usize,
        out_ch as usize,
        in_h as usize,
        in_w as usize,
    );
    let half = padded(c) / 2;
    let (phases, taps) = if upsample { (4, 4) } else { (1, 9) };
    if out_ch == 0 || out_ch > MAX_OUT_CH {
        return None;
    }
    if out_ch.is_multiple_of(LANES)
        && (h + 2) * (w + 2) * half <= MAX_IN_WORDS
        && phases * taps * half * out_ch <= MAX_W_WORDS
    {
        return Some(Kind::Channels);
    }
    let pixels_fit =
        (h + 2) * plane_row(w) * half <= MAX_IN_WORDS && 9 * half * out_ch <= MAX_W_WORDS;
    (!upsample && pixels_fit).then_some(Kind::Pixels)
}

/// `u32` words of scratch the kernels take from the caller (else from the stack): the
/// widened input.
pub(super) const SCRATCH_WORDS: usize = MAX_IN_WORDS;

/// Words of prepared weights the kernel of a layer runs from ([`prepare`]), `0` if no
/// AVX2 kernel takes it.
pub(super) fn prepared_words(layer: &Layer<'_>) -> usize {
    let LayerShape::Conv3x3 {
        in_ch,
        out_ch,
        upsample,
        ..
    } = layer.shape()
    else {
        return 0;
    };
    let half = padded(in_ch as usize) / 2;
    match kind(layer) {
        Some(Kind::Channels) if upsample => 16 * half * out_ch as usize,
        Some(Kind::Channels | Kind::Pixels) => 9 * half * out_ch as usize,
        None => 0,
    }
}

/// Writes the weights the kernel of `layer` runs from into `dst`, which must be
/// [`prepared_words`] long (else nothing is written): what [`conv_whole`] and
/// [`conv_pixels`] compute on every call when they are given none.
pub(super) fn prepare(layer: &Layer<'_>, dst: &mut [u32]) {
    let LayerShape::Conv3x3 {
        in_ch,
        out_ch,
        upsample,
        ..
    } = layer.shape()
    else {
        return;
    };
    if dst.len() != prepared_words(layer) || dst.is_empty() {
        return;
    }
    let (c, weights) = (in_ch as usize, layer.params().weights);
    match kind(layer) {
        Some(Kind::Channels) => merge_lanes::<0>(weights, c, out_ch as usize, upsample, dst),
        Some(Kind::Pixels) => weight_pairs(weights, c, dst),
        None => {}
    }
}

/// Runs the whole map of a [`Kind::Channels`] layer: `input` is the whole input
/// (`in_h * in_w * in_ch` bytes), `output` the whole output. `C` is `in_ch` when it is
/// a compile-time constant, else 0. `prepared` holds the merged weights ([`prepare`])
/// if the caller has them, otherwise they are merged here; `scratch` (at least
/// [`SCRATCH_WORDS`]) spares the stack buffer for the widened input.
///
/// Callers must check [`crate::ops::avx2::available`] first (the `target_feature` makes the call
/// `unsafe` where AVX2 is not enabled at compile time).
#[inline(never)]
#[target_feature(enable = "avx2")]
pub(super) fn conv_whole<const C: usize>(
    layer: &Layer<'_>,
    prepared: Option<&[u32]>,
    scratch: Option<&mut [u32]>,
    input: &[u8],
    output: &mut [u8],
) {
    let LayerShape::Conv3x3 {
        in_ch,
        out_ch,
        in_h,
        in_w,
        upsample,
    } = layer.shape()
    else {
        return;
    };
    debug_assert_eq!(
        kind(layer),
        Some(Kind::Channels),
        "conv_whole on another layer"
    );
    let c = if C == 0 { in_ch as usize } else { C };
    let (out_ch, h, w) = (out_ch as usize, in_h as usize, in_w as usize);
    let half = padded(c) / 2;
    let p = layer.params();

    // The padded input, `[padded row][padded column][pair]`.
    let row_words = (w + 2) * half;
    let mut local;
    let xbuf: &mut [u32] = match scratch {
        Some(s) => s,
        None => {
            local = [0u32; MAX_IN_WORDS];
            &mut local
        }
    };
    let Some(x) = xbuf.get_mut(..(h + 2) * row_words) else {
        return;
    };
    widen_padded::<C>(input, x, c, h, w, p.in_zero_point);
    let x: &[u32] = x;

    // Per block of eight channels: the requantisation, and the weights of every tap of
    // the 3x3 kernel in lanes (`[block][tap][pair][lane]`), merged per phase below.
    let blocks = out_ch / LANES;
    let (phases, taps) = if upsample { (4, 4) } else { (1, 9) };
    let block_words = taps * half * LANES;
    let words = phases * blocks * block_words;
    let wbuf;
    let wm: &[u32] = match prepared {
        Some(wm) if wm.len() == words => wm,
        _ => {
            let mut buf = [0u32; MAX_W_WORDS];
            if let Some(wm) = buf.get_mut(..words) {
                merge_lanes::<C>(p.weights, c, out_ch, upsample, wm);
            }
            wbuf = buf;
            wbuf.get(..words).unwrap_or(&[])
        }
    };
    let mut params = [Rescale::ZERO; MAX_OUT_CH];
    for (dst, ch) in params.iter_mut().zip(channels(layer)) {
        *dst = Rescale::new(ch.bias, ch.requant);
    }
    let mut requants = [Requant8::new(&[Rescale::ZERO; LANES]); MAX_OUT_CH / LANES];
    for (r, ps) in requants
        .iter_mut()
        .zip(params.chunks_exact(LANES))
        .take(blocks)
    {
        *r = Requant8::new(ps);
    }

    let geo = Geo {
        h,
        w,
        half,
        row_words,
        out_ch,
        stride: if upsample { 2 } else { 1 },
        block_words,
    };
    for ph in 0..phases {
        let phase = (ph / 2, ph % 2);
        let wph = &wm[ph * blocks * block_words..][..blocks * block_words];
        // Two blocks per pass where there are two, sharing the input broadcasts.
        let mut b = 0;
        while b < blocks {
            let wb = &wph[b * block_words..];
            if blocks - b >= 2 {
                let rq = [requants[b], requants[b + 1]];
                if upsample {
                    block_rows::<C, 2, 2>(geo, phase, b, wb, &rq, x, output);
                } else {
                    block_rows::<C, 2, 3>(geo, phase, b, wb, &rq, x, output);
                }
                b += 2;
            } else {
                let rq = [requants[b]];
                if upsample {
                    block_rows::<C, 1, 2>(geo, phase, b, wb, &rq, x, output);
                } else {
                    block_rows::<C, 1, 3>(geo, phase, b, wb, &rq, x, output);
                }
                b += 1;
            }
        }
    }
}

/// Geometry of [`conv_whole`].
#[derive(Clone, Copy)]
struct Geo {
    /// Input height and width.
    h: usize,
    w: usize,
    /// Words per padded pixel, `cp / 2`.
    half: usize,
    /// Words per padded row.
    row_words: usize,
    out_ch: usize,
    /// 2 with upsampling, else 1.
    stride: usize,
    /// Words of one block's weights of one phase.
    block_words: usize,
}

/// Every output pixel of phase `(py, px)` (`(0, 0)` without upsampling) for the `NB`
/// blocks of eight channels from block `first`, whose weights start `wv` (block `n` at
/// `n * block_words`).
#[inline]
#[target_feature(enable = "avx2")]
fn block_rows<const C: usize, const NB: usize, const K: usize>(
    g: Geo,
    (py, px): (usize, usize),
    first: usize,
    wv: &[u32],
    rq: &[Requant8; NB],
    x: &[u32],
    output: &mut [u8],
) {
    let out_w = g.stride * g.w;
    let mut bias = [rq[0].bias; NB];
    for (b, r) in bias.iter_mut().zip(rq) {
        *b = r.bias;
    }
    for i in 0..g.h {
        let oy = g.stride * i + py;
        let out_at = |j: usize| (oy * out_w + g.stride * j + px) * g.out_ch + first * LANES;
        let x_at = |j: usize| (i + py) * g.row_words + (j + px) * g.half;
        let mut j = 0;
        while j + PIXELS <= g.w {
            let acc = pixels::<C, PIXELS, NB, K>(wv, x, x_at(j), g, bias);
            for (d, acc) in acc.into_iter().enumerate() {
                for (n, acc) in acc.into_iter().enumerate() {
                    store8(output, out_at(j + d) + n * LANES, rq[n].apply(acc));
                }
            }
            j += PIXELS;
        }
        // The last one to three pixels in one pass too, sharing the weight loads.
        let mut put = |d: usize, acc: [__m256i; NB]| {
            for (n, acc) in acc.into_iter().enumerate() {
                store8(output, out_at(j + d) + n * LANES, rq[n].apply(acc));
            }
        };
        match g.w - j {
            3 => {
                let acc = pixels::<C, 3, NB, K>(wv, x, x_at(j), g, bias);
                acc.into_iter().enumerate().for_each(|(d, a)| put(d, a));
            }
            2 => {
                let acc = pixels::<C, 2, NB, K>(wv, x, x_at(j), g, bias);
                acc.into_iter().enumerate().for_each(|(d, a)| put(d, a));
            }
            1 => {
                let [acc] = pixels::<C, 1, NB, K>(wv, x, x_at(j), g, bias);
                put(0, acc);
            }
            _ => {}
        }
    }
}

/// Runs the whole map of a [`Kind::Pixels`] layer (no upsampling), like
/// [`conv_whole`]. The input is widened into one padded plane per channel pair
/// (`[pair][padded row][padded column]`, rows [`plane_row`] words long), so that eight
/// neighbouring pixels of a pair are one load; each output channel's weight pair is
/// broadcast, and four vectors of eight pixels share it. `prepared` and `scratch` as
/// for [`conv_whole`].
///
/// Callers must check [`crate::ops::avx2::available`] first.
#[inline(never)]
#[target_feature(enable = "avx2")]
pub(super) fn conv_pixels<const C: usize>(
    layer: &Layer<'_>,
    prepared: Option<&[u32]>,
    scratch: Option<&mut [u32]>,
    input: &[u8],
    output: &mut [u8],
) {
    let LayerShape::Conv3x3 {
        in_ch,
        out_ch,
        in_h,
        in_w,
        ..
    } = layer.shape()
    else {
        return;
    };
    debug_assert_eq!(
        kind(layer),
        Some(Kind::Pixels),
        "conv_pixels on another layer"
    );
    let c = if C == 0 { in_ch as usize } else { C };
    let (out_ch, h, w) = (out_ch as usize, in_h as usize, in_w as usize);
    let half = padded(c) / 2;
    let p = layer.params();
    let z = i16::from(p.in_zero_point);

    // The pair planes, the zero point all round (an odd count's padding slot: 0).
    let rs = plane_row(w);
    let plane = (h + 2) * rs;
    let mut local;
    let xbuf: &mut [u32] = match scratch {
        Some(s) => s,
        None => {
            local = [0u32; MAX_IN_WORDS];
            &mut local
        }
    };
    let Some(x) = xbuf.get_mut(..half * plane) else {
        return;
    };
    x.fill(pack(z, z));
    for (y, row) in input.chunks_exact((w * c).max(1)).enumerate().take(h) {
        // Eight channels: eight pixels at a time in vectors, the rest below.
        let done = if c == 8 {
            let at = (y + 1) * rs + 1;
            let done = planes8(row, x, at, plane);
            // The last pixels through a copy padded with the zero point, which is what
            // the padding column right of the row holds anyway; the rest of the group
            // lands in columns no output reads (`plane_row` leaves room for it).
            let tail = row.get(8 * done..).unwrap_or(&[]);
            if tail.is_empty() {
                done
            } else {
                let mut tmp = [p.in_zero_point as u8; 64];
                tmp[..tail.len().min(64)].copy_from_slice(&tail[..tail.len().min(64)]);
                planes8(&tmp, x, at + done, plane);
                w
            }
        } else {
            0
        };
        for (col, px) in row.chunks_exact(c.max(1)).enumerate().skip(done) {
            let at = (y + 1) * rs + col + 1;
            for q in 0..half {
                let v = |i: usize| px.get(i).map_or(0, |&b| i16::from(b as i8));
                if let Some(d) = x.get_mut(q * plane + at) {
                    *d = pack(v(2 * q), v(2 * q + 1));
                }
            }
        }
    }
    let x: &[u32] = x;

    // The weights as pairs, `[out][tap][pair]`.
    let fan = 9 * half;
    let wbuf;
    let wp: &[u32] = match prepared {
        Some(wp) if wp.len() == out_ch * fan => wp,
        _ => {
            let mut buf = [0u32; MAX_W_WORDS];
            if let Some(wp) = buf.get_mut(..out_ch * fan) {
                weight_pairs(p.weights, c, wp);
            }
            wbuf = buf;
            wbuf.get(..out_ch * fan).unwrap_or(&[])
        }
    };

    for (o, ch) in channels(layer).enumerate().take(out_ch) {
        let r = Rescale::new(ch.bias, ch.requant);
        let rq = Requant8::new(&[r; LANES]);
        let wo = &wp[o * fan..][..fan];
        let put = |output: &mut [u8], i: usize, j: usize, bytes: u64| {
            let bytes = bytes.to_le_bytes();
            let n = LANES.min(w - j);
            if out_ch == 1 {
                if let Some(d) = output.get_mut(i * w + j..i * w + j + n) {
                    d.copy_from_slice(&bytes[..n]);
                }
            } else {
                for (d, &b) in bytes.iter().enumerate().take(n) {
                    if let Some(dst) = output.get_mut((i * w + j + d) * out_ch + o) {
                        *dst = b;
                    }
                }
            }
        };
        for i in 0..h {
            let mut j = 0;
            while j + PIXELS * LANES <= w.next_multiple_of(LANES) {
                let acc = row_pixels::<C, PIXELS>(wo, x, i * rs + j, rs, plane, half, rq.bias);
                for (g, acc) in acc.into_iter().enumerate() {
                    put(output, i, j + g * LANES, rq.apply(acc));
                }
                j += PIXELS * LANES;
            }
            while j < w {
                let [acc] = row_pixels::<C, 1>(wo, x, i * rs + j, rs, plane, half, rq.bias);
                put(output, i, j, rq.apply(acc));
                j += LANES;
            }
        }
    }
}

/// Spreads the first `8 * (len / 64)` pixels of `row` (eight int8 channels each) over
/// the four pair planes of `x` (plane `q` at `q * plane`), from word `at` of each: the
/// pixels' pairs sign-extended, then transposed from pixel-major to plane-major eight
/// pixels at a time. Returns the number of pixels written.
#[inline]
#[target_feature(enable = "avx2")]
fn planes8(row: &[u8], x: &mut [u32], at: usize, plane: usize) -> usize {
    let mut done = 0;
    // After the unpacks, vector `q` holds pair `q` of pixels 0, 2, 4, 6, 1, 3, 5, 7.
    let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for px in row.chunks_exact(64) {
        let load = |k: usize| {
            let b = &px[16 * k..16 * k + 16];
            #[allow(unsafe_code)]
            // SAFETY: `b` holds the 16 bytes the unaligned load reads.
            let v = unsafe { _mm_loadu_si128(b.as_ptr().cast::<__m128i>()) };
            // Pixels 2k (low half) and 2k + 1, as four pairs each.
            _mm256_cvtepi8_epi16(v)
        };
        let (v0, v1, v2, v3) = (load(0), load(1), load(2), load(3));
        let (lo01, hi01) = (_mm256_unpacklo_epi32(v0, v1), _mm256_unpackhi_epi32(v0, v1));
        let (lo23, hi23) = (_mm256_unpacklo_epi32(v2, v3), _mm256_unpackhi_epi32(v2, v3));
        let qs = [
            _mm256_unpacklo_epi64(lo01, lo23),
            _mm256_unpackhi_epi64(lo01, lo23),
            _mm256_unpacklo_epi64(hi01, hi23),
            _mm256_unpackhi_epi64(hi01, hi23),
        ];
        for (q, v) in qs.into_iter().enumerate() {
            let start = q * plane + at + done;
            let Some(d) = x.get_mut(start..start + LANES) else {
                return done;
            };
            #[allow(unsafe_code)]
            // SAFETY: `d` is eight `u32`, the 32 bytes the unaligned store writes.
            unsafe {
                _mm256_storeu_si256(
                    d.as_mut_ptr().cast::<__m256i>(),
                    _mm256_permutevar8x32_epi32(v, order),
                );
            }
        }
        done += LANES;
    }
    done
}

/// A [`Kind::Pixels`] layer's weights as pairs, `[out][tap][pair]` (`dst`: `9 * cp / 2`
/// words per channel).
fn weight_pairs(weights: &[u8], c: usize, dst: &mut [u32]) {
    let half = padded(c) / 2;
    for (d, w) in dst
        .chunks_exact_mut(half.max(1))
        .zip(weights.chunks_exact(c.max(1)))
    {
        for (q, d) in d.iter_mut().enumerate() {
            let v = |i: usize| w.get(i).map_or(0, |&b| i16::from(b as i8));
            *d = pack(v(2 * q), v(2 * q + 1));
        }
    }
}

/// `P` vectors of eight neighbouring output pixels of one channel: its 3x3 weights
/// `wo` (`[tap][pair]`) against the pair planes from word `at` of each plane (vector `g`
/// `8 g` words later, kernel row `ky` `ky * rs` later), started at `bias`.
#[inline]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
fn row_pixels<const C: usize, const P: usize>(
    wo: &[u32],
    x: &[u32],
    at: usize,
    rs: usize,
    plane: usize,
    half: usize,
    bias: __m256i,
) -> [__m256i; P] {
    let h = if C == 0 { half } else { padded(C) / 2 };
    let mut acc = [bias; P];
    for ky in 0..3 {
        for kx in 0..3 {
            for q in 0..h {
                let Some(&wq) = wo.get((3 * ky + kx) * h + q) else {
                    return acc;
                };
                let wv = _mm256_set1_epi32(wq as i32);
                let start = q * plane + at + ky * rs + kx;
                let Some(xs) = x.get(start..start + P * LANES) else {
                    return acc;
                };
                for (a, xv) in acc.iter_mut().zip(xs.chunks_exact(LANES)) {
                    *a = _mm256_add_epi32(*a, _mm256_madd_epi16(load8(xv), wv));
                }
            }
        }
    }
    acc
}

/// `P` neighbouring output pixels of `NB` blocks of eight channels: the `K x K` taps
/// of the blocks' weights `wv` (`[block][tap][pair][lane]`, blocks `block_words`
/// apart) against the padded input from word `at` (pixel `d` starts `d * half` words
/// later, kernel row `ty` `ty * row_words`), each accumulator started at its block's
/// bias. Each input pair is broadcast once for the `NB` blocks, each weight vector
/// loaded once for the `P` pixels.
#[inline]
#[target_feature(enable = "avx2")]
fn pixels<const C: usize, const P: usize, const NB: usize, const K: usize>(
    wv: &[u32],
    x: &[u32],
    at: usize,
    g: Geo,
    bias: [__m256i; NB],
) -> [[__m256i; NB]; P] {
    let h = if C == 0 { g.half } else { padded(C) / 2 };
    let tw = h * LANES;
    let mut acc = [bias; P];
    // Block `n`'s weights start `n * block_words` into `wv`; block 1 is read only when
    // `NB == 2`.
    let second = if NB == 2 { g.block_words } else { 0 };
    let (Some(w0), Some(w1)) = (wv.get(..K * K * tw), wv.get(second..second + K * K * tw)) else {
        return acc;
    };
    for ty in 0..K {
        // The `P + K - 1` padded pixels of this kernel row.
        let start = at + ty * g.row_words;
        let Some(xrow) = x.get(start..start + (P + K - 1) * h) else {
            return acc;
        };
        for tx in 0..K {
            let t = ty * K + tx;
            let xs = &xrow[tx * h..][..P * h];
            let (w0, w1) = (&w0[t * tw..][..tw], &w1[t * tw..][..tw]);
            for q in 0..h {
                let a = load8(&w0[q * LANES..][..LANES]);
                let b = load8(&w1[q * LANES..][..LANES]);
                for (d, acc) in acc.iter_mut().enumerate() {
                    let xv = _mm256_set1_epi32(xs[d * h + q] as i32);
                    acc[0] = _mm256_add_epi32(acc[0], _mm256_madd_epi16(a, xv));
                    if NB == 2 {
                        acc[NB - 1] = _mm256_add_epi32(acc[NB - 1], _mm256_madd_epi16(b, xv));
                    }
                }
            }
        }
    }
    acc
}

/// Writes the eight bytes of `v` (little-endian) at `out[at..at + 8]`.
#[inline(always)]
fn store8(out: &mut [u8], at: usize, v: u64) {
    if let Some(dst) = out.get_mut(at..at + LANES) {
        dst.copy_from_slice(&v.to_le_bytes());
    }
}

/// Sign-extends `input` (`h x w x c` int8) into the padded image of packed pairs:
/// padded pixel `(r, col)` holds input pixel `(r - 1, col - 1)`, the zero point
/// outside, with a zero in the padding slot of an odd `c`.
#[inline]
#[target_feature(enable = "avx2")]
fn widen_padded<const C: usize>(input: &[u8], x: &mut [u32], c: usize, h: usize, w: usize, zp: i8) {
    let c = if C == 0 { c } else { C };
    let half = padded(c) / 2;
    let z = i16::from(zp);
    let zpair = pack(z, z);
    let row_words = (w + 2) * half;
    x.fill(zpair);
    // An odd count's padding slot holds 0 also in the border pixels, as the
    // reference's zero point times a zero weight; either value contributes nothing, but
    // keep the pairs the same everywhere.
    if c % 2 == 1 {
        for px in x.chunks_exact_mut(half) {
            if let Some(last) = px.last_mut() {
                *last = pack(z, 0);
            }
        }
    }
    for (y, src_row) in input.chunks_exact((w * c).max(1)).enumerate().take(h) {
        let Some(dst_row) = x.get_mut((y + 1) * row_words + half..(y + 2) * row_words - half)
        else {
            return;
        };
        if c % 2 == 0 {
            widen_even(src_row, dst_row);
        } else {
            for (d, s) in dst_row.chunks_exact_mut(half).zip(src_row.chunks_exact(c)) {
                for (q, d) in d.iter_mut().enumerate() {
                    let v = |i: usize| s.get(i).map_or(0, |&b| i16::from(b as i8));
                    *d = pack(v(2 * q), v(2 * q + 1));
                }
            }
        }
    }
}

/// Sign-extends `src` into packed pairs in order (`dst[q]` = `src[2q], src[2q + 1]`),
/// sixteen bytes per `vpmovsxbw`.
#[inline]
#[target_feature(enable = "avx2")]
fn widen_even(src: &[u8], dst: &mut [u32]) {
    let mut d8 = dst.chunks_exact_mut(LANES);
    let mut s16 = src.chunks_exact(2 * LANES);
    for (d, s) in (&mut d8).zip(&mut s16) {
        let half = |i: usize| {
            i64::from_le_bytes(core::array::from_fn(|k| {
                s.get(8 * i + k).copied().unwrap_or(0)
            }))
        };
        let v = _mm256_cvtepi8_epi16(_mm_set_epi64x(half(1), half(0)));
        #[allow(unsafe_code)]
        // SAFETY: `d` is eight `u32`, the 32 bytes the unaligned store writes.
        unsafe {
            _mm256_storeu_si256(d.as_mut_ptr().cast::<__m256i>(), v);
        }
    }
    for (d, s) in d8
        .into_remainder()
        .iter_mut()
        .zip(s16.remainder().chunks_exact(2))
    {
        *d = pack(i16::from(s[0] as i8), i16::from(s[1] as i8));
    }
}

/// The weights of every phase in lanes: word `((phase * blocks + b) * taps + t) *
/// half * 8 + q * 8 + g` of `dst` is the pair `q` of merged tap `t` of output channel
/// `8 b + g`
/// (`i16` sums of the original int8 taps, as in the `conv` module docs; the 3x3 taps
/// themselves without upsampling).
#[inline(always)]
fn merge_lanes<const C: usize>(
    weights: &[u8],
    c: usize,
    out_ch: usize,
    upsample: bool,
    dst: &mut [u32],
) {
    let c = if C == 0 { c } else { C };
    let half = padded(c) / 2;
    let blocks = out_ch / LANES;
    let (phases, taps) = if upsample { (4, 4) } else { (1, 9) };
    let block_words = taps * half * LANES;
    // One channel's 3x3 taps widened to `i16`, and its merged taps.
    let mut wide = [0i16; 9 * (crate::model::MAX_CONV_IN_CH + 1)];
    let mut sum = [0i16; crate::model::MAX_CONV_IN_CH + 1];
    let cp = 2 * half;
    for (o, w) in weights
        .chunks_exact((9 * c).max(1))
        .enumerate()
        .take(out_ch)
    {
        let Some(wide) = wide.get_mut(..9 * cp) else {
            return;
        };
        for (d, s) in wide.chunks_exact_mut(cp).zip(w.chunks_exact(c.max(1))) {
            for (d, &s) in d.iter_mut().zip(s) {
                *d = i16::from(s as i8);
            }
        }
        let Some(sum) = sum.get_mut(..cp) else {
            return;
        };
        let (b, g) = (o / LANES, o % LANES);
        for ph in 0..phases {
            let base = (ph * blocks + b) * block_words;
            for t in 0..taps {
                let (ys, xs) = if upsample {
                    (MERGED[ph / 2][t / 2], MERGED[ph % 2][t % 2])
                } else {
                    ((t / 3, t / 3 + 1), (t % 3, t % 3 + 1))
                };
                sum.fill(0);
                for ky in ys.0..ys.1 {
                    for kx in xs.0..xs.1 {
                        for (s, &v) in sum.iter_mut().zip(&wide[(3 * ky + kx) * cp..][..cp]) {
                            *s += v;
                        }
                    }
                }
                for (q, pair) in sum.chunks_exact(2).enumerate() {
                    if let Some(d) = dst.get_mut(base + (t * half + q) * LANES + g) {
                        *d = pack(pair[0], pair[1]);
                    }
                }
            }
        }
    }
}
