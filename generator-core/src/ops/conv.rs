//! 3x3 convolution (stride 1, padding 1) with an optionally fused nearest-neighbour
//! 2x upsample of its input: the public entry points, their checks, and the dispatch
//! to the kernel [`crate::ops::select::select`] picks.
//!
//! Activations are HWC and weights `[out][ky][kx][in]`. Taps outside the image read the
//! input zero point, which contributes exactly zero because the stored bias already
//! includes `-zero_point * sum(w)`. With the upsample, output pixel `(y, x)` of the
//! `2h x 2w` grid reads input pixel `(y / 2, x / 2)`.
//!
//! The fast kernels all run one driver, the phase split of module `phase` (its docs
//! explain the method), with an instruction set's inner loops (module `ops::isa`);
//! layers too wide for its buffers take the reference (module `ops::reference`).
//!
//! # Row bands and prepared weights
//!
//! [`conv3x3_rows`] computes only output rows `rows` from an input band that holds input
//! rows `in_first..` (every row the wanted outputs read must be in it). The streaming
//! generator uses it to produce the last layers a few rows at a time; [`conv3x3`] is the
//! whole-map case (all rows, the band is the whole input).
//!
//! The merged weights depend only on the model. [`prepare`] computes them once for a
//! whole layer into a caller-owned buffer of [`prepared_words`] words, in the layout of
//! the kernel that runs the layer here, and [`conv3x3_rows_prepared`] runs from it; the
//! streaming generator, which calls a layer once per row, uses this. Without it, each
//! call merges one block of output channels at a time into a fixed stack scratch (2 KiB
//! on Cortex-M, whose stack budget is tight) that also holds the row ring.

pub(crate) mod phase;

use self::phase::{Band, PhaseKernel, Portable};

use super::reference;
use super::select::{Kernel, select};
use crate::{Error, Layer, LayerShape, Result};

pub use self::phase::FAST_MAX_OUT_CH;

/// Runs a validated `Conv3x3` layer. `input.len()` must be `in_h * in_w * in_ch` and
/// `output.len()` the (upsampled) `out_h * out_w * out_ch`.
pub fn conv3x3(layer: &Layer<'_>, input: &[u8], output: &mut [u8]) -> Result<()> {
    if input.len() != layer.input_len() || output.len() != layer.output_len() {
        return Err(Error::ShapeMismatch);
    }
    let (out_h, _, _) = layer.shape().output_hwc();
    conv3x3_rows(layer, input, 0, output, 0..out_h as usize)
}

/// Output rows `rows` of a validated `Conv3x3` layer, from an input band.
///
/// `input` holds whole input rows `in_first..in_first + input.len() / (in_w * in_ch)`
/// and must contain every input row that the wanted output rows read (the rows of the
/// image among `rows.start / f - 1 ..= (rows.end - 1) / f + 1`, `f = 2` with upsampling,
/// else 1). `output` receives exactly the output rows `rows` (`rows.len() * out_w *
/// out_ch` bytes). The result is bit-identical to the same rows of [`conv3x3`].
/// [`Error::ShapeMismatch`] if any of this does not hold.
pub fn conv3x3_rows(
    layer: &Layer<'_>,
    input: &[u8],
    in_first: usize,
    output: &mut [u8],
    rows: core::ops::Range<usize>,
) -> Result<()> {
    let kernel = select(layer);
    run(kernel, layer, None, None, input, in_first, output, rows).map(drop)
}

/// [`conv3x3_rows`] with the layer's weights prepared by [`prepare`] (`prepared` must
/// be exactly [`prepared_words`] long, else [`Error::ShapeMismatch`]): the same bytes,
/// without merging weights on every call.
pub fn conv3x3_rows_prepared(
    layer: &Layer<'_>,
    prepared: &[u32],
    input: &[u8],
    in_first: usize,
    output: &mut [u8],
    rows: core::ops::Range<usize>,
) -> Result<()> {
    if prepared.len() != prepared_words(layer) {
        return Err(Error::ShapeMismatch);
    }
    let (kernel, prepared) = (select(layer), Some(prepared));
    run(kernel, layer, prepared, None, input, in_first, output, rows).map(drop)
}

