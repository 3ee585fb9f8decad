//! Pictures and tables a person reads: sample grids, the loss table and its plot.

use std::path::Path;

use anyhow::Context;
use generator_core::{IMAGE_PIXELS, IMAGE_SIDE, NUM_CLASSES};
use image::{GrayImage, Luma};
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::fsutil::write_atomic;
use crate::infer::generate_float;
use crate::model::Generator;

/// One row of `losses.csv`: losses averaged over a window of steps.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct LossRow {
    /// Step at the end of the averaging window.
    pub step: usize,
    /// Discriminator loss: hinge, plus the weighted class loss when it has a weight.
    pub d_loss: f32,
    /// Generator loss: minus the score, plus the weighted class loss.
    pub g_loss: f32,
    /// Throughput over the window.
    pub images_per_s: f32,
}

/// Seeds of the fixed noise used for grid columns (same in every epoch and run).
pub const GRID_SEEDS: [u32; 10] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];

/// Writes a grid of images (row-major u8, `IMAGE_PIXELS` each, `cols` per row) as a
/// PNG, scaled 2x, white ink on black like MNIST, with a 2-pixel gap.
pub fn write_grid(images: &[u8], cols: usize, path: &Path) -> anyhow::Result<()> {
    let n = images.len() / IMAGE_PIXELS;
    let rows = n.div_ceil(cols);
    let (cell, gap, scale) = (IMAGE_SIDE as u32, 2u32, 2u32);
    let w = (cols as u32 * (cell + gap) + gap) * scale;
    let h = (rows as u32 * (cell + gap) + gap) * scale;
    let mut img = GrayImage::from_pixel(w, h, Luma([64]));
    for k in 0..n {
        let (r, c) = ((k / cols) as u32, (k % cols) as u32);
        for y in 0..cell {
            for x in 0..cell {
                let v = images[k * IMAGE_PIXELS + (y * cell + x) as usize];
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
    let n = NUM_CLASSES * GRID_SEEDS.len();
    let labels = (0..n).map(|i| (i / GRID_SEEDS.len()) as u8).collect();
    let seeds = (0..n).map(|i| GRID_SEEDS[i % GRID_SEEDS.len()]).collect();
    (labels, seeds)
}

/// The 10x10 grid drawn by a float generator.
pub fn sample_grid(g: &Generator, path: &Path) -> anyhow::Result<()> {
    let (labels, seeds) = grid_inputs();
    write_grid(&generate_float(g, &labels, &seeds), GRID_SEEDS.len(), path)
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
