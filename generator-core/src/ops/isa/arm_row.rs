//! The Cortex-M4 whole-row kernels: [`row4`], four output channels of one 2x2 phase of
//! a 16-input-channel layer over every pixel of an output row, and [`row1x4`], one
//! output channel of a plain 3x3 convolution of 8 input channels, four pixels per pass;
//! both requantise and store in the same loop; and [`lin_rows`], the linear layer four
//! outputs per pass, its requantisation read from the layer's parameter bytes in the
//! loop. The assembly (`cfg(arm_dsp)`) and its portable twins ([`row4_model`],
//! [`row1x4_model`], [`lin_rows_model`], what hosts run) share the data layouts defined
//! here.
//!
//! # Why a whole row
//!
//! The pair loops (`arm_dsp::dot4ch`) take 15 instructions per eight `SMLAD` and return
//! to Rust after every pixel, which then requantises each channel on its own (about 15
//! instructions per output). Here one call covers a row: per input word one `LDM` of
//! the four channels' weight words feeds four `SMLAD` and every fourth input word comes
//! from one `LDM` of four (21 instructions per 16 `SMLAD`, all 14 free registers:
//! four accumulators, four weight words, four input words, two pointers); the pixel's
//! four outputs are then requantised together (`SMMLA`, shift, `SSAT`, packed into one
//! word, the lower clamp by `SSUB8` / `SEL`) and stored with one `STR`.
//!
//! # Requantisation in the row kernel's form
//!
//! For a channel with `shift >= 33` ([`crate::ops::requant::Rescale`]'s high-word form)
//! `(hi(acc * m) + round_hi) >> (shift - 32)` plus the zero point `zp` equals
//! `(hi(acc * m) + c) >> (shift - 32)` with `c = round_hi + zp * 2^(shift - 32)`, because
//! the added term is a multiple of the divisor; `SMMLA` gives `hi(acc * m) + c` in one
//! instruction. It is exact while `|c| < 2^30` (then `|hi + c| < 2^31`, as
//! `|hi| <= 2^30`). Channels outside that form (shift outside 33..=54, which bounds
//! `|c|`) keep the pair loops ([`Quad::new`] refuses their group).

use super::portable::smlad_model;
use crate::ops::requant::Rescale;

/// Words of one pixel's input channels that [`row4`] takes: 16 channels.
pub(crate) const HALF: usize = 8;
/// Words of one pixel's input channels that [`row1x4`] takes: 8 channels.
pub(crate) const HALF1: usize = 4;
/// Weight words of [`row1x4`]'s channel: 3x3 taps of [`HALF1`] words.
const TAPS1_WORDS: usize = 9 * HALF1;
/// Words of one kernel row of a 2x2 phase (two pixels).
const SEG: usize = 2 * HALF;
/// Weight words of a group of four channels: two kernel rows, interleaved.
const GROUP_WORDS: usize = 4 * 2 * SEG;
/// Words of a [`Quad`].
const QUAD_WORDS: usize = 17;

/// Four channels' bias and requantisation in the row kernel's form: `[b0, b1, b2, b3,
/// m0, c0, m1, c1, m2, c2, m3, c3, s0, s1, s2, s3, mins]`, `s = shift - 32` and `mins`
/// the four lower clamps as bytes (channel `g` in byte `g`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Quad([u32; QUAD_WORDS]);

impl Quad {
    /// A `Quad` to fill with [`Quad::set_channel`].
    pub(crate) const ZERO: Quad = Quad([0; QUAD_WORDS]);

    /// Four channels' requantisation in this form, `None` if one of them has none (see
    /// the module docs). Every word is computed, none zeroed first.
    #[inline(always)]
    pub(crate) fn new(params: &[Rescale]) -> Option<Quad> {
        let [p0, p1, p2, p3] = params else {
            return None;
        };
        let (b, [f0, f1, f2, f3]) = (
            [p0.bias, p1.bias, p2.bias, p3.bias].map(|b| b as u32),
            [
                p0.smmla_form()?,
                p1.smmla_form()?,
                p2.smmla_form()?,
                p3.smmla_form()?,
            ],
        );
        let min = |f: (i32, i32, u32, i8), g: u32| u32::from(f.3 as u8) << (8 * g);
        Some(Quad([
            b[0],
            b[1],
            b[2],
            b[3],
            f0.0 as u32,
            f0.1 as u32,
            f1.0 as u32,
            f1.1 as u32,
            f2.0 as u32,
            f2.1 as u32,
            f3.0 as u32,
            f3.1 as u32,
            f0.2,
            f1.2,
            f2.2,
            f3.2,
            min(f0, 0) | min(f1, 1) | min(f2, 2) | min(f3, 3),
        ]))
    }

