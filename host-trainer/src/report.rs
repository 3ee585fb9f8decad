//! Pictures and tables a person reads: sample grids, loss curves, metrics files.

use std::path::Path;

use anyhow::Context;
use burn::prelude::*;
use image::{GrayImage, Luma};
use plotters::prelude::*;

use crate::fsutil::write_atomic;
use crate::model::Generator;
use crate::train::{LossRow, onehot, to_vec_f32};

/// Seeds of the fixed noise used for grid columns (same in every epoch and run).
pub const GRID_SEEDS: [u32; 10] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];

/// The generator's input noise for `seed`, exactly as generator-core draws it.
pub fn noise(seed: u32) -> [f32; generator_core::Z_DIM] {
    let mut z = [0f32; generator_core::Z_DIM];
    generator_core::noise::gaussian(seed, &mut z);
    z
}

/// Runs a (plain-device) generator on (digit, seed) pairs; returns u8 images, 784 each,
/// using the same pixel mapping as generator-core: round((tanh + 1) / 2 * 255).
pub fn generate_float(g: &Generator, labels: &[u8], seeds: &[u32]) -> Vec<u8> {
    let device = g.fc.weight.device();
    let mut out = Vec::with_capacity(labels.len() * 784);
    for (lab, sd) in labels.chunks(500).zip(seeds.chunks(500)) {
        let z: Vec<f32> = sd.iter().flat_map(|&s| noise(s)).collect();
        let z = Tensor::<2>::from_data(
            TensorData::new(z, [lab.len(), generator_core::Z_DIM]),
            &device,
        );
        let x = to_vec_f32(g.forward(z, onehot(lab, &device)));
        out.extend(
            x.iter()
                .map(|&v| ((v + 1.0) * 127.5).round().clamp(0.0, 255.0) as u8),
        );
    }
    out
}

/// Writes a grid of 28x28 images (row-major u8, `cols` per row) as a PNG, scaled 2x,
/// white ink on black like MNIST, with a 2-pixel gap.
pub fn write_grid(images: &[u8], cols: usize, path: &Path) -> anyhow::Result<()> {
    let n = images.len() / 784;
    let rows = n.div_ceil(cols);
    let (cell, gap, scale) = (28u32, 2u32, 2u32);
    let w = (cols as u32 * (cell + gap) + gap) * scale;
    let h = (rows as u32 * (cell + gap) + gap) * scale;
    let mut img = GrayImage::from_pixel(w, h, Luma([64]));
    for k in 0..n {
        let (r, c) = ((k / cols) as u32, (k % cols) as u32);
        for y in 0..cell {
            for x in 0..cell {
                let v = images[k * 784 + (y * 28 + x) as usize];
                for dy in 0..scale {
                    for dx in 0..scale {
                        img.put_pixel(
                            (gap + c * (cell + gap) + x) * scale + dx,
                            (gap + r * (cell + gap) + y) * scale + dy,
                            Luma([v]),
                        );
                    }
                }
            }
        }
    }
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
    write_atomic(path, &png)
}

/// Labels and seeds of the 10x10 grid: row = digit 0-9, column = fixed noise seed.
pub fn grid_inputs() -> (Vec<u8>, Vec<u32>) {
    let labels = (0..100).map(|i| (i / 10) as u8).collect();
    let seeds = (0..100).map(|i| GRID_SEEDS[i % 10]).collect();
    (labels, seeds)
}

/// The 10x10 grid drawn by a float generator.
pub fn sample_grid(g: &Generator, path: &Path) -> anyhow::Result<()> {
    let (labels, seeds) = grid_inputs();
    write_grid(&generate_float(g, &labels, &seeds), 10, path)
}

/// Generates through generator-core from model-file bytes (the int8 path firmware runs);
/// returns u8 images, 784 each.
pub fn generate_int8(model_bytes: &[u8], labels: &[u8], seeds: &[u32]) -> anyhow::Result<Vec<u8>> {
    let model = generator_core::Model::from_bytes(model_bytes)
        .map_err(|e| anyhow::anyhow!("model file: {e}"))?;
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut g =
        generator_core::Generator::new(&model, &mut arena).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut out = Vec::with_capacity(labels.len() * 784);
    let mut img = [0u8; 784];
    for (&l, &s) in labels.iter().zip(seeds) {
        g.generate(l, s, &mut img)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
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

/// Writes `losses.csv` and `losses.png` into `dir`.
pub fn write_losses(rows: &[LossRow], dir: &Path) -> anyhow::Result<()> {
    let mut csv = String::from("step,d_loss,g_loss,images_per_s\n");
    for r in rows {
        csv.push_str(&format!(
            "{},{:.5},{:.5},{:.1}\n",
            r.step, r.d_loss, r.g_loss, r.images_per_s
        ));
    }
    write_atomic(&dir.join("losses.csv"), csv.as_bytes())?;
    if rows.len() >= 2 {
        plot_losses(rows, &dir.join("losses.png"))
            .with_context(|| format!("plotting {}", dir.join("losses.png").display()))?;
    }
    Ok(())
}

fn plot_losses(rows: &[LossRow], path: &Path) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp.png");
    {
        let root = BitMapBackend::new(&tmp, (900, 500)).into_drawing_area();
        root.fill(&WHITE)?;
        let max_step = rows.last().map_or(1, |r| r.step).max(1) as f32;
        let (lo, hi) = rows.iter().fold((f32::MAX, f32::MIN), |(lo, hi), r| {
            (
                lo.min(r.d_loss).min(r.g_loss),
                hi.max(r.d_loss).max(r.g_loss),
            )
        });
        let pad = ((hi - lo) * 0.05).max(0.01);
        let mut chart = ChartBuilder::on(&root)
            .caption("GAN losses (hinge)", ("sans-serif", 24))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0f32..max_step, (lo - pad)..(hi + pad))?;
        chart
            .configure_mesh()
            .x_desc("step")
            .y_desc("loss")
            .draw()?;
        chart
            .draw_series(LineSeries::new(
                rows.iter().map(|r| (r.step as f32, r.d_loss)),
                &BLUE,
            ))?
            .label("discriminator")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
        chart
            .draw_series(LineSeries::new(
                rows.iter().map(|r| (r.step as f32, r.g_loss)),
                &RED,
            ))?
            .label("generator")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(())
}
