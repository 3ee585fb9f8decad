//! The reference kernels: the convolution by patches and the linear layer by plain
//! byte dot products. Every layer can take them (the fast kernels need their buffers
//! to fit), and the tests hold every fast kernel to them byte for byte.

use super::conv::phase::Band;
use super::{Channel, channels, dot};
use crate::model::{MAX_CONV_IN_CH, MAX_CONV_OUT_CH};
use crate::ops::requant::Requant;
use crate::{Layer, LayerShape};

const NO_CHANNEL: Channel = Channel {
    bias: 0,
    requant: Requant {
        multiplier: 0,
        shift: 1,
        zero_point: 0,
        min: 0,
    },
};

/// The linear layer: one vectorisable byte dot product per output (`pmaddwd` on x86,
/// `smlabb` pairs on Cortex-M). Lengths were checked by the caller.
#[cfg_attr(
    not(all(target_arch = "x86_64", target_feature = "sse2")),
    inline(never)
)]
pub(crate) fn linear(layer: &Layer<'_>, input: &[u8], output: &mut [u8]) {
    let rows = layer.params().weights.chunks_exact(input.len().max(1));
    for ((out, row), ch) in output.iter_mut().zip(rows).zip(channels(layer)) {
        *out = ch.requant.apply(ch.bias + dot(row, input)) as u8;
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
pub(crate) fn conv_generic<const C: usize>(
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
            *o = ch.requant.apply(ch.bias + dot(w, patch)) as u8;
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
