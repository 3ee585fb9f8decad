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
//! the `std` feature, run-time detection ([`available`]). Everything else keeps the
//! SSE2 kernels.

use core::arch::x86_64::{
    __m256i, _mm_cvtsi128_si64, _mm_packs_epi16, _mm_packs_epi32, _mm_set_epi64x, _mm256_add_epi32,
    _mm256_blend_epi32, _mm256_castsi256_si128, _mm256_cvtepi8_epi16, _mm256_extract_epi32,
    _mm256_extracti128_si256, _mm256_madd_epi16, _mm256_max_epi32, _mm256_min_epi32,
    _mm256_mul_epi32, _mm256_set_epi32, _mm256_set1_epi32, _mm256_srav_epi32, _mm256_srli_epi64,
    _mm256_storeu_si256,
};

use super::{MERGED, pack, padded};
use crate::ops::channels;
use crate::ops::requant::Rescale;
use crate::{Layer, LayerShape};

/// Output channels per vector.
const LANES: usize = 8;
/// Most output channels this path takes (their parameters live on the stack).
const MAX_OUT_CH: usize = 32;
/// `u32` words of the padded input image, `(h + 2) * (w + 2) * cp / 2` (16 KiB).
const MAX_IN_WORDS: usize = 4096;
/// `u32` words of merged weights, `phases * taps * cp / 2 * out_ch` (16 KiB).
const MAX_W_WORDS: usize = 4096;
/// Pixels per pass sharing the weight loads.
const PIXELS: usize = 4;

/// Whether the CPU runs AVX2: always with `target_feature = "avx2"` at compile time;
/// otherwise asked at run time with the `std` feature (and in this crate's unit
/// tests), and `false` without it.
#[inline]
pub fn available() -> bool {
    #[cfg(target_feature = "avx2")]
    {
        true
    }
    #[cfg(all(not(target_feature = "avx2"), any(test, feature = "std")))]
    {
        std::is_x86_feature_detected!("avx2")
    }
    #[cfg(all(not(target_feature = "avx2"), not(any(test, feature = "std"))))]
    {
        false
    }
}

/// Whether this path takes `layer`: a convolution with a multiple of eight output
/// channels, at most [`MAX_OUT_CH`], whose padded input and merged weights fit the
/// stack buffers.
pub(super) fn fits(layer: &Layer<'_>) -> bool {
    let LayerShape::Conv3x3 {
        in_ch,
        out_ch,
        in_h,
        in_w,
        upsample,
    } = layer.shape()
    else {
        return false;
    };
    let (c, out_ch) = (in_ch as usize, out_ch as usize);
    let half = padded(c) / 2;
    let (phases, taps) = if upsample { (4, 4) } else { (1, 9) };
    out_ch.is_multiple_of(LANES)
        && out_ch > 0
        && out_ch <= MAX_OUT_CH
        && (in_h as usize + 2) * (in_w as usize + 2) * half <= MAX_IN_WORDS
        && phases * taps * half * out_ch <= MAX_W_WORDS
}

