//! Portable Rust dot products on packed `i16` pairs, in the shape of the Arm DSP
//! extension's `SMLAD` (`acc + lo(a) * lo(b) + hi(a) * hi(b)`).
//!
//! They are written over [`super::smlad`], which is one instruction on `cfg(arm_dsp)`
//! targets and the model below elsewhere, so the host tests run the very code that
//! Cortex-M0/M3 run (and that the Cortex-M4's assembly in `arm_dsp` replaces in its two
//! hottest loops). The portable convolution kernel (`conv::phase::Portable`) is the
//! phase-split driver's default loops over them.

use super::{pack, smlad, sxtb16, sxtb16_ror8};

/// `acc + lo(a) * lo(b) + hi(a) * hi(b)` with the halves as signed 16-bit values,
/// wrapping in `i32` as `SMLAD` does (the kernels' sums never overflow).
#[cfg_attr(arm_dsp, allow(dead_code))] // there: tests only
#[inline(always)]
pub(crate) fn smlad_model(a: u32, b: u32, acc: i32) -> i32 {
    let lo = i32::from(a as i16) * i32::from(b as i16);
    let hi = i32::from((a >> 16) as i16) * i32::from((b >> 16) as i16);
    acc.wrapping_add(lo).wrapping_add(hi)
}

/// The halves of `a` and `b` added as two `i16` (wrapping): the model of `SADD16`.
// Only the Arm DSP kernel merges with it (`cfg(arm_dsp_kernel)`), and on `arm_dsp`
// targets only the tests do.
#[cfg_attr(any(arm_dsp, not(arm_dsp_kernel)), allow(dead_code))]
#[inline(always)]
pub(crate) fn sadd16_model(a: u32, b: u32) -> u32 {
    let lo = (a as i16).wrapping_add(b as i16);
    let hi = ((a >> 16) as i16).wrapping_add((b >> 16) as i16);
    pack(lo, hi)
}

/// Bytes 0 and 2 of `x`, each sign-extended to 16 bits, packed (byte 0 low): the model
/// of `SXTB16`.
#[cfg_attr(arm_dsp, allow(dead_code))] // there: tests only
#[inline(always)]
pub(crate) fn sxtb16_model(x: u32) -> u32 {
    pack(i16::from(x as u8 as i8), i16::from((x >> 16) as u8 as i8))
}

/// Bytes 1 and 3 of `x`, sign-extended and packed (byte 1 low): [`sxtb16_model`] of `x`
/// rotated by 8 bits.
#[cfg_attr(arm_dsp, allow(dead_code))] // there: tests only
#[inline(always)]
pub(crate) fn sxtb16_ror8_model(x: u32) -> u32 {
    sxtb16_model(x.rotate_right(8))
}

/// Sign-extends int8 bytes into packed pairs, in order: `dst[q]` holds
/// `src[2q], src[2q + 1]`. `src.len() == 2 * dst.len()`.
#[inline(always)]
pub(crate) fn widen(src: &[u8], dst: &mut [u32]) {
    for (d, s) in dst.iter_mut().zip(src.chunks_exact(2)) {
        *d = pack(i16::from(s[0] as i8), i16::from(s[1] as i8));
    }
}

/// A pixel of `c` int8 channels as `dst.len()` packed pairs, the padding slot of an
/// odd count 0.
#[inline(always)]
pub(crate) fn widen_pixel(src: &[u8], dst: &mut [u32]) {
    for (q, d) in dst.iter_mut().enumerate() {
        let v = |i: usize| src.get(i).map_or(0, |&x| i16::from(x as i8));
        *d = pack(v(2 * q), v(2 * q + 1));
    }
}

