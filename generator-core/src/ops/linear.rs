//! Fully connected layer: the entry point, its checks, and the dispatch to the kernel
//! [`crate::ops::select::select`] picks. The kernels' dot products come from
//! `ops::isa` (the reference from `ops::reference`).

use super::reference;
use super::select::{Kernel, select};
use crate::{Error, Layer, LayerShape, Result};

/// `output[o] = requant(bias[o] + sum_i w[o][i] * input[i])`.
///
/// Weights are `[outputs][inputs]` row-major, so each output is one contiguous dot
/// product. `input.len()` must equal `inputs` and `output.len()` `outputs`.
pub fn linear(layer: &Layer<'_>, input: &[u8], output: &mut [u8]) -> Result<()> {
    run(select(layer), layer, input, output).map(drop)
}

/// Checks the buffers and runs `kernel`, which must run here and take the layer
/// (`Kernel::runs`), else the reference; returns the kernel that ran. `ArmDsp` also
/// runs on hosts (on the instructions' models), so that their tests check its loops.
pub(crate) fn run(
    kernel: Kernel,
    layer: &Layer<'_>,
    input: &[u8],
    output: &mut [u8],
) -> Result<Kernel> {
    let LayerShape::Linear { inputs, outputs } = layer.shape() else {
        return Err(Error::ShapeMismatch);
    };
    if input.len() != inputs as usize || output.len() != outputs as usize {
        return Err(Error::ShapeMismatch);
    }
    let ran = match kernel {
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 if super::isa::x86::avx2::available() => {
            #[allow(unsafe_code)]
            // SAFETY: `avx2::available` confirmed AVX2.
            unsafe {
                super::isa::x86::avx2::linear(layer, input, output)
            }
        }
        #[cfg(any(arm_dsp, not(target_arch = "arm")))]
        Kernel::ArmDsp => sxtb16::run(layer, input, output),
        #[cfg(not(arm_dsp))]
        Kernel::Portable => pairs::run(layer, input, output),
        _ => false,
    };
    if ran {
        return Ok(kernel);
    }
    reference::linear(layer, input, output);
    Ok(Kernel::Reference)
}

/// The Cortex-M4 kernel of the linear layer (built there, and on hosts for tests).
#[cfg(any(arm_dsp, not(target_arch = "arm")))]
mod sxtb16 {
    use crate::Layer;
    #[cfg(arm_dsp)]
    use crate::ops::isa::arm_dsp::dot2_i8_sxtb16;
    #[cfg(arm_dsp_kernel)]
    use crate::ops::isa::arm_row::{LinRows, lin_rows};
    #[cfg(not(arm_dsp))]
    use crate::ops::isa::portable::dot2_i8_sxtb16;
    use crate::ops::isa::portable::{dot_i8_sxtb16, widen_sxtb16};
    use crate::ops::requant::{Requant, Rescale};
    use crate::ops::select::LINEAR_MAX_INPUTS;

    /// The Cortex-M4 path (`SXTB16` + `SMLAD` on `cfg(arm_dsp)`, their models elsewhere):
    /// the input is widened once into the order [`widen_sxtb16`] gives, then each output
    /// takes four int8 weights per word load, two outputs per pass sharing the input
    /// loads. Before that, where the whole-row kernels are built (`cfg(arm_dsp_kernel)`),
    /// the whole groups of four outputs whose rows fit go through [`lin_rows`] (the input
    /// padded with zeros to whole groups of four) if every output's requantisation has
    /// its form.
    /// Returns `false`, writing nothing, if the input is longer than
    /// [`LINEAR_MAX_INPUTS`]. Lengths were checked by [`super::run`].
    #[inline(never)] // its stack buffer stays off the convolutions' call paths
    pub(super) fn run(layer: &Layer<'_>, input: &[u8], output: &mut [u8]) -> bool {
        let n = input.len();
        if n > LINEAR_MAX_INPUTS {
            return false;
        }
        let mut wide = [0u32; LINEAR_MAX_INPUTS / 2];
        let words = widen_sxtb16(input, &mut wide);
        let (xw, tail) = (&wide[..words], &input[2 * words..]);
        // Each output's parameters are read in place (the lengths were checked by
        // Layer::new).
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
        #[allow(unused_mut)] // without `arm_dsp_kernel` the rows start at 0
        let mut o = 0;
        #[cfg(arm_dsp_kernel)]
        {
            let quads = n.div_ceil(4);
            let mut padded = [0u8; LINEAR_MAX_INPUTS];
            padded[..n].copy_from_slice(input);
            let mut wide4 = [0u32; LINEAR_MAX_INPUTS / 2];
            let words4 = widen_sxtb16(&padded[..4 * quads], &mut wide4);
            // Whole groups of four outputs whose rows' padded reads stay in the weights.
            let mut groups = output.len() / 4;
            while groups > 0 && (4 * groups - 1) * n + 4 * quads > p.weights.len() {
                groups -= 1;
            }
            let job = LinRows {
                w: p.weights,
                n,
                xw: &wide4[..words4],
                quads,
                bias: p.bias,
                mult: p.multiplier,
                shift: p.shift,
                zp: p.out_zero_point,
                min: if p.relu { p.out_zero_point } else { i8::MIN },
                groups,
            };
            if lin_rows(&job, output) {
                o = 4 * groups;
            }
        }
        let rows = p.weights.chunks_exact(n.max(1));
        let mut pairs = output[o..].chunks_exact_mut(2);
        for o2 in &mut pairs {
            let (Some(wa), Some(wb)) = (rows.clone().nth(o), rows.clone().nth(o + 1)) else {
                break;
            };
            let (ra, rb) = (rescale(o), rescale(o + 1));
            let [a, b] = dot2_i8_sxtb16(wa, wb, xw, tail, [ra.bias, rb.bias]);
            o2[0] = ra.apply(a);
            o2[1] = rb.apply(b);
            o += 2;
        }
        if let ([out], Some(row)) = (pairs.into_remainder(), rows.clone().nth(o)) {
            let r = rescale(o);
            *out = r.apply(dot_i8_sxtb16(row, xw, tail, r.bias));
        }
        true
    }
}

/// The portable kernel of the linear layer (not built for Cortex-M4, which has its
/// own).
#[cfg(not(arm_dsp))]
mod pairs {
    use crate::Layer;
    use crate::ops::channels;
    use crate::ops::isa::portable::dot_i8;
    use crate::ops::select::LINEAR_MAX_INPUTS;

    /// The pairwise path (Cortex-M0/M3): the input is widened to `i16` once, then each
    /// output is a pairwise dot product ([`dot_i8`]). Returns `false`, writing nothing,
    /// if the input is longer than [`LINEAR_MAX_INPUTS`]. Lengths were checked by [`super::run`].
    #[inline(never)] // its stack buffer stays off the convolutions' call paths
    pub(super) fn run(layer: &Layer<'_>, input: &[u8], output: &mut [u8]) -> bool {
        let n = input.len();
        let mut wide = [0i16; LINEAR_MAX_INPUTS];
        let Some(x) = wide.get_mut(..n) else {
            return false;
        };
        for (d, &s) in x.iter_mut().zip(input) {
            *d = i16::from(s as i8);
        }
        let x: &[i16] = x;
        let rows = layer.params().weights.chunks_exact(n.max(1));
        for ((out, row), ch) in output.iter_mut().zip(rows).zip(channels(layer)) {
            *out = ch.requant.apply(ch.bias + dot_i8(row, x)) as u8;
        }
        true
    }
}
