//! 3x3 convolution (stride 1, padding 1) with an optionally fused nearest-neighbour
//! 2x upsample of its input.
//!
//! Activations are HWC and weights `[out][ky][kx][in]`. Taps outside the image read the
//! input zero point, which contributes exactly zero because the stored bias already
//! includes `-zero_point * sum(w)`. With the upsample, output pixel `(y, x)` of the
//! `2h x 2w` grid reads input pixel `(y / 2, x / 2)`.
//!
//! # Fast path: phase split
//!
//! With nearest 2x upsampling, output pixel `(2i + py, 2j + px)` reads only a 2x2
//! neighbourhood of the low-resolution input: rows `i - 1 + py ..= i + py` and the same
//! for columns. For each of the four phases `(py, px)` the 3x3 convolution therefore
//! equals a 2x2 convolution on the input with merged weights (sums of 1, 2 or 4 original
//! taps, in `i16`), which is the same integer sum with 4/9 of the multiplies, so the
//! result is bit-identical. Tap rows merge as `py = 0: {0}, {1, 2}` and
//! `py = 1: {0, 1}, {2}`, columns likewise.
//!
//! # Packed pairs
//!
//! Weights and inputs are `i16` packed two to a `u32` word (first value in the low half),
//! the operand of the Arm DSP extension's `SMLAD` (two 16-bit multiply-accumulates in one
//! instruction; the `dual` module). A pixel's channels are padded to an even count `cp` (the extra
//! slot has weight 0), so no pair straddles two pixels. Word arrays are 4-byte aligned,
//! so the Cortex-M4 loads two words per `LDRD`.
//!
//! The input is read through a ring of padded rows (the zero point on every side), so
//! borders need no special case: padded row `r` holds input row `r - 1`. For each row
//! phase `py` and input row `i`, the ring holds the `k` padded rows the outputs read, and
//! both column phases run over them; every dot product is then `k` contiguous runs of
//! words: four output channels per pass sharing the input loads (`pmaddwd` on x86-64,
//! `SMLAD` on Cortex-M4), and the channels left over (a one-channel last layer) four
//! pixels per pass sharing the weight loads. Without upsampling the same loop runs once
//! with the 3x3 kernel widened to pairs. Each output is requantised by a
//! `Rescale` (module `requant`), which folds in the bias.
//!
//! # Prepared weights
//!
//! The merged (or widened) weights depend only on the model. [`prepare`] computes them
//! once for a whole layer into a caller-owned buffer of [`prepared_words`] words, and
//! [`conv3x3_rows_prepared`] runs from it; the streaming generator, which calls a layer
//! once per row, uses this. Without it, each call merges one block of output channels
//! at a time into a fixed 2 KiB stack scratch that also holds the row ring (the
//! Cortex-M stack budget is tight).
//!
//! # Row bands
//!
//! [`conv3x3_rows`] computes only output rows `rows` from an input band that holds input
//! rows `in_first..` (every row the wanted outputs read must be in it). The streaming
//! generator uses it to produce the last layers a few rows at a time; [`conv3x3`] is the
//! whole-map case (all rows, the band is the whole input). Both paths below take the band.
//!
//! Layers too wide for the scratch (not even one channel's weights beside the ring) run
//! the generic path: gather a `9 * in_ch` byte patch per output pixel and take one dot
//! product per output channel.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
mod sse2;

use super::{Channel, channels};
use crate::model::{MAX_CONV_IN_CH, MAX_CONV_OUT_CH};
use crate::ops::requant::{Requant, Rescale};
use crate::{Error, Layer, LayerShape, Result};

/// Most output channels in one fast-path block (their decoded parameters live in a
/// stack array of this length).
pub const FAST_MAX_OUT_CH: usize = 16;

/// `u32` words of fast-path scratch (2 KiB): the ring of `k` padded rows
/// (`k * (in_w + 2) * cp / 2`) and, without prepared weights, the merged weights of the
/// two column phases of one row phase for a block of output channels
/// (`2 * block * k * k * cp / 2`). The default model: 144 + 256 (4 of 16 channels) at
/// 7x7, 256 + 256 at 14x14, 360 + 36 for the final 8 -> 1 at 28x28.
const SCRATCH_WORDS: usize = 512;

/// Tap rows (or columns) of the 3x3 kernel merged into tap `k'` of phase `p`:
/// `MERGED[p][k']` is the range of original taps.
const MERGED: [[(usize, usize); 2]; 2] = [[(0, 1), (1, 3)], [(0, 2), (2, 3)]];

const NO_CHANNEL: Channel = Channel {
    bias: 0,
    requant: Requant {
        multiplier: 0,
        shift: 1,
        zero_point: 0,
        min: 0,
    },
};

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
    conv_rows(layer, None, input, in_first, output, rows, Kernels::Native)
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
    conv_rows(
        layer,
        Some(prepared),
        input,
        in_first,
        output,
        rows,
        Kernels::Native,
    )
}

/// [`conv3x3_rows`] (`prepared` empty) or [`conv3x3_rows_prepared`] with the portable
/// pairwise dot products ([`dual`], the code that runs `SMLAD` on Cortex-M4) also on
/// x86-64, whose own kernels use SSE2: lets host tests check the Cortex-M code path.
#[doc(hidden)]
pub fn conv3x3_rows_portable(
    layer: &Layer<'_>,
    prepared: &[u32],
    input: &[u8],
    in_first: usize,
    output: &mut [u8],
    rows: core::ops::Range<usize>,
) -> Result<()> {
    let prepared = (!prepared.is_empty()).then_some(prepared);
    if prepared.is_some_and(|p| p.len() != prepared_words(layer)) {
        return Err(Error::ShapeMismatch);
    }
    conv_rows(
        layer,
        prepared,
        input,
        in_first,
        output,
        rows,
        Kernels::Portable,
    )
}

/// `u32` words of prepared weights for `layer` ([`prepare`]): four merged 2x2 phases
/// (or the 3x3 kernel) per output channel, `cp / 2` words per tap. `0` for a linear
/// layer or a convolution that takes the generic path (which needs none).
pub fn prepared_words(layer: &Layer<'_>) -> usize {
    let LayerShape::Conv3x3 {
        in_ch,
        out_ch,
        in_w,
        upsample,
        ..
    } = layer.shape()
    else {
        return 0;
    };
    if !fits_fast_path(layer) {
        return 0;
    }
    let g = Geo::new(in_ch as usize, in_w as usize, upsample);
    g.stride * g.stride * out_ch as usize * g.fan
}

/// Writes the prepared weights of `layer` into `dst`, which must be exactly
/// [`prepared_words`] long ([`Error::ShapeMismatch`] otherwise). Layout:
/// `[phase py * 2 + px][out][ky'][kx'][cp / 2]` pairs.
pub fn prepare(layer: &Layer<'_>, dst: &mut [u32]) -> Result<()> {
    let LayerShape::Conv3x3 {
        in_ch, upsample, ..
    } = layer.shape()
    else {
        return Err(Error::ShapeMismatch);
    };
    if dst.len() != prepared_words(layer) {
        return Err(Error::ShapeMismatch);
    }
    let c = in_ch as usize;
    let weights = layer.params().weights;
    if upsample {
        let per_phase = dst.len() / 4;
        for (ph, d) in dst.chunks_exact_mut(per_phase.max(1)).enumerate() {
            merge_phase::<0>(weights, c, Some((ph / 2, ph % 2)), d);
        }
    } else {
        merge_phase::<0>(weights, c, None, dst);
    }
    Ok(())
}

/// Which dot-product kernels the fast path runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kernels {
    /// The target's own (SSE2 on x86-64, [`dual`] elsewhere).
    Native,
    /// [`dual`] everywhere.
    Portable,
}

