//! Running a model: input quantisation, the layer chain over a ping-pong arena, and
//! the output table.

use crate::ops::{self, activation};
use crate::{Error, IMAGE_PIXELS, INPUT_DIM, Image, Model, NUM_CLASSES, Result, Z_DIM, noise};

/// Generates digits with a model, using a caller-owned arena for activations.
///
/// Nothing is allocated: the network input (42 bytes) and one convolution patch
/// (`9 * in_ch` bytes, at most 576) live on the stack, every activation in the arena.
#[derive(Debug)]
pub struct Generator<'m, 'a> {
    model: &'m Model<'m>,
    arena: &'a mut [u8],
    /// The conv layers' prepared weights and the kernels' scratch, made once (on
    /// x86-64 hosts; microcontrollers cannot spare the 20 KiB).
    #[cfg(target_arch = "x86_64")]
    host: ops::conv::ModelWeights,
}

/// The float network input for `(digit, seed)`: `z` from [`noise::gaussian`] followed
/// by the one-hot label. `digit` must be `0..=9`.
pub fn float_input(digit: u8, seed: u32) -> Result<[f32; INPUT_DIM]> {
    if digit as usize >= NUM_CLASSES {
        return Err(Error::InvalidDigit);
    }
    let mut z = [0.0; Z_DIM];
    noise::gaussian(seed, &mut z);
    let mut x = [0.0; INPUT_DIM];
    x[..Z_DIM].copy_from_slice(&z);
    x[Z_DIM + digit as usize] = 1.0;
    Ok(x)
}

impl<'m, 'a> Generator<'m, 'a> {
    /// Binds a model to an arena of at least [`Model::arena_bytes`] bytes
    /// ([`Error::ArenaTooSmall`] otherwise). The check is done here, once.
    pub fn new(model: &'m Model<'m>, arena: &'a mut [u8]) -> Result<Self> {
        if arena.len() < model.arena_bytes() {
            return Err(Error::ArenaTooSmall);
        }
        Ok(Generator {
            model,
            arena,
            #[cfg(target_arch = "x86_64")]
            host: ops::conv::ModelWeights::new(model.layers()),
        })
    }

    /// The model this generator runs.
    pub fn model(&self) -> &'m Model<'m> {
        self.model
    }

    /// Generates one image of `digit` (`0..=9`, else [`Error::InvalidDigit`]) from the
    /// noise of `seed`.
    pub fn generate(&mut self, digit: u8, seed: u32, out: &mut Image) -> Result<()> {
        let x = float_input(digit, seed)?;
        let mut input = [0u8; INPUT_DIM];
        self.generate_from_input(&x, &mut input, out)
    }

    fn generate_from_input(
        &mut self,
        x: &[f32; INPUT_DIM],
        input: &mut [u8; INPUT_DIM],
        out: &mut Image,
    ) -> Result<()> {
        let model = self.model;
        quantize_network_input(model, x, input);
        let [even_len, _] = model.arena_regions();
        let (even, odd) = self.arena.split_at_mut(even_len);
        #[cfg(target_arch = "x86_64")]
        run_ping_pong_host(model.layers(), &mut self.host, input, even, odd)?;
        #[cfg(not(target_arch = "x86_64"))]
        run_ping_pong(model.layers(), input, even, odd)?;
        let result = if model.layers().len() % 2 == 1 {
            even
        } else {
            odd
        };
        let result = result.get(..IMAGE_PIXELS).ok_or(Error::ShapeMismatch)?;
        activation::apply_lut(model.output_lut(), result, out);
        Ok(())
    }

    /// Generates `labels.len()` images into `out[..labels.len()]`; image `i` uses seed
    /// `seed.wrapping_add(i as u32)`. [`Error::BufferTooSmall`] if `out` is shorter than
    /// `labels`, [`Error::InvalidDigit`] (before anything is generated) for a label
    /// above 9.
    pub fn generate_batch(&mut self, labels: &[u8], seed: u32, out: &mut [Image]) -> Result<()> {
        if out.len() < labels.len() {
            return Err(Error::BufferTooSmall);
        }
        if labels.iter().any(|&d| d as usize >= NUM_CLASSES) {
            return Err(Error::InvalidDigit);
        }
        for (i, (&d, img)) in labels.iter().zip(out.iter_mut()).enumerate() {
            self.generate(d, seed.wrapping_add(i as u32), img)?;
        }
        Ok(())
    }
}

/// Quantises the float network input with the first layer's input scale and zero point.
pub(crate) fn quantize_network_input(model: &Model<'_>, x: &[f32; INPUT_DIM], q: &mut [u8]) {
    let (scale, zp) = (model.input_scale(), model.input_zero_point());
    for (q, &v) in q.iter_mut().zip(x) {
        *q = activation::quantize_input(v, scale, zp) as u8;
    }
}