/// `u32` words of prepared weights for `layer` ([`prepare`]): four merged 2x2 phases
/// (or the 3x3 kernel) per output channel, `cp / 2` words per tap. `0` for a linear
/// layer or a convolution that takes the reference kernel (which needs none).
pub fn prepared_words(layer: &Layer<'_>) -> usize {
    match select(layer) {
        Kernel::Reference => 0,
        _ => phase::prepared_words(layer),
    }
}

/// Writes the prepared weights of `layer` into `dst`, which must be exactly
/// [`prepared_words`] long ([`Error::ShapeMismatch`] otherwise). Layout:
/// `[phase py * 2 + px][out][ky'][kx'][cp / 2]` pairs, groups of channels interleaved
/// as the kernel that runs the layer here reads them.
pub fn prepare(layer: &Layer<'_>, dst: &mut [u32]) -> Result<()> {
    if !matches!(layer.shape(), LayerShape::Conv3x3 { .. }) || dst.len() != prepared_words(layer) {
        return Err(Error::ShapeMismatch);
    }
    prepare_for(select(layer), layer, dst)
}

/// [`prepare`] for `kernel`'s layout ([`Error::ShapeMismatch`] if `dst` is not
/// [`phase::prepared_words`] long); nothing to write for the reference.
pub(crate) fn prepare_for(kernel: Kernel, layer: &Layer<'_>, dst: &mut [u32]) -> Result<()> {
    if dst.len() != phase::prepared_words(layer) {
        return Err(Error::ShapeMismatch);
    }
    let group = match kernel {
        Kernel::Reference => return Ok(()),
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 => <super::isa::x86::avx2_conv::Avx2Lanes as PhaseKernel>::GROUP,
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2Pixels => <super::isa::x86::avx2_conv::Avx2Pixels as PhaseKernel>::GROUP,
        _ => <Portable as PhaseKernel>::GROUP,
    };
    phase::prepare(group, layer, dst);
    Ok(())
}

/// Whole-map [`conv3x3`] through the reference (patch) kernel, whatever the layer's
/// size: the reference for tests of the fast kernels.
pub fn conv3x3_generic(layer: &Layer<'_>, input: &[u8], output: &mut [u8]) -> Result<()> {
    if input.len() != layer.input_len() || output.len() != layer.output_len() {
        return Err(Error::ShapeMismatch);
    }
    let (out_h, _, _) = layer.shape().output_hwc();
    run(
        Kernel::Reference,
        layer,
        None,
        None,
        input,
        0,
        output,
        0..out_h as usize,
    )
    .map(drop)
}

/// Calls `$entry::<$kn, C>($call)` for `C` = the channel count `$c` when it is 8 or
/// 16 and `$mono`, else `C = 0`.
macro_rules! by_channels {
    ($entry:ident::<$kn:ty>, $c:expr, $mono:expr, $call:expr) => {
        match $c {
            8 if $mono => $entry::<$kn, 8>($call),
            16 if $mono => $entry::<$kn, 16>($call),
            _ => $entry::<$kn, 0>($call),
        }
    };
}