/// The checks and dispatch of [`conv3x3_rows`] and its variants.
fn conv_rows(
    layer: &Layer<'_>,
    prepared: Option<&[u32]>,
    input: &[u8],
    in_first: usize,
    output: &mut [u8],
    rows: core::ops::Range<usize>,
    kernels: Kernels,
) -> Result<()> {
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
            || (in_rows.start <= needed_in.start && needed_in.end <= in_rows.end));
    if !ok {
        return Err(Error::ShapeMismatch);
    }
    // Whole maps on CPUs with AVX2 take its kernel (module `avx2`) when the layer fits.
    #[cfg(target_arch = "x86_64")]
    if kernels == Kernels::Native
        && prepared.is_none()
        && in_first == 0
        && rows == (0..out_h as usize)
        && crate::ops::avx2::available()
        && let Some(kind) = avx2::kind(layer)
    {
        let whole = input.get(..in_h as usize * in_row);
        debug_assert!(whole.is_some(), "conv_rows checked the band");
        run_avx2(layer, kind, None, None, whole.unwrap_or(&[]), output);
        return Ok(());
    }
    let band = Band {
        in_first,
        rows: rows.clone(),
        prepared,
        kernels,
    };
    // Monomorphise the common channel counts so the row copies and dot products have
    // compile-time lengths (fully unrolled, no remainder loops); `0` means "read the
    // count at run time".
    // The host's whole-image runs keep its own SSE2 kernel (module `sse2`).
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    if kernels == Kernels::Native && prepared.is_none() && sse2::fast_block(layer) > 0 {
        run_sse2(layer, in_ch as usize, input, output, &band);
        return Ok(());
    }
    // Cortex-M without the DSP extension (M0, M3) keeps one copy, for flash: each is
    // about 10 KB there, and those boards have 64-256 KiB.
    let mono = !cfg!(all(target_arch = "arm", not(arm_dsp)));
    let c = in_ch as usize;
    let fast = fits_fast_path(layer);
    match (in_ch, fast) {
        (8, true) if mono => conv_fast_entry::<8>(layer, input, output, c, &band),
        (16, true) if mono => conv_fast_entry::<16>(layer, input, output, c, &band),
        (_, true) => conv_fast_entry::<0>(layer, input, output, c, &band),
        (_, false) => conv_generic::<0>(layer, input, output, c, &band),
    }
    Ok(())
}

/// Calls the AVX2 kernel of `kind` for the channel count; the caller checked
/// [`crate::ops::avx2::available`], that [`avx2::kind`] is `Some(kind)`, and that the
/// buffers are the whole maps.
#[cfg(target_arch = "x86_64")]
fn run_avx2(
    layer: &Layer<'_>,
    kind: avx2::Kind,
    prepared: Option<&[u32]>,
    scratch: Option<&mut [u32]>,
    input: &[u8],
    output: &mut [u8],
) {
    let LayerShape::Conv3x3 { in_ch, .. } = layer.shape() else {
        return;
    };
    debug_assert!(
        crate::ops::avx2::available(),
        "AVX2 kernel called without AVX2"
    );
    #[allow(unsafe_code)]
    // SAFETY: the kernels require AVX2, which the caller checked with
    // `avx2::available` (compile-time `target_feature`, or run-time detection).
    unsafe {
        match (kind, in_ch) {
            (avx2::Kind::Channels, 8) => {
                avx2::conv_whole::<8>(layer, prepared, scratch, input, output)
            }
            (avx2::Kind::Channels, 16) => {
                avx2::conv_whole::<16>(layer, prepared, scratch, input, output)
            }
            (avx2::Kind::Channels, _) => {
                avx2::conv_whole::<0>(layer, prepared, scratch, input, output)
            }
            (avx2::Kind::Pixels, 8) => {
                avx2::conv_pixels::<8>(layer, prepared, scratch, input, output)
            }
            (avx2::Kind::Pixels, _) => {
                avx2::conv_pixels::<0>(layer, prepared, scratch, input, output)
            }
        }
    }
}

/// `u32` words of [`HostWeights`]: the default model takes 3,108 (3,072 for the two
/// upsampling layers, 36 for the last).
#[cfg(target_arch = "x86_64")]
const HOST_WORDS: usize = 4096;

/// The AVX2 kernel's merged weights of a model's layers, prepared once: a
/// [`crate::Generator`] holds them, so that its whole-image runs skip the merging
/// [`conv3x3`] does on every call. Empty where the CPU has no AVX2; layers that do not
/// fit [`HOST_WORDS`] merge per call as before.
#[cfg(target_arch = "x86_64")]
pub(crate) struct HostWeights {
    words: [u32; HOST_WORDS],
    /// `(start, len)` in `words` of layer `i`'s weights; `len == 0`: none.
    spans: [(u16, u16); crate::MAX_LAYERS],
    /// The kernels' scratch (the widened input), kept here so that no call zeroes a
    /// stack buffer for it.
    scratch: [u32; avx2::SCRATCH_WORDS],
}

#[cfg(target_arch = "x86_64")]
impl HostWeights {
    /// Prepares the weights of every layer of `layers` an AVX2 kernel takes, while
    /// they fit.
    pub(crate) fn new(layers: &[Layer<'_>]) -> HostWeights {
        let mut h = HostWeights {
            words: [0; HOST_WORDS],
            spans: [(0, 0); crate::MAX_LAYERS],
            scratch: [0; avx2::SCRATCH_WORDS],
        };
        if !crate::ops::avx2::available() {
            return h;
        }
        let mut used = 0;
        for (layer, span) in layers.iter().zip(h.spans.iter_mut()) {
            let n = avx2::prepared_words(layer);
            if n == 0 || used + n > HOST_WORDS {
                continue;
            }
            avx2::prepare(layer, &mut h.words[used..used + n]);
            *span = (used as u16, n as u16);
            used += n;
        }
        h
    }

    /// Runs layer `i` of the layers this was prepared from, like
    /// [`crate::ops::run_layer`] (the same bytes), from its prepared weights if it has
    /// them.
    pub(crate) fn run_layer(
        &mut self,
        i: usize,
        layer: &Layer<'_>,
        input: &[u8],
        output: &mut [u8],
    ) -> Result<()> {
        if let Some(&(start, len)) = self.spans.get(i)
            && len > 0
            && input.len() == layer.input_len()
            && output.len() == layer.output_len()
            && let Some(kind) = avx2::kind(layer)
        {
            let (start, len) = (start as usize, len as usize);
            let prepared = self.words.get(start..start + len);
            // `spans` is only set where AVX2 is available (`new`).
            run_avx2(
                layer,
                kind,
                prepared,
                Some(&mut self.scratch),
                input,
                output,
            );
            return Ok(());
        }
        crate::ops::run_layer(layer, input, output)
    }
}

#[cfg(target_arch = "x86_64")]
impl core::fmt::Debug for HostWeights {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HostWeights")
            .field("spans", &self.spans)
            .finish_non_exhaustive()
    }
}

/// Whole-map [`conv3x3`] through the x86-64 AVX2 kernel, whatever the dispatch would
/// pick: `Ok(false)`, writing nothing, if the CPU lacks AVX2 (or this is not x86-64)
/// or the layer does not fit that kernel. Lets tests check it against the reference.
#[doc(hidden)]
pub fn conv3x3_avx2(layer: &Layer<'_>, input: &[u8], output: &mut [u8]) -> Result<bool> {
    if input.len() != layer.input_len() || output.len() != layer.output_len() {
        return Err(Error::ShapeMismatch);
    }
    #[cfg(target_arch = "x86_64")]
    if crate::ops::avx2::available()
        && let Some(kind) = avx2::kind(layer)
    {
        run_avx2(layer, kind, None, None, input, output);
        return Ok(true);
    }
    Ok(false)
}

/// Whole-map [`conv3x3`] through the x86-64 SSE2 kernel, the fallback on CPUs without
/// AVX2: `Ok(false)`, writing nothing, off x86-64 or if the layer does not fit it. Lets
/// tests check the fallback on any host.
#[doc(hidden)]
pub fn conv3x3_sse2(layer: &Layer<'_>, input: &[u8], output: &mut [u8]) -> Result<bool> {
    if input.len() != layer.input_len() || output.len() != layer.output_len() {
        return Err(Error::ShapeMismatch);
    }
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    if let LayerShape::Conv3x3 { in_ch, .. } = layer.shape()
        && sse2::fast_block(layer) > 0
    {
        run_sse2(layer, in_ch as usize, input, output, &Band::whole(layer));
        return Ok(true);
    }
    Ok(false)
}