/// Runs `layers` whole, layer `i` writing `even` for even `i` and `odd` otherwise (layer
/// 0 reads `input`), so the last output starts `even` if `layers.len()` is odd and `odd`
/// otherwise. [`Error::ArenaTooSmall`] if a region is too short.
pub(crate) fn run_ping_pong(
    layers: &[crate::Layer<'_>],
    input: &[u8],
    even: &mut [u8],
    odd: &mut [u8],
) -> Result<()> {
    ping_pong_with(layers, input, even, odd, |_, layer, src, dst| {
        ops::run_layer(layer, src, dst)
    })
}

/// [`run_ping_pong`] running the layers that `host` prepared from their prepared
/// weights (the same bytes).
#[cfg(target_arch = "x86_64")]
fn run_ping_pong_host(
    layers: &[crate::Layer<'_>],
    host: &mut ops::conv::ModelWeights,
    input: &[u8],
    even: &mut [u8],
    odd: &mut [u8],
) -> Result<()> {
    ping_pong_with(layers, input, even, odd, |i, layer, src, dst| {
        host.run_layer(i, layer, src, dst)
    })
}

/// The ping-pong of [`run_ping_pong`], layer `i` computed by `run(i, layer, src, dst)`.
fn ping_pong_with(
    layers: &[crate::Layer<'_>],
    input: &[u8],
    even: &mut [u8],
    odd: &mut [u8],
    mut run: impl FnMut(usize, &crate::Layer<'_>, &[u8], &mut [u8]) -> Result<()>,
) -> Result<()> {
    for (i, layer) in layers.iter().enumerate() {
        let (n_in, n_out) = (layer.input_len(), layer.output_len());
        let (src, dst): (&[u8], &mut [u8]) = match (i, i % 2) {
            (0, _) => (input, &mut even[..]),
            (_, 0) => (&odd[..], &mut even[..]),
            _ => (&even[..], &mut odd[..]),
        };
        let src = src.get(..n_in).ok_or(Error::ArenaTooSmall)?;
        let dst = dst.get_mut(..n_out).ok_or(Error::ArenaTooSmall)?;
        run(i, layer, src, dst)?;
    }
    Ok(())
}

/// Converts images to `N x 1 x 28 x 28` floats in `[-1, 1]` (`v / 127.5 - 1`), the
/// layout the original PyTorch generator returned. [`Error::BufferTooSmall`] if `out`
/// holds fewer than `images.len() * 784` values; extra values are left untouched.
pub fn to_signed_unit(images: &[Image], out: &mut [f32]) -> Result<()> {
    if out.len() / IMAGE_PIXELS < images.len() {
        return Err(Error::BufferTooSmall);
    }
    for (img, dst) in images.iter().zip(out.chunks_exact_mut(IMAGE_PIXELS)) {
        for (&p, d) in img.iter().zip(dst.iter_mut()) {
            *d = pixel_to_signed_unit(p);
        }
    }
    Ok(())
}

/// One pixel as a float in `[-1, 1]`: `p / 127.5 - 1` (0 is -1, 255 is 1).
pub fn pixel_to_signed_unit(p: u8) -> f32 {
    p as f32 / 127.5 - 1.0
}

/// The inverse of [`pixel_to_signed_unit`] for a float generator's `tanh` output:
/// `round((v + 1) * 127.5)` (half away from zero), clamped to `0..=255`; NaN gives 0.
pub fn signed_unit_to_pixel(v: f32) -> u8 {
    let x = (v + 1.0) * 127.5;
    if x.is_nan() || x <= 0.0 {
        return 0;
    }
    if x >= 255.0 {
        return 255;
    }
    let whole = x as u8; // truncation: x is in (0, 255)
    // `x - whole` is exact here, so this is round-half-away-from-zero.
    if x - whole as f32 >= 0.5 {
        whole + 1
    } else {
        whole
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_unit_round_trips_and_rounds_like_std() {
        for p in 0..=255u8 {
            assert_eq!(signed_unit_to_pixel(pixel_to_signed_unit(p)), p);
        }
        let mut v = -1.5f32;
        while v < 1.5 {
            let std_way = ((v + 1.0) * 127.5).round().clamp(0.0, 255.0) as u8;
            assert_eq!(signed_unit_to_pixel(v), std_way, "{v}");
            v += 1.0 / 4096.0;
        }
        assert_eq!(signed_unit_to_pixel(f32::NAN), 0);
    }
}