/// Checks a call (as [`conv3x3_rows`] documents) and runs `kernel` on it, which must
/// run here and take the layer (`Kernel::runs`: [`select`]'s choice, or checked by the
/// caller; the AVX2 kernels check the CPU again), else the reference; returns the
/// kernel that ran (as the kernel's own entry point reports it). `prepared` must be in `kernel`'s layout ([`prepare_for`]);
/// `scratch` (at least [`phase::SCRATCH_WORDS`]) spares the kernel a stack buffer.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run(
    kernel: Kernel,
    layer: &Layer<'_>,
    prepared: Option<&[u32]>,
    scratch: Option<&mut [u32]>,
    input: &[u8],
    in_first: usize,
    output: &mut [u8],
    rows: core::ops::Range<usize>,
) -> Result<Kernel> {
    let LayerShape::Conv3x3 {
        in_ch,
        in_h,
        in_w,
        upsample,
        ..
    } = layer.shape()
    else {
        return Err(Error::ShapeMismatch);
    };
    let (out_h, out_w, out_ch) = layer.shape().output_hwc();
    let in_row = in_w as usize * in_ch as usize;
    let out_row = (out_w * out_ch) as usize;
    let up = usize::from(upsample);
    let needed_in = if rows.is_empty() {
        0..0
    } else {
        (rows.start >> up).saturating_sub(1)..((((rows.end - 1) >> up) + 2).min(in_h as usize))
    };
    let in_rows = in_first..in_first + input.len() / in_row.max(1);
    let ok = rows.start <= rows.end
        && rows.end <= out_h as usize
        && input.len().is_multiple_of(in_row.max(1))
        && output.len() == rows.len() * out_row
        && (needed_in.is_empty()
            || (in_rows.start <= needed_in.start && needed_in.end <= in_rows.end))
        && prepared.is_none_or(|p| p.len() == phase::prepared_words(layer));
    if !ok {
        return Err(Error::ShapeMismatch);
    }
    let band = Band {
        in_first,
        rows,
        prepared,
    };
    let c = in_ch as usize;
    // Monomorphise the common channel counts so the row copies and dot products have
    // compile-time lengths (fully unrolled, no remainder loops); `0` means "read the
    // count at run time". Cortex-M without the DSP extension (M0, M3) keeps one copy,
    // for flash: each is about 10 KB there, and those boards have 64-256 KiB. WebAssembly
    // keeps one copy too: the page downloads the module, and the copies were a third of it.
    let mono = !cfg!(any(
        all(target_arch = "arm", not(arm_dsp)),
        target_arch = "wasm32"
    ));
    let args = Call {
        layer,
        input,
        output,
        c,
        band: &band,
        scratch,
    };
    let ran = match kernel {
        // Not on Cortex-M4, whose flash would hold both (its tests run on the host).
        #[cfg(not(arm_dsp))]
        Kernel::Portable => by_channels!(entry::<Portable>, c, mono, args),
        // Also on hosts (`cfg(arm_dsp_kernel)`), on the assembly's portable twins, for
        // tests; never selected there.
        #[cfg(arm_dsp_kernel)]
        Kernel::ArmDsp => by_channels!(entry::<super::isa::arm_dsp::ArmDsp>, c, mono, args),
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        #[allow(unsafe_code)]
        // SAFETY: `entry_sse2` only requires SSE2, which the cfg guarantees is enabled
        // for the whole build (it is part of the x86-64 baseline).
        Kernel::Sse2 => unsafe {
            by_channels!(entry_sse2::<super::isa::x86::sse2::Sse2>, c, mono, args)
        },
        #[cfg(target_arch = "x86_64")]
        #[allow(unsafe_code)]
        // SAFETY: `avx2::available` confirmed AVX2.
        Kernel::Avx2 if avx2_here() => unsafe {
            by_channels!(
                entry_avx2::<super::isa::x86::avx2_conv::Avx2Lanes>,
                c,
                mono,
                args
            )
        },
        #[cfg(target_arch = "x86_64")]
        #[allow(unsafe_code)]
        // SAFETY: as for `Kernel::Avx2`.
        Kernel::Avx2Pixels if avx2_here() => unsafe {
            by_channels!(
                entry_avx2::<super::isa::x86::avx2_conv::Avx2Pixels>,
                c,
                mono,
                args
            )
        },
        _ => {
            reference::conv_generic::<0>(layer, args.input, args.output, c, &band);
            Kernel::Reference
        }
    };
    Ok(ran)
}

/// Whether this CPU runs AVX2 ([`crate::ops::isa::x86::avx2::available`]).
#[cfg(target_arch = "x86_64")]
fn avx2_here() -> bool {
    super::isa::x86::avx2::available()
}

/// One call of a kernel's entry point: [`phase::drive`]'s arguments.
struct Call<'a, 'l> {
    layer: &'a Layer<'l>,
    input: &'a [u8],
    output: &'a mut [u8],
    c: usize,
    band: &'a Band<'a>,
    scratch: Option<&'a mut [u32]>,
}

