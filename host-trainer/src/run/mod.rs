//! The whole job of `host-trainer run`: load MNIST, start a new run or resume one, train,
//! evaluate and export, write `metrics.json`. The binary parses the command line, sets up
//! the thread pool and calls [`run`]; the tests call it the same way.
//!
//! [`start`] makes or reopens the run folder and sets the stopping rule, [`signal`] is how
//! a user stops a run early, and [`finish`] scores and exports the final generator. The files
//! a run writes while it trains (checkpoint, grids, curves after every epoch) are the
//! training loop's ([`crate::train::epochs`]); their formats are in [`crate::checkpoint`].

use std::path::Path;
use std::time::Instant;

use anyhow::Context;

use crate::backend::BackendKind;
use crate::checkpoint::RunDir;
use crate::data::{Mnist, Split};
use crate::{fsutil, train};

pub mod finish;
pub mod signal;
pub mod start;

pub use finish::RunSummary;
pub use start::RunArgs;

/// A finished run: its folder and the figures written to its `metrics.json`.
#[derive(Debug)]
pub struct Finished {
    /// The run folder.
    pub dir: RunDir,
    /// The content of `metrics.json`.
    pub summary: RunSummary,
}

/// Runs the job `a` on `backend` with the MNIST files in `data_dir`: a new run in a new
/// folder under `a.out`, or the run `a.resume` continued from its last checkpoint. Writes
/// the checkpoint it starts from (so that a folder that cannot hold one fails at once). Trains
/// until the run's limit or Ctrl-C ([`signal`]), then evaluates, exports `model.dgen`, writes
/// `metrics.json` and prints the scores. Uses the global rayon pool as it is.
pub fn run(a: &RunArgs, backend: BackendKind, data_dir: &Path) -> anyhow::Result<Finished> {
    a.check()?;
    let t0 = Instant::now();
    let train_set = Mnist::load(data_dir, Split::Train)?;
    let test_set = Mnist::load(data_dir, Split::Test)?;
    let stop = signal::stop_on_ctrl_c()?;
    let (run_dir, trainer) = match &a.resume {
        Some(dir) => start::resume_run(dir, a, backend, train_set.len())?,
        None => start::new_run(a, backend, train_set.len())?,
    };
    eprintln!("run folder: {}", run_dir.0.display());
    // A run folder that cannot hold a checkpoint (a full disk, a file-size limit) fails
    // now, not at the end of the first epoch.
    trainer
        .save_checkpoint(&run_dir.checkpoint())
        .context("the run folder cannot hold a checkpoint")?;
    let trainer = train::train(trainer, &train_set, &run_dir, stop, false)?;
    let train_secs = t0.elapsed().as_secs_f64();

    eprintln!("evaluating...");
    let outcome =
        finish::evaluate_and_export(&trainer, &run_dir, &train_set, &test_set, a.eval_per_class)?;
    let total = t0.elapsed().as_secs_f64();
    let summary = RunSummary {
        backend: format!("{backend:?}"),
        epochs: trainer.state.epoch,
        float: outcome.float.clone(),
        images_per_s_mean: trainer.state.step as f64 * trainer.config.batch as f64
            / trainer.state.train_seconds,
        int8: outcome.int8.clone(),
        int8_vs_float_mean_abs_pixel_diff: outcome.mae / 255.0,
        model_bytes: outcome.model_bytes,
        real: outcome.real.clone(),
        steps: trainer.state.step,
        threads: rayon::current_num_threads(),
        train_seconds: trainer.state.train_seconds,
        wall_seconds_total: total,
        wall_seconds_until_eval: train_secs,
    };
    fsutil::write_atomic(
        &run_dir.metrics(),
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    finish::print_summary(&summary, &outcome, &run_dir);
    Ok(Finished {
        dir: run_dir,
        summary,
    })
}