/// `sum(w[k] as i8 * x[k])` by pairs: int8 weights (sign-extended two at a time)
/// against inputs already widened to `i16`. The linear layer's dot product on CPUs
/// without the DSP extension.
#[cfg_attr(arm_dsp, allow(dead_code))] // there: tests only
#[inline]
pub(crate) fn dot_i8(w: &[u8], x: &[i16]) -> i32 {
    let (wp, xp) = (w.chunks_exact(2), x.chunks_exact(2));
    let tail = wp.remainder().iter().zip(xp.remainder());
    let mut acc = 0i32;
    for (w, x) in wp.zip(xp) {
        let lo = u32::from(i16::from(w[0] as i8) as u16);
        let hi = u32::from(i16::from(w[1] as i8) as u16);
        acc = smlad(lo | (hi << 16), pack(x[0], x[1]), acc);
    }
    for (&w, &x) in tail {
        acc = acc.wrapping_add(i32::from(w as i8) * i32::from(x));
    }
    acc
}

/// The int8 inputs of a dot product for [`dot_i8_sxtb16`]: each group of four bytes
/// `x0..x3` becomes the two words `[x0 | x2]`, `[x1 | x3]` (the order `SXTB16` and
/// `SXTB16 ROR #8` take a weight word apart in). Returns the number of words written
/// (`2 * (len / 4)`); the last `len % 4` inputs are left to the caller.
#[inline]
pub(crate) fn widen_sxtb16(x: &[u8], dst: &mut [u32]) -> usize {
    let mut n = 0;
    for (d, s) in dst.chunks_exact_mut(2).zip(x.chunks_exact(4)) {
        let v = u32::from_le_bytes([s[0], s[1], s[2], s[3]]);
        d[0] = sxtb16(v);
        d[1] = sxtb16_ror8(v);
        n += 2;
    }
    n
}

/// `acc + sum(w[k] as i8 * x[k])` with `xw` from [`widen_sxtb16`] of the first
/// `4 * (w.len() / 4)` inputs and `tail` the remaining inputs (bytes): per four
/// weights one word load, two `SXTB16` and two `SMLAD`.
#[inline(always)]
pub(crate) fn dot_i8_sxtb16(w: &[u8], xw: &[u32], tail: &[u8], mut acc: i32) -> i32 {
    let wq = w.chunks_exact(4);
    let wt = wq.remainder();
    for (w, x) in wq.zip(xw.chunks_exact(2)) {
        let v = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        acc = smlad(sxtb16(v), x[0], acc);
        acc = smlad(sxtb16_ror8(v), x[1], acc);
    }
    for (&w, &x) in wt.iter().zip(tail) {
        acc = acc.wrapping_add(i32::from(w as i8) * i32::from(x as i8));
    }
    acc
}

/// Two rows of int8 weights (`wa`, `wb`, equally long) against the same inputs, as
/// [`dot_i8_sxtb16`] does for one (`arm_dsp` has it in assembly).
#[cfg_attr(arm_dsp, allow(dead_code))] // there: tests only
#[inline(always)]
pub(crate) fn dot2_i8_sxtb16(
    wa: &[u8],
    wb: &[u8],
    xw: &[u32],
    tail: &[u8],
    acc: [i32; 2],
) -> [i32; 2] {
    [
        dot_i8_sxtb16(wa, xw, tail, acc[0]),
        dot_i8_sxtb16(wb, xw, tail, acc[1]),
    ]
}

/// Four consecutive words from `k` (callers keep `k + 4 <= v.len()`).
#[inline(always)]
fn quad(v: &[u32], k: usize) -> [u32; 4] {
    [v[k], v[k + 1], v[k + 2], v[k + 3]]
}

/// Two consecutive words from `k` (callers keep `k + 2 <= v.len()`).
#[inline(always)]
fn duo(v: &[u32], k: usize) -> [u32; 2] {
    [v[k], v[k + 1]]
}

/// `acc[g] += w[g] . x[g]` for four accumulators: written out, because LLVM does not
/// unroll loops around inline assembly.
#[inline(always)]
pub(crate) fn mac4(acc: &mut [i32; 4], w: [u32; 4], x: [u32; 4]) {
    acc[0] = smlad(w[0], x[0], acc[0]);
    acc[1] = smlad(w[1], x[1], acc[1]);
    acc[2] = smlad(w[2], x[2], acc[2]);
    acc[3] = smlad(w[3], x[3], acc[3]);
}

