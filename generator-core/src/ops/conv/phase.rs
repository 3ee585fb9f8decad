//! The phase-split convolution, written once: the row ring, the bands of output rows,
//! the placement of each pass and the merged weights. The inner loops (one output row
//! of one column phase for a block of output channels) are the kernel's, a
//! [`PhaseKernel`] that each instruction set implements (module `ops::isa`).
//!
//! # Phase split
//!
//! With nearest 2x upsampling, output pixel `(2i + py, 2j + px)` reads only a 2x2
//! neighbourhood of the low-resolution input: rows `i - 1 + py ..= i + py` and the same
//! for columns. For each of the four phases `(py, px)` the 3x3 convolution therefore
//! equals a 2x2 convolution on the input with merged weights (sums of 1, 2 or 4 original
//! taps, in `i16`), which is the same integer sum with 4/9 of the multiplies, so the
//! result is bit-identical. Tap rows merge as `py = 0: {0}, {1, 2}` and
//! `py = 1: {0, 1}, {2}`, columns likewise. Without upsampling the same loops run once
//! with the 3x3 kernel widened to pairs.
//!
//! # Packed pairs and the row ring
//!
//! Weights and inputs are `i16` packed two to a `u32` word (first value in the low
//! half), the operand of `SMLAD` and `pmaddwd`. A pixel's channels are padded to an even
//! count `cp` (the extra slot has weight 0), so no pair straddles two pixels. Word
//! arrays are 4-byte aligned, so the Cortex-M4 loads two words per `LDRD`.
//!
//! The input is read through a ring of `k` padded rows (the zero point on every side),
//! so borders need no special case: padded row `r` holds input row `r - 1`. For each
//! row phase `py` and input row `i` the ring takes the new rows and both column phases
//! run over them. A kernel may lay a ring row out its own way ([`PhaseKernel::fill_row`];
//! the AVX2 pixel kernel keeps one plane per channel pair).
//!
//! # Bands and blocks
//!
//! A call computes output rows `rows` from an input band holding input rows
//! `in_first..`; the whole map is the band of every row (one band). Output channels
//! run in blocks of at most [`FAST_MAX_OUT_CH`]: from prepared weights (the layer's
//! merged weights computed once, `conv::prepare`) or merged per block into the scratch
//! beside the ring.

use crate::model::MAX_CONV_IN_CH;
use crate::ops::channels;
use crate::ops::isa::{pack, padded, portable};
use crate::ops::kernel::Kernel;
use crate::ops::requant::Rescale;
use crate::{Layer, LayerShape};

/// Most output channels in one block (their decoded parameters live in a stack array
/// of this length).
pub const FAST_MAX_OUT_CH: usize = 16;

/// `u32` words of scratch: the ring of `k` padded rows and, without prepared weights,
/// the merged weights of the two column phases of one row phase for a block of output
/// channels. 2 KiB on microcontrollers (the default model: 144 + 256 words, 4 of 16
/// channels, at 7x7; 256 + 256 at 14x14; 360 + 36 for the final 8 -> 1 at 28x28),
/// 8 KiB elsewhere, which holds a block of eight channels of up to 16 inputs beside
/// rows up to 28 pixels wide for the AVX2 kernels.
pub(crate) const SCRATCH_WORDS: usize = if cfg!(target_arch = "arm") { 512 } else { 2048 };

/// Tap rows (or columns) of the 3x3 kernel merged into tap `k'` of phase `p`:
/// `MERGED[p][k']` is the range of original taps.
const MERGED: [[(usize, usize); 2]; 2] = [[(0, 1), (1, 3)], [(0, 2), (2, 3)]];

/// Where one kernel call writes, in an output row: output pixel `stride * j + px` for
/// input column `j < w`, channels `first..first + n` of `out_ch`, from `c` input
/// channels.
#[derive(Clone, Copy)]
pub(crate) struct Row {
    pub c: usize,
    pub w: usize,
    pub px: usize,
    pub stride: usize,
    pub out_ch: usize,
    pub first: usize,
}

