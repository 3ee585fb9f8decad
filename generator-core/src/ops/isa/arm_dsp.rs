//! The Arm DSP extension (`cfg(arm_dsp)`: thumbv7em, Cortex-M4/M7, set by `build.rs`):
//! `SMLAD` (two signed 16x16 multiply-accumulates in one instruction), `SXTB16` and
//! `SADD16` through `asm!` (their intrinsics are unstable), and the convolution's and the
//! linear layer's hottest loops written in assembly, because LLVM spills accumulators
//! and drops `LDRD`s in the Rust versions (about 2.5-3.5 instructions per `SMLAD`).
//!
//! [`ArmDsp`] is the portable kernel with these loops in place of two of its dot
//! products, the whole-row kernels of [`super::arm_row`] (which also requantise) for
//! the layers they take, and its own weight merge for 16 input channels; everything
//! else it shares with [`super::portable`], which on these targets runs the
//! instructions too ([`super::smlad`]). The firmware checks the assembly at start-up
//! against plain sums and the portable code (`ops::self_test`), which host tests cannot
//! run.
//!
//! On hosts (`cfg(arm_dsp_kernel)` without `arm_dsp`) the same kernel is built with
//! the portable twins in place of the assembly, so that the host tests run its data
//! layouts and control flow through `ops::seams`.

use super::arm_row::{self, Job, Job1, Quad};
use super::padded;
use super::portable;
#[cfg(arm_dsp)]
use super::portable::mac4;
#[cfg(not(arm_dsp))]
use super::{sadd16, sxtb16, sxtb16_ror8};
use crate::ops::conv::phase::{PhaseKernel, Row};
use crate::ops::kernel::Kernel;
use crate::ops::requant::Rescale;

/// The Cortex-M4 kernel of the phase-split convolution: the whole-row kernels
/// ([`arm_row::row4`], [`arm_row::row1x4`]) for the channels they take, the pair loops
/// ([`Pairs`]) for the rest, and a faster weight merge ([`merge4`]).
#[derive(Clone, Copy)]
pub(crate) struct ArmDsp;

impl PhaseKernel for ArmDsp {
    const ID: Kernel = Kernel::ArmDsp;
    type Block = ();

    #[inline(always)]
    fn block(_: &[Rescale]) {}

    #[inline(always)]
    fn widen(src: &[u8], dst: &mut [u32]) {
        Pairs::widen(src, dst);
    }

