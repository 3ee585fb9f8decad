//! The instruction sets' dot products, one place each: [`portable`] (plain Rust,
//! written over `SMLAD`'s shape so that it is also the model of the Cortex-M code),
//! `arm_dsp` (the Arm DSP extension's `SMLAD` / `SXTB16` as inline assembly, on
//! `cfg(arm_dsp)` targets: Cortex-M4 and M7) and [`x86`] (SSE2, the x86-64 baseline,
//! and AVX2 where the CPU has it).
//!
//! Each of them implements the phase-split convolution's kernel trait
//! ([`crate::ops::conv::phase::PhaseKernel`]); the linear layer takes its dot products
//! from here too. Which one runs is decided in one place, [`crate::ops::select`].
//!
//! The shared vocabulary is the packed pair: two `i16` in a `u32` word, the first in
//! the low half, the operand of `SMLAD` and of `pmaddwd`.

#[cfg(arm_dsp_kernel)]
pub(crate) mod arm_dsp;
#[cfg(arm_dsp_kernel)]
pub(crate) mod arm_row;
pub(crate) mod portable;
#[cfg(target_arch = "x86_64")]
pub(crate) mod x86;

/// `acc + lo(a) * lo(b) + hi(a) * hi(b)`: one `SMLAD` where the target has it
/// ([`arm_dsp`]), its model elsewhere ([`portable`]).
#[cfg(arm_dsp)]
#[allow(unused_imports)] // `sadd16`: the Arm DSP kernel's weight merge only
pub(crate) use arm_dsp::{sadd16, smlad, sxtb16, sxtb16_ror8};
#[cfg(not(arm_dsp))]
#[allow(unused_imports)] // `sadd16`: the Arm DSP kernel's weight merge only
pub(crate) use portable::{
    sadd16_model as sadd16, smlad_model as smlad, sxtb16_model as sxtb16,
    sxtb16_ror8_model as sxtb16_ror8,
};

/// `lo` and `hi` packed as `SMLAD` reads them.
#[inline(always)]
pub(crate) const fn pack(lo: i16, hi: i16) -> u32 {
    (lo as u16 as u32) | ((hi as u16 as u32) << 16)
}

/// Channels of a pixel padded to an even count (the extra slot has weight 0).
#[inline(always)]
pub(crate) const fn padded(c: usize) -> usize {
    c + (c & 1)
}