/// The SSE2 kernel for `band`, monomorphised for the common channel counts `c`.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
fn run_sse2(layer: &Layer<'_>, c: usize, input: &[u8], output: &mut [u8], band: &Band<'_>) {
    match c {
        8 => sse2::conv_fast_entry::<8>(layer, input, output, c, band),
        16 => sse2::conv_fast_entry::<16>(layer, input, output, c, band),
        _ => sse2::conv_fast_entry::<0>(layer, input, output, c, band),
    }
}

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
        let got = dual::dot4ch::<2>(&w, seg, &rows2, col, acc);
        let want: [i32; 4] = core::array::from_fn(|g| {
            // Word `k` of channel `g`, kernel row `ky`: `w[4 * (ky * seg + k) + g]`.
            acc[g] + plain_pairs(&w[g..], 4, &rows2, 4 * seg, seg, col)
        });
        bad += u32::from(got != want);
        let got = dual::dot4px::<3>(&w, seg, &rows, col, step, acc);
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
        let words = dual::widen_sxtb16(&input[..n], &mut xw);
        let tail = &input[2 * words..n];
        let got = dual::dot2_i8_sxtb16(wa, wb, &xw[..words], tail, [acc[0], acc[1]]);
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

/// Whole-map [`conv3x3`] through the generic (patch) path, whatever the layer's size:
/// the reference for tests of the fast path, which the shipped model always takes.
pub fn conv3x3_generic(layer: &Layer<'_>, input: &[u8], output: &mut [u8]) -> Result<()> {
    let LayerShape::Conv3x3 { in_ch, .. } = layer.shape() else {
        return Err(Error::ShapeMismatch);
    };
    if input.len() != layer.input_len() || output.len() != layer.output_len() {
        return Err(Error::ShapeMismatch);
    }
    conv_generic::<0>(layer, input, output, in_ch as usize, &Band::whole(layer));
    Ok(())
}

/// What a kernel call covers: the input slice holds input rows `in_first..`, the output
/// slice output rows `rows` (both checked by [`conv_rows`]); the layer's prepared
/// weights if the caller has them (length checked), and the dot-product kernels.
struct Band<'p> {
    in_first: usize,
    rows: core::ops::Range<usize>,
    prepared: Option<&'p [u32]>,
    kernels: Kernels,
}

impl Band<'_> {
    /// The whole map, native kernels, weights merged per call.
    fn whole(layer: &Layer<'_>) -> Self {
        let (out_h, _, _) = layer.shape().output_hwc();
        Band {
            in_first: 0,
            rows: 0..out_h as usize,
            prepared: None,
            kernels: Kernels::Native,
        }
    }
}

/// Channels of a pixel padded to an even count.
#[inline(always)]
const fn padded(c: usize) -> usize {
    c + (c & 1)
}

/// `lo` and `hi` packed as `SMLAD` reads them.
#[inline(always)]
const fn pack(lo: i16, hi: i16) -> u32 {
    (lo as u16 as u32) | ((hi as u16 as u32) << 16)
}

/// Fast-path geometry of a layer, in words.
#[derive(Clone, Copy)]
struct Geo {
    /// Kernel side of a pass: 2 (phase split) or 3.
    k: usize,
    /// 2 with upsampling (row and column phases), else 1.
    stride: usize,
    /// Words of one channel's kernel, `k * k * cp / 2`.
    fan: usize,
    /// Words of one padded ring row, `(w + 2) * half`.
    row_words: usize,
}

impl Geo {
    #[inline(always)]
    fn new(c: usize, w: usize, upsample: bool) -> Geo {
        let (k, stride) = if upsample { (2, 2) } else { (3, 1) };
        let half = padded(c) / 2;
        Geo {
            k,
            stride,
            fan: k * k * half,
            row_words: (w + 2) * half,
        }
    }
}

/// Whether the fast path's stack buffers hold this layer.
fn fits_fast_path(layer: &Layer<'_>) -> bool {
    merge_block(layer) > 0
}

/// Output channels per fast-path block when the weights are merged into the scratch:
/// as many as fit beside the ring (a multiple of four when more than four), at most
/// [`FAST_MAX_OUT_CH`]; `0` if even one channel does not fit.
fn merge_block(layer: &Layer<'_>) -> usize {
    let LayerShape::Conv3x3 {
        in_ch,
        out_ch,
        in_w,
        upsample,
        ..
    } = layer.shape()
    else {
        return 0;
    };
    let g = Geo::new(in_ch as usize, in_w as usize, upsample);
    let Some(room) = SCRATCH_WORDS.checked_sub(g.k * g.row_words) else {
        return 0;
    };
    let n = (room / (g.stride * g.fan))
        .min(out_ch as usize)
        .min(FAST_MAX_OUT_CH);
    if n > 4 && n < out_ch as usize {
        n - n % 4
    } else {
        n
    }
}

/// Calls [`conv_fast`], which on x86-64 is compiled with SSE2 enabled as a target
/// feature so that the `pmaddwd` helpers in [`x86`] inline into its loops.
#[inline(always)]
fn conv_fast_entry<const C: usize>(
    layer: &Layer<'_>,
    input: &[u8],
    output: &mut [u8],
    c: usize,
    band: &Band<'_>,
) {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    #[allow(unsafe_code)]
    // SAFETY: `conv_fast` only requires SSE2, which the cfg above guarantees is enabled
    // for the whole build (it is part of the x86-64 baseline).
    unsafe {
        conv_fast::<C>(layer, input, output, c, band)
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    conv_fast::<C>(layer, input, output, c, band)
}

/// The phase-split / row-ring convolution described in the module docs.
#[inline(never)]
#[cfg_attr(
    all(target_arch = "x86_64", target_feature = "sse2"),
    target_feature(enable = "sse2")
)]
fn conv_fast<const C: usize>(
    layer: &Layer<'_>,
    input: &[u8],
    output: &mut [u8],
    c: usize,
    band: &Band<'_>,
) {
    let c = if C == 0 { c } else { C };
    let shape = layer.shape();
    debug_assert!(matches!(shape, LayerShape::Conv3x3 { .. }), "not a conv");
    let LayerShape::Conv3x3 {
        out_ch,
        in_h,
        in_w,
        upsample,
        ..
    } = shape
    else {
        return;
    };
    let (out_ch, h, w) = (out_ch as usize, in_h as usize, in_w as usize);
    let p = layer.params();
    let s = Shape {
        c,
        h,
        w,
        zp: i16::from(p.in_zero_point),
        in_first: band.in_first,
        kernels: band.kernels,
    };
    let g = Geo::new(c, w, upsample);
    let block = match band.prepared {
        Some(_) => out_ch.min(FAST_MAX_OUT_CH),
        None => merge_block(layer),
    };
    debug_assert!(
        block > 0,
        "conv_fast on a layer that does not fit the fast path"
    );
    let block = block.max(1);
    // The loader checked `weights.len() == out_ch * 9 * c` (Layer::new).
    debug_assert_eq!(p.weights.len(), out_ch * 9 * c);
    let mut scratch = [0u32; SCRATCH_WORDS];
    let (ring, wm) = scratch.split_at_mut((g.k * g.row_words).min(SCRATCH_WORDS));
    let mut params = [Rescale::ZERO; FAST_MAX_OUT_CH];
    let mut first = 0;
    while first < out_ch {
        let n = block.min(out_ch - first).min(FAST_MAX_OUT_CH);
        for (dst, ch) in params.iter_mut().zip(channels(layer).skip(first).take(n)) {
            *dst = Rescale::new(ch.bias, ch.requant);
        }
        let params = &params[..n];
        let words = n * g.fan;
        for py in 0..g.stride {
            let at = Place {
                py,
                stride: g.stride,
                out_w: g.stride * w,
                out_ch,
                first,
                rows: band.rows.clone(),
            };
            if at.inputs().is_empty() {
                continue; // no wanted output row has this row phase
            }
            let ws: [&[u32]; 2] = match band.prepared {
                Some(all) => core::array::from_fn(|px| {
                    let start = ((py * g.stride + px) * out_ch + first) * g.fan;
                    all.get(start..start + words).unwrap_or(&[])
                }),
                None => {
                    debug_assert!(
                        g.k * g.row_words + g.stride * words <= SCRATCH_WORDS,
                        "merge_block sized the scratch"
                    );
                    let weights = &p.weights[first * 9 * c..(first + n) * 9 * c];
                    for (px, dst) in wm.chunks_exact_mut(words.max(1)).take(g.stride).enumerate() {
                        let phase = upsample.then_some((py, px));
                        // One out-of-line copy on Cortex-M (flash); it runs once per
                        // block and phase.
                        if cfg!(target_arch = "arm") {
                            merge_phase::<0>(weights, c, phase, dst);
                        } else {
                            merge_phase::<C>(weights, c, phase, dst);
                        }
                    }
                    let (a, b) = wm.split_at(words.min(wm.len()));
                    [a, b]
                }
            };
            if upsample {
                run::<C, 2>(s, at, ws, ring, params, input, output);
            } else {
                run::<C, 3>(s, at, ws, ring, params, input, output);
            }
        }
        first += n;
    }
}

