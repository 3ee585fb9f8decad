//! `host-trainer bench`: training throughput (one discriminator step + one generator step)
//! on real MNIST batches, reported as the median over timed windows.

use std::time::Instant;

use clap::Args;

use crate::backend::BackendKind;
use crate::data::{Mnist, Split};
use crate::model::{DiscriminatorConfig, GeneratorConfig};
use crate::tensor::image_batch;
use crate::train::{DEFAULT_AUX_WEIGHT, TrainConfig, Trainer};

/// Options of `host-trainer bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Backend to measure.
    #[arg(long, value_enum, default_value = "flex")]
    pub backend: BackendKind,
    /// Images per step.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Timed windows.
    #[arg(long, default_value_t = 5)]
    pub windows: usize,
    /// Steps per window.
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// Discriminator widths (first, second conv).
    #[arg(long, num_args = 2, default_values_t = [16, 32])]
    pub d_widths: Vec<usize>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// Runs the benchmark and prints the figures.
pub fn run(a: &BenchArgs) -> anyhow::Result<()> {
    let test = Mnist::load(&crate::data::default_dir(), Split::Test)?;
    let pixels = test.signed_pixels();
    let config = TrainConfig::new(
        GeneratorConfig::new(),
        DiscriminatorConfig::new()
            .with_c1(a.d_widths[0])
            .with_c2(a.d_widths[1]),
    )
    .with_batch(a.batch)
    .with_aux_weight(DEFAULT_AUX_WEIGHT);
    let mut t = Trainer::new(config, a.backend)?;
    let mut k = 0usize;
    let mut step = |t: &mut Trainer| {
        let idx: Vec<usize> = (0..a.batch)
            .map(|i| (k * a.batch + i) % test.len())
            .collect();
        k += 1;
        let labels: Vec<u8> = idx.iter().map(|&i| test.labels[i]).collect();
        let real = image_batch(&pixels, &idx, &t.device);
        t.step(real, &labels);
    };
    for _ in 0..3 {
        step(&mut t); // warm-up (allocator, caches)
    }
    let mut rates = Vec::new();
    for _ in 0..a.windows {
        let t0 = Instant::now();
        for _ in 0..a.steps {
            step(&mut t);
        }
        rates.push((a.steps * a.batch) as f64 / t0.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "backend {:?}, batch {}, D widths {:?}, threads {}: median {:.0} images/s (min {:.0}, max {:.0}, {} windows of {} steps)",
        a.backend,
        a.batch,
        a.d_widths,
        rayon::current_num_threads(),
        rates[rates.len() / 2],
        rates[0],
        rates[rates.len() - 1],
        a.windows,
        a.steps
    );
    Ok(())
}