    /// Fills in channel `g` (`< 4`) from its bias and [`crate::ops::requant::Requant`]
    /// fields; `false` unless `33 <= shift <= 54` and `multiplier >= 0`, which make
    /// `|c| = |2^(s - 1) + zp * 2^s| < 2^30` (`s = shift - 32`).
    #[inline(always)]
    pub(crate) fn set_channel(
        &mut self,
        g: usize,
        bias: i32,
        multiplier: i32,
        shift: u8,
        zero_point: i8,
        min: i8,
    ) -> bool {
        if !(33..=54).contains(&shift) || multiplier < 0 || g >= 4 {
            return false;
        }
        let s = u32::from(shift) - 32;
        let c = (1i32 << (s - 1)) + (i32::from(zero_point) << s);
        let q = &mut self.0;
        q[g] = bias as u32;
        q[4 + 2 * g] = multiplier as u32;
        q[5 + 2 * g] = c as u32;
        q[12 + g] = s;
        q[16] = (q[16] & !(0xFF << (8 * g))) | (u32::from(min as u8) << (8 * g));
        true
    }

    /// One pixel's four accumulators (biases included) as four output bytes, in a
    /// little-endian word: what the assembly computes after its dot products.
    #[cfg_attr(arm_dsp, allow(dead_code))] // there: the twin's, which only hosts run
    #[inline(always)]
    pub(crate) fn apply(&self, acc: [i32; 4]) -> u32 {
        let q = &self.0;
        let mut bytes = [0u8; 4];
        for (g, (b, a)) in bytes.iter_mut().zip(acc).enumerate() {
            let (m, c) = (q[4 + 2 * g] as i32, q[5 + 2 * g] as i32);
            // SMMLA: the high word of `c * 2^32 + a * m` (exact in i64: both terms
            // are below 2^62 in magnitude).
            let hi = (((i64::from(c) << 32) + i64::from(a) * i64::from(m)) >> 32) as i32;
            // ASR by register (the shift is 1..=22 by `Quad::new`), SSAT #8, then the
            // lower clamp as SSUB8 / SEL do it (signed bytes).
            let v = (hi >> (q[12 + g] & 31)).clamp(-128, 127);
            let min = i32::from((q[16] >> (8 * g)) as u8 as i8);
            *b = v.max(min) as u8;
        }
        u32::from_le_bytes(bytes)
    }

    /// The four biases.
    #[cfg_attr(arm_dsp, allow(dead_code))]
    fn biases(&self) -> [i32; 4] {
        core::array::from_fn(|g| self.0[g] as i32)
    }
}

/// One call of [`row4`]: pixel `j < n` reads input words `col + j * x_step ..` (16 of
/// them) of both kernel rows `x[0]`, `x[1]`, and the group's interleaved weights `w`
/// (128 words: word `t` of channel `g` is `w[4 * t + g]`, `t = ky * 16 + k`); its four
/// output bytes go to `out[o + j * o_step..][..4]`.
pub(crate) struct Job<'a> {
    pub x: [&'a [u32]; 2],
    pub col: usize,
    pub x_step: usize,
    pub w: &'a [u32],
    pub q: &'a Quad,
    pub o: usize,
    pub o_step: usize,
    pub n: usize,
}

impl Job<'_> {
    /// Whether every word and byte the job touches lies in its slices and `out`.
    fn fits(&self, out: usize) -> bool {
        let Some(last) = self.n.checked_sub(1) else {
            return false;
        };
        let reach = |start: usize, step: usize, len: usize| {
            last.checked_mul(step)
                .and_then(|d| d.checked_add(start))
                .and_then(|d| d.checked_add(len))
        };
        let x_end = reach(self.col, self.x_step, SEG);
        let o_end = reach(self.o, self.o_step, 4);
        self.w.len() >= GROUP_WORDS
            && x_end.is_some_and(|e| self.x.iter().all(|x| x.len() >= e))
            && o_end.is_some_and(|e| out >= e)
            // The assembly keeps the steps in bytes in 32-bit registers.
            && self.x_step <= 1 << 20
            && self.o_step <= 1 << 20
    }
}

/// Runs `job` into `out` (the assembly on `cfg(arm_dsp)`, [`row4_model`] elsewhere).
/// Returns `false`, writing nothing, if the job does not fit its slices.
#[inline(always)]
pub(crate) fn row4(job: &Job<'_>, out: &mut [u8]) -> bool {
    if job.n == 0 {
        return true;
    }
    if !job.fits(out.len()) {
        debug_assert!(false, "row kernel job out of its slices");
        return false;
    }
    #[cfg(arm_dsp)]
    asm::run(job, out);
    #[cfg(not(arm_dsp))]
    row4_model(job, out);
    true
}