/// Input geometry of the fast path.
#[derive(Clone, Copy)]
struct Shape {
    /// Input channels.
    c: usize,
    /// Input height and width.
    h: usize,
    w: usize,
    /// Input zero point (the padding value).
    zp: i16,
    /// The input slice starts at this input row.
    in_first: usize,
    /// The dot-product kernels to run.
    kernels: Kernels,
}

/// Where a pass writes: output pixel `(stride * i + py, stride * j + px)` for input
/// position `(i, j)` and column phase `px < stride`, channels `first..` of `out_ch`, for
/// the output rows in `rows` (the output slice starts at row `rows.start`).
#[derive(Clone)]
struct Place {
    py: usize,
    stride: usize,
    out_w: usize,
    out_ch: usize,
    first: usize,
    rows: core::ops::Range<usize>,
}

impl Place {
    /// The input positions `i` whose output row `stride * i + py` is wanted.
    fn inputs(&self) -> core::ops::Range<usize> {
        let lo = self
            .rows
            .start
            .saturating_sub(self.py)
            .div_ceil(self.stride);
        let hi = self.rows.end.saturating_sub(self.py).div_ceil(self.stride);
        lo..hi.max(lo)
    }
}

/// Packed weights of phase `(py, px)` (`None`: the plain 3x3 kernel) for every output
/// channel in `weights` (`[out][ky][kx][in]` int8, `9 * c` per channel): merged taps are
/// `i16` sums of the original taps, `fan = taps * cp / 2` words per channel in the
/// order `[ky'][kx'][cp / 2]`. Whole groups of four channels are interleaved word by word
/// (`dst[group * 4 * fan + 4 * t + g]`, see [`dual::dot4ch`]); the channels left over
/// follow one after another (`dst[ch * fan + t]`). `C` is `c` when it is a compile-time
/// constant, else 0.
#[cfg_attr(not(target_arch = "arm"), inline(always))]
#[cfg_attr(target_arch = "arm", inline(never))]
fn merge_phase<const C: usize>(
    weights: &[u8],
    c: usize,
    phase: Option<(usize, usize)>,
    dst: &mut [u32],
) {
    let c = if C == 0 { c } else { C };
    let half = padded(c) / 2;
    let taps = if phase.is_some() { 4 } else { 9 };
    let fan = taps * half;
    let n = weights.len() / (9 * c).max(1);
    let n4 = n - n % 4;
    // `c <= MAX_CONV_IN_CH` (Layer::new); one more slot for the padding channel.
    let mut sum = [0i16; MAX_CONV_IN_CH + 2];
    let Some(sum) = sum.get_mut(..2 * half) else {
        return;
    };
    for (ch, w) in weights.chunks_exact((9 * c).max(1)).enumerate() {
        // Word `t` of channel `ch` is `dst[base + stride * t]`.
        let (base, stride) = if ch < n4 {
            ((ch - ch % 4) * fan + ch % 4, 4)
        } else {
            (ch * fan, 1)
        };
        for t in 0..taps {
            let (ys, xs) = match phase {
                Some((py, px)) => (MERGED[py][t / 2], MERGED[px][t % 2]),
                None => ((t / 3, t / 3 + 1), (t % 3, t % 3 + 1)),
            };
            sum.fill(0);
            for ky in ys.0..ys.1 {
                for kx in xs.0..xs.1 {
                    let src = &w[(3 * ky + kx) * c..][..c];
                    for (s, &b) in sum.iter_mut().zip(src) {
                        *s += i16::from(b as i8);
                    }
                }
            }
            for (q, p) in sum.chunks_exact(2).enumerate() {
                if let Some(d) = dst.get_mut(base + stride * (t * half + q)) {
                    *d = pack(p[0], p[1]);
                }
            }
        }
    }
}

/// Writes padded row `r` (input row `r - 1`, zero point outside) as packed pairs.
#[inline(always)]
fn fill_row<const C: usize>(dst: &mut [u32], input: &[u8], r: usize, s: Shape) {
    let c = if C == 0 { s.c } else { C };
    let half = padded(c) / 2;
    let row = s.w * c;
    let zp = pack(s.zp, s.zp);
    let src = match r.checked_sub(1) {
        Some(y) if y < s.h => {
            // conv_rows checked that `input` holds the band's rows.
            let y = y.checked_sub(s.in_first);
            debug_assert!(
                y.is_some_and(|y| input.len() >= (y + 1) * row),
                "input row out of the band"
            );
            y.and_then(|y| input.get(y * row..(y + 1) * row))
        }
        _ => None,
    };
    let Some(src) = src else {
        dst.fill(zp);
        return;
    };
    let (left, rest) = dst.split_at_mut(half.min(dst.len()));
    left.fill(zp);
    let (mid, right) = rest.split_at_mut((s.w * half).min(rest.len()));
    right.fill(zp);
    if c % 2 == 0 {
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        #[allow(unsafe_code)]
        // SAFETY: `x86::widen` only requires SSE2, enabled for the whole build (cfg).
        unsafe {
            x86::widen(src, mid);
        }
        #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
        dual::widen(src, mid);
    } else {
        for (px, b) in mid
            .chunks_exact_mut(half.max(1))
            .zip(src.chunks_exact(c.max(1)))
        {
            for (q, d) in px.iter_mut().enumerate() {
                let v = |i: usize| b.get(i).map_or(0, |&x| i16::from(x as i8));
                *d = pack(v(2 * q), v(2 * q + 1));
            }
        }
    }
}

