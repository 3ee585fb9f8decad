//! The firmware's start-up self-test of the dot-product kernels: on Cortex-M4 it
//! checks the `asm!` loops of `isa::arm_dsp` and the whole-row kernel of
//! `isa::arm_row`, which host tests cannot run; elsewhere the portable ones (a unit
//! test runs it).

#[cfg(arm_dsp)]
use super::isa::arm_dsp::{dot2_i8_sxtb16, dot4ch, dot4px};
use super::isa::pack;
use super::isa::portable::widen_sxtb16;
#[cfg(not(arm_dsp))]
use super::isa::portable::{dot2_i8_sxtb16, dot4ch, dot4px};

/// Runs the target's pairwise dot-product kernels against a plain reference on `cases`
/// random inputs of each kind from `seed` and returns how many disagreed (0 when all is
/// well). On Cortex-M4 this checks the `asm!` loops (four channels over 2x2 phase
/// kernels, four pixels over the 3x3 kernel at the 8-channel step and others, the linear
/// layer's two rows with `SXTB16`), which host tests cannot run; the firmware calls it at
/// start-up. Elsewhere it checks the portable kernels (a unit test runs it).
#[doc(hidden)]
#[inline(never)] // its buffers stay out of the caller's frame
pub fn kernel_self_test(seed: u64, cases: u32) -> u32 {
    let mut rng = crate::splitmix::SplitMix64::new(seed ^ 0x5EED_A5A5);
    let mut next = move |n: u64| uniform(&mut rng, n);
    let mut bad = 0;
    for _ in 0..cases {
        // Merged weights up to +-4 * 128, inputs int8 widened; three rows of 64 words.
        let mut w = [0u32; 4 * 3 * 24];
        let mut x = [0u32; 3 * 64];
        for v in w.iter_mut() {
            *v = pack(next(1025) as i16 - 512, next(1025) as i16 - 512);
        }
        for v in x.iter_mut() {
            *v = pack(next(256) as i16 - 128, next(256) as i16 - 128);
        }
        let (r0, rest) = x.split_at(64);
        let (r1, r2) = rest.split_at(64);
        let rows: [&[u32]; 3] = [r0, r1, r2];
        let seg = 1 + next(24);
        let col = next(9);
        let step = if next(2) == 0 { 4 } else { 1 + next(8) };
        let acc = [next(2001) as i32 - 1000; 4];
        // The kernel shapes the convolutions use: four channels over 2x2 phase kernels,
        // four pixels over the 3x3 kernel.
        let rows2: [&[u32]; 2] = [r0, r1];
        let got = dot4ch::<2>(&w, seg, &rows2, col, acc);
        let want: [i32; 4] = core::array::from_fn(|g| {
            // Word `k` of channel `g`, kernel row `ky`: `w[4 * (ky * seg + k) + g]`.
            acc[g] + plain_pairs(&w[g..], 4, &rows2, 4 * seg, seg, col)
        });
        bad += u32::from(got != want);
        let got = dot4px::<3>(&w, seg, &rows, col, step, acc);
        let want: [i32; 4] =
            core::array::from_fn(|d| acc[d] + plain_pairs(&w, 1, &rows, seg, seg, col + d * step));
        bad += u32::from(got != want);
        // The linear layer: two rows of int8 weights against widened inputs.
        let n = next(65);
        let mut bytes = [0u8; 3 * 64];
        for b in bytes.iter_mut() {
            *b = next(256) as u8;
        }
        let (input, weights) = bytes.split_at(64);
        let (wa, wb) = (&weights[..n], &weights[64..64 + n]);
        let mut xw = [0u32; 32];
        let words = widen_sxtb16(&input[..n], &mut xw);
        let tail = &input[2 * words..n];
        let got = dot2_i8_sxtb16(wa, wb, &xw[..words], tail, [acc[0], acc[1]]);
        let plain = |w: &[u8]| -> i32 {
            w.iter()
                .zip(input)
                .map(|(&a, &b)| i32::from(a as i8) * i32::from(b as i8))
                .sum()
        };
        bad += u32::from(got != [acc[0] + plain(wa), acc[1] + plain(wb)]);
        #[cfg(arm_dsp_kernel)]
        {
            bad += u32::from(!row_kernel_case(&mut next));
            bad += u32::from(!row1x4_case(&mut next));
            bad += u32::from(!lin_rows_case(&mut next));
            bad += u32::from(!merge_case(&mut next));
            #[cfg(arm_dsp)]
            {
                bad += u32::from(!widen_case(&mut next));
            }
        }
    }
    bad
}

/// Four channels' random requantisation in the whole-row kernels' form (shifts 33 to
/// 48, one zero point and lower clamp), or one channel's four times (`one`).
#[cfg(arm_dsp_kernel)]
fn random_params(next: &mut dyn FnMut(u64) -> usize, one: bool) -> [super::requant::Rescale; 4] {
    use super::requant::{Requant, Rescale};
    let relu = next(2) == 0;
    let zero_point = next(256) as i8;
    let mut params: [Rescale; 4] = core::array::from_fn(|_| {
        let requant = Requant {
            multiplier: (1 << 30) + next(1 << 30) as i32,
            shift: 33 + next(16) as u8,
            zero_point,
            min: if relu { zero_point } else { i8::MIN },
        };
        Rescale::new(next(200_001) as i32 - 100_000, requant)
    });
    if one {
        params = [params[0]; 4];
    }
    params
}