/// The portable twin of the assembly: the same sums (`SMLAD` in the same order) and the
/// same requantisation ([`Quad::apply`]). `job` must fit (`Job::fits`).
#[cfg_attr(arm_dsp, allow(dead_code))] // there: the assembly runs instead
pub(crate) fn row4_model(job: &Job<'_>, out: &mut [u8]) {
    for j in 0..job.n {
        let mut acc = job.q.biases();
        let col = job.col + j * job.x_step;
        for (ky, x) in job.x.iter().enumerate() {
            for (k, &xw) in x[col..col + SEG].iter().enumerate() {
                let t = ky * SEG + k;
                for (g, a) in acc.iter_mut().enumerate() {
                    *a = smlad_model(job.w[4 * t + g], xw, *a);
                }
            }
        }
        let o = job.o + j * job.o_step;
        out[o..o + 4].copy_from_slice(&job.q.apply(acc).to_le_bytes());
    }
}

/// One call of [`row1x4`]: pixel `j < 4 * blocks` reads input words `col + 4 * j ..`
/// of the three kernel rows `x` (pixel `j + kx` for tap `kx`, `HALF1` words each)
/// against the channel's 3x3 weights `w` (word `k` of tap `(ky, kx)` is
/// `w[(3 * ky + kx) * 4 + k]`); its output byte goes to `out[o + j]`. The `q`'s four
/// channels are the one channel four times.
pub(crate) struct Job1<'a> {
    pub x: [&'a [u32]; 3],
    pub col: usize,
    pub w: &'a [u32],
    pub q: &'a Quad,
    pub o: usize,
    pub blocks: usize,
}

impl Job1<'_> {
    /// Whether every word and byte the job touches lies in its slices and `out`.
    fn fits(&self, out: usize) -> bool {
        let x_end = self
            .blocks
            .checked_mul(16)
            .and_then(|e| e.checked_add(self.col + 8));
        let o_end = self
            .blocks
            .checked_mul(4)
            .and_then(|e| e.checked_add(self.o));
        self.blocks > 0
            && self.w.len() >= TAPS1_WORDS
            && x_end.is_some_and(|e| self.x.iter().all(|x| x.len() >= e))
            && o_end.is_some_and(|e| out >= e)
    }
}

/// Runs `job` into `out` (the assembly on `cfg(arm_dsp)`, [`row1x4_model`] elsewhere).
/// Returns `false`, writing nothing, if the job does not fit its slices.
#[inline(always)]
pub(crate) fn row1x4(job: &Job1<'_>, out: &mut [u8]) -> bool {
    if job.blocks == 0 {
        return true;
    }
    if !job.fits(out.len()) {
        debug_assert!(false, "row kernel job out of its slices");
        return false;
    }
    #[cfg(arm_dsp)]
    asm::run1(job, out);
    #[cfg(not(arm_dsp))]
    row1x4_model(job, out);
    true
}

/// The portable twin of [`row1x4`]'s assembly. `job` must fit (`Job1::fits`).
#[cfg_attr(arm_dsp, allow(dead_code))] // there: the assembly runs instead
pub(crate) fn row1x4_model(job: &Job1<'_>, out: &mut [u8]) {
    for b in 0..job.blocks {
        let mut acc = job.q.biases();
        for (d, a) in acc.iter_mut().enumerate() {
            for (ky, x) in job.x.iter().enumerate() {
                for kx in 0..3 {
                    let at = job.col + 16 * b + HALF1 * (d + kx);
                    let w = &job.w[(3 * ky + kx) * HALF1..][..HALF1];
                    for (&w, &x) in w.iter().zip(&x[at..at + HALF1]) {
                        *a = smlad_model(w, x, *a);
                    }
                }
            }
        }
        let o = job.o + 4 * b;
        out[o..o + 4].copy_from_slice(&job.q.apply(acc).to_le_bytes());
    }
}

/// One call of [`lin_rows`]: the linear layer's first `4 * groups` outputs, four per
/// pass. Row `o` of int8 weights is `w[o * n..]`; each row reads `4 * quads` bytes,
/// which may run past `n` into the next row (the inputs there are zero) but not past
/// `w`; the inputs are `quads` groups of four widened as `portable::widen_sxtb16`
/// orders them (`xw`). Output `o`'s bias and multiplier are the little-endian words
/// `o` of `bias` and `mult`, its shift `shift[o]`; the output zero point `zp` and lower
/// clamp `min` are the layer's. Output `o` goes to `out[o]`.
pub(crate) struct LinRows<'a> {
    pub w: &'a [u8],
    pub n: usize,
    pub xw: &'a [u32],
    pub quads: usize,
    pub bias: &'a [u8],
    pub mult: &'a [u8],
    pub shift: &'a [u8],
    pub zp: i8,
    pub min: i8,
    pub groups: usize,
}