impl Call<'_, '_> {
    /// Runs kernel `Kn` (inlined into the entry point that calls this) and reports it.
    #[inline(always)]
    fn drive<Kn: PhaseKernel, const C: usize>(self) -> Kernel {
        let Call {
            layer,
            input,
            output,
            c,
            band,
            scratch,
        } = self;
        phase::drive::<Kn, C>(layer, input, output, c, band, scratch);
        Kn::ID
    }
}

/// Kernel `Kn` on a band, compiled for the build's own target features (the portable
/// and Arm DSP kernels).
#[inline(never)]
fn entry<Kn: PhaseKernel, const C: usize>(call: Call<'_, '_>) -> Kernel {
    call.drive::<Kn, C>()
}

/// [`entry`] compiled with SSE2 enabled, so that the `pmaddwd` helpers inline.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(never)]
#[target_feature(enable = "sse2")]
fn entry_sse2<Kn: PhaseKernel, const C: usize>(call: Call<'_, '_>) -> Kernel {
    call.drive::<Kn, C>()
}

/// [`entry`] compiled with AVX2 enabled; callers check `avx2::available` first.
#[cfg(target_arch = "x86_64")]
#[inline(never)]
#[target_feature(enable = "avx2")]
fn entry_avx2<Kn: PhaseKernel, const C: usize>(call: Call<'_, '_>) -> Kernel {
    call.drive::<Kn, C>()
}

/// `u32` words of [`ModelWeights`]: the default model takes 3,108 (3,072 for the two
/// upsampling layers, 36 for the last).
#[cfg(target_arch = "x86_64")]
const HOST_WORDS: usize = 4096;

/// A model's prepared convolution weights ([`prepare`]) and the kernels' scratch, made
/// once: a [`crate::Generator`] on x86-64 holds them, so that its whole-image runs
/// neither merge weights nor zero a stack buffer on every call. Layers that do not fit
/// [`HOST_WORDS`] merge per call as before.
#[cfg(target_arch = "x86_64")]
pub(crate) struct ModelWeights {
    words: [u32; HOST_WORDS],
    /// Layer `i`'s kernel and `(start, len)` in `words`; `len == 0`: none.
    spans: [(Kernel, u16, u16); crate::MAX_LAYERS],
    scratch: [u32; phase::SCRATCH_WORDS],
}

#[cfg(target_arch = "x86_64")]
impl ModelWeights {
    /// Prepares the weights of every conv layer of `layers` while they fit.
    pub(crate) fn new(layers: &[Layer<'_>]) -> ModelWeights {
        let mut m = ModelWeights {
            words: [0; HOST_WORDS],
            spans: [(Kernel::Reference, 0, 0); crate::MAX_LAYERS],
            scratch: [0; phase::SCRATCH_WORDS],
        };
        let mut used = 0;
        for (layer, span) in layers.iter().zip(m.spans.iter_mut()) {
            let n = prepared_words(layer);
            let Some(dst) = m.words.get_mut(used..used + n) else {
                continue;
            };
            if n == 0 || prepare(layer, dst).is_err() {
                continue;
            }
            *span = (select(layer), used as u16, n as u16);
            used += n;
        }
        m
    }

    /// Runs layer `i` of the layers this was made from, like [`crate::ops::run_layer`]
    /// (the same bytes), from its prepared weights if it has them.
    pub(crate) fn run_layer(
        &mut self,
        i: usize,
        layer: &Layer<'_>,
        input: &[u8],
        output: &mut [u8],
    ) -> Result<()> {
        let Some(&(kernel, start, len)) = self.spans.get(i).filter(|s| s.2 > 0) else {
            return crate::ops::run_layer(layer, input, output);
        };
        if input.len() != layer.input_len() || output.len() != layer.output_len() {
            return Err(Error::ShapeMismatch);
        }
        let (start, len) = (start as usize, len as usize);
        let prepared = self.words.get(start..start + len);
        let out_h = layer.shape().output_hwc().0 as usize;
        let scratch = Some(&mut self.scratch[..]);
        run(kernel, layer, prepared, scratch, input, 0, output, 0..out_h).map(drop)
    }
}

#[cfg(target_arch = "x86_64")]
impl core::fmt::Debug for ModelWeights {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ModelWeights")
            .field("spans", &self.spans)
            .finish_non_exhaustive()
    }
}
