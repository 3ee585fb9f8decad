//! Running a model (work in progress).

use crate::{Error, IMAGE_PIXELS, Image, Model, Result};

/// Generates digits with a model, using a caller-owned arena for activations.
#[derive(Debug)]
pub struct Generator<'m, 'a> {
    #[allow(dead_code)]
    model: &'m Model<'m>,
    #[allow(dead_code)]
    arena: &'a mut [u8],
}

impl<'m, 'a> Generator<'m, 'a> {
    /// Checks the arena size once.
    pub fn new(model: &'m Model<'m>, arena: &'a mut [u8]) -> Result<Self> {
        if arena.len() < model.arena_bytes() {
            return Err(Error::ArenaTooSmall);
        }
        Ok(Generator { model, arena })
    }

    /// Generates one image of `digit` from the noise of `seed`.
    pub fn generate(&mut self, digit: u8, seed: u32, out: &mut Image) -> Result<()> {
        if digit > 9 {
            return Err(Error::InvalidDigit);
        }
        let _ = (seed, out);
        Err(Error::Malformed)
    }

    /// Generates `labels.len()` images; image `i` uses `seed.wrapping_add(i as u32)`.
    pub fn generate_batch(&mut self, labels: &[u8], seed: u32, out: &mut [Image]) -> Result<()> {
        if out.len() < labels.len() {
            return Err(Error::BufferTooSmall);
        }
        for (i, (&d, img)) in labels.iter().zip(out.iter_mut()).enumerate() {
            self.generate(d, seed.wrapping_add(i as u32), img)?;
        }
        Ok(())
    }
}

/// Converts images to `N x 1 x 28 x 28` floats in `[-1, 1]` (`v / 127.5 - 1`).
pub fn to_signed_unit(images: &[Image], out: &mut [f32]) -> Result<()> {
    if out.len() < images.len() * IMAGE_PIXELS {
        return Err(Error::BufferTooSmall);
    }
    for (img, dst) in images.iter().zip(out.chunks_exact_mut(IMAGE_PIXELS)) {
        for (&p, d) in img.iter().zip(dst.iter_mut()) {
            *d = p as f32 / 127.5 - 1.0;
        }
    }
    Ok(())
}