/// One random case of the one-channel row kernel (`isa::arm_row::row1x4`) against
/// plain sums requantised by `Rescale::apply`, as [`row_kernel_case`].
#[cfg(arm_dsp_kernel)]
#[inline(never)]
fn row1x4_case(next: &mut dyn FnMut(u64) -> usize) -> bool {
    use super::isa::arm_row::{Job1, Quad, row1x4};
    const ROW: usize = 4 * 30 + 8;
    let mut w = [0u32; 36];
    let mut x = [0u32; 3 * ROW];
    for v in w.iter_mut() {
        *v = pack(next(1025) as i16 - 512, next(1025) as i16 - 512);
    }
    for v in x.iter_mut() {
        *v = pack(next(256) as i16 - 128, next(256) as i16 - 128);
    }
    let params = random_params(next, true);
    let Some(q) = Quad::new(&params) else {
        return false;
    };
    let (x0, rest) = x.split_at(ROW);
    let (x1, x2) = rest.split_at(ROW);
    let col = next(9);
    let blocks = 1 + next(((ROW - 8 - col) / 16) as u64);
    let o = next(4);
    let job = Job1 {
        x: [x0, x1, x2],
        col,
        w: &w,
        q: &q,
        o,
        blocks,
    };
    let mut got = [0x5Au8; 4 * 8 + 4];
    let mut want = got;
    if !row1x4(&job, &mut got) {
        return false;
    }
    let rows: [&[u32]; 3] = [x0, x1, x2];
    let p = params[0];
    for j in 0..4 * blocks {
        let sum = plain_pairs(&w, 1, &rows, 12, 12, col + 4 * j);
        want[o + j] = p.apply(p.bias.wrapping_add(sum));
    }
    got == want
}

/// One random case of the Arm DSP kernel's weight merge (`SXTB16` / `SADD16`; the
/// driver's merge for other layers) against the driver's plain merge, for four
/// channels of 16 inputs and a random phase; also `SADD16` alone against its model.
#[cfg(arm_dsp_kernel)]
#[inline(never)]
fn merge_case(next: &mut dyn FnMut(u64) -> usize) -> bool {
    use super::conv::phase::{PhaseKernel, merge};
    use super::isa::arm_dsp::ArmDsp;
    use super::isa::portable::sadd16_model;
    let (a, b) = (next(1 << 32) as u32, next(1 << 32) as u32);
    let sadd_ok = super::isa::sadd16(a, b) == sadd16_model(a, b);
    let mut w = [0u8; 4 * 9 * 16];
    for v in w.iter_mut() {
        *v = next(256) as u8;
    }
    let phase = Some((next(2), next(2)));
    let (mut got, mut want) = ([0u32; 4 * 32], [0u32; 4 * 32]);
    ArmDsp::merge::<16>(&w, 16, phase, &mut got);
    merge::<0>(ArmDsp::GROUP, &w, 16, phase, &mut want);
    sadd_ok && got == want
}

/// One random case of the ring rows' widening (`arm_dsp::widen`, whose groups of 16
/// bytes are assembly) against `portable::widen`, from an unaligned start.
#[cfg(arm_dsp)]
#[inline(never)]
fn widen_case(next: &mut dyn FnMut(u64) -> usize) -> bool {
    let mut bytes = [0u8; 4 + 80];
    for b in bytes.iter_mut() {
        *b = next(256) as u8;
    }
    let (start, words) = (next(4), next(41));
    let src = &bytes[start..start + 2 * words];
    let (mut got, mut want) = ([0u32; 40], [0u32; 40]);
    super::isa::arm_dsp::widen(src, &mut got[..words]);
    super::isa::portable::widen(src, &mut want[..words]);
    got == want
}

