//! x86-64: [`sse2`] (part of the x86-64 baseline, so no run-time check) and AVX2
//! ([`avx2`]: the run-time check, the eight-lane requantisation and the linear layer;
//! [`avx2_conv`]: the convolution kernels), used where the CPU has it.

pub(crate) mod avx2;
pub(crate) mod avx2_conv;
#[cfg(target_feature = "sse2")]
pub(crate) mod sse2;