/// All input positions of one row phase: for each input row `i` the ring takes the new
/// padded rows, then for each column phase `px` every output channel of the block is
/// computed at output pixels `(stride * i + py, stride * j + px)` from padded rows
/// `i + py .. i + py + K`, columns `j + px .. j + px + K`. `ws[px]` holds the block's
/// `K x K` weights of phase `(py, px)`.
#[inline]
#[cfg_attr(
    all(target_arch = "x86_64", target_feature = "sse2"),
    target_feature(enable = "sse2")
)]
fn run<const C: usize, const K: usize>(
    s: Shape,
    at: Place,
    ws: [&[u32]; 2],
    ring: &mut [u32],
    params: &[Rescale],
    input: &[u8],
    output: &mut [u8],
) {
    let c = if C == 0 { s.c } else { C };
    let half = padded(c) / 2;
    let seg = K * half;
    let fan = K * seg;
    let row_words = (s.w + 2) * half;
    let n = params.len();
    let n4 = n - n % 4;
    debug_assert!(
        ring.len() >= K * row_words,
        "row ring shorter than {K} rows"
    );
    let Some(ring) = ring.get_mut(..K * row_words) else {
        return;
    };
    let out_row = at.out_w * at.out_ch;
    let inputs = at.inputs();
    let first_i = inputs.start;
    for i in inputs {
        let base = i + at.py;
        // Padded rows base .. base + K; all but the last are already in the ring.
        let first_new = if i == first_i { base } else { base + K - 1 };
        for r in first_new..base + K {
            fill_row::<C>(&mut ring[(r % K) * row_words..][..row_words], input, r, s);
        }
        let ring: &[u32] = ring;
        let x: [&[u32]; K] =
            core::array::from_fn(|ky| &ring[((base + ky) % K) * row_words..][..row_words]);
        let oy = at.stride * i + at.py - at.rows.start;
        // conv_rows checked `output.len() == rows.len() * out_row`.
        debug_assert!(
            output.len() >= (oy + 1) * out_row,
            "output row out of range"
        );
        let Some(out) = output.get_mut(oy * out_row..(oy + 1) * out_row) else {
            return;
        };
        for (px, wm) in ws.iter().enumerate().take(at.stride) {
            debug_assert!(wm.len() >= n * fan, "weights of {n} channels expected");
            let Some(wm) = wm.get(..n * fan) else {
                return;
            };
            // Four channels per pass, sharing the input loads.
            for j in 0..s.w {
                let col = (j + px) * half;
                let o = (at.stride * j + px) * at.out_ch + at.first;
                let Some(out_px) = out.get_mut(o..o + n4) else {
                    return;
                };
                for ((o4, w4), p4) in out_px
                    .chunks_exact_mut(4)
                    .zip(wm.chunks_exact(4 * fan))
                    .zip(params.chunks_exact(4))
                {
                    let bias = [p4[0].bias, p4[1].bias, p4[2].bias, p4[3].bias];
                    let acc = dot4ch::<K>(s.kernels, w4, seg, &x, col, bias);
                    for ((o, p), a) in o4.iter_mut().zip(p4).zip(acc) {
                        *o = p.apply(a);
                    }
                }
            }
            // The channels left over one at a time, four pixels per pass sharing the
            // weight loads.
            for (ch, p) in params.iter().enumerate().skip(n4) {
                let wc = &wm[ch * fan..][..fan];
                let at_j = |j: usize| (at.stride * j + px) * at.out_ch + at.first + ch;
                let mut j = 0;
                while j + 4 <= s.w {
                    let acc = dot4px::<K>(s.kernels, wc, seg, &x, (j + px) * half, half, p.bias);
                    for (d, a) in acc.into_iter().enumerate() {
                        if let Some(o) = out.get_mut(at_j(j + d)) {
                            *o = p.apply(a);
                        }
                    }
                    j += 4;
                }
                for j in j..s.w {
                    let a = dual::dot1::<K>(wc, seg, &x, (j + px) * half, p.bias);
                    if let Some(o) = out.get_mut(at_j(j)) {
                        *o = p.apply(a);
                    }
                }
            }
        }
    }
}

/// Four dot products (output channels `g` of the weight block `w4`, `4 * K * seg`
/// words, interleaved as [`merge_phase`] writes them) with the same `K` input runs
/// `x[ky][col..col + seg]`, added to `acc`. Inlined so that `fan` and `seg` are constants of the monomorphised
/// caller.
#[cfg_attr(
    not(all(target_arch = "x86_64", target_feature = "sse2")),
    inline(always)
)]
#[cfg_attr(
    all(target_arch = "x86_64", target_feature = "sse2"),
    inline,
    target_feature(enable = "sse2")
)]
fn dot4ch<const K: usize>(
    kernels: Kernels,
    w4: &[u32],
    seg: usize,
    x: &[&[u32]; K],
    col: usize,
    acc: [i32; 4],
) -> [i32; 4] {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    if kernels == Kernels::Native {
        return x86::dot4ch::<K>(w4, seg, x, col, acc);
    }
    let _ = kernels;
    dual::dot4ch::<K>(w4, seg, x, col, acc)
}

/// One channel's weights against four pixels `step` words apart, each started at
/// `bias` ([`dual::dot4px`], or SSE2 on x86-64).
#[cfg_attr(
    not(all(target_arch = "x86_64", target_feature = "sse2")),
    inline(always)
)]
#[cfg_attr(
    all(target_arch = "x86_64", target_feature = "sse2"),
    inline,
    target_feature(enable = "sse2")
)]
fn dot4px<const K: usize>(
    kernels: Kernels,
    w: &[u32],
    seg: usize,
    x: &[&[u32]; K],
    col: usize,
    step: usize,
    bias: i32,
) -> [i32; 4] {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    if kernels == Kernels::Native {
        return x86::dot4px::<K>(w, seg, x, col, step, bias);
    }
    let _ = kernels;
    dual::dot4px::<K>(w, seg, x, col, step, [bias; 4])
}

/// Dot products on packed `i16` pairs, in the shape of the Arm DSP extension's `SMLAD`
/// (`acc + lo(a) * lo(b) + hi(a) * hi(b)`). On `cfg(arm_dsp)` targets (thumbv7em:
/// Cortex-M4/M7, set by `build.rs`) [`dual::smlad`] and [`dual::sxtb16`] are one
/// instruction each; elsewhere they are portable models, so the host tests run the very
/// same code (x86-64 runs its SSE2 kernels in production and these in the tests).
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))]
pub(crate) mod dual {
    /// Two consecutive `i16` packed as `SMLAD` reads them (first in the low half).
    #[inline(always)]
    fn pair(v: &[i16]) -> u32 {
        super::pack(v[0], v[1])
    }

    /// `acc + lo(a) * lo(b) + hi(a) * hi(b)` with the halves as signed 16-bit values,
    /// wrapping in `i32` as `SMLAD` does (the kernels' sums never overflow).
    #[cfg(not(arm_dsp))]
    #[inline(always)]
    pub(crate) fn smlad(a: u32, b: u32, acc: i32) -> i32 {
        let lo = i32::from(a as i16) * i32::from(b as i16);
        let hi = i32::from((a >> 16) as i16) * i32::from((b >> 16) as i16);
        acc.wrapping_add(lo).wrapping_add(hi)
    }

    /// `acc + lo(a) * lo(b) + hi(a) * hi(b)`: one `SMLAD` instruction.
    #[cfg(arm_dsp)]
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

    /// Bytes 0 and 2 of `x`, each sign-extended to 16 bits, packed (byte 0 low).
    #[cfg(not(arm_dsp))]
    #[inline(always)]
    pub(crate) fn sxtb16(x: u32) -> u32 {
        super::pack(i16::from(x as u8 as i8), i16::from((x >> 16) as u8 as i8))
    }

    /// Bytes 0 and 2 of `x`, each sign-extended to 16 bits: one `SXTB16` instruction.
    #[cfg(arm_dsp)]
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

    /// Bytes 1 and 3 of `x`, sign-extended and packed (byte 1 low): [`sxtb16`] of `x`
    /// rotated by 8 bits (one `SXTB16 ..., ROR #8` on Cortex-M4).
    #[cfg(not(arm_dsp))]
    #[inline(always)]
    pub(crate) fn sxtb16_ror8(x: u32) -> u32 {
        sxtb16(x.rotate_right(8))
    }

    /// Bytes 1 and 3 of `x`, sign-extended and packed: one `SXTB16` with `ROR #8`.
    #[cfg(arm_dsp)]
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

    /// Sign-extends int8 bytes into packed pairs, in order: `dst[q]` holds
    /// `src[2q], src[2q + 1]`. `src.len() == 2 * dst.len()`.
    #[inline(always)]
    pub(crate) fn widen(src: &[u8], dst: &mut [u32]) {
        // On Cortex-M4, four bytes per word load and two `SXTB16`: bytes 0, 2 and 1, 3,
        // re-paired by `PKHBT` / `PKHTB` (which LLVM forms from these masks).
        #[cfg(arm_dsp)]
        {
            let mut d4 = dst.chunks_exact_mut(2);
            let mut s4 = src.chunks_exact(4);
            for (d, s) in (&mut d4).zip(&mut s4) {
                let v = u32::from_le_bytes([s[0], s[1], s[2], s[3]]);
                let (even, odd) = (sxtb16(v), sxtb16_ror8(v));
                d[0] = (even & 0xFFFF) | (odd << 16);
                d[1] = (odd & 0xFFFF_0000) | (even >> 16);
            }
            for (d, s) in d4
                .into_remainder()
                .iter_mut()
                .zip(s4.remainder().chunks_exact(2))
            {
                *d = super::pack(i16::from(s[0] as i8), i16::from(s[1] as i8));
            }
        }
        #[cfg(not(arm_dsp))]
        for (d, s) in dst.iter_mut().zip(src.chunks_exact(2)) {
            *d = super::pack(i16::from(s[0] as i8), i16::from(s[1] as i8));
        }
    }

