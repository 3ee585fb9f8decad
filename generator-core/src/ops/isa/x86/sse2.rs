//! The SSE2 kernel of the phase-split convolution: the packed-pair loops with
//! `pmaddwd` (the four channels' weight pairs of one input word multiplied and summed
//! per instruction) and an eight-byte widening. SSE2 is part of the x86-64 baseline,
//! so no run-time detection.

use core::arch::x86_64::{
    __m128i, _mm_add_epi32, _mm_cvtsi128_si32, _mm_madd_epi16, _mm_set_epi32, _mm_set_epi64x,
    _mm_set1_epi32, _mm_shuffle_epi32, _mm_srai_epi16, _mm_storeu_si128, _mm_unpacklo_epi8,
};

use crate::ops::conv::phase::PhaseKernel;
use crate::ops::isa::{pack, smlad};
use crate::ops::kernel::Kernel;
use crate::ops::requant::Rescale;

/// The SSE2 kernel. Its methods call `#[target_feature(enable = "sse2")]` functions;
/// SSE2 is enabled for the whole build (`cfg(target_feature = "sse2")` on this module).
#[derive(Clone, Copy)]
pub(crate) struct Sse2;

impl PhaseKernel for Sse2 {
    const ID: Kernel = Kernel::Sse2;
    type Block = ();

    #[inline(always)]
    fn block(_: &[Rescale]) {}

    #[inline(always)]
    fn widen(src: &[u8], dst: &mut [u32]) {
        #[allow(unsafe_code)]
        // SAFETY: SSE2 is enabled for the whole build (this module's cfg).
        unsafe {
            widen(src, dst)
        }
    }

    #[inline(always)]
    fn dot4ch<const K: usize>(
        w4: &[u32],
        seg: usize,
        x: &[&[u32]; K],
        col: usize,
        acc: [i32; 4],
    ) -> [i32; 4] {
        #[allow(unsafe_code)]
        // SAFETY: as for `widen`.
        unsafe {
            dot4ch::<K>(w4, seg, x, col, acc)
        }
    }

    #[inline(always)]
    fn dot4px<const K: usize>(
        w: &[u32],
        seg: usize,
        x: &[&[u32]; K],
        col: usize,
        step: usize,
        acc: [i32; 4],
    ) -> [i32; 4] {
        #[allow(unsafe_code)]
        // SAFETY: as for `widen`.
        unsafe {
            dot4px::<K>(w, seg, x, col, step, acc)
        }
    }
}

/// Four words from the start of `x` (compiles to one unaligned load).
#[inline]
#[target_feature(enable = "sse2")]
fn load(x: &[u32]) -> __m128i {
    let x = &x[..4];
    _mm_set_epi32(x[3] as i32, x[2] as i32, x[1] as i32, x[0] as i32)
}

/// `PhaseKernel::dot4ch`: lane `g` accumulates channel `g`, the interleaved weights of
/// input word `k` against that word in every lane.
#[inline]
#[target_feature(enable = "sse2")]
fn dot4ch<const K: usize>(
    w4: &[u32],
    seg: usize,
    x: &[&[u32]; K],
    col: usize,
    start: [i32; 4],
) -> [i32; 4] {
    debug_assert!(w4.len() >= 4 * K * seg, "weights of four channels expected");
    let Some(w4) = w4.get(..4 * K * seg) else {
        return start;
    };
    let mut acc = load(&start.map(|a| a as u32));
    for (ky, x) in x.iter().enumerate() {
        debug_assert!(x.len() >= col + seg, "padded row too short");
        let Some(x) = x.get(col..col + seg) else {
            return start;
        };
        let w = &w4[4 * ky * seg..][..4 * seg];
        for (wk, &xk) in w.chunks_exact(4).zip(x) {
            acc = _mm_add_epi32(acc, _mm_madd_epi16(load(wk), _mm_set1_epi32(xk as i32)));
        }
    }
    [
        _mm_cvtsi128_si32(acc),
        _mm_cvtsi128_si32(_mm_shuffle_epi32::<0b01>(acc)),
        _mm_cvtsi128_si32(_mm_shuffle_epi32::<0b10>(acc)),
        _mm_cvtsi128_si32(_mm_shuffle_epi32::<0b11>(acc)),
    ]
}

/// `PhaseKernel::dot4px`: each pixel's run against the weights four words (eight
/// products) per `pmaddwd`, summed across lanes at the end.
#[inline]
#[target_feature(enable = "sse2")]
fn dot4px<const K: usize>(
    w: &[u32],
    seg: usize,
    x: &[&[u32]; K],
    col: usize,
    step: usize,
    start: [i32; 4],
) -> [i32; 4] {
    let mut acc = [_mm_set1_epi32(0); 4];
    let mut tail = start;
    let body = seg / 4 * 4;
    for (ky, x) in x.iter().enumerate() {
        let Some(w) = w.get(ky * seg..(ky + 1) * seg) else {
            return tail;
        };
        for (d, (a, t)) in acc.iter_mut().zip(&mut tail).enumerate() {
            let Some(x) = x.get(col + d * step..col + d * step + seg) else {
                return start;
            };
            for k in (0..body).step_by(4) {
                *a = _mm_add_epi32(*a, _mm_madd_epi16(load(&w[k..]), load(&x[k..])));
            }
            for k in body..seg {
                *t = smlad(w[k], x[k], *t);
            }
        }
    }
    let sum = |v: __m128i| {
        let v = _mm_add_epi32(v, _mm_shuffle_epi32::<0b1110>(v));
        _mm_cvtsi128_si32(_mm_add_epi32(v, _mm_shuffle_epi32::<0b01>(v)))
    };
    [
        tail[0] + sum(acc[0]),
        tail[1] + sum(acc[1]),
        tail[2] + sum(acc[2]),
        tail[3] + sum(acc[3]),
    ]
}

/// `PhaseKernel::widen` eight bytes at a time: interleaving the bytes with themselves
/// and shifting each 16-bit lane right by 8 sign-extends them, and the eight `i16` in
/// memory order are the four packed pairs.
#[inline]
#[target_feature(enable = "sse2")]
fn widen(src: &[u8], dst: &mut [u32]) {
    let mut d4 = dst.chunks_exact_mut(4);
    let mut s8 = src.chunks_exact(8);
    for (d, s) in (&mut d4).zip(&mut s8) {
        let b = i64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]);
        let v = _mm_set_epi64x(0, b);
        let w = _mm_srai_epi16::<8>(_mm_unpacklo_epi8(v, v));
        #[allow(unsafe_code)]
        // SAFETY: `d` is four `u32`, the 16 bytes the unaligned store writes.
        unsafe {
            _mm_storeu_si128(d.as_mut_ptr().cast::<__m128i>(), w);
        }
    }
    for (d, s) in d4
        .into_remainder()
        .iter_mut()
        .zip(s8.remainder().chunks_exact(2))
    {
        *d = pack(i16::from(s[0] as i8), i16::from(s[1] as i8));
    }
}
