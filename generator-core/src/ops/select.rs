//! Which kernel runs a layer, decided in one place: [`select`] takes the first kernel
//! of this build's preference list that the CPU has and the layer fits, else the
//! reference. The convolution's and the linear layer's dispatch, the prepared weights
//! (`conv::prepare`) and the whole-image generator's weight cache all ask it, and the
//! dispatch reports the kernel that ran, which the tests check.

use super::conv::phase::{PhaseKernel, Portable, SCRATCH_WORDS, merge_block};
pub use super::kernel::Kernel;
use crate::{Layer, LayerShape};

/// The kernels this build may run, fastest first (the reference follows them all).
/// Each one stays only while it measures faster than the next (crate README).
#[cfg(target_arch = "x86_64")]
const PREFERENCE: &[Kernel] = &[Kernel::Avx2, Kernel::Avx2Pixels, Kernel::Sse2];
#[cfg(arm_dsp)]
const PREFERENCE: &[Kernel] = &[Kernel::ArmDsp];
#[cfg(not(any(target_arch = "x86_64", arm_dsp)))]
const PREFERENCE: &[Kernel] = &[Kernel::Portable];

/// Inputs up to this many take the linear layer's fast kernels (their widened input
/// lives on the stack).
pub(crate) const LINEAR_MAX_INPUTS: usize = 64;

/// The kernel that runs `layer` here (always the reference with feature
/// `reference-only`). Out of line: it is called once per layer call,
/// from several places, and inlined copies would cost Cortex-M0 flash.
#[inline(never)]
pub fn select(layer: &Layer<'_>) -> Kernel {
    if cfg!(feature = "reference-only") {
        return Kernel::Reference;
    }
    PREFERENCE
        .iter()
        .copied()
        .find(|k| k.runs(layer))
        .unwrap_or(Kernel::Reference)
}

impl Kernel {
    /// Whether this kernel is built here, the CPU has it, and it takes `layer`.
    pub fn runs(self, layer: &Layer<'_>) -> bool {
        match layer.shape() {
            LayerShape::Linear { inputs, .. } => {
                let fits = (1..=LINEAR_MAX_INPUTS).contains(&(inputs as usize));
                match self {
                    Kernel::Reference => true,
                    // Each built only where it may run (flash), and on hosts for tests.
                    Kernel::Portable => fits && cfg!(not(arm_dsp)),
                    Kernel::ArmDsp => fits && cfg!(any(arm_dsp, not(target_arch = "arm"))),
                    Kernel::Avx2 => fits && avx2(),
                    Kernel::Sse2 | Kernel::Avx2Pixels => false,
                }
            }
            LayerShape::Conv3x3 { upsample, .. } => match self {
                Kernel::Reference => true,
                // Built everywhere but Cortex-M4, which runs `ArmDsp` (flash).
                Kernel::Portable => cfg!(not(arm_dsp)) && fits::<Portable>(layer),
                // On hosts too, on its portable twins (tests).
                #[cfg(arm_dsp_kernel)]
                Kernel::ArmDsp => fits::<super::isa::arm_dsp::ArmDsp>(layer),
                #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
                Kernel::Sse2 => fits::<super::isa::x86::sse2::Sse2>(layer),
                #[cfg(target_arch = "x86_64")]
                Kernel::Avx2 => avx2() && fits::<super::isa::x86::avx2_conv::Avx2Lanes>(layer),
                #[cfg(target_arch = "x86_64")]
                Kernel::Avx2Pixels => {
                    !upsample && avx2() && fits::<super::isa::x86::avx2_conv::Avx2Pixels>(layer)
                }
                #[allow(unreachable_patterns)] // every kernel is built on x86-64
                _ => {
                    let _ = upsample;
                    false
                }
            },
        }
    }
}

/// Whether kernel `Kn` takes the conv `layer` with its weights merged per call in the
/// stack scratch (prepared weights then fit too).
fn fits<Kn: PhaseKernel>(layer: &Layer<'_>) -> bool {
    merge_block::<Kn>(layer, SCRATCH_WORDS) > 0
}

/// Whether the CPU runs AVX2 (`false` off x86-64).
fn avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        super::isa::x86::avx2::available()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}
