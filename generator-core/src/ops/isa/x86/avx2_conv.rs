//! The AVX2 kernels of the phase-split convolution (module `conv::phase`), used where
//! the CPU has AVX2 (compile-time `target_feature = "avx2"`, or with the `std` feature
//! run-time detection, [`super::avx2::available`]).
//!
//! - [`Avx2Lanes`], for multiples of eight output channels (the default model's two
//!   upsampling layers): one `i32` lane per output channel, eight channels per vector.
//!   Each phase's merged weights are one vector per (tap, input pair), lane `g` holding
//!   the pair's two weights of channel `g` (the driver's merge with groups of eight).
//!   An output pixel is then `taps * cp / 2` times `acc += pmaddwd(weights,
//!   broadcast(input pair))` (`vpmaddwd`: two exact `i16` products summed into each
//!   `i32` lane, the same integer sum as the reference), four pixels at a time sharing
//!   the weight loads and two blocks of eight sharing the broadcasts. The eight sums
//!   are requantised together ([`Requant8`]) and stored as eight bytes.
//! - [`Avx2Pixels`], for other channel counts without upsampling (the last layer,
//!   8 -> 1): one lane per output pixel. Its ring rows hold one plane per channel pair
//!   (`[pair][padded column]`, [`plane_row`] words each), so that eight neighbouring
//!   pixels of a pair are one load; each output channel's weight pair is broadcast,
//!   and four vectors of eight pixels share it.
//!
//! The trait's methods are safe functions that call `#[target_feature(enable =
//! "avx2")]` ones: they run only inside the AVX2 entry points of `conv`, which the
//! dispatch enters after [`super::avx2::available`].

use core::arch::x86_64::{
    __m128i, __m256i, _mm_loadu_si128, _mm256_add_epi32, _mm256_cvtepi8_epi16, _mm256_madd_epi16,
    _mm256_permutevar8x32_epi32, _mm256_set1_epi32, _mm256_setr_epi32, _mm256_storeu_si256,
    _mm256_unpackhi_epi32, _mm256_unpackhi_epi64, _mm256_unpacklo_epi32, _mm256_unpacklo_epi64,
};

use super::avx2::{LANES, Requant8, load8};
use crate::ops::conv::phase::{FAST_MAX_OUT_CH, PhaseKernel, Row};
use crate::ops::isa::{pack, padded, portable};
use crate::ops::kernel::Kernel;
use crate::ops::requant::Rescale;

/// Pixels per pass sharing the weight loads.
const PIXELS: usize = 4;

/// The AVX2 kernel with one lane per output channel.
#[derive(Clone, Copy)]
pub(crate) struct Avx2Lanes;

impl PhaseKernel for Avx2Lanes {
    const ID: Kernel = Kernel::Avx2;
    const GROUP: usize = LANES;
    const WHOLE_GROUPS: bool = true;
    /// The requantisation of the block's one or two groups of eight channels.
    type Block = [Requant8; 2];

    #[inline(always)]
    fn block(params: &[Rescale]) -> [Requant8; 2] {
        #[allow(unsafe_code)]
        // SAFETY: runs only in the AVX2 entry points (module docs).
        unsafe {
            lanes_block(params)
        }
    }

    #[inline(always)]
    fn widen(src: &[u8], dst: &mut [u32]) {
        #[allow(unsafe_code)]
        // SAFETY: runs only in the AVX2 entry points (module docs).
        unsafe {
            widen_even(src, dst)
        }
    }

    #[inline(always)]
    fn row<const C: usize, const K: usize>(
        x: &[&[u32]; K],
        wm: &[u32],
        params: &[Rescale],
        block: &[Requant8; 2],
        at: &Row,
        out: &mut [u8],
    ) {
        #[allow(unsafe_code)]
        // SAFETY: runs only in the AVX2 entry points (module docs).
        unsafe {
            lanes_row::<C, K>(x, wm, params.len(), block, at, out)
        }
    }
}

/// The AVX2 kernel with one lane per output pixel.
#[derive(Clone, Copy)]
pub(crate) struct Avx2Pixels;

impl PhaseKernel for Avx2Pixels {
    const ID: Kernel = Kernel::Avx2Pixels;
    const GROUP: usize = 1;
    /// Each channel's requantisation in all eight lanes.
    type Block = [Requant8; FAST_MAX_OUT_CH];