/// One instruction set's part of the phase-split convolution. The defaults are the
/// packed-pair loops over [`PhaseKernel::dot4ch`] (four output channels per pass
/// sharing the input loads) and [`PhaseKernel::dot4px`] (the channels left over, four
/// pixels per pass sharing the weight loads); a kernel overrides what it does faster.
pub(crate) trait PhaseKernel {
    /// Which kernel this is (what the dispatch reports, and the tests check).
    const ID: Kernel;
    /// Channels interleaved word by word in this kernel's merged weights ([`merge`]).
    const GROUP: usize = 4;
    /// Whether a block must be whole groups (the kernel has no loop for the rest).
    const WHOLE_GROUPS: bool = false;
    /// What the kernel derives once per block of output channels from their
    /// requantisation (the AVX2 kernels' vector form), passed to every
    /// [`PhaseKernel::row`] of the block.
    type Block;

    /// The block's [`PhaseKernel::Block`] from its channels' requantisation.
    fn block(params: &[Rescale]) -> Self::Block;

    /// Words of one ring row of `w` padded pixels of `c` channels.
    #[inline(always)]
    fn row_words(c: usize, w: usize) -> usize {
        (w + 2) * (padded(c) / 2)
    }

    /// Writes a padded ring row: `src` (one input row of `w` pixels) or, for `None`,
    /// the padding rows; the zero point `zp` outside.
    #[inline(always)]
    fn fill_row<const C: usize>(dst: &mut [u32], src: Option<&[u8]>, c: usize, w: usize, zp: i16) {
        let c = if C == 0 { c } else { C };
        let half = padded(c) / 2;
        let zp = pack(zp, zp);
        let Some(src) = src else {
            dst.fill(zp);
            return;
        };
        let (left, rest) = dst.split_at_mut(half.min(dst.len()));
        left.fill(zp);
        let (mid, right) = rest.split_at_mut((w * half).min(rest.len()));
        right.fill(zp);
        if c % 2 == 0 {
            Self::widen(src, mid);
        } else {
            for (px, b) in mid
                .chunks_exact_mut(half.max(1))
                .zip(src.chunks_exact(c.max(1)))
            {
                portable::widen_pixel(b, px);
            }
        }
    }

    /// Writes the merged weights of `phase` (`None`: the 3x3 kernel) of the channels in
    /// `weights` into `dst`, groups of [`PhaseKernel::GROUP`] interleaved, as [`merge`]
    /// does; a kernel may do it faster. `C` as in [`drive`].
    #[inline(always)]
    fn merge<const C: usize>(
        weights: &[u8],
        c: usize,
        phase: Option<(usize, usize)>,
        dst: &mut [u32],
    ) {
        // One out-of-line copy on Cortex-M (flash); it runs once per block and phase.
        if cfg!(target_arch = "arm") {
            merge::<0>(Self::GROUP, weights, c, phase, dst);
        } else {
            merge::<C>(Self::GROUP, weights, c, phase, dst);
        }
    }

    /// Sign-extends int8 bytes into packed pairs in order (an even channel count).
    #[inline(always)]
    fn widen(src: &[u8], dst: &mut [u32]) {
        portable::widen(src, dst);
    }

    /// Four output channels (weights interleaved, `w4[4 * t + g]`) against the `K`
    /// input runs `x[ky][col..col + seg]`, added to `acc`.
    #[inline(always)]
    fn dot4ch<const K: usize>(
        w4: &[u32],
        seg: usize,
        x: &[&[u32]; K],
        col: usize,
        acc: [i32; 4],
    ) -> [i32; 4] {
        portable::dot4ch::<K>(w4, seg, x, col, acc)
    }

    /// One channel's weights against four pixels `step` words apart, added to `acc`.
    #[inline(always)]
    fn dot4px<const K: usize>(
        w: &[u32],
        seg: usize,
        x: &[&[u32]; K],
        col: usize,
        step: usize,
        acc: [i32; 4],
    ) -> [i32; 4] {
        portable::dot4px::<K>(w, seg, x, col, step, acc)
    }

    /// Every output pixel of one column phase in an output row (`out`, the whole row),
    /// for the block's channels: `wm` holds their `K x K` merged weights (`GROUP`
    /// interleaved), `params` their requantisation, `x` the ring rows the row reads.
    #[inline(always)]
    fn row<const C: usize, const K: usize>(
        x: &[&[u32]; K],
        wm: &[u32],
        params: &[Rescale],
        _block: &Self::Block,
        at: &Row,
        out: &mut [u8],
    ) {
        let c = if C == 0 { at.c } else { C };
        let half = padded(c) / 2;
        let seg = K * half;
        let fan = K * seg;
        let n = params.len();
        let n4 = n - n % 4;
        let px = at.px;
        debug_assert!(wm.len() >= n * fan, "weights of {n} channels expected");
        let Some(wm) = wm.get(..n * fan) else {
            return;
        };
        // Four channels per pass, sharing the input loads.
        for j in 0..at.w {
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
                let acc = Self::dot4ch::<K>(w4, seg, x, col, bias);
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
            while j + 4 <= at.w {
                let acc = Self::dot4px::<K>(wc, seg, x, (j + px) * half, half, [p.bias; 4]);
                for (d, a) in acc.into_iter().enumerate() {
                    if let Some(o) = out.get_mut(at_j(j + d)) {
                        *o = p.apply(a);
                    }
                }
                j += 4;
            }
            for j in j..at.w {
                let a = portable::dot1::<K>(wc, seg, x, (j + px) * half, p.bias);
                if let Some(o) = out.get_mut(at_j(j)) {
                    *o = p.apply(a);
                }
            }
        }
    }
}