impl LinRows<'_> {
    /// Whether every byte and word the job touches lies in its slices and `out`, and
    /// every output's requantisation has the row kernels' form (`33 <= shift <= 54`,
    /// multiplier not negative).
    fn fits(&self, out: usize) -> bool {
        let outs = 4 * self.groups;
        let w_end = (outs.saturating_sub(1))
            .checked_mul(self.n)
            .and_then(|e| e.checked_add(4 * self.quads));
        let form = self
            .shift
            .get(..outs)
            .is_some_and(|s| s.iter().all(|s| (33..=54).contains(s)))
            && self
                .mult
                .get(..4 * outs)
                .is_some_and(|m| m.chunks_exact(4).all(|b| b[3] & 0x80 == 0));
        self.groups > 0
            && self.quads > 0
            && (4..=1 << 20).contains(&self.n)
            && w_end.is_some_and(|e| self.w.len() >= e)
            && self.xw.len() >= 2 * self.quads
            && self.bias.len() >= 4 * outs
            && out >= outs
            && form
    }
}

/// Runs `job` into `out` (the assembly on `cfg(arm_dsp)`, [`lin_rows_model`]
/// elsewhere). Returns `false`, writing nothing, if the job does not fit its slices or
/// an output's requantisation has not the form.
#[inline(always)]
pub(crate) fn lin_rows(job: &LinRows<'_>, out: &mut [u8]) -> bool {
    if !job.fits(out.len()) {
        return false;
    }
    #[cfg(arm_dsp)]
    asm::run_lin_rows(job, out);
    #[cfg(not(arm_dsp))]
    lin_rows_model(job, out);
    true
}

/// The portable twin of [`lin_rows`]' assembly. `job` must fit (`LinRows::fits`).
#[cfg_attr(arm_dsp, allow(dead_code))] // there: the assembly runs instead
pub(crate) fn lin_rows_model(job: &LinRows<'_>, out: &mut [u8]) {
    use super::{sxtb16, sxtb16_ror8};
    let word = |b: &[u8], o: usize| {
        let b = &b[4 * o..4 * o + 4];
        i32::from_le_bytes([b[0], b[1], b[2], b[3]])
    };
    for o in (0..4 * job.groups).step_by(4) {
        let mut acc: [i32; 4] = core::array::from_fn(|g| word(job.bias, o + g));
        for (k, x) in job.xw.chunks_exact(2).take(job.quads).enumerate() {
            for (g, a) in acc.iter_mut().enumerate() {
                let b = &job.w[(o + g) * job.n + 4 * k..][..4];
                let v = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                *a = smlad_model(sxtb16(v), x[0], *a);
                *a = smlad_model(sxtb16_ror8(v), x[1], *a);
            }
        }
        let mut q = Quad::ZERO;
        for g in 0..4 {
            let (m, shift) = (word(job.mult, o + g), job.shift[o + g]);
            q.set_channel(g, 0, m, shift, job.zp, job.min);
        }
        // The biases are already in the accumulators.
        out[o..o + 4].copy_from_slice(&q.apply(acc).to_le_bytes());
    }
}

/// `portable::widen` of `src` (`16 * n` bytes) into `dst` (`8 * n` words) on
/// Cortex-M4: per 16 bytes four word loads (unaligned allowed), eight `SXTB16`, eight
/// `PKHBT` / `PKHTB` and one `STM` of eight words (23 instructions, against 32 for
/// LLVM's loop). Does nothing if the lengths disagree.
#[cfg(arm_dsp)]
#[inline(always)]
pub(crate) fn widen16(src: &[u8], dst: &mut [u32]) {
    let n = src.len() / 16;
    if n == 0 || src.len() != 16 * n || dst.len() != 8 * n {
        return;
    }
    // SAFETY: `n >= 1` iterations read `16 * n` bytes of `src` (word loads, which
    // Cortex-M4 allows unaligned) and write `8 * n` words of `dst` (a `u32` slice,
    // aligned for `STM`), exactly the slices' lengths (checked above); `dst` is borrowed
    // mutably. The function saves and restores every callee-saved register.
    #[allow(unsafe_code)]
    unsafe {
        asm::widen16_asm(src.as_ptr(), dst.as_mut_ptr(), n);
    }
}

#[cfg(arm_dsp)]
mod asm {
    use super::{GROUP_WORDS, Job, Job1, LinRows, TAPS1_WORDS};

    /// The requantisation of the four accumulators `r0-r3` with the `Quad` whose word 4
    /// the frame holds at `[sp, #32]` ([`super::Quad::apply`]), packed into `r0`.
    macro_rules! requant4 {
        () => {
            concat!(
                "ldr r12, [sp, #32]\n",
                "ldm r12!, {{r4-r11}}\n",
                "smmla r0, r0, r4, r5\n",
                "smmla r1, r1, r6, r7\n",
                "smmla r2, r2, r8, r9\n",
                "smmla r3, r3, r10, r11\n",
                "ldm r12, {{r4-r8}}\n",
                "asr r0, r0, r4\n",
                "asr r1, r1, r5\n",
                "asr r2, r2, r6\n",
                "asr r3, r3, r7\n",
                "ssat r0, #8, r0\n",
                "ssat r1, #8, r1\n",
                "ssat r2, #8, r2\n",
                "ssat r3, #8, r3\n",
                "bfi r0, r1, #8, #8\n",
                "bfi r0, r2, #16, #8\n",
                "bfi r0, r3, #24, #8\n",
                "ssub8 r1, r0, r8\n",
                "sel r0, r0, r8\n",
            )
        };
    }