    #[inline(always)]
    fn block(params: &[Rescale]) -> [Requant8; FAST_MAX_OUT_CH] {
        #[allow(unsafe_code)]
        // SAFETY: runs only in the AVX2 entry points (module docs).
        unsafe {
            pixels_block(params)
        }
    }

    #[inline(always)]
    fn row_words(c: usize, w: usize) -> usize {
        padded(c) / 2 * plane_row(w)
    }

    #[inline(always)]
    fn fill_row<const C: usize>(dst: &mut [u32], src: Option<&[u8]>, c: usize, w: usize, zp: i16) {
        #[allow(unsafe_code)]
        // SAFETY: runs only in the AVX2 entry points (module docs).
        unsafe {
            fill_planes::<C>(dst, src, c, w, zp)
        }
    }

    #[inline(always)]
    fn row<const C: usize, const K: usize>(
        x: &[&[u32]; K],
        wm: &[u32],
        params: &[Rescale],
        block: &[Requant8; FAST_MAX_OUT_CH],
        at: &Row,
        out: &mut [u8],
    ) {
        #[allow(unsafe_code)]
        // SAFETY: runs only in the AVX2 entry points (module docs).
        unsafe {
            pixels_row::<C, K>(x, wm, &block[..params.len().min(FAST_MAX_OUT_CH)], at, out)
        }
    }
}

/// Words of a row of one pair plane of [`Avx2Pixels`]: the padded row rounded so that
/// eight-pixel loads at every column start stay inside it.
pub(crate) const fn plane_row(w: usize) -> usize {
    w.next_multiple_of(LANES) + 2
}

/// [`Avx2Lanes`]' block: the requantisation of its one or two groups of eight
/// channels (the first again where there is one).
#[inline]
#[target_feature(enable = "avx2")]
fn lanes_block(params: &[Rescale]) -> [Requant8; 2] {
    let first = Requant8::new(params.get(..LANES).unwrap_or(params));
    let second = match params.get(LANES..2 * LANES) {
        Some(p) => Requant8::new(p),
        None => first,
    };
    [first, second]
}

/// [`Avx2Lanes`]' row: the block's `n` channels, one or two groups of eight.
#[inline]
#[target_feature(enable = "avx2")]
fn lanes_row<const C: usize, const K: usize>(
    x: &[&[u32]; K],
    wm: &[u32],
    n: usize,
    rq: &[Requant8; 2],
    at: &Row,
    out: &mut [u8],
) {
    let c = if C == 0 { at.c } else { C };
    let half = padded(c) / 2;
    let block_words = K * K * half * LANES;
    debug_assert!(
        n == LANES || n == 2 * LANES,
        "blocks of whole groups, at most two"
    );
    if n == 2 * LANES {
        lanes_blocks::<C, 2, K>(x, wm, rq, at, half, block_words, out);
    } else {
        lanes_blocks::<C, 1, K>(x, wm, &[rq[0]], at, half, block_words, out);
    }
}

/// Every output pixel of the row for `NB` groups of eight channels, whose weights
/// start `wv` (group `n` at `n * block_words`).
#[inline]
#[target_feature(enable = "avx2")]
fn lanes_blocks<const C: usize, const NB: usize, const K: usize>(
    x: &[&[u32]; K],
    wv: &[u32],
    rq: &[Requant8; NB],
    at: &Row,
    half: usize,
    block_words: usize,
    out: &mut [u8],
) {
    let mut bias = [rq[0].bias; NB];
    for (b, r) in bias.iter_mut().zip(rq) {
        *b = r.bias;
    }
    let col = |j: usize| (j + at.px) * half;
    let mut j = 0;
    while j + PIXELS <= at.w {
        let acc = pixels::<C, PIXELS, NB, K>(wv, x, col(j), half, block_words, bias);
        store_pixels(out, rq, at, j, acc);
        j += PIXELS;
    }
    // The last one to three pixels in one pass too, sharing the weight loads.
    match at.w - j {
        3 => {
            let acc = pixels::<C, 3, NB, K>(wv, x, col(j), half, block_words, bias);
            store_pixels(out, rq, at, j, acc);
        }
        2 => {
            let acc = pixels::<C, 2, NB, K>(wv, x, col(j), half, block_words, bias);
            store_pixels(out, rq, at, j, acc);
        }
        1 => {
            let acc = pixels::<C, 1, NB, K>(wv, x, col(j), half, block_words, bias);
            store_pixels(out, rq, at, j, acc);
        }
        _ => {}
    }
}

