//! Fully connected layer.

use super::conv::dual;
use super::requant::{Requant, Rescale};
use super::{channels, dot};
use crate::{Error, Layer, LayerShape, Result};

/// `output[o] = requant(bias[o] + sum_i w[o][i] * input[i])`.
///
/// Weights are `[outputs][inputs]` row-major, so each output is one contiguous dot
/// product. `input.len()` must equal `inputs` and `output.len()` `outputs`.
pub fn linear(layer: &Layer<'_>, input: &[u8], output: &mut [u8]) -> Result<()> {
    let LayerShape::Linear { inputs, outputs } = layer.shape() else {
        return Err(Error::ShapeMismatch);
    };
    if input.len() != inputs as usize || output.len() != outputs as usize {
        return Err(Error::ShapeMismatch);
    }
    #[cfg(target_arch = "x86_64")]
    if linear_avx2(layer, input, output) {
        return Ok(());
    }
    #[cfg(arm_dsp)]
    if linear_sxtb16(layer, input, output) {
        return Ok(());
    }
    #[cfg(not(any(arm_dsp, all(target_arch = "x86_64", target_feature = "sse2"))))]
    if linear_pairs(layer, input, output) {
        return Ok(());
    }
    linear_plain(layer, input, output);
    Ok(())
}

/// The Cortex-M4 path (`SXTB16` + `SMLAD` on `cfg(arm_dsp)`, their models elsewhere,
/// where only the tests call it): the input is widened once into the order
/// [`dual::widen_sxtb16`] gives, then each output takes four int8 weights per word load
/// ([`dual::dot_i8_sxtb16`]). Returns `false`, writing nothing, if the input is longer
/// than [`PAIRS_MAX_INPUTS`] or the buffers do not fit the layer. Public (hidden) so
/// that host tests can check this path against the reference.
#[doc(hidden)]
pub fn linear_sxtb16(layer: &Layer<'_>, input: &[u8], output: &mut [u8]) -> bool {
    let n = input.len();
    let fits = matches!(layer.shape(), LayerShape::Linear { inputs, outputs }
        if inputs as usize == n && outputs as usize == output.len());
    if n > PAIRS_MAX_INPUTS || !fits {
        return false;
    }
    let mut wide = [0u32; PAIRS_MAX_INPUTS / 2];
    let words = dual::widen_sxtb16(input, &mut wide);
    let (xw, tail) = (&wide[..words], &input[2 * words..]);
    // Two outputs per pass share the input loads; each output's parameters are read
    // in place (the lengths were checked by Layer::new).
    let p = layer.params();
    let word = |b: &[u8], o: usize| {
        b.get(4 * o..4 * o + 4)
            .map_or(0, |b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let rescale = |o: usize| {
        let requant = Requant {
            multiplier: word(p.multiplier, o),
            shift: p.shift.get(o).copied().unwrap_or(1),
            zero_point: p.out_zero_point,
            min: if p.relu { p.out_zero_point } else { i8::MIN },
        };
        Rescale::new(word(p.bias, o), requant)
    };
    let rows = p.weights.chunks_exact(n.max(1));
    let mut pairs = output.chunks_exact_mut(2);
    let mut o = 0;
    for o2 in &mut pairs {
        let (Some(wa), Some(wb)) = (rows.clone().nth(o), rows.clone().nth(o + 1)) else {
            break;
        };
        let (ra, rb) = (rescale(o), rescale(o + 1));
        let [a, b] = dual::dot2_i8_sxtb16(wa, wb, xw, tail, [ra.bias, rb.bias]);
        o2[0] = ra.apply(a);
        o2[1] = rb.apply(b);
        o += 2;
    }
    if let ([out], Some(row)) = (pairs.into_remainder(), rows.clone().nth(o)) {
        let r = rescale(o);
        *out = r.apply(dual::dot_i8_sxtb16(row, xw, tail, r.bias));
    }
    true
}

/// The x86-64 AVX2 path (`ops::avx2::linear`): `false`, writing nothing, if the CPU
/// lacks AVX2 (or this is not x86-64), the input is longer than 64 or the buffers do not
/// fit the layer. Public (hidden) so that host tests can check it against the reference.
#[doc(hidden)]
pub fn linear_avx2(layer: &Layer<'_>, input: &[u8], output: &mut [u8]) -> bool {
    #[cfg(target_arch = "x86_64")]
    if super::avx2::available() {
        #[allow(unsafe_code)]
        // SAFETY: `avx2::linear` requires AVX2, which `available` just confirmed.
        return unsafe { super::avx2::linear(layer, input, output) };
    }
    let _ = (layer, input, output);
    false
}

/// The path of CPUs without a faster one (x86-64 without AVX2, among others): the
/// plain byte dot products, public (hidden) so that tests can call it on any host. `false`,
/// writing nothing, if the buffers do not fit the layer.
#[doc(hidden)]
pub fn linear_fallback(layer: &Layer<'_>, input: &[u8], output: &mut [u8]) -> bool {
    let fits = matches!(layer.shape(), LayerShape::Linear { inputs, outputs }
        if inputs as usize == input.len() && outputs as usize == output.len());
    if fits {
        linear_plain(layer, input, output);
    }
    fits
}

/// The plain path: one vectorisable byte dot product per output.
#[cfg_attr(
    not(all(target_arch = "x86_64", target_feature = "sse2")),
    inline(never)
)]
fn linear_plain(layer: &Layer<'_>, input: &[u8], output: &mut [u8]) {
    let rows = layer.params().weights.chunks_exact(input.len());
    for ((out, row), ch) in output.iter_mut().zip(rows).zip(channels(layer)) {
        *out = ch.requant.apply(ch.bias + dot(row, input)) as u8;
    }
}

/// Inputs up to this many take [`linear_pairs`].
const PAIRS_MAX_INPUTS: usize = 64;

/// The pairwise path (Cortex-M: `SMLAD` on `cfg(arm_dsp)`, its model elsewhere): the
/// input is widened to `i16` once, then each output is a pairwise dot product
/// ([`dual::dot_i8`]). Returns `false`, writing nothing, if the input is longer than
/// [`PAIRS_MAX_INPUTS`]. Lengths were checked by [`linear`].
#[cfg_attr(
    any(arm_dsp, all(target_arch = "x86_64", target_feature = "sse2")),
    allow(dead_code)
)]
fn linear_pairs(layer: &Layer<'_>, input: &[u8], output: &mut [u8]) -> bool {
    let n = input.len();
    let mut wide = [0i16; PAIRS_MAX_INPUTS];
    let Some(x) = wide.get_mut(..n) else {
        return false;
    };
    for (d, &s) in x.iter_mut().zip(input) {
        *d = i16::from(s as i8);
    }
    let x: &[i16] = x;
    let rows = layer.params().weights.chunks_exact(n.max(1));
    for ((out, row), ch) in output.iter_mut().zip(rows).zip(channels(layer)) {
        *out = ch.requant.apply(ch.bias + dual::dot_i8(row, x)) as u8;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn pairs_equal_plain(
            w in proptest::collection::vec(any::<u8>(), 0..=PAIRS_MAX_INPUTS),
            x in proptest::collection::vec(any::<u8>(), 0..=PAIRS_MAX_INPUTS),
        ) {
            let n = w.len().min(x.len());
            let wide: Vec<i16> = x[..n].iter().map(|&b| i16::from(b as i8)).collect();
            prop_assert_eq!(dual::dot_i8(&w[..n], &wide), dot(&w[..n], &x[..n]));
        }
    }
}