    /// What the assembly reads, copied to its stack frame: byte offsets as in the
    /// assembly's comments.
    #[repr(C)]
    struct Frame {
        /// 0: input row 0 at the current pixel.
        x: *const u32,
        /// 4: `x[1] - x[0]` in bytes, less the 64 bytes the first row's loop advanced.
        dx: isize,
        /// 8: the current pixel's output word.
        out: *mut u8,
        /// 12: pixels left.
        n: usize,
        /// 16: the four biases (the `Quad`).
        q: *const u32,
        /// 20: the group's weights.
        w: *const u32,
        /// 24: bytes between pixels' outputs.
        o_step: usize,
        /// 28: bytes between pixels' input runs.
        x_step: usize,
        /// 32: the `Quad`'s multipliers (word 4).
        qm: *const u32,
    }

    /// [`super::row4`] on Cortex-M4. `job` fits `out` (checked by the caller).
    #[inline(always)]
    pub(super) fn run(job: &Job<'_>, out: &mut [u8]) {
        let [x0, x1] = job.x;
        let frame = Frame {
            x: x0[job.col..].as_ptr(),
            dx: (x1.as_ptr() as isize) - (x0.as_ptr() as isize) - 64,
            out: out[job.o..].as_mut_ptr(),
            n: job.n,
            q: job.q.0.as_ptr(),
            w: job.w[..GROUP_WORDS].as_ptr(),
            o_step: job.o_step,
            x_step: 4 * job.x_step,
            qm: job.q.0[4..].as_ptr(),
        };
        // SAFETY: `row4` checked with `Job::fits` that for every pixel `j < n` the 16
        // input words at `col + j * x_step` of both rows, the 128 weight words and the
        // four output bytes at `o + j * o_step` lie inside their slices (`u32` slices
        // are 4-byte aligned for `LDM`; the output word may be unaligned, which `STR`
        // allows on Cortex-M4). `out` is borrowed mutably, so nothing else sees the
        // bytes written; the function saves and restores every callee-saved register
        // and leaves the stack as it found it.
        #[allow(unsafe_code)]
        unsafe {
            row4_asm(&frame);
        }
    }

    /// The row kernel: `r0-r3` accumulate four channels, `r4-r7` hold their weight
    /// words for one input word, `r8-r11` four input words, `r12` and `lr` walk the
    /// input and the weights. Per pixel: 2 x 4 blocks of (`LDM` of four input words,
    /// 4 x (`LDM` of four weight words, four `SMLAD`)), then the requantisation of
    /// [`super::Quad::apply`] and one `STR`.
    ///
    /// # Safety
    ///
    /// `frame` describes a job that fits its buffers (`Job::fits`), as [`run`] builds it.
    #[allow(unsafe_code)]
    #[unsafe(naked)]
    unsafe extern "C" fn row4_asm(frame: *const Frame) {
        core::arch::naked_asm!(
            "push {{r4-r11, lr}}",
            "sub sp, sp, #44",
            "ldm r0, {{r1-r9}}",
            "stm sp, {{r1-r9}}",
            "2:",
            "ldr r12, [sp, #16]",
            "ldm r12, {{r0-r3}}",
            "ldr r12, [sp, #0]",
            "ldr lr, [sp, #20]",
            ".rept 4",
            "ldm r12!, {{r8-r11}}",
            ".irp xr, r8, r9, r10, r11",
            "ldm lr!, {{r4-r7}}",
            "smlad r0, r4, \\xr, r0",
            "smlad r1, r5, \\xr, r1",
            "smlad r2, r6, \\xr, r2",
            "smlad r3, r7, \\xr, r3",
            ".endr",
            ".endr",
            "ldr r4, [sp, #4]",
            "add r12, r12, r4",
            ".rept 4",
            "ldm r12!, {{r8-r11}}",
            ".irp xr, r8, r9, r10, r11",
            "ldm lr!, {{r4-r7}}",
            "smlad r0, r4, \\xr, r0",
            "smlad r1, r5, \\xr, r1",
            "smlad r2, r6, \\xr, r2",
            "smlad r3, r7, \\xr, r3",
            ".endr",
            ".endr",
            // Requantise: hi(acc * m) + c, >> s, saturate, pack, lower clamp.
            requant4!(),
            // Store, step the output and the input, count the pixel.
            "ldr r12, [sp, #8]",
            "ldr r4, [sp, #24]",
            "str r0, [r12]",
            "add r12, r12, r4",
            "str r12, [sp, #8]",
            "ldr r12, [sp, #0]",
            "ldr r4, [sp, #28]",
            "add r12, r12, r4",
            "str r12, [sp, #0]",
            "ldr r12, [sp, #12]",
            "subs r12, r12, #1",
            "str r12, [sp, #12]",
            "bne 2b",
            "add sp, sp, #44",
            "pop {{r4-r11, pc}}",
        )
    }

