//! The firmware's start-up self-test of the dot-product kernels: on Cortex-M4 it
//! checks the `asm!` loops of `isa::arm_dsp`, which host tests cannot run; elsewhere
//! the portable ones (a unit test runs it).

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
    // Uniform in `0..n` by multiply-shift (no 64-bit division on the microcontroller).
    let mut next = move |n: u64| (((rng.next_u64() >> 32) * n) >> 32) as usize;
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
    }
    bad
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