    /// [`merge4`] where it applies, else the driver's merge.
    #[inline(always)]
    fn merge<const C: usize>(
        weights: &[u8],
        c: usize,
        phase: Option<(usize, usize)>,
        dst: &mut [u32],
    ) {
        if !merge4(weights, c, phase, dst) {
            crate::ops::conv::phase::merge::<0>(Self::GROUP, weights, c, phase, dst);
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
        Pairs::dot4ch::<K>(w4, seg, x, col, acc)
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
        Pairs::dot4px::<K>(w, seg, x, col, step, acc)
    }

    /// The leading groups of four channels that [`arm_row::row4`] takes (2x2 phases of
    /// 16 input channels, requantisation in its form: [`Quad`], built here for each
    /// group, which is cheaper than keeping a block's forms) run through it, a
    /// one-channel layer's row of a plain 3x3 convolution of 8 input channels through
    /// [`arm_row::row1x4`]; the rest through [`Pairs`]' loops.
    #[inline(always)]
    fn row<const C: usize, const K: usize>(
        x: &[&[u32]; K],
        wm: &[u32],
        params: &[Rescale],
        _block: &(),
        at: &Row,
        out: &mut [u8],
    ) {
        let c = if C == 0 { at.c } else { C };
        let half = padded(c) / 2;
        let fan = K * K * half;
        let mut done = 0;
        if let ([x0, x1], true) = (x.as_slice(), half == arm_row::HALF) {
            for p4 in params.chunks_exact(4) {
                let Some(q) = Quad::new(p4) else {
                    break;
                };
                let job = Job {
                    x: [x0, x1],
                    col: at.px * half,
                    x_step: half,
                    w: wm.get(done * fan..).unwrap_or(&[]),
                    q: &q,
                    o: at.px * at.out_ch + at.first + done,
                    o_step: at.stride * at.out_ch,
                    n: at.w,
                };
                if !arm_row::row4(&job, out) {
                    break;
                }
                done += 4;
            }
        }
        let plain3x3 = half == arm_row::HALF1 && at.out_ch == 1 && at.stride == 1;
        if let ([x0, x1, x2], [p], true) = (x.as_slice(), params, plain3x3)
            && let Some(q) = Quad::new(&[*p; 4])
        {
            let blocks = at.w / 4;
            let job = Job1 {
                x: [x0, x1, x2],
                col: at.px * half,
                w: wm,
                q: &q,
                o: at.px + at.first,
                blocks,
            };
            if arm_row::row1x4(&job, out) {
                // The pixels after the last block of four.
                let wc = wm.get(..fan).unwrap_or(&[]);
                for j in 4 * blocks..at.w {
                    let a = portable::dot1::<K>(wc, K * half, x, (j + at.px) * half, p.bias);
                    if let Some(o) = out.get_mut(j + at.px + at.first) {
                        *o = p.apply(a);
                    }
                }
                return;
            }
        }
        if done < params.len() {
            let rest = Row {
                first: at.first + done,
                ..*at
            };
            let wm = wm.get(done * fan..).unwrap_or(&[]);
            pairs_row::<K>(x, wm, &params[done..], &rest, out);
        }
    }
}

/// The driver's weight merge (`conv::phase::merge`, groups of four channels
/// interleaved) for a 2x2 phase of a channel count that is a multiple of four: four
/// input channels of a tap per word load, widened by two `SXTB16` into two packed
/// pairs, and the taps summed two halves at a time by `SADD16` (the sums of at most four
/// int8 fit `i16`). Only for 16 input channels (the lengths are then constants, and the
/// loops free of bounds checks). Returns `false`, writing nothing, for other layers.
#[inline(always)]
fn merge4(weights: &[u8], c: usize, phase: Option<(usize, usize)>, dst: &mut [u32]) -> bool {
    match (phase, c) {
        (Some(phase), MERGE4_C) => merge4_c(weights, phase, dst),
        _ => false,
    }
}

/// The input channel count [`merge4`] takes.
const MERGE4_C: usize = 16;

/// [`merge4`] for [`MERGE4_C`] input channels.
#[inline(never)] // once per block and phase
fn merge4_c(weights: &[u8], (py, px): (usize, usize), dst: &mut [u32]) -> bool {
    let c = MERGE4_C;
    let half = c / 2;
    let fan = 4 * half;
    let n = weights.len() / (9 * c);
    if dst.len() < n * fan {
        return false;
    }
    let whole = n - n % 4;
    for (ch, w) in weights.chunks_exact(9 * c).enumerate() {
        // Word `t` of channel `ch` is `dst[base + stride * t]` (as `merge`).
        let (base, stride) = if ch < whole {
            ((ch - ch % 4) * fan + ch % 4, 4)
        } else {
            (ch * fan, 1)
        };
        let Ok(w) = <&[u8; 9 * MERGE4_C]>::try_from(w) else {
            return false;
        };
        for q in 0..c / 4 {
            let t = taps9(w, 4 * q);
            for (t, v) in phase4(&t, py, px).into_iter().enumerate() {
                let i = base + stride * (t * half + 2 * q);
                dst[i] = v[0];
                dst[i + stride] = v[1];
            }
        }
    }
    true
}

/// Bytes `at..at + 4` of `w` as two packed pairs (`SXTB16` twice, re-paired).
#[inline(always)]
fn widen4<const N: usize>(w: &[u8; N], at: usize) -> [u32; 2] {
    let b: [u8; 4] = w
        .get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .unwrap_or([0; 4]);
    let v = u32::from_le_bytes(b);
    let (even, odd) = (sxtb16(v), sxtb16_ror8(v));
    [
        (even & 0xFFFF) | (odd << 16),
        (odd & 0xFFFF_0000) | (even >> 16),
    ]
}

/// Input channels `at..at + 4` of the nine taps of one output channel's weights `w`
/// (`[ky][kx][MERGE4_C]`), as two packed pairs each.
#[inline(always)]
fn taps9(w: &[u8; 9 * MERGE4_C], at: usize) -> [[u32; 2]; 9] {
    let c = MERGE4_C;
    [
        widen4(w, at),
        widen4(w, c + at),
        widen4(w, 2 * c + at),
        widen4(w, 3 * c + at),
        widen4(w, 4 * c + at),
        widen4(w, 5 * c + at),
        widen4(w, 6 * c + at),
        widen4(w, 7 * c + at),
        widen4(w, 8 * c + at),
    ]
}

/// Two packed pairs added half by half.
#[inline(always)]
fn add2(a: [u32; 2], b: [u32; 2]) -> [u32; 2] {
    [sadd16(a[0], b[0]), sadd16(a[1], b[1])]
}

/// The four merged taps `[ky'][kx']` of phase `(py, px)` from the nine taps `t`
/// (`[ky][kx]`): rows merged as the driver's `MERGED[py]`, then columns as
/// `MERGED[px]` (`0: {0}, {1, 2}`; `1: {0, 1}, {2}`).
#[inline(always)]
fn phase4(t: &[[u32; 2]; 9], py: usize, px: usize) -> [[u32; 2]; 4] {
    let sum3 = |a: usize, b: usize| {
        [
            add2(t[a], t[b]),
            add2(t[a + 1], t[b + 1]),
            add2(t[a + 2], t[b + 2]),
        ]
    };
    let [s0, s1] = if py == 0 {
        [[t[0], t[1], t[2]], sum3(3, 6)]
    } else {
        [sum3(0, 3), [t[6], t[7], t[8]]]
    };
    if px == 0 {
        [s0[0], add2(s0[1], s0[2]), s1[0], add2(s1[1], s1[2])]
    } else {
        [add2(s0[0], s0[1]), s0[2], add2(s1[0], s1[1]), s1[2]]
    }
}

/// [`Pairs::row`] with the channel count read at run time, out of line: one copy per
/// kernel side for every channel count, as it is rarely the hot path (flash).
#[inline(never)]
fn pairs_row<const K: usize>(
    x: &[&[u32]; K],
    wm: &[u32],
    params: &[Rescale],
    at: &Row,
    out: &mut [u8],
) {
    Pairs::row::<0, K>(x, wm, params, &(), at, out);
}

/// The Arm DSP kernel's pair loops: the portable kernel with the assembly dot products
/// below (their portable twins on hosts). [`ArmDsp`] runs through it what its
/// whole-row kernel does not take.
#[derive(Clone, Copy)]
pub(crate) struct Pairs;

impl PhaseKernel for Pairs {
    const ID: Kernel = Kernel::ArmDsp;
    type Block = ();

