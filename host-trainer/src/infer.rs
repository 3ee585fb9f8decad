//! Generation: the float generator on a Burn device and the int8 model through
//! generator-core, from the same `(digit, seed)` pairs and the same noise.

use anyhow::Context;
use burn::prelude::*;
use generator_core::{IMAGE_PIXELS, Image, Z_DIM, signed_unit_to_pixel};

use crate::model::Generator;
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