    /// What [`row1x4_asm`] reads, copied to its stack frame (offsets as in [`Frame`]
    /// where the fields share a meaning).
    #[repr(C)]
    struct Frame1 {
        /// 0: input row 0 at the current block's first pixel.
        x: *const u32,
        /// 4: `x[1] - x[0]` in bytes, less the 48 bytes a row's taps advanced.
        dx1: isize,
        /// 8: the current block's output word.
        out: *mut u8,
        /// 12: blocks left.
        n: usize,
        /// 16: the four biases (the `Quad`).
        q: *const u32,
        /// 20: the channel's weights.
        w: *const u32,
        /// 24: `x[2] - x[1]` in bytes, less 48.
        dx2: isize,
        /// 28: unused.
        pad: usize,
        /// 32: the `Quad`'s multipliers (word 4).
        qm: *const u32,
    }

    /// One kernel row of [`row1x4_asm`]: three taps, each one `LDM` of weights and
    /// per pixel one `LDM` of input and four `SMLAD`; `r12` ends 48 bytes (three
    /// pixels) on.
    macro_rules! taps3 {
        () => {
            concat!(
                ".rept 3\n",
                "ldm lr!, {{r4-r7}}\n",
                ".irp acc, r0, r1, r2, r3\n",
                "ldm r12!, {{r8-r11}}\n",
                "smlad \\acc, r4, r8, \\acc\n",
                "smlad \\acc, r5, r9, \\acc\n",
                "smlad \\acc, r6, r10, \\acc\n",
                "smlad \\acc, r7, r11, \\acc\n",
                ".endr\n",
                "sub r12, r12, #48\n",
                ".endr\n",
            )
        };
    }

    /// [`super::row1x4`] on Cortex-M4. `job` fits `out` (checked by the caller).
    #[inline(always)]
    pub(super) fn run1(job: &Job1<'_>, out: &mut [u8]) {
        let [x0, x1, x2] = job.x;
        let frame = Frame1 {
            x: x0[job.col..].as_ptr(),
            dx1: (x1.as_ptr() as isize) - (x0.as_ptr() as isize) - 48,
            out: out[job.o..].as_mut_ptr(),
            n: job.blocks,
            q: job.q.0.as_ptr(),
            w: job.w[..TAPS1_WORDS].as_ptr(),
            dx2: (x2.as_ptr() as isize) - (x1.as_ptr() as isize) - 48,
            pad: 0,
            qm: job.q.0[4..].as_ptr(),
        };
        // SAFETY: `row1x4` checked with `Job1::fits` that for every block `b` the input
        // words up to `col + 16 * b + 24` of the three rows, the 36 weight words and the
        // four output bytes at `o + 4 * b` lie inside their slices (`u32` slices are
        // 4-byte aligned for `LDM`; the output word may be unaligned, which `STR`
        // allows on Cortex-M4). `out` is borrowed mutably; the function saves and
        // restores every callee-saved register and leaves the stack as it found it.
        #[allow(unsafe_code)]
        unsafe {
            row1x4_asm(&frame);
        }
    }

    /// The one-channel row kernel: `r0-r3` accumulate four pixels, `r4-r7` hold one
    /// tap's weight words, `r8-r11` one pixel's input words, `r12` and `lr` walk the
    /// input and the weights. Per block of four pixels: per tap one `LDM` of weights,
    /// then per pixel one `LDM` of input and four `SMLAD`; then the requantisation of
    /// [`super::Quad::apply`] and one `STR` of the four bytes.
    ///
    /// # Safety
    ///
    /// `frame` describes a job that fits its buffers (`Job1::fits`), as [`run1`] builds
    /// it.
    #[allow(unsafe_code)]
    #[unsafe(naked)]
    unsafe extern "C" fn row1x4_asm(frame: *const Frame1) {
        core::arch::naked_asm!(
            "push {{r4-r11, lr}}",
            "sub sp, sp, #44",
            "ldm r0, {{r1-r9}}",
            "stm sp, {{r1-r9}}",
            "2:",
            "ldr r12, [sp, #16]",
            "ldm r12, {{r0-r3}}",
            "ldr lr, [sp, #20]",
            "ldr r12, [sp, #0]",
            taps3!(),
            "ldr r4, [sp, #4]",
            "add r12, r12, r4",
            taps3!(),
            "ldr r4, [sp, #24]",
            "add r12, r12, r4",
            taps3!(),
            requant4!(),
            "ldr r12, [sp, #8]",
            "str r0, [r12], #4",
            "str r12, [sp, #8]",
            "ldr r12, [sp, #0]",
            "add r12, r12, #64",
            "str r12, [sp, #0]",
            "ldr r12, [sp, #12]",
            "subs r12, r12, #1",
            "str r12, [sp, #12]",
            "bne 2b",
            "add sp, sp, #44",
            "pop {{r4-r11, pc}}",
        )
    }