/// Four dot products (output channels `g` of the weight block `w4`, `4 * K * seg`
/// words, interleaved word by word: `w4[4 * t + g]` is word `t` of channel `g`) with
/// the same `K` input runs `x[ky][col..col + seg]`, added to `acc`: each input word is
/// loaded once for four channels, two input words per step.
#[cfg_attr(not(all(target_arch = "arm", not(arm_dsp))), inline(always))]
#[cfg_attr(all(target_arch = "arm", not(arm_dsp)), inline(never))] // flash
pub(crate) fn dot4ch<const K: usize>(
    w4: &[u32],
    seg: usize,
    x: &[&[u32]; K],
    col: usize,
    mut acc: [i32; 4],
) -> [i32; 4] {
    for (ky, x) in x.iter().enumerate() {
        let x = &x[col..][..seg];
        let w = &w4[4 * ky * seg..][..4 * seg];
        // Exact chunks: no bounds checks in the loop.
        let (mut w8, mut x2) = (w.chunks_exact(8), x.chunks_exact(2));
        for (w, x) in (&mut w8).zip(&mut x2) {
            mac4(&mut acc, quad(w, 0), [x[0]; 4]);
            mac4(&mut acc, quad(w, 4), [x[1]; 4]);
        }
        if let ([x], [a, b, c, d]) = (x2.remainder(), w8.remainder()) {
            mac4(&mut acc, [*a, *b, *c, *d], [*x; 4]);
        }
    }
    acc
}

/// One channel's weights `w` (`K` rows of `seg` words) against four pixels whose
/// input runs start at `col`, `col + step`, `col + 2 * step`, `col + 3 * step`:
/// each weight word is loaded once for four pixels.
#[cfg_attr(not(target_arch = "arm"), inline(always))]
#[cfg_attr(target_arch = "arm", inline(never))] // flash; cold on Cortex-M4
pub(crate) fn dot4px<const K: usize>(
    w: &[u32],
    seg: usize,
    x: &[&[u32]; K],
    col: usize,
    step: usize,
    mut acc: [i32; 4],
) -> [i32; 4] {
    for (ky, x) in x.iter().enumerate() {
        let w = &w[ky * seg..][..seg];
        let x0 = &x[col..][..seg];
        let x1 = &x[col + step..][..seg];
        let x2 = &x[col + 2 * step..][..seg];
        let x3 = &x[col + 3 * step..][..seg];
        let mut k = 0;
        while k + 2 <= seg {
            let wq = duo(w, k);
            let (a, b, c, d) = (duo(x0, k), duo(x1, k), duo(x2, k), duo(x3, k));
            mac4(&mut acc, [wq[0]; 4], [a[0], b[0], c[0], d[0]]);
            mac4(&mut acc, [wq[1]; 4], [a[1], b[1], c[1], d[1]]);
            k += 2;
        }
        if k < seg {
            mac4(&mut acc, [w[k]; 4], [x0[k], x1[k], x2[k], x3[k]]);
        }
    }
    acc
}