    #[inline(always)]
    fn block(_: &[Rescale]) {}

    #[inline(always)]
    fn widen(src: &[u8], dst: &mut [u32]) {
        #[cfg(arm_dsp)]
        widen(src, dst);
        #[cfg(not(arm_dsp))]
        portable::widen(src, dst);
    }

    #[inline(always)]
    fn dot4ch<const K: usize>(
        w4: &[u32],
        seg: usize,
        x: &[&[u32]; K],
        col: usize,
        acc: [i32; 4],
    ) -> [i32; 4] {
        #[cfg(arm_dsp)]
        return dot4ch::<K>(w4, seg, x, col, acc);
        #[cfg(not(arm_dsp))]
        portable::dot4ch::<K>(w4, seg, x, col, acc)
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
        #[cfg(arm_dsp)]
        return dot4px::<K>(w, seg, x, col, step, acc);
        #[cfg(not(arm_dsp))]
        portable::dot4px::<K>(w, seg, x, col, step, acc)
    }
}

#[cfg(arm_dsp)]
/// `acc + lo(a) * lo(b) + hi(a) * hi(b)`: one `SMLAD` instruction.
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

#[cfg(arm_dsp)]
/// The halves of `a` and `b` added as two `i16` (wrapping): one `SADD16` instruction.
#[cfg(arm_dsp)]
#[inline(always)]
#[allow(unsafe_code)]
pub(crate) fn sadd16(a: u32, b: u32) -> u32 {
    let out: u32;
    // SAFETY: `sadd16` reads two registers and writes one (and the GE flags in APSR,
    // which nothing here reads: declared clobbered by not preserving flags); no memory,
    // no stack. `cfg(arm_dsp)` is set only for thumbv7em targets, which implement it.
    unsafe {
        core::arch::asm!(
            "sadd16 {out}, {a}, {b}",
            out = lateout(reg) out,
            a = in(reg) a,
            b = in(reg) b,
            options(pure, nomem, nostack),
        );
    }
    out
}

#[cfg(arm_dsp)]
/// Bytes 0 and 2 of `x`, each sign-extended to 16 bits: one `SXTB16` instruction.
#[inline(always)]
#[allow(unsafe_code)]
pub(crate) fn sxtb16(x: u32) -> u32 {
    let out: u32;
    // SAFETY: `sxtb16` reads one register and writes one; no memory, no stack, no
    // flags. `cfg(arm_dsp)` is set only for thumbv7em targets, which implement it.
    unsafe {
        core::arch::asm!(
            "sxtb16 {out}, {x}",
            out = lateout(reg) out,
            x = in(reg) x,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    out
}

#[cfg(arm_dsp)]
/// Bytes 1 and 3 of `x`, sign-extended and packed: one `SXTB16` with `ROR #8`.
#[inline(always)]
#[allow(unsafe_code)]
pub(crate) fn sxtb16_ror8(x: u32) -> u32 {
    let out: u32;
    // SAFETY: as for `sxtb16`.
    unsafe {
        core::arch::asm!(
            "sxtb16 {out}, {x}, ror #8",
            out = lateout(reg) out,
            x = in(reg) x,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    out
}

#[cfg(arm_dsp)]
/// [`portable::widen`] with four bytes per word load and two `SXTB16`: bytes 0, 2 and
/// 1, 3, re-paired by `PKHBT` / `PKHTB` (which LLVM forms from these masks). Whole
/// groups of 16 bytes go through [`arm_row::widen16`] (eight words per `STM`).
#[inline(always)]
pub(crate) fn widen(src: &[u8], dst: &mut [u32]) {
    let n16 = (src.len() / 16).min(dst.len() / 8);
    let (src16, src) = src.split_at(16 * n16);
    let (dst16, dst) = dst.split_at_mut(8 * n16);
    arm_row::widen16(src16, dst16);
    let mut d4 = dst.chunks_exact_mut(2);
    let mut s4 = src.chunks_exact(4);
    for (d, s) in (&mut d4).zip(&mut s4) {
        let v = u32::from_le_bytes([s[0], s[1], s[2], s[3]]);
        let (even, odd) = (sxtb16(v), sxtb16_ror8(v));
        d[0] = (even & 0xFFFF) | (odd << 16);
        d[1] = (odd & 0xFFFF_0000) | (even >> 16);
    }
    portable::widen(s4.remainder(), d4.into_remainder());
}

#[cfg(arm_dsp)]
/// Two rows of int8 weights (`wa`, `wb`, equally long) against the same inputs, as
/// [`portable::dot_i8_sxtb16`] does for one: each input word pair is loaded once for
/// both. The loop is assembly: 13 instructions per eight multiply-accumulates.
#[inline(always)]
pub(crate) fn dot2_i8_sxtb16(
    wa: &[u8],
    wb: &[u8],
    xw: &[u32],
    tail: &[u8],
    acc: [i32; 2],
) -> [i32; 2] {
    let quads = (wa.len() / 4).min(wb.len() / 4).min(xw.len() / 2);
    let (mut a0, mut a1) = (acc[0], acc[1]);
    if quads > 0 {
        // SAFETY: `quads >= 1` iterations read `4 * quads` bytes of `wa` and of
        // `wb` (word loads, which Cortex-M4 allows unaligned) and `2 * quads`
        // words of `xw` (a `u32` slice, 4-byte aligned for `LDRD`), all within
        // the slices by the `min` above. Only registers and flags (not
        // preserved) are written; no stack.
        #[allow(unsafe_code)]
        unsafe {
            core::arch::asm!(
                "2:",
                "ldr {wa}, [{pa}], #4",
                "ldr {wb}, [{pb}], #4",
                "ldrd {x0}, {x1}, [{xp}], #8",
                "sxtb16 {t}, {wa}",
                "smlad {a0}, {t}, {x0}, {a0}",
                "sxtb16 {t}, {wa}, ror #8",
                "smlad {a0}, {t}, {x1}, {a0}",
                "sxtb16 {t}, {wb}",
                "smlad {a1}, {t}, {x0}, {a1}",
                "sxtb16 {t}, {wb}, ror #8",
                "smlad {a1}, {t}, {x1}, {a1}",
                "subs {n}, {n}, #1",
                "bne 2b",
                pa = inout(reg) wa.as_ptr() => _,
                pb = inout(reg) wb.as_ptr() => _,
                xp = inout(reg) xw.as_ptr() => _,
                n = inout(reg) quads => _,
                a0 = inout(reg) a0,
                a1 = inout(reg) a1,
                wa = out(reg) _,
                wb = out(reg) _,
                x0 = out(reg) _,
                x1 = out(reg) _,
                t = out(reg) _,
                options(nostack, readonly),
            );
        }
    }
    // `xw` covers the first `4 * quads` inputs: the rest are the `tail` bytes.
    debug_assert_eq!(quads, wa.len() / 4, "xw from widen_sxtb16 of the inputs");
    let rest = |w: &[u8], a: i32| -> i32 {
        let w = w.get(4 * quads..).unwrap_or(&[]);
        w.iter().zip(tail).fold(a, |a, (&w, &x)| {
            a.wrapping_add(i32::from(w as i8) * i32::from(x as i8))
        })
    };
    [rest(wa, a0), rest(wb, a1)]
}

#[cfg(arm_dsp)]
/// `asm!` of a loop that accumulates `SMLAD`s into four registers: the template
/// lines, with the operands `xp` and `wp` (pointers, advanced by the loop), `n` (the
/// iteration count), `a0..a3` (the accumulators, `&mut i32`) and the scratch
/// registers `x0`, `x1`, `w0`, `w1`. Only registers and flags are written; no stack.
macro_rules! smlad4_loop {
    (($xp:expr, $wp:expr, $n:expr, [$a0:expr, $a1:expr, $a2:expr, $a3:expr]), $($line:literal),+ $(,)?) => {
        core::arch::asm!(
            $($line),+,
            xp = inout(reg) $xp => _,
            wp = inout(reg) $wp => _,
            n = inout(reg) $n => _,
            a0 = inout(reg) *$a0,
            a1 = inout(reg) *$a1,
            a2 = inout(reg) *$a2,
            a3 = inout(reg) *$a3,
            x0 = out(reg) _,
            x1 = out(reg) _,
            w0 = out(reg) _,
            w1 = out(reg) _,
            options(nostack, readonly),
        )
    };
}

#[cfg(arm_dsp)]
/// [`portable::dot4ch`] with the loop over input-word pairs in assembly: 15
/// instructions per eight `SMLAD`.
#[inline(always)]
pub(crate) fn dot4ch<const K: usize>(
    w4: &[u32],
    seg: usize,
    x: &[&[u32]; K],
    col: usize,
    acc: [i32; 4],
) -> [i32; 4] {
    smlad4_rows::<K, false>(w4, 4 * seg, x, col, seg, acc)
}

#[cfg(arm_dsp)]
/// [`portable::dot4px`]; for 8-channel inputs (`step == 4` words, the shipped model's
/// last layer) the loop over weight-word pairs is assembly, 16 instructions per eight
/// `SMLAD` (the pixels' input runs at fixed offsets).
#[inline(always)]
pub(crate) fn dot4px<const K: usize>(
    w: &[u32],
    seg: usize,
    x: &[&[u32]; K],
    col: usize,
    step: usize,
    acc: [i32; 4],
) -> [i32; 4] {
    if step != 4 || !seg.is_multiple_of(2) {
        return portable::dot4px::<K>(w, seg, x, col, step, acc);
    }
    smlad4_rows::<K, true>(w, seg, x, col, seg, acc)
}

#[cfg(arm_dsp)]
/// The assembly of [`dot4ch`] (`PX = false`: four channels' interleaved weights,
/// `w_row = 4 * seg` words per kernel row, against one input run) and of [`dot4px`]
/// (`PX = true`: one channel's weights, `w_row = seg`, against four input runs 4 words
/// apart), over the `K` kernel rows, added to `acc`.
#[inline(always)]
#[allow(unsafe_code)]
fn smlad4_rows<const K: usize, const PX: bool>(
    w: &[u32],
    w_row: usize,
    x: &[&[u32]; K],
    col: usize,
    seg: usize,
    mut acc: [i32; 4],
) -> [i32; 4] {
    for (ky, x) in x.iter().enumerate() {
        let w = &w[ky * w_row..][..w_row];
        // `dot4px`'s four pixels' runs: words `col .. col + 3 * 4 + seg`.
        let x = &x[col..][..if PX { 12 + seg } else { seg }];
        let pairs = seg / 2;
        if pairs > 0 {
            let [a0, a1, a2, a3] = &mut acc;
            // SAFETY: the loop runs `pairs >= 1` times. `dot4ch` reads `2 * pairs <=
            // seg` words from `x` and `8 * pairs <= 4 * seg` words from `w`, slices of
            // exactly `seg` and `4 * seg` words (checked above); `dot4px` reads
            // `2 * pairs == seg` words of `w` (exactly `seg` words) and, at step `k`,
            // words `k + 4 * d`, `k + 4 * d + 1` (`d < 4`) of `x`, below `12 + seg`
            // (its length, checked above). `u32` slices are 4-byte aligned as `LDRD`
            // needs. Only registers and flags (not preserved) are written; no stack.
            unsafe {
                if PX {
                    // Two weight words, then per line one pixel's two input words
                    // (16 bytes after the previous pixel's) against them.
                    smlad4_loop!(
                        (x.as_ptr(), w.as_ptr(), pairs, [a0, a1, a2, a3]),
                        "2: ldrd {w0}, {w1}, [{wp}], #8",
                        "ldrd {x0}, {x1}, [{xp}]\n smlad {a0}, {w0}, {x0}, {a0}\n smlad {a0}, {w1}, {x1}, {a0}",
                        "ldrd {x0}, {x1}, [{xp}, #16]\n smlad {a1}, {w0}, {x0}, {a1}\n smlad {a1}, {w1}, {x1}, {a1}",
                        "ldrd {x0}, {x1}, [{xp}, #32]\n smlad {a2}, {w0}, {x0}, {a2}\n smlad {a2}, {w1}, {x1}, {a2}",
                        "ldrd {x0}, {x1}, [{xp}, #48]\n smlad {a3}, {w0}, {x0}, {a3}\n smlad {a3}, {w1}, {x1}, {a3}",
                        "adds {xp}, {xp}, #8\n subs {n}, {n}, #1\n bne 2b",
                    );
                } else {
                    // Two input words, then per line two channels' weight words
                    // against one of them.
                    smlad4_loop!(
                        (x.as_ptr(), w.as_ptr(), pairs, [a0, a1, a2, a3]),
                        "2: ldrd {x0}, {x1}, [{xp}], #8",
                        "ldrd {w0}, {w1}, [{wp}], #8\n smlad {a0}, {w0}, {x0}, {a0}\n smlad {a1}, {w1}, {x0}, {a1}",
                        "ldrd {w0}, {w1}, [{wp}], #8\n smlad {a2}, {w0}, {x0}, {a2}\n smlad {a3}, {w1}, {x0}, {a3}",
                        "ldrd {w0}, {w1}, [{wp}], #8\n smlad {a0}, {w0}, {x1}, {a0}\n smlad {a1}, {w1}, {x1}, {a1}",
                        "ldrd {w0}, {w1}, [{wp}], #8\n smlad {a2}, {w0}, {x1}, {a2}\n smlad {a3}, {w1}, {x1}, {a3}",
                        "subs {n}, {n}, #1\n bne 2b",
                    );
                }
            }
        }
        if !PX && seg % 2 == 1 {
            let k = seg - 1;
            mac4(
                &mut acc,
                [w[4 * k], w[4 * k + 1], w[4 * k + 2], w[4 * k + 3]],
                [x[k]; 4],
            );
        }
    }
    acc
}