    /// What [`lin_rows_asm`] reads, copied to its stack frame.
    #[repr(C)]
    struct FrameLin {
        /// 0: row 0 of the current group's weights.
        w: *const u8,
        /// 4: `n - 4`: row 1's word from row 0's after the post-increment.
        n1: usize,
        /// 8: the current group's output word.
        out: *mut u8,
        /// 12: groups of four inputs.
        quads: usize,
        /// 16: the current group's biases.
        bias: *const u8,
        /// 20: the widened inputs.
        xw: *const u32,
        /// 24: `2n - 4`.
        n2: usize,
        /// 28: `3n - 4`.
        n3: usize,
        /// 32: the current group's multipliers.
        mult: *const u8,
        /// 36: the current group's shifts.
        shift: *const u8,
        /// 40: the output zero point.
        zp: i32,
        /// 44: the lower clamp, in each byte.
        mins: u32,
        /// 48: groups left.
        groups: usize,
        /// 52: `4n`: bytes from a group's weights to the next group's.
        n4: usize,
    }

    /// [`super::lin_rows`] on Cortex-M4. `job` fits `out` (checked by the caller).
    #[inline(always)]
    pub(super) fn run_lin_rows(job: &LinRows<'_>, out: &mut [u8]) {
        let n = job.n;
        let frame = FrameLin {
            w: job.w.as_ptr(),
            n1: n - 4,
            out: out.as_mut_ptr(),
            quads: job.quads,
            bias: job.bias.as_ptr(),
            xw: job.xw[..2 * job.quads].as_ptr(),
            n2: 2 * n - 4,
            n3: 3 * n - 4,
            mult: job.mult.as_ptr(),
            shift: job.shift.as_ptr(),
            zp: i32::from(job.zp),
            mins: u32::from(job.min as u8) * 0x0101_0101,
            groups: job.groups,
            n4: 4 * n,
        };
        // SAFETY: `lin_rows` checked with `LinRows::fits` that for every group `g <
        // groups` the `4 * quads` bytes of its four rows (`w[(4g + r) * n..]`, word
        // loads, which Cortex-M4 allows unaligned), the `2 * quads` input words (a `u32`
        // slice, aligned for `LDRD`), the 16 bytes of biases and of multipliers and the
        // four shift bytes at `16g`, `16g`, `4g` and the four output bytes at `4g` lie
        // inside their slices (`n >= 4`, so `n - 4` does not wrap). `out` is borrowed
        // mutably; the function saves and restores every callee-saved register and
        // leaves the stack as it found it.
        #[allow(unsafe_code)]
        unsafe {
            lin_rows_asm(&frame);
        }
    }

    /// The requantisation of accumulator `$acc` with the multiplier at `[r12]` and the
    /// shift byte at `[r11]` (both post-incremented), the zero point in `r10`:
    /// `SMMLA` with `c = 2^(s - 1) + zp * 2^s`, `ASR` by `s = shift - 32`, `SSAT`.
    macro_rules! requant_lin {
        ($acc:literal) => {
            concat!(
                "ldr r4, [r12], #4\n",
                "ldrb r5, [r11], #1\n",
                "sub r5, r5, #32\n",
                "sub r6, r5, #1\n",
                "movs r7, #1\n",
                "lsl r6, r7, r6\n",
                "lsl r7, r10, r5\n",
                "add r6, r6, r7\n",
                "smmla ",
                $acc,
                ", ",
                $acc,
                ", r4, r6\n",
                "asr ",
                $acc,
                ", ",
                $acc,
                ", r5\n",
                "ssat ",
                $acc,
                ", #8, ",
                $acc,
                "\n",
            )
        };
    }

