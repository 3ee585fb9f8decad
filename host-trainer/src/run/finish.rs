//! How a run ends: the final EMA generator scored in float, exported to int8 and scored
//! again, and the figures `metrics.json` records and the terminal shows.

use generator_quant::Calibration;
use serde::Serialize;

use crate::checkpoint::RunDir;
use crate::data::Mnist;
use crate::eval::{self, Metrics, Reference, eval_labels};
use crate::infer::{generate_float, generate_int8, mean_abs_diff};
use crate::train::Trainer;
use crate::{quantize, report};

/// `metrics.json` of a run (fields in alphabetical order, as the file always had them).
#[derive(Debug, Serialize)]
pub struct RunSummary {
    /// Backend that trained (`Flex` or `Ndarray`).
    pub backend: String,
    /// Complete epochs.
    pub epochs: usize,
    /// Scores of the float EMA generator (no two-sample test).
    pub float: Metrics,
    /// Mean training throughput over the whole run.
    pub images_per_s_mean: f64,
    /// Scores of the int8 model, the two-sample test included.
    pub int8: Metrics,
    /// Mean absolute pixel difference int8 vs float, as a fraction of 255.
    pub int8_vs_float_mean_abs_pixel_diff: f64,
    /// Size of `model.dgen`.
    pub model_bytes: usize,
    /// Scores of the real MNIST test set (the floor).
    pub real: Metrics,
    /// Training steps.
    pub steps: usize,
    /// Worker threads.
    pub threads: usize,
    /// Seconds of training (across resumes).
    pub train_seconds: f64,
    /// Seconds of this process's run, evaluation and export included.
    pub wall_seconds_total: f64,
    /// Seconds of this process's run until the evaluation started.
    pub wall_seconds_until_eval: f64,
}

/// Scores of the final EMA generator, float and int8.
#[derive(Debug)]
pub struct Outcome {
    /// Scores of the real test set.
    pub real: Metrics,
    /// Scores of the float EMA generator.
    pub float: Metrics,
    /// Scores of the int8 model.
    pub int8: Metrics,
    /// Mean absolute pixel difference int8 vs float, in 1/255 units.
    pub mae: f64,
    /// Size of the int8 model file.
    pub model_bytes: usize,
}

/// Scores the float EMA generator, writes the int8 model and its grid, scores it too.
pub fn evaluate_and_export(
    trainer: &Trainer,
    run_dir: &RunDir,
    train_set: &Mnist,
    test_set: &Mnist,
    per_class: usize,
) -> anyhow::Result<Outcome> {
    let classifier = eval::load_classifier(
        &eval::default_classifier_path(),
        &trainer.ema.fc.weight.device(),
    )?;
    let reference = Reference::new(classifier, train_set, test_set);
    let (labels, seeds) = eval_labels(per_class, 0);
    let float_images = generate_float(&trainer.ema, &labels, &seeds);
    // The two-sample test is run on the shipped form, the int8 model, only.
    let float = reference.figures("float EMA generator", &float_images, &labels);

    let bytes = quantize::export(&trainer.ema, &Calibration::DEFAULT, &run_dir.model())?;
    let int8_images = generate_int8(&bytes, &labels, &seeds)?;
    let int8 = reference.score("int8 generator-core", &int8_images, &labels)?;
    let mae = mean_abs_diff(&float_images, &int8_images);
    let (grid_labels, grid_seeds) = report::grid_inputs();
    report::write_grid(
        &generate_int8(&bytes, &grid_labels, &grid_seeds)?,
        report::GRID_SEEDS.len(),
        &run_dir.samples("int8"),
    )?;
    Ok(Outcome {
        real: reference.floor,
        float,
        int8,
        mae,
        model_bytes: bytes.len(),
    })
}

/// Prints the scores and where the run's files are.
pub fn print_summary(s: &RunSummary, outcome: &Outcome, run_dir: &RunDir) {
    println!("{}", outcome.real.table());
    println!("{}", outcome.float.table());
    println!("{}", outcome.int8.table());
    println!(
        "int8 vs float: mean |pixel diff| {:.2}/255; model {} bytes -> {}",
        outcome.mae,
        outcome.model_bytes,
        run_dir.model().display()
    );
    println!(
        "{} steps ({} epochs) in {:.1} min of training, {:.1} min in all; run folder {}",
        s.steps,
        s.epochs,
        s.train_seconds / 60.0,
        s.wall_seconds_total / 60.0,
        run_dir.0.display()
    );
}