/// One channel at one pixel.
#[cfg_attr(not(target_arch = "arm"), inline(always))]
#[cfg_attr(target_arch = "arm", inline(never))] // flash; cold on Cortex-M4
pub(crate) fn dot1<const K: usize>(
    w: &[u32],
    seg: usize,
    x: &[&[u32]; K],
    col: usize,
    mut acc: i32,
) -> i32 {
    for (ky, x) in x.iter().enumerate() {
        let w = &w[ky * seg..][..seg];
        for (&w, &x) in w.iter().zip(&x[col..][..seg]) {
            acc = smlad(w, x, acc);
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn unpack(v: u32) -> (i32, i32) {
        (i32::from(v as i16), i32::from((v >> 16) as i16))
    }

    /// Plain `i32` sum of one channel's `K` rows against the runs at `col`.
    fn plain<const K: usize>(w: &[u32], seg: usize, x: &[&[u32]; K], col: usize) -> i32 {
        let mut acc = 0;
        for ky in 0..K {
            for k in 0..seg {
                let (a, b) = (unpack(w[ky * seg + k]), unpack(x[ky][col + k]));
                acc += a.0 * b.0 + a.1 * b.1;
            }
        }
        acc
    }

    proptest! {
        /// The pairing kernels equal plain sums.
        #[test]
        fn pairwise_kernels_equal_plain(
            w in proptest::collection::vec(-1024i16..=1024, 2 * 4 * 3 * 24),
            x in proptest::collection::vec(-128i16..=127, 2 * 3 * 64),
            seg in 1usize..=24,
            col in 0usize..=8,
            step in 1usize..=8,
            bias in -1000i32..1000,
        ) {
            let w: Vec<u32> = w.chunks_exact(2).map(|p| pack(p[0], p[1])).collect();
            let x: Vec<u32> = x.chunks_exact(2).map(|p| pack(p[0], p[1])).collect();
            let rows: [&[u32]; 3] = [&x[..64], &x[64..128], &x[128..]];
            let fan = 3 * seg;
            let want: [i32; 4] = core::array::from_fn(|g| bias + plain::<3>(&w[g * fan..], seg, &rows, col));
            // Interleaved as the merged weights lay out a group of four channels.
            let w4: Vec<u32> = (0..4 * fan).map(|i| w[(i % 4) * fan + i / 4]).collect();
            prop_assert_eq!(dot4ch::<3>(&w4, seg, &rows, col, [bias; 4]), want);
            let want: [i32; 4] = core::array::from_fn(|d| bias + plain::<3>(&w, seg, &rows, col + d * step));
            prop_assert_eq!(dot4px::<3>(&w, seg, &rows, col, step, [bias; 4]), want);
            prop_assert_eq!(dot1::<3>(&w, seg, &rows, col, bias), bias + plain::<3>(&w, seg, &rows, col));
        }

        /// Widening to pairs, in order and in the `SXTB16` order, and the int8
        /// dot products built on them.
        #[test]
        fn widening_and_int8_dots(
            x in proptest::collection::vec(any::<u8>(), 0..=64),
            w in proptest::collection::vec(any::<u8>(), 64),
            acc in -1000i32..1000,
        ) {
            let n = x.len() / 2 * 2;
            let mut words = vec![0u32; n / 2];
            widen(&x[..n], &mut words);
            let want: Vec<u32> = x[..n].chunks_exact(2)
                .map(|p| pack(i16::from(p[0] as i8), i16::from(p[1] as i8)))
                .collect();
            prop_assert_eq!(&words, &want);

            let plain_dot = |w: &[u8], x: &[u8]| -> i32 {
                w.iter().zip(x).map(|(&a, &b)| i32::from(a as i8) * i32::from(b as i8)).sum()
            };
            let mut xw = vec![0u32; 32];
            let used = widen_sxtb16(&x, &mut xw);
            prop_assert_eq!(used, 2 * (x.len() / 4));
            let w = &w[..x.len()];
            let got = dot_i8_sxtb16(w, &xw[..used], &x[2 * used..], acc);
            prop_assert_eq!(got, acc + plain_dot(w, &x));
            let wb: Vec<u8> = w.iter().map(|&b| b.wrapping_mul(7)).collect();
            let got2 = dot2_i8_sxtb16(w, &wb, &xw[..used], &x[2 * used..], [acc, -acc]);
            prop_assert_eq!(got2, [acc + plain_dot(w, &x), -acc + plain_dot(&wb, &x)]);
            let wide: Vec<i16> = x.iter().map(|&b| i16::from(b as i8)).collect();
            prop_assert_eq!(dot_i8(w, &wide), plain_dot(w, &x));
        }
    }

    #[test]
    fn smlad_and_sxtb16_tables() {
        let p = pack;
        assert_eq!(smlad(p(3, -4), p(5, 6), 10), 10 + 15 - 24);
        assert_eq!(smlad(p(-32768, -32768), p(-32768, -32768), 0), i32::MIN); // wraps
        assert_eq!(smlad(p(-1, 0), p(1, 0), 0), -1);
        assert_eq!(sxtb16(0x80_7F_FF_01), p(1, 0x7F));
        assert_eq!(sxtb16_ror8(0x80_7F_FF_01), p(-1, -128));
    }
}
