//! Generation: the float generator on a Burn device and the int8 model through
//! generator-core, from the same `(digit, seed)` pairs and the same noise.

use std::path::Path;

use anyhow::{Context, bail};
use burn::prelude::*;
use generator_core::{IMAGE_PIXELS, Image, Z_DIM, signed_unit_to_pixel};

use crate::checkpoint::load_generator;
use crate::model::{Generator, GeneratorConfig};
use crate::tensor::{onehot, to_vec_f32};

/// Images per forward pass of the float generator.
const FLOAT_BATCH: usize = 500;

/// The generator's input noise for `seed`, exactly as generator-core draws it.
pub fn noise(seed: u32) -> [f32; Z_DIM] {
    let mut z = [0f32; Z_DIM];
    generator_core::noise::gaussian(seed, &mut z);
    z
}

/// Runs a (plain-device) generator on (digit, seed) pairs; returns u8 images
/// (`IMAGE_PIXELS` each) with generator-core's pixel mapping, `round((t + 1) * 127.5)`.
pub fn generate_float(g: &Generator, labels: &[u8], seeds: &[u32]) -> Vec<u8> {
    let device = g.fc.weight.device();
    let mut out = Vec::with_capacity(labels.len() * IMAGE_PIXELS);
    for (lab, sd) in labels.chunks(FLOAT_BATCH).zip(seeds.chunks(FLOAT_BATCH)) {
        let z: Vec<f32> = sd.iter().flat_map(|&s| noise(s)).collect();
        let z = Tensor::<2>::from_data(TensorData::new(z, [lab.len(), Z_DIM]), &device);
        let x = to_vec_f32(g.forward(z, onehot(lab, &device)));
        out.extend(x.iter().map(|&v| signed_unit_to_pixel(v)));
    }
    out
}

/// Generates through generator-core from model-file bytes (the int8 path firmware runs);
/// returns u8 images, `IMAGE_PIXELS` each.
pub fn generate_int8(model_bytes: &[u8], labels: &[u8], seeds: &[u32]) -> anyhow::Result<Vec<u8>> {
    let model = generator_core::Model::from_bytes(model_bytes).context("model file")?;
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut g = generator_core::Generator::new(&model, &mut arena).context("arena")?;
    let mut out = Vec::with_capacity(labels.len() * IMAGE_PIXELS);
    let mut img: Image = [0u8; IMAGE_PIXELS];
    for (&l, &s) in labels.iter().zip(seeds) {
        g.generate(l, s, &mut img)
            .with_context(|| format!("generating digit {l} seed {s}"))?;
        out.extend_from_slice(&img);
    }
    Ok(out)
}

/// Mean absolute difference of two u8 image sets, in units of 1/255.
pub fn mean_abs_diff(a: &[u8], b: &[u8]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y as f64).abs())
        .sum::<f64>()
        / a.len().max(1) as f64
}

/// A generator file, as `eval`, `sample` and `export` take one: an int8 model for
/// generator-core, or Burn weights of the default architecture.
#[derive(Debug)]
pub enum GeneratorFile {
    /// The bytes of an int8 model file.
    Int8(Vec<u8>),
    /// A float generator loaded from Burn weights.
    Float(Box<Generator>),
}

impl GeneratorFile {
    /// Reads `path`: an int8 model when it passes generator-core's loader, Burn weights
    /// (loaded onto `device`) when it lacks the model file's magic, an error otherwise.
    pub fn open(path: &Path, device: &Device) -> anyhow::Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let check = generator_core::Model::from_bytes(&bytes).map(|_| ());
        match check {
            Ok(()) => Ok(Self::Int8(bytes)),
            Err(generator_core::Error::BadMagic) => Ok(Self::Float(Box::new(load_generator(
                &GeneratorConfig::new(),
                path,
                device,
            )?))),
            Err(e) => bail!("{}: {e}", path.display()),
        }
    }

    /// Digits `labels[i]` from the noise of `seeds[i]`, as [`generate_int8`] or
    /// [`generate_float`] draws them.
    pub fn generate(&self, labels: &[u8], seeds: &[u32]) -> anyhow::Result<Vec<u8>> {
        match self {
            Self::Int8(bytes) => generate_int8(bytes, labels, seeds),
            Self::Float(g) => Ok(generate_float(g, labels, seeds)),
        }
    }
}