/// The portable kernel: the trait's default loops, over the primitives of
/// `isa::portable` (Cortex-M0/M3).
#[derive(Clone, Copy)]
pub(crate) struct Portable;

impl PhaseKernel for Portable {
    const ID: Kernel = Kernel::Portable;
    type Block = ();

    #[inline(always)]
    fn block(_: &[Rescale]) {}
}

/// What a call covers: the input slice holds input rows `in_first..`, the output
/// slice output rows `rows` (both checked by the caller, `conv`), and the layer's
/// prepared weights if the caller has them (length checked).
pub(crate) struct Band<'p> {
    pub in_first: usize,
    pub rows: core::ops::Range<usize>,
    pub prepared: Option<&'p [u32]>,
}

/// Geometry of a layer for kernel `Kn`, in words.
#[derive(Clone, Copy)]
struct Geo {
    /// Kernel side of a pass: 2 (phase split) or 3.
    k: usize,
    /// 2 with upsampling (row and column phases), else 1.
    stride: usize,
    /// Words of one channel's kernel, `k * k * cp / 2`.
    fan: usize,
    /// Words of one ring row.
    row_words: usize,
}

impl Geo {
    #[inline(always)]
    fn new<Kn: PhaseKernel>(c: usize, w: usize, upsample: bool) -> Geo {
        let (k, stride) = if upsample { (2, 2) } else { (3, 1) };
        Geo {
            k,
            stride,
            fan: k * k * (padded(c) / 2),
            row_words: Kn::row_words(c, w),
        }
    }
}

/// `u32` words of a conv layer's prepared weights: four merged 2x2 phases (or the 3x3
/// kernel) per output channel, `cp / 2` words per tap; `0` for a linear layer.
pub(crate) fn prepared_words(layer: &Layer<'_>) -> usize {
    let LayerShape::Conv3x3 {
        in_ch,
        out_ch,
        upsample,
        ..
    } = layer.shape()
    else {
        return 0;
    };
    let (phases, taps) = if upsample { (4, 4) } else { (1, 9) };
    phases * taps * (padded(in_ch as usize) / 2) * out_ch as usize
}

/// Writes the prepared weights of `layer` into `dst` ([`prepared_words`] long):
/// `[phase py * 2 + px][out][ky'][kx'][cp / 2]` pairs, groups of `group` channels
/// interleaved (a kernel's [`PhaseKernel::GROUP`]).
pub(crate) fn prepare(group: usize, layer: &Layer<'_>, dst: &mut [u32]) {
    let LayerShape::Conv3x3 {
        in_ch, upsample, ..
    } = layer.shape()
    else {
        return;
    };
    let c = in_ch as usize;
    let weights = layer.params().weights;
    if upsample {
        let per_phase = dst.len() / 4;
        for (ph, d) in dst.chunks_exact_mut(per_phase.max(1)).enumerate() {
            merge::<0>(group, weights, c, Some((ph / 2, ph % 2)), d);
        }
    } else {
        merge::<0>(group, weights, c, None, dst);
    }
}

/// Output channels per block for kernel `Kn` when the weights are merged into a
/// scratch of `scratch` words: as many as fit beside the ring (whole groups when more
/// than a group), at most [`FAST_MAX_OUT_CH`]; `0` if they do not fit (or, for a
/// kernel of whole groups, are not a whole group).
pub(crate) fn merge_block<Kn: PhaseKernel>(layer: &Layer<'_>, scratch: usize) -> usize {
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
    let g = Geo::new::<Kn>(in_ch as usize, in_w as usize, upsample);
    let Some(room) = scratch.checked_sub(g.k * g.row_words) else {
        return 0;
    };
    let out_ch = out_ch as usize;
    let n = (room / (g.stride * g.fan)).min(out_ch).min(FAST_MAX_OUT_CH);
    let n = if n > Kn::GROUP && n < out_ch {
        n - n % Kn::GROUP
    } else {
        n
    };
    if Kn::WHOLE_GROUPS && !(n.is_multiple_of(Kn::GROUP) && out_ch.is_multiple_of(Kn::GROUP)) {
        return 0;
    }
    n
}