/// Runs the whole map of a layer that [`fits`]: `input` is the whole input
/// (`in_h * in_w * in_ch` bytes), `output` the whole output. `C` is `in_ch` when it is
/// a compile-time constant, else 0.
///
/// Callers must check [`available`] first (the `target_feature` makes the call
/// `unsafe` where AVX2 is not enabled at compile time).
#[inline(never)]
#[target_feature(enable = "avx2")]
pub(super) fn conv_whole<const C: usize>(layer: &Layer<'_>, input: &[u8], output: &mut [u8]) {
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
    debug_assert!(fits(layer), "conv_whole on a layer that does not fit");
    let c = if C == 0 { in_ch as usize } else { C };
    let (out_ch, h, w) = (out_ch as usize, in_h as usize, in_w as usize);
    let half = padded(c) / 2;
    let p = layer.params();

    // The padded input, `[padded row][padded column][pair]`.
    let row_words = (w + 2) * half;
    let mut xbuf = [0u32; MAX_IN_WORDS];
    let Some(x) = xbuf.get_mut(..(h + 2) * row_words) else {
        return;
    };
    widen_padded::<C>(input, x, c, h, w, p.in_zero_point);
    let x: &[u32] = x;

    // Per block of eight channels: the requantisation, and the weights of every tap of
    // the 3x3 kernel in lanes (`[block][tap][pair][lane]`), merged per phase below.
    let blocks = out_ch / LANES;
    let (phases, taps, k) = if upsample { (4, 4, 2) } else { (1, 9, 3) };
    let block_words = taps * half * LANES;
    let mut wbuf = [0u32; MAX_W_WORDS];
    let Some(wm) = wbuf.get_mut(..phases * blocks * block_words) else {
        return;
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
    merge_lanes::<C>(p.weights, c, out_ch, upsample, wm);
    let wm: &[u32] = wm;

    let (stride, out_w) = if upsample { (2, 2 * w) } else { (1, w) };
    for ph in 0..phases {
        let (py, px) = (ph / 2, ph % 2);
        for (b, rq) in requants.iter().enumerate().take(blocks) {
            let wv = &wm[(ph * blocks + b) * block_words..][..block_words];
            for i in 0..h {
                let oy = stride * i + py;
                let out_at = |j: usize| (oy * out_w + stride * j + px) * out_ch + b * LANES;
                let x_at = |j: usize| (i + py) * row_words + (j + px) * half;
                let mut j = 0;
                while j + PIXELS <= w {
                    let acc = pixels::<C, PIXELS>(wv, x, x_at(j), row_words, half, k, rq.bias);
                    for (d, acc) in acc.into_iter().enumerate() {
                        store8(output, out_at(j + d), rq.apply(acc));
                    }
                    j += PIXELS;
                }
                for j in j..w {
                    let [acc] = pixels::<C, 1>(wv, x, x_at(j), row_words, half, k, rq.bias);
                    store8(output, out_at(j), rq.apply(acc));
                }
            }
        }
    }
}

/// `P` neighbouring output pixels of one block of eight channels: the `k x k` taps of
/// the block's weights `wv` (`[tap][pair][lane]`) against the padded input from word
/// `at` (pixel `d` starts `d * half` words later, kernel row `ty` `ty * row_words`),
/// each accumulator started at `bias`.
#[inline]
#[target_feature(enable = "avx2")]
fn pixels<const C: usize, const P: usize>(
    wv: &[u32],
    x: &[u32],
    at: usize,
    row_words: usize,
    half: usize,
    k: usize,
    bias: __m256i,
) -> [__m256i; P] {
    let h = if C == 0 { half } else { padded(C) / 2 };
    let mut acc = [bias; P];
    for ty in 0..k {
        for tx in 0..k {
            let start = at + ty * row_words + tx * h;
            let Some(xs) = x.get(start..start + P * h) else {
                return acc;
            };
            let Some(ws) = wv.get((ty * k + tx) * h * LANES..(ty * k + tx + 1) * h * LANES) else {
                return acc;
            };
            for (q, wq) in ws.chunks_exact(LANES).enumerate() {
                let wq = load8(wq);
                for (d, a) in acc.iter_mut().enumerate() {
                    let xv = _mm256_set1_epi32(xs[d * h + q] as i32);
                    *a = _mm256_add_epi32(*a, _mm256_madd_epi16(wq, xv));
                }
            }
        }
    }
    acc
}

/// Eight words from the start of `x` (compiles to one unaligned load).
#[inline]
#[target_feature(enable = "avx2")]
fn load8(x: &[u32]) -> __m256i {
    let x = &x[..LANES];
    _mm256_set_epi32(
        x[7] as i32,
        x[6] as i32,
        x[5] as i32,
        x[4] as i32,
        x[3] as i32,
        x[2] as i32,
        x[1] as i32,
        x[0] as i32,
    )
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

/// The weights of every phase in lanes: `dst[((phase * blocks + b) * taps + t) * half
/// * 8 + q * 8 + g]` is the pair `q` of merged tap `t` of output channel `8 b + g`
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

/// The requantisation of eight channels, lane by lane: [`Rescale`] in the high-word
/// form when every channel's shift is 33 or more (`vpmuldq` for the products, a
/// per-lane arithmetic shift, then the clamp), else channel by channel.
#[derive(Clone, Copy)]
pub(super) struct Requant8 {
    /// The accumulators' start values.
    bias: __m256i,
    multiplier: __m256i,
    /// The multipliers of the odd lanes, in the low halves of the 64-bit lanes.
    multiplier_odd: __m256i,
    round: __m256i,
    shift: __m256i,
    zero_point: __m256i,
    min: __m256i,
    /// `Some` when a channel's shift is below 33.
    scalar: Option<[Rescale; LANES]>,
}

impl Requant8 {
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) fn new(ps: &[Rescale]) -> Requant8 {
        let ps: [Rescale; LANES] =
            core::array::from_fn(|g| ps.get(g).copied().unwrap_or(Rescale::ZERO));
        let parts = ps.map(|p| p.high_word_parts());
        let part = |k: usize| {
            let v: [i32; LANES] = core::array::from_fn(|g| parts[g].map_or(0, |p| p[k]));
            load8(&v.map(|v| v as u32))
        };
        let bias: [u32; LANES] = core::array::from_fn(|g| ps[g].bias as u32);
        let multiplier = part(0);
        Requant8 {
            bias: load8(&bias),
            multiplier,
            multiplier_odd: _mm256_srli_epi64::<32>(multiplier),
            round: part(1),
            shift: part(2),
            zero_point: part(3),
            min: part(4),
            scalar: parts.iter().any(Option::is_none).then_some(ps),
        }
    }

    /// `Rescale::apply` of each lane of `acc` (which includes the bias), the eight
    /// bytes little-endian.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) fn apply(&self, acc: __m256i) -> u64 {
        if let Some(ps) = &self.scalar {
            let a = lanes(acc);
            return u64::from_le_bytes(core::array::from_fn(|g| ps[g].apply(a[g])));
        }
        // `floor(acc * multiplier / 2^32)` per lane: the even lanes' products shifted
        // down, the odd lanes' high halves where they are.
        let even = _mm256_mul_epi32(acc, self.multiplier);
        let odd = _mm256_mul_epi32(_mm256_srli_epi64::<32>(acc), self.multiplier_odd);
        let hi = _mm256_blend_epi32::<0b1010_1010>(_mm256_srli_epi64::<32>(even), odd);
        let v = _mm256_srav_epi32(_mm256_add_epi32(hi, self.round), self.shift);
        let v = _mm256_add_epi32(v, self.zero_point);
        let v = _mm256_min_epi32(_mm256_max_epi32(v, self.min), _mm256_set1_epi32(127));
        // Every lane is in -128..=127: the saturating packs are exact.
        let v16 = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
        _mm_cvtsi128_si64(_mm_packs_epi16(v16, v16)) as u64
    }
}

/// The eight `i32` lanes of `v`, in order.
#[inline]
#[target_feature(enable = "avx2")]
fn lanes(v: __m256i) -> [i32; LANES] {
    [
        _mm256_extract_epi32::<0>(v),
        _mm256_extract_epi32::<1>(v),
        _mm256_extract_epi32::<2>(v),
        _mm256_extract_epi32::<3>(v),
        _mm256_extract_epi32::<4>(v),
        _mm256_extract_epi32::<5>(v),
        _mm256_extract_epi32::<6>(v),
        _mm256_extract_epi32::<7>(v),
    ]
}