    /// The linear layer's kernel: per group of four outputs, `r0-r3` start at their
    /// biases; per four inputs one `LDRD` of widened inputs (`r4`, `r5`) and per row one
    /// word of weights (`r6`), taken apart by two `SXTB16` (`r7`) into two `SMLAD`. `r8`
    /// walks row 0 (rows 1-3 by register offsets `r9-r11`), `r12` the inputs, `lr`
    /// counts. Then each output's requantisation from its parameter bytes, the four
    /// bytes packed, the lower clamp by `SSUB8` / `SEL`, one `STR`.
    ///
    /// # Safety
    ///
    /// `frame` describes a job that fits its buffers (`LinRows::fits`), as
    /// [`run_lin_rows`] builds it.
    #[allow(unsafe_code)]
    #[unsafe(naked)]
    unsafe extern "C" fn lin_rows_asm(frame: *const FrameLin) {
        core::arch::naked_asm!(
            "push {{r4-r11, lr}}",
            "sub sp, sp, #60",
            "ldm r0!, {{r1-r7}}",
            "stm sp, {{r1-r7}}",
            "ldm r0, {{r1-r7}}",
            "add r8, sp, #28",
            "stm r8, {{r1-r7}}",
            "3:",
            "ldr r12, [sp, #16]",
            "ldr r0, [r12], #4",
            "ldr r1, [r12], #4",
            "ldr r2, [r12], #4",
            "ldr r3, [r12], #4",
            "str r12, [sp, #16]",
            "ldr r8, [sp, #0]",
            "ldr r9, [sp, #4]",
            "ldr r10, [sp, #24]",
            "ldr r11, [sp, #28]",
            "ldr r12, [sp, #20]",
            "ldr lr, [sp, #12]",
            "2:",
            "ldrd r4, r5, [r12], #8",
            "ldr r6, [r8], #4",
            "sxtb16 r7, r6",
            "smlad r0, r7, r4, r0",
            "sxtb16 r7, r6, ror #8",
            "smlad r0, r7, r5, r0",
            "ldr r6, [r8, r9]",
            "sxtb16 r7, r6",
            "smlad r1, r7, r4, r1",
            "sxtb16 r7, r6, ror #8",
            "smlad r1, r7, r5, r1",
            "ldr r6, [r8, r10]",
            "sxtb16 r7, r6",
            "smlad r2, r7, r4, r2",
            "sxtb16 r7, r6, ror #8",
            "smlad r2, r7, r5, r2",
            "ldr r6, [r8, r11]",
            "sxtb16 r7, r6",
            "smlad r3, r7, r4, r3",
            "sxtb16 r7, r6, ror #8",
            "smlad r3, r7, r5, r3",
            "subs lr, lr, #1",
            "bne 2b",
            "ldr r12, [sp, #32]",
            "ldr r11, [sp, #36]",
            "ldr r10, [sp, #40]",
            requant_lin!("r0"),
            requant_lin!("r1"),
            requant_lin!("r2"),
            requant_lin!("r3"),
            "str r12, [sp, #32]",
            "str r11, [sp, #36]",
            "bfi r0, r1, #8, #8",
            "bfi r0, r2, #16, #8",
            "bfi r0, r3, #24, #8",
            "ldr r8, [sp, #44]",
            "ssub8 r1, r0, r8",
            "sel r0, r0, r8",
            "ldr r12, [sp, #8]",
            "str r0, [r12], #4",
            "str r12, [sp, #8]",
            "ldr r12, [sp, #0]",
            "ldr r4, [sp, #52]",
            "add r12, r12, r4",
            "str r12, [sp, #0]",
            "ldr r12, [sp, #48]",
            "subs r12, r12, #1",
            "str r12, [sp, #48]",
            "bne 3b",
            "add sp, sp, #60",
            "pop {{r4-r11, pc}}",
        )
    }

    /// Four bytes at `[r0]` (post-incremented) as two packed pairs into `$lo`, `$hi`,
    /// through `r3`, `r12`, `lr`.
    macro_rules! widen_word {
        ($lo:literal, $hi:literal) => {
            concat!(
                "ldr r3, [r0], #4\n",
                "sxtb16 r12, r3\n",
                "sxtb16 lr, r3, ror #8\n",
                "pkhbt ",
                $lo,
                ", r12, lr, lsl #16\n",
                "pkhtb ",
                $hi,
                ", lr, r12, asr #16\n",
            )
        };
    }

    /// [`super::widen16`]: `r0` the bytes, `r1` the words, `r2` groups of 16 bytes
    /// (at least one).
    ///
    /// # Safety
    ///
    /// `src` holds `16 * n` bytes and `dst` `8 * n` aligned words, `n >= 1`.
    #[allow(unsafe_code)]
    #[unsafe(naked)]
    pub(super) unsafe extern "C" fn widen16_asm(src: *const u8, dst: *mut u32, n: usize) {
        core::arch::naked_asm!(
            "push {{r4-r11, lr}}",
            "2:",
            widen_word!("r4", "r5"),
            widen_word!("r6", "r7"),
            widen_word!("r8", "r9"),
            widen_word!("r10", "r11"),
            "stm r1!, {{r4-r11}}",
            "subs r2, r2, #1",
            "bne 2b",
            "pop {{r4-r11, pc}}",
        )
    }
}