/// The convolution of the module docs with kernel `Kn`, on `band`, the ring (and
/// without prepared weights the merged weights) in `scratch`. `C` is `c` when it is a
/// compile-time constant, else 0. Inlined into each kernel's entry point, which
/// carries its target features.
#[inline(always)]
pub(crate) fn drive<Kn: PhaseKernel, const C: usize>(
    layer: &Layer<'_>,
    input: &[u8],
    output: &mut [u8],
    c: usize,
    band: &Band<'_>,
    scratch: Option<&mut [u32]>,
) {
    let mut local;
    let scratch: &mut [u32] = match scratch {
        Some(s) => s,
        None => {
            local = [0u32; SCRATCH_WORDS];
            &mut local
        }
    };
    let c = if C == 0 { c } else { C };
    let LayerShape::Conv3x3 {
        out_ch,
        in_h,
        in_w,
        upsample,
        ..
    } = layer.shape()
    else {
        return;
    };
    let (out_ch, h, w) = (out_ch as usize, in_h as usize, in_w as usize);
    let p = layer.params();
    let g = Geo::new::<Kn>(c, w, upsample);
    let block = match band.prepared {
        Some(_) => out_ch.min(FAST_MAX_OUT_CH),
        None => merge_block::<Kn>(layer, scratch.len()),
    };
    debug_assert!(block > 0, "a layer that does not fit the kernel");
    let block = block.max(1);
    // The loader checked `weights.len() == out_ch * 9 * c` (Layer::new).
    debug_assert_eq!(p.weights.len(), out_ch * 9 * c);
    let ring_words = (g.k * g.row_words).min(scratch.len());
    let (ring, wm) = scratch.split_at_mut(ring_words);
    let mut params = [Rescale::ZERO; FAST_MAX_OUT_CH];
    let s = Source {
        c,
        h,
        w,
        zp: i16::from(p.in_zero_point),
        in_first: band.in_first,
        row_words: g.row_words,
        input,
    };
    let mut first = 0;
    while first < out_ch {
        let n = block.min(out_ch - first).min(FAST_MAX_OUT_CH);
        for (dst, ch) in params.iter_mut().zip(channels(layer).skip(first).take(n)) {
            *dst = Rescale::new(ch.bias, ch.requant);
        }
        let params = &params[..n];
        let block = Kn::block(params);
        let words = n * g.fan;
        for py in 0..g.stride {
            let at = Place {
                py,
                stride: g.stride,
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
                        ring_words + g.stride * words <= ring_words + wm.len(),
                        "merge_block sized the scratch"
                    );
                    let weights = &p.weights[first * 9 * c..(first + n) * 9 * c];
                    for (px, dst) in wm.chunks_exact_mut(words.max(1)).take(g.stride).enumerate() {
                        Kn::merge::<C>(weights, c, upsample.then_some((py, px)), dst);
                    }
                    let (a, b) = wm.split_at(words.min(wm.len()));
                    [a, b]
                }
            };
            let blk = (params, &block);
            if upsample {
                run::<Kn, C, 2>(&s, at, ws, ring, blk, output);
            } else {
                run::<Kn, C, 3>(&s, at, ws, ring, blk, output);
            }
        }
        first += n;
    }
}

/// The input band and its geometry.
struct Source<'i> {
    /// Input channels.
    c: usize,
    /// Input height and width.
    h: usize,
    w: usize,
    /// Input zero point (the padding value).
    zp: i16,
    /// The input slice starts at this input row.
    in_first: usize,
    /// Words of one ring row.
    row_words: usize,
    input: &'i [u8],
}

impl Source<'_> {
    /// Input row `r - 1` of padded row `r`, `None` in the padding.
    #[inline(always)]
    fn padded_row(&self, r: usize) -> Option<&[u8]> {
        let row = self.w * self.c;
        match r.checked_sub(1) {
            Some(y) if y < self.h => {
                // conv checked that `input` holds the band's rows.
                let y = y.checked_sub(self.in_first);
                debug_assert!(
                    y.is_some_and(|y| self.input.len() >= (y + 1) * row),
                    "input row out of the band"
                );
                y.and_then(|y| self.input.get(y * row..(y + 1) * row))
            }
            _ => None,
        }
    }
}

