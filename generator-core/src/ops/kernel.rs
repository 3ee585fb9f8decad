//! The names of the kernels, a leaf that every kernel file and the driver can import:
//! each kernel states its own name (`PhaseKernel::ID`), the dispatch reports the one that
//! ran, and [`select`](super::select::select) chooses among them.

/// A kernel of the convolution and linear layers (module `ops::isa`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kernel {
    /// The reference kernels (module `ops::reference`): the patch convolution and the
    /// plain byte dot products. Every layer can take them.
    Reference,
    /// Portable Rust on packed pairs (`ops::isa::portable`): the Cortex-M0/M3 path.
    Portable,
    /// The Arm DSP extension, `SMLAD` / `SXTB16` assembly (`ops::isa::arm_dsp`):
    /// Cortex-M4/M7 only (its linear layer also runs on hosts, on the instructions'
    /// models, for tests).
    ArmDsp,
    /// x86-64 SSE2 (`ops::isa::x86::sse2`), convolutions only.
    Sse2,
    /// x86-64 AVX2: the linear layer and convolutions with one lane per output channel.
    Avx2,
    /// x86-64 AVX2: convolutions with one lane per output pixel (no upsampling).
    Avx2Pixels,
}