    /// `sum(w[k] as i8 * x[k])` by pairs: int8 weights (sign-extended two at a time)
    /// against inputs already widened to `i16`. The linear layer's dot product on CPUs
    /// without the DSP extension.
    #[inline]
    pub(crate) fn dot_i8(w: &[u8], x: &[i16]) -> i32 {
        let (wp, xp) = (w.chunks_exact(2), x.chunks_exact(2));
        let tail = wp.remainder().iter().zip(xp.remainder());
        let mut acc = 0i32;
        for (w, x) in wp.zip(xp) {
            let lo = u32::from(i16::from(w[0] as i8) as u16);
            let hi = u32::from(i16::from(w[1] as i8) as u16);
            acc = smlad(lo | (hi << 16), pair(x), acc);
        }
        for (&w, &x) in tail {
            acc = acc.wrapping_add(i32::from(w as i8) * i32::from(x));
        }
        acc
    }

    /// The int8 inputs of a dot product for [`dot_i8_sxtb16`]: each group of four bytes
    /// `x0..x3` becomes the two words `[x0 | x2]`, `[x1 | x3]` (the order [`sxtb16`]
    /// and [`sxtb16_ror8`] take a weight word apart in). Returns the number of words
    /// written (`2 * (len / 4)`); the last `len % 4` inputs are left to the caller.
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