/// One random case of the linear layer's kernel (`isa::arm_row::lin_rows`, up to three
/// groups of four outputs) against plain byte sums requantised by `Rescale::apply`.
#[cfg(arm_dsp_kernel)]
#[inline(never)]
fn lin_rows_case(next: &mut dyn FnMut(u64) -> usize) -> bool {
    use super::isa::arm_row::{LinRows, lin_rows};
    use super::requant::{Requant, Rescale};
    let n = 4 + next(61);
    let quads = n.div_ceil(4);
    let groups = 1 + next(3);
    let outs = 4 * groups;
    let mut w = [0u8; 12 * 64 + 4];
    for b in w.iter_mut() {
        *b = next(256) as u8;
    }
    let mut input = [0u8; 64];
    for b in input[..n].iter_mut() {
        *b = next(256) as u8;
    }
    let mut xw = [0u32; 32];
    let words = widen_sxtb16(&input[..4 * quads], &mut xw);
    let (mut bias, mut mult, mut shift) = ([0u8; 48], [0u8; 48], [0u8; 12]);
    for o in 0..outs {
        let b = (next(200_001) as i32 - 100_000).to_le_bytes();
        let m = ((1 << 30) + next(1 << 30) as i32).to_le_bytes();
        bias[4 * o..4 * o + 4].copy_from_slice(&b);
        mult[4 * o..4 * o + 4].copy_from_slice(&m);
        shift[o] = 33 + next(16) as u8;
    }
    let relu = next(2) == 0;
    let zp = next(256) as i8;
    let min = if relu { zp } else { i8::MIN };
    let job = LinRows {
        w: &w[..(outs - 1) * n + 4 * quads],
        n,
        xw: &xw[..words],
        quads,
        bias: &bias,
        mult: &mult,
        shift: &shift,
        zp,
        min,
        groups,
    };
    let mut got = [0x5Au8; 16];
    let mut want = got;
    if !lin_rows(&job, &mut got) {
        return false;
    }
    let word = |b: &[u8], o: usize| {
        i32::from_le_bytes([b[4 * o], b[4 * o + 1], b[4 * o + 2], b[4 * o + 3]])
    };
    for (o, out) in want.iter_mut().enumerate().take(outs) {
        let sum: i32 = w[o * n..(o + 1) * n]
            .iter()
            .zip(&input)
            .map(|(&a, &b)| i32::from(a as i8) * i32::from(b as i8))
            .sum();
        let requant = Requant {
            multiplier: word(&mult, o),
            shift: shift[o],
            zero_point: zp,
            min,
        };
        let r = Rescale::new(word(&bias, o), requant);
        *out = r.apply(r.bias.wrapping_add(sum));
    }
    got == want
}

/// One random case of the whole-row kernel (`isa::arm_row::row4`, on Cortex-M4 its
/// assembly) against plain sums requantised by `Rescale::apply`; `true` if they agree,
/// bytes outside the pixels' outputs included.
#[cfg(arm_dsp_kernel)]
#[inline(never)] // its buffers stay out of the caller's frame
fn row_kernel_case(next: &mut dyn FnMut(u64) -> usize) -> bool {
    use super::isa::arm_row::{Job, Quad, row4};
    const ROW: usize = 136;
    let mut w = [0u32; 128];
    let mut x = [0u32; 2 * ROW];
    for v in w.iter_mut() {
        *v = pack(next(1025) as i16 - 512, next(1025) as i16 - 512);
    }
    for v in x.iter_mut() {
        *v = pack(next(256) as i16 - 128, next(256) as i16 - 128);
    }
    let params = random_params(next, false);
    let Some(q) = Quad::new(&params) else {
        return false;
    };
    let (x0, x1) = x.split_at(ROW);
    let (x_step, col) = (1 + next(8), next(9));
    let o_step = 4 * (1 + next(8));
    let n = 1 + next(((ROW - 16 - col) / x_step).min(14) as u64);
    let o = next(4);
    let job = Job {
        x: [x0, x1],
        col,
        x_step,
        w: &w,
        q: &q,
        o,
        o_step,
        n,
    };
    let mut got = [0x5Au8; 14 * 32 + 8];
    let mut want = got;
    if !row4(&job, &mut got) {
        return false;
    }
    let rows: [&[u32]; 2] = [x0, x1];
    for j in 0..n {
        for (g, p) in params.iter().enumerate() {
            let sum = plain_pairs(&w[g..], 4, &rows, 64, 16, col + j * x_step);
            want[o + j * o_step + g] = p.apply(p.bias.wrapping_add(sum));
        }
    }
    got == want
}

/// Uniform in `0..n` by multiply-shift (no 64-bit division on the microcontroller); out
/// of line, so that the many draws stay small in flash.
#[inline(never)]
fn uniform(rng: &mut crate::splitmix::SplitMix64, n: u64) -> usize {
    (((rng.next_u64() >> 32) * n) >> 32) as usize
}

/// `sum over ky < rows.len(), k < seg` of the two products of packed pairs
/// `w[ky * row_stride + k * stride]` and `rows[ky][col + k]`, one multiply at a time:
/// the reference of [`kernel_self_test`] (small code, no unrolling).
#[inline(never)]
fn plain_pairs(
    w: &[u32],
    stride: usize,
    rows: &[&[u32]],
    row_stride: usize,
    seg: usize,
    col: usize,
) -> i32 {
    let half = |v: u32, hi: bool| i32::from((if hi { v >> 16 } else { v }) as u16 as i16);
    let mut acc = 0i32;
    for (ky, x) in rows.iter().enumerate() {
        for k in 0..seg {
            let (a, b) = (w[ky * row_stride + k * stride], x[col + k]);
            acc += half(a, false) * half(b, false) + half(a, true) * half(b, true);
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    #[test]
    fn kernel_self_test_passes() {
        assert_eq!(super::kernel_self_test(1, 300), 0);
    }
}