/// Where a pass writes: output row `stride * i + py` for input row `i`, channels
/// `first..` of `out_ch`, for the output rows in `rows` (the output slice starts at
/// row `rows.start`).
#[derive(Clone)]
struct Place {
    py: usize,
    stride: usize,
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

/// All input rows of one row phase: for each input row `i` the ring takes the new
/// padded rows, then the kernel computes each column phase `px` of output row
/// `stride * i + py` from padded rows `i + py .. i + py + K`. `ws[px]` holds the
/// block's `K x K` weights of phase `(py, px)`.
#[inline]
fn run<Kn: PhaseKernel, const C: usize, const K: usize>(
    s: &Source<'_>,
    at: Place,
    ws: [&[u32]; 2],
    ring: &mut [u32],
    (params, block): (&[Rescale], &Kn::Block),
    output: &mut [u8],
) {
    let row_words = s.row_words;
    debug_assert!(
        ring.len() >= K * row_words,
        "row ring shorter than {K} rows"
    );
    let Some(ring) = ring.get_mut(..K * row_words) else {
        return;
    };
    let out_w = at.stride * s.w;
    let out_row = out_w * at.out_ch;
    let inputs = at.inputs();
    let first_i = inputs.start;
    for i in inputs {
        let base = i + at.py;
        // Padded rows base .. base + K; all but the last are already in the ring.
        let first_new = if i == first_i { base } else { base + K - 1 };
        for r in first_new..base + K {
            let dst = &mut ring[(r % K) * row_words..][..row_words];
            Kn::fill_row::<C>(dst, s.padded_row(r), s.c, s.w, s.zp);
        }
        let ring: &[u32] = ring;
        let x: [&[u32]; K] =
            core::array::from_fn(|ky| &ring[((base + ky) % K) * row_words..][..row_words]);
        let oy = at.stride * i + at.py - at.rows.start;
        // conv checked `output.len() == rows.len() * out_row`.
        debug_assert!(
            output.len() >= (oy + 1) * out_row,
            "output row out of range"
        );
        let Some(out) = output.get_mut(oy * out_row..(oy + 1) * out_row) else {
            return;
        };
        for (px, wm) in ws.iter().enumerate().take(at.stride) {
            let row = Row {
                c: s.c,
                w: s.w,
                px,
                stride: at.stride,
                out_ch: at.out_ch,
                first: at.first,
            };
            Kn::row::<C, K>(&x, wm, params, block, &row, out);
        }
    }
}

/// Packed weights of phase `(py, px)` (`None`: the plain 3x3 kernel) for every output
/// channel in `weights` (`[out][ky][kx][in]` int8, `9 * c` per channel): merged taps are
/// `i16` sums of the original taps, `fan = taps * cp / 2` words per channel in the
/// order `[ky'][kx'][cp / 2]`. Whole groups of `group` channels are interleaved word
/// by word (`dst[first * fan + group * t + g]`); the channels left over follow one
/// after another (`dst[ch * fan + t]`). `C` is `c` when it is a compile-time constant,
/// else 0.
#[cfg_attr(not(target_arch = "arm"), inline(always))]
#[cfg_attr(target_arch = "arm", inline(never))]
pub(crate) fn merge<const C: usize>(
    group: usize,
    weights: &[u8],
    c: usize,
    phase: Option<(usize, usize)>,
    dst: &mut [u32],
) {
    let c = if C == 0 { c } else { C };
    let group = group.max(1);
    let half = padded(c) / 2;
    let taps = if phase.is_some() { 4 } else { 9 };
    let fan = taps * half;
    let n = weights.len() / (9 * c).max(1);
    let whole = n - n % group;
    // `c <= MAX_CONV_IN_CH` (Layer::new); one more slot for the padding channel.
    let mut sum = [0i16; MAX_CONV_IN_CH + 2];
    let Some(sum) = sum.get_mut(..2 * half) else {
        return;
    };
    for (ch, w) in weights.chunks_exact((9 * c).max(1)).enumerate() {
        // Word `t` of channel `ch` is `dst[base + stride * t]`.
        let (base, stride) = if ch < whole {
            ((ch - ch % group) * fan + ch % group, group)
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