    /// Two rows of int8 weights (`wa`, `wb`, equally long) against the same inputs, as
    /// [`dot_i8_sxtb16`] does for one: each input word pair is loaded once for both. On
    /// Cortex-M4 the loop is assembly: 13 instructions per eight multiply-accumulates.
    #[inline(always)]
    pub(crate) fn dot2_i8_sxtb16(
        wa: &[u8],
        wb: &[u8],
        xw: &[u32],
        tail: &[u8],
        acc: [i32; 2],
    ) -> [i32; 2] {
        #[cfg(arm_dsp)]
        {
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
        #[cfg(not(arm_dsp))]
        [
            dot_i8_sxtb16(wa, xw, tail, acc[0]),
            dot_i8_sxtb16(wb, xw, tail, acc[1]),
        ]
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
    fn mac4(acc: &mut [i32; 4], w: [u32; 4], x: [u32; 4]) {
        acc[0] = smlad(w[0], x[0], acc[0]);
        acc[1] = smlad(w[1], x[1], acc[1]);
        acc[2] = smlad(w[2], x[2], acc[2]);
        acc[3] = smlad(w[3], x[3], acc[3]);
    }

    /// [`dot4ch_portable`] on Cortex-M4: the loop over input-word pairs is written in
    /// assembly (LLVM spills accumulators and drops `LDRD`s in the Rust version, about
    /// 2.5-3.5 instructions per `SMLAD`); 15 instructions per eight `SMLAD`.
    #[cfg(arm_dsp)]
    #[inline(always)]
    #[allow(unsafe_code)]
    pub(super) fn dot4ch<const K: usize>(
        w4: &[u32],
        seg: usize,
        x: &[&[u32]; K],
        col: usize,
        mut acc: [i32; 4],
    ) -> [i32; 4] {
        for (ky, x) in x.iter().enumerate() {
            let x = &x[col..][..seg];
            let w = &w4[4 * ky * seg..][..4 * seg];
            let pairs = seg / 2;
            if pairs > 0 {
                let [a0, a1, a2, a3] = &mut acc;
                // SAFETY: the loop runs `pairs >= 1` times and reads `2 * pairs <= seg`
                // words from `x` and `8 * pairs <= 4 * seg` words from `w`, both slices
                // of exactly `seg` and `4 * seg` words (checked above), 4-byte aligned
                // (`u32`) as `LDRD` needs. It writes only registers (the declared
                // outputs and the flags, not preserved), touches no stack.
                unsafe {
                    core::arch::asm!(
                        "2:",
                        "ldrd {x0}, {x1}, [{xp}], #8",
                        "ldrd {w0}, {w1}, [{wp}], #8",
                        "smlad {a0}, {w0}, {x0}, {a0}",
                        "smlad {a1}, {w1}, {x0}, {a1}",
                        "ldrd {w0}, {w1}, [{wp}], #8",
                        "smlad {a2}, {w0}, {x0}, {a2}",
                        "smlad {a3}, {w1}, {x0}, {a3}",
                        "ldrd {w0}, {w1}, [{wp}], #8",
                        "smlad {a0}, {w0}, {x1}, {a0}",
                        "smlad {a1}, {w1}, {x1}, {a1}",
                        "ldrd {w0}, {w1}, [{wp}], #8",
                        "smlad {a2}, {w0}, {x1}, {a2}",
                        "smlad {a3}, {w1}, {x1}, {a3}",
                        "subs {n}, {n}, #1",
                        "bne 2b",
                        xp = inout(reg) x.as_ptr() => _,
                        wp = inout(reg) w.as_ptr() => _,
                        n = inout(reg) pairs => _,
                        a0 = inout(reg) *a0,
                        a1 = inout(reg) *a1,
                        a2 = inout(reg) *a2,
                        a3 = inout(reg) *a3,
                        x0 = out(reg) _,
                        x1 = out(reg) _,
                        w0 = out(reg) _,
                        w1 = out(reg) _,
                        options(nostack, readonly),
                    );
                }
            }
            if seg % 2 == 1 {
                let k = seg - 1;
                mac4(&mut acc, quad(w, 4 * k), [x[k]; 4]);
            }
        }
        acc
    }

    /// [`dot4ch_portable`] everywhere but Cortex-M4.
    #[cfg(not(arm_dsp))]
    #[inline(always)]
    pub(super) fn dot4ch<const K: usize>(
        w4: &[u32],
        seg: usize,
        x: &[&[u32]; K],
        col: usize,
        acc: [i32; 4],
    ) -> [i32; 4] {
        dot4ch_portable::<K>(w4, seg, x, col, acc)
    }

    /// [`super::dot4ch`] by pairs: each input word is loaded once for four channels,
    /// whose weights are interleaved word by word (`w4[4 * t + g]` is word `t` of
    /// channel `g`). Two input words per step.
    #[cfg_attr(not(all(target_arch = "arm", not(arm_dsp))), inline(always))]
    #[cfg_attr(all(target_arch = "arm", not(arm_dsp)), inline(never))] // flash
    #[cfg_attr(arm_dsp, allow(dead_code))] // there: tests only
    pub(super) fn dot4ch_portable<const K: usize>(
        w4: &[u32],
        seg: usize,
        x: &[&[u32]; K],
        col: usize,
        mut acc: [i32; 4],
    ) -> [i32; 4] {
        for (ky, x) in x.iter().enumerate() {
            let x = &x[col..][..seg];
            let w = &w4[4 * ky * seg..][..4 * seg];
            let mut k = 0;
            while k + 2 <= seg {
                let xq = duo(x, k);
                let (a, b) = (quad(w, 4 * k), quad(w, 4 * k + 4));
                mac4(&mut acc, a, [xq[0]; 4]);
                mac4(&mut acc, b, [xq[1]; 4]);
                k += 2;
            }
            if k < seg {
                mac4(&mut acc, quad(w, 4 * k), [x[k]; 4]);
            }
        }
        acc
    }

    /// [`dot4px_portable`] on Cortex-M4: for 8-channel inputs (`step == 4` words, the
    /// shipped model's last layer) the loop over weight-word pairs is assembly, 16
    /// instructions per eight `SMLAD` (the pixels' input runs at fixed offsets).
    #[cfg(arm_dsp)]
    #[inline(always)]
    #[allow(unsafe_code)]
    pub(super) fn dot4px<const K: usize>(
        w: &[u32],
        seg: usize,
        x: &[&[u32]; K],
        col: usize,
        step: usize,
        mut acc: [i32; 4],
    ) -> [i32; 4] {
        if step != 4 || !seg.is_multiple_of(2) {
            return dot4px_portable::<K>(w, seg, x, col, step, acc);
        }
        for (ky, x) in x.iter().enumerate() {
            let w = &w[ky * seg..][..seg];
            // The four pixels' runs: words `col .. col + 3 * 4 + seg`.
            let x = &x[col..][..12 + seg];
            let pairs = seg / 2;
            if pairs > 0 {
                let [a0, a1, a2, a3] = &mut acc;
                // SAFETY: `pairs >= 1` iterations read `2 * pairs == seg` words of `w`
                // (a slice of exactly `seg` words) and, at step `k`, words `k + 4 * d`,
                // `k + 4 * d + 1` (`d < 4`) of `x`, below `12 + seg` (the slice's length,
                // checked above); `u32` slices are 4-byte aligned as `LDRD` needs.
                // Only registers and flags (not preserved) are written; no stack.
                unsafe {
                    core::arch::asm!(
                        "2:",
                        "ldrd {w0}, {w1}, [{wp}], #8",
                        "ldrd {x0}, {x1}, [{xp}]",
                        "smlad {a0}, {w0}, {x0}, {a0}",
                        "smlad {a0}, {w1}, {x1}, {a0}",
                        "ldrd {x0}, {x1}, [{xp}, #16]",
                        "smlad {a1}, {w0}, {x0}, {a1}",
                        "smlad {a1}, {w1}, {x1}, {a1}",
                        "ldrd {x0}, {x1}, [{xp}, #32]",
                        "smlad {a2}, {w0}, {x0}, {a2}",
                        "smlad {a2}, {w1}, {x1}, {a2}",
                        "ldrd {x0}, {x1}, [{xp}, #48]",
                        "smlad {a3}, {w0}, {x0}, {a3}",
                        "smlad {a3}, {w1}, {x1}, {a3}",
                        "adds {xp}, {xp}, #8",
                        "subs {n}, {n}, #1",
                        "bne 2b",
                        xp = inout(reg) x.as_ptr() => _,
                        wp = inout(reg) w.as_ptr() => _,
                        n = inout(reg) pairs => _,
                        a0 = inout(reg) *a0,
                        a1 = inout(reg) *a1,
                        a2 = inout(reg) *a2,
                        a3 = inout(reg) *a3,
                        x0 = out(reg) _,
                        x1 = out(reg) _,
                        w0 = out(reg) _,
                        w1 = out(reg) _,
                        options(nostack, readonly),
                    );
                }
            }
        }
        acc
    }

    /// [`dot4px_portable`] everywhere but Cortex-M4.
    #[cfg(not(arm_dsp))]
    #[inline(always)]
    pub(super) fn dot4px<const K: usize>(
        w: &[u32],
        seg: usize,
        x: &[&[u32]; K],
        col: usize,
        step: usize,
        acc: [i32; 4],
    ) -> [i32; 4] {
        dot4px_portable::<K>(w, seg, x, col, step, acc)
    }

    /// One channel's weights `w` (`K` rows of `seg` words) against four pixels whose
    /// input runs start at `col`, `col + step`, `col + 2 * step`, `col + 3 * step`:
    /// each weight word is loaded once for four pixels.
    #[cfg_attr(not(target_arch = "arm"), inline(always))]
    #[cfg_attr(target_arch = "arm", inline(never))] // flash; cold on Cortex-M4
    pub(super) fn dot4px_portable<const K: usize>(
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
    pub(super) fn dot1<const K: usize>(
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
            /// The pairing kernels equal plain sums (on the host `smlad` is the
            /// portable model; on a DSP target the same code runs the instruction).
            #[test]
            fn pairwise_kernels_equal_plain(
                w in proptest::collection::vec(-1024i16..=1024, 2 * 4 * 3 * 24),
                x in proptest::collection::vec(-128i16..=127, 2 * 3 * 64),
                seg in 1usize..=24,
                col in 0usize..=8,
                step in 1usize..=8,
                bias in -1000i32..1000,
            ) {
                let w: Vec<u32> = w.chunks_exact(2).map(|p| super::super::pack(p[0], p[1])).collect();
                let x: Vec<u32> = x.chunks_exact(2).map(|p| super::super::pack(p[0], p[1])).collect();
                let rows: [&[u32]; 3] = [&x[..64], &x[64..128], &x[128..]];
                let fan = 3 * seg;
                let want: [i32; 4] = core::array::from_fn(|g| bias + plain::<3>(&w[g * fan..], seg, &rows, col));
                // Interleaved as merge_phase lays out a group of four channels.
                let w4: Vec<u32> = (0..4 * fan).map(|i| w[(i % 4) * fan + i / 4]).collect();
                prop_assert_eq!(dot4ch::<3>(&w4, seg, &rows, col, [bias; 4]), want);
                prop_assert_eq!(dot4ch_portable::<3>(&w4, seg, &rows, col, [bias; 4]), want);
                let want: [i32; 4] = core::array::from_fn(|d| bias + plain::<3>(&w, seg, &rows, col + d * step));
                prop_assert_eq!(dot4px::<3>(&w, seg, &rows, col, step, [bias; 4]), want);
                prop_assert_eq!(dot4px_portable::<3>(&w, seg, &rows, col, step, [bias; 4]), want);
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
                    .map(|p| super::super::pack(i16::from(p[0] as i8), i16::from(p[1] as i8)))
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
        fn kernel_self_test_passes() {
            assert_eq!(super::super::kernel_self_test(1, 300), 0);
        }

        #[test]
        fn smlad_and_sxtb16_tables() {
            let p = super::super::pack;
            assert_eq!(smlad(p(3, -4), p(5, 6), 10), 10 + 15 - 24);
            assert_eq!(smlad(p(-32768, -32768), p(-32768, -32768), 0), i32::MIN); // wraps
            assert_eq!(smlad(p(-1, 0), p(1, 0), 0), -1);
            assert_eq!(sxtb16(0x80_7F_FF_01), p(1, 0x7F));
            assert_eq!(sxtb16_ror8(0x80_7F_FF_01), p(-1, -128));
        }
    }
}

/// The SSE2 version of [`dot4ch`] (`pmaddwd`: the four channels' weight pairs of one
/// input word multiplied and summed per instruction). SSE2 is part of the x86-64 baseline, so no run-time detection.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
mod x86 {
    use core::arch::x86_64::{
        __m128i, _mm_add_epi32, _mm_cvtsi128_si32, _mm_madd_epi16, _mm_set_epi32, _mm_set_epi64x,
        _mm_set1_epi32, _mm_shuffle_epi32, _mm_srai_epi16, _mm_storeu_si128, _mm_unpacklo_epi8,
    };

    /// Four words from the start of `x` (compiles to one unaligned load).
    #[inline]
    #[target_feature(enable = "sse2")]
    fn load(x: &[u32]) -> __m128i {
        let x = &x[..4];
        _mm_set_epi32(x[3] as i32, x[2] as i32, x[1] as i32, x[0] as i32)
    }

    #[inline]
    #[target_feature(enable = "sse2")]
    pub(super) fn dot4ch<const K: usize>(
        w4: &[u32],
        seg: usize,
        x: &[&[u32]; K],
        col: usize,
        start: [i32; 4],
    ) -> [i32; 4] {
        debug_assert!(w4.len() >= 4 * K * seg, "weights of four channels expected");
        let Some(w4) = w4.get(..4 * K * seg) else {
            return start;
        };
        // Lane `g` accumulates channel `g`: the interleaved weights of input word `k`
        // against that word in every lane.
        let mut acc = load(&start.map(|a| a as u32));
        for (ky, x) in x.iter().enumerate() {
            debug_assert!(x.len() >= col + seg, "padded row too short");
            let Some(x) = x.get(col..col + seg) else {
                return start;
            };
            let w = &w4[4 * ky * seg..][..4 * seg];
            for (wk, &xk) in w.chunks_exact(4).zip(x) {
                acc = _mm_add_epi32(acc, _mm_madd_epi16(load(wk), _mm_set1_epi32(xk as i32)));
            }
        }
        [
            _mm_cvtsi128_si32(acc),
            _mm_cvtsi128_si32(_mm_shuffle_epi32::<0b01>(acc)),
            _mm_cvtsi128_si32(_mm_shuffle_epi32::<0b10>(acc)),
            _mm_cvtsi128_si32(_mm_shuffle_epi32::<0b11>(acc)),
        ]
    }

    /// [`super::dot4px`]: each pixel's run against the weights four words (eight
    /// products) per `pmaddwd`, summed across lanes at the end.
    #[inline]
    #[target_feature(enable = "sse2")]
    pub(super) fn dot4px<const K: usize>(
        w: &[u32],
        seg: usize,
        x: &[&[u32]; K],
        col: usize,
        step: usize,
        bias: i32,
    ) -> [i32; 4] {
        let mut acc = [_mm_set1_epi32(0); 4];
        let mut tail = [bias; 4];
        let body = seg / 4 * 4;
        for (ky, x) in x.iter().enumerate() {
            let Some(w) = w.get(ky * seg..(ky + 1) * seg) else {
                return tail;
            };
            for (d, (a, t)) in acc.iter_mut().zip(&mut tail).enumerate() {
                let Some(x) = x.get(col + d * step..col + d * step + seg) else {
                    return [bias; 4];
                };
                for k in (0..body).step_by(4) {
                    *a = _mm_add_epi32(*a, _mm_madd_epi16(load(&w[k..]), load(&x[k..])));
                }
                for k in body..seg {
                    *t = super::dual::smlad(w[k], x[k], *t);
                }
            }
        }
        let sum = |v: __m128i| {
            let v = _mm_add_epi32(v, _mm_shuffle_epi32::<0b1110>(v));
            _mm_cvtsi128_si32(_mm_add_epi32(v, _mm_shuffle_epi32::<0b01>(v)))
        };
        [
            tail[0] + sum(acc[0]),
            tail[1] + sum(acc[1]),
            tail[2] + sum(acc[2]),
            tail[3] + sum(acc[3]),
        ]
    }

    /// [`super::dual::widen`] eight bytes at a time: interleaving the bytes with
    /// themselves and shifting each 16-bit lane right by 8 sign-extends them, and the
    /// eight `i16` in memory order are the four packed pairs.
    #[inline]
    #[target_feature(enable = "sse2")]
    pub(super) fn widen(src: &[u8], dst: &mut [u32]) {
        let mut d4 = dst.chunks_exact_mut(4);
        let mut s8 = src.chunks_exact(8);
        for (d, s) in (&mut d4).zip(&mut s8) {
            let b = i64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]);
            let v = _mm_set_epi64x(0, b);
            let w = _mm_srai_epi16::<8>(_mm_unpacklo_epi8(v, v));
            #[allow(unsafe_code)]
            // SAFETY: `d` is four `u32`, the 16 bytes the unaligned store writes.
            unsafe {
                _mm_storeu_si128(d.as_mut_ptr().cast::<__m128i>(), w);
            }
        }
        for (d, s) in d4
            .into_remainder()
            .iter_mut()
            .zip(s8.remainder().chunks_exact(2))
        {
            *d = super::pack(i16::from(s[0] as i8), i16::from(s[1] as i8));
        }
    }
}

/// The input coordinate read by tap `k` (0, 1, 2) of output coordinate `o`, or `None`
/// in the padding. `len` is the (upsampled) output extent, `up` 1 for upsampling.
#[inline(always)]
fn source(o: usize, k: usize, len: usize, up: u32) -> Option<usize> {
    let u = (o + k).checked_sub(1)?;
    (u < len).then_some(u >> up)
}

/// The generic path: for each output pixel gather the 3x3 neighbourhood into a
/// contiguous patch of `9 * in_ch` bytes, then one dot product per output channel.
#[inline(never)]
fn conv_generic<const C: usize>(
    layer: &Layer<'_>,
    input: &[u8],
    output: &mut [u8],
    c: usize,
    band: &Band<'_>,
) {
    let c = if C == 0 { c } else { C };
    let shape = layer.shape();
    debug_assert!(matches!(shape, LayerShape::Conv3x3 { .. }), "not a conv");
    let LayerShape::Conv3x3 {
        out_ch,
        in_w,
        upsample,
        ..
    } = shape
    else {
        return;
    };
    // Layer::new checked both channel limits and `weights.len() == out_ch * 9 * c`.
    debug_assert!(c <= MAX_CONV_IN_CH && out_ch as usize <= MAX_CONV_OUT_CH);
    debug_assert_eq!(layer.params().weights.len(), out_ch as usize * 9 * c);
    let (out_h, out_w, _) = layer.shape().output_hwc();
    let (out_h, out_w, in_w) = (out_h as usize, out_w as usize, in_w as usize);
    let up = u32::from(upsample);
    let p = layer.params();
    let zp = p.in_zero_point as u8;
    let k = 9 * c;
    // The patch is gathered once per pixel and reused by every output channel.
    let mut buf = [0u8; 9 * MAX_CONV_IN_CH];
    let patch = &mut buf[..k.min(9 * MAX_CONV_IN_CH)];
    // Per-channel parameters decoded once per layer, not once per pixel.
    let mut params = [NO_CHANNEL; MAX_CONV_OUT_CH];
    for (dst, ch) in params.iter_mut().zip(channels(layer)) {
        *dst = ch;
    }
    let params = &params[..(out_ch as usize).min(MAX_CONV_OUT_CH)];

    for (pix, out_px) in output.chunks_exact_mut(out_ch as usize).enumerate() {
        let (oy, ox) = (band.rows.start + pix / out_w, pix % out_w);
        for (ky, row) in patch.chunks_exact_mut(3 * c).enumerate() {
            let sy = source(oy, ky, out_h, up);
            for (kx, tap) in row.chunks_exact_mut(c).enumerate() {
                let src = match (sy, source(ox, kx, out_w, up)) {
                    (Some(sy), Some(sx)) => {
                        let base = sy.checked_sub(band.in_first).map(|y| (y * in_w + sx) * c);
                        debug_assert!(
                            base.is_some_and(|base| input.len() >= base + c),
                            "input pixel out of the band"
                        );
                        base.and_then(|base| input.get(base..base + c))
                    }
                    _ => None,
                };
                match src {
                    Some(src) => tap.copy_from_slice(src),
                    None => tap.fill(zp),
                }
            }
        }
        let patch: &[u8] = patch;
        // Four output channels per pass share each patch load; the rest one at a time.
        // Measured on the Cortex-M4 (QEMU instruction count, whole digit): 4.60
        // instructions per MAC with an i16 patch and one channel per pass, 4.22 with
        // four channels per pass, 3.55 with this int8 patch (byte copies instead of
        // widening). On x86-64 the i16 patch was ~15% faster; the MCU is the product.
        let mut outs = out_px.chunks_exact_mut(4);
        let mut rows = p.weights.chunks_exact(4 * k);
        let mut chans = params.chunks_exact(4);
        for ((o4, w4), c4) in (&mut outs).zip(&mut rows).zip(&mut chans) {
            let (w01, w23) = w4.split_at(2 * k);
            let (w0, w1) = w01.split_at(k);
            let (w2, w3) = w23.split_at(k);
            let acc = dot4([w0, w1, w2, w3], patch);
            for ((o, ch), a) in o4.iter_mut().zip(c4).zip(acc) {
                *o = ch.requant.apply(ch.bias + a) as u8;
            }
        }
        let rest = out_px.len() % 4;
        let first_rest = out_px.len() - rest;
        let rest_rows = &p.weights[first_rest * k..];
        for ((o, w), ch) in out_px[first_rest..]
            .iter_mut()
            .zip(rest_rows.chunks_exact(k))
            .zip(&params[first_rest..])
        {
            *o = ch.requant.apply(ch.bias + super::dot(w, patch)) as u8;
        }
    }
}

/// Four dot products of int8 weight rows with one int8 patch (generic path).
#[inline(always)]
fn dot4(w: [&[u8]; 4], x: &[u8]) -> [i32; 4] {
    let mut a = [0i32; 4];
    for ((((&x, &w0), &w1), &w2), &w3) in x.iter().zip(w[0]).zip(w[1]).zip(w[2]).zip(w[3]) {
        let x = i32::from(x as i8);
        a[0] += i32::from(w0 as i8) * x;
        a[1] += i32::from(w1 as i8) * x;
        a[2] += i32::from(w2 as i8) * x;
        a[3] += i32::from(w3 as i8) * x;
    }
    a
}