/// Requantises and stores the sums of `P` pixels from input column `j` of `NB`
/// groups of eight channels. Always inlined (into [`lanes_blocks`], which has AVX2),
/// so that the requantisation inlines too.
#[inline(always)]
fn store_pixels<const P: usize, const NB: usize>(
    out: &mut [u8],
    rq: &[Requant8; NB],
    at: &Row,
    j: usize,
    acc: [[__m256i; NB]; P],
) {
    for (d, acc) in acc.into_iter().enumerate() {
        let o = (at.stride * (j + d) + at.px) * at.out_ch + at.first;
        for (n, acc) in acc.into_iter().enumerate() {
            #[allow(unsafe_code)]
            // SAFETY: runs only in the AVX2 entry points (module docs).
            let bytes = unsafe { rq[n].apply(acc) };
            store8(out, o + n * LANES, bytes);
        }
    }
}

/// `P` neighbouring output pixels of `NB` groups of eight channels: the `K x K` taps
/// of the groups' weights `wv` (`[group][tap][pair][lane]`, groups `block_words`
/// apart) against the ring rows `x` from word `col` (pixel `d` starts `d * half` words
/// later), each accumulator started at its group's bias. Each input pair is broadcast
/// once for the `NB` groups, each weight vector loaded once for the `P` pixels.
#[inline]
#[target_feature(enable = "avx2")]
fn pixels<const C: usize, const P: usize, const NB: usize, const K: usize>(
    wv: &[u32],
    x: &[&[u32]; K],
    col: usize,
    half: usize,
    block_words: usize,
    bias: [__m256i; NB],
) -> [[__m256i; NB]; P] {
    let h = if C == 0 { half } else { padded(C) / 2 };
    let tw = h * LANES;
    let mut acc = [bias; P];
    // Group `n`'s weights start `n * block_words` into `wv`; group 1 is read only when
    // `NB == 2`.
    let second = if NB == 2 { block_words } else { 0 };
    let (Some(w0), Some(w1)) = (wv.get(..K * K * tw), wv.get(second..second + K * K * tw)) else {
        return acc;
    };
    for (ty, x) in x.iter().enumerate() {
        // The `P + K - 1` padded pixels of this kernel row.
        let Some(xrow) = x.get(col..col + (P + K - 1) * h) else {
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

/// [`Avx2Pixels`]' block: each channel's requantisation in all eight lanes. Only the
/// first `params.len()` entries are read ([`pixels_row`]); the rest are copies of the
/// first, so that a block of one channel (the default model's last layer, once per
/// image) computes one [`Requant8`], not [`FAST_MAX_OUT_CH`].
#[inline]
#[target_feature(enable = "avx2")]
fn pixels_block(params: &[Rescale]) -> [Requant8; FAST_MAX_OUT_CH] {
    let first = Requant8::new(&[params.first().copied().unwrap_or(Rescale::ZERO); LANES]);
    let mut rqs = [first; FAST_MAX_OUT_CH];
    for (rq, r) in rqs.iter_mut().zip(params).skip(1) {
        *rq = Requant8::new(&[*r; LANES]);
    }
    rqs
}

/// [`Avx2Pixels`]' row: for each channel of the block, its 3x3 weights against
/// eight pixels per vector, four vectors per pass.
#[inline]
#[target_feature(enable = "avx2")]
fn pixels_row<const C: usize, const K: usize>(
    x: &[&[u32]; K],
    wm: &[u32],
    rqs: &[Requant8],
    at: &Row,
    out: &mut [u8],
) {
    let c = if C == 0 { at.c } else { C };
    let half = padded(c) / 2;
    let rs = plane_row(at.w);
    let fan = K * K * half;
    let w = at.w;
    for (o, rq) in rqs.iter().enumerate() {
        let Some(wo) = wm.get(o * fan..(o + 1) * fan) else {
            return;
        };
        let put = |out: &mut [u8], j: usize, bytes: u64| {
            let bytes = bytes.to_le_bytes();
            let n = LANES.min(w - j);
            if at.out_ch == 1 && at.stride == 1 {
                if let Some(d) = out.get_mut(j..j + n) {
                    d.copy_from_slice(&bytes[..n]);
                }
            } else {
                for (d, &b) in bytes.iter().enumerate().take(n) {
                    let i = (at.stride * (j + d) + at.px) * at.out_ch + at.first + o;
                    if let Some(dst) = out.get_mut(i) {
                        *dst = b;
                    }
                }
            }
        };
        let mut j = 0;
        while j + PIXELS * LANES <= w.next_multiple_of(LANES) {
            let acc = row_pixels::<C, PIXELS, K>(wo, x, j + at.px, rs, half, rq.bias);
            for (g, acc) in acc.into_iter().enumerate() {
                put(out, j + g * LANES, rq.apply(acc));
            }
            j += PIXELS * LANES;
        }
        while j < w {
            let [acc] = row_pixels::<C, 1, K>(wo, x, j + at.px, rs, half, rq.bias);
            put(out, j, rq.apply(acc));
            j += LANES;
        }
    }
}

/// `P` vectors of eight neighbouring output pixels of one channel: its weights `wo`
/// (`[tap][pair]`) against the pair planes of the ring rows `x` from column `at`
/// (plane `q` at word `q * rs`, vector `g` `8 g` words later), started at `bias`.
#[inline]
#[target_feature(enable = "avx2")]
fn row_pixels<const C: usize, const P: usize, const K: usize>(
    wo: &[u32],
    x: &[&[u32]; K],
    at: usize,
    rs: usize,
    half: usize,
    bias: __m256i,
) -> [__m256i; P] {
    let h = if C == 0 { half } else { padded(C) / 2 };
    let mut acc = [bias; P];
    for (ky, x) in x.iter().enumerate() {
        for kx in 0..K {
            for q in 0..h {
                let Some(&wq) = wo.get((K * ky + kx) * h + q) else {
                    return acc;
                };
                let wv = _mm256_set1_epi32(wq as i32);
                let start = q * rs + at + kx;
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

/// [`Avx2Pixels`]' ring row: the pair planes of one padded input row (`src`, `None`
/// for the padding rows), the zero point all round (an odd count's padding slot: 0).
#[inline]
#[target_feature(enable = "avx2")]
fn fill_planes<const C: usize>(dst: &mut [u32], src: Option<&[u8]>, c: usize, w: usize, zp: i16) {
    let c = if C == 0 { c } else { C };
    let half = padded(c) / 2;
    let rs = plane_row(w);
    dst.fill(pack(zp, zp));
    let Some(row) = src else {
        return;
    };
    // Eight channels: eight pixels at a time in vectors, the rest below.
    let done = if c == 8 {
        let done = planes8(row, dst, 1, rs);
        // The last pixels through a copy padded with the zero point, which is what
        // the padding column right of the row holds anyway; the rest of the group
        // lands in columns no output reads (`plane_row` leaves room for it).
        let tail = row.get(8 * done..).unwrap_or(&[]);
        if tail.is_empty() {
            done
        } else {
            let mut tmp = [zp as i8 as u8; 64];
            tmp[..tail.len().min(64)].copy_from_slice(&tail[..tail.len().min(64)]);
            planes8(&tmp, dst, 1 + done, rs);
            w
        }
    } else {
        0
    };
    for (col, px) in row.chunks_exact(c.max(1)).enumerate().skip(done) {
        for q in 0..half {
            let v = |i: usize| px.get(i).map_or(0, |&b| i16::from(b as i8));
            if let Some(d) = dst.get_mut(q * rs + col + 1) {
                *d = pack(v(2 * q), v(2 * q + 1));
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

/// Sign-extends `src` into packed pairs in order (`dst[q]` = `src[2q], src[2q + 1]`),
/// sixteen bytes per `vpmovsxbw`.
#[inline]
#[target_feature(enable = "avx2")]
fn widen_even(src: &[u8], dst: &mut [u32]) {
    let mut d8 = dst.chunks_exact_mut(LANES);
    let mut s16 = src.chunks_exact(2 * LANES);
    for (d, s) in (&mut d8).zip(&mut s16) {
        #[allow(unsafe_code)]
        // SAFETY: `s` is the 16 bytes the unaligned load reads (`chunks_exact`).
        let v = _mm256_cvtepi8_epi16(unsafe { _mm_loadu_si128(s.as_ptr().cast::<__m128i>()) });
        #[allow(unsafe_code)]
        // SAFETY: `d` is eight `u32`, the 32 bytes the unaligned store writes.
        unsafe {
            _mm256_storeu_si256(d.as_mut_ptr().cast::<__m256i>(), v);
        }
    }
    portable::widen(s16.remainder(), d8.into_remainder());
}
