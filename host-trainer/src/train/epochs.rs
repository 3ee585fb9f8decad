//! The training loop: epochs of shuffled batches through [`Trainer::step`], step and time
//! limits, progress display, and after every epoch a sample grid, the loss curves and a
//! crash-safe checkpoint. A run stopped by Ctrl-C or SIGTERM writes its checkpoint after
//! the step it is in, mid-epoch, and `--resume` goes on from that step.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{bail, ensure};
use indicatif::{ProgressBar, ProgressStyle};

use super::trainer::Trainer;
use crate::checkpoint::{RunDir, save_generator};
use crate::data::Mnist;
use crate::fsutil::write_atomic_keeping_prev;
use crate::report::{self, LossRow};
use crate::tensor::image_batch;

/// Steps averaged into one row of `losses.csv` (a window also ends with the epoch).
const LOSS_WINDOW_STEPS: usize = 25;
/// Without a terminal (nohup, CI logs) the progress bar is invisible; a line is printed
/// this often instead.
const LOG_LINE_SECONDS: u64 = 30;

/// When training stops: after a number of steps, a number of seconds, or neither.
#[derive(Debug, Clone, Copy)]
struct Limits {
    steps: Option<usize>,
    seconds: Option<f64>,
}

impl Limits {
    fn reached(&self, t: &Trainer) -> bool {
        self.steps.is_some_and(|s| t.state.step >= s)
            || self.seconds.is_some_and(|l| t.state.train_seconds >= l)
    }
}

/// Loss sums over the steps since the last row of `losses.csv`.
#[derive(Debug)]
struct LossWindow {
    d_sum: f32,
    g_sum: f32,
    steps: usize,
    started: Instant,
}

impl LossWindow {
    fn new() -> Self {
        Self {
            d_sum: 0.0,
            g_sum: 0.0,
            steps: 0,
            started: Instant::now(),
        }
    }

    fn add(&mut self, d_loss: f32, g_loss: f32) {
        self.d_sum += d_loss;
        self.g_sum += g_loss;
        self.steps += 1;
    }

    /// The averaged row ending at `step`, and a fresh window.
    fn finish(self, step: usize, batch: usize) -> (LossRow, LossWindow) {
        let secs = self.started.elapsed().as_secs_f32();
        let row = LossRow {
            step,
            d_loss: self.d_sum / self.steps as f32,
            g_loss: self.g_sum / self.steps as f32,
            images_per_s: (self.steps * batch) as f32 / secs,
        };
        (row, LossWindow::new())
    }
}

/// Progress display: a bar on a terminal, a line every [`LOG_LINE_SECONDS`] otherwise.
struct Progress {
    bar: ProgressBar,
    by_steps: bool,
    log_lines: bool,
    last_line: Instant,
}

impl Progress {
    fn new(limits: Limits, quiet: bool) -> Self {
        let bar = if quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(match (limits.steps, limits.seconds) {
                (Some(s), _) => s as u64,
                (None, Some(t)) => t.ceil() as u64,
                (None, None) => 0,
            })
        };
        let unit = if limits.steps.is_some() { "steps" } else { "s" };
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "{{elapsed_precise}} [{{bar:30}}] {{pos}}/{{len}} {unit} ETA {{eta}} {{msg}}"
            ))
            .expect("valid template")
            .progress_chars("=> "),
        );
        Self {
            bar,
            by_steps: limits.steps.is_some(),
            log_lines: !quiet && !std::io::IsTerminal::is_terminal(&std::io::stderr()),
            last_line: Instant::now(),
        }
    }

    fn row(&mut self, t: &Trainer, row: &LossRow) {
        let msg = format!(
            "epoch {} step {} d {:.3} g {:.3} {:.0} img/s",
            t.state.epoch + 1,
            row.step,
            row.d_loss,
            row.g_loss,
            row.images_per_s
        );
        if self.log_lines && self.last_line.elapsed().as_secs() >= LOG_LINE_SECONDS {
            eprintln!("[{:>6.0} s] {msg}", t.state.train_seconds);
            self.last_line = Instant::now();
        }
        self.bar.set_message(msg);
    }

    fn position(&self, t: &Trainer) {
        self.bar.set_position(if self.by_steps {
            t.state.step as u64
        } else {
            t.state.train_seconds as u64
        });
    }
}

/// Trains until the step or time limit; checkpoints and draws a grid after every epoch.
/// Returns the trainer (final EMA generator inside). `stop` ends training early (Ctrl-C).
pub fn train(
    mut trainer: Trainer,
    data: &Mnist,
    run: &RunDir,
    stop: Arc<AtomicBool>,
    quiet: bool,
) -> anyhow::Result<Trainer> {
    let cfg = trainer.config.clone();
    let data = if cfg.train_subset > 0 {
        data.take(cfg.train_subset)
    } else {
        data.clone()
    };
    let pixels = data.signed_pixels();
    let n = data.len();
    ensure!(
        n >= cfg.batch,
        "need at least one batch of {} images, have {n}",
        cfg.batch
    );
    let steps_per_epoch = n / cfg.batch;
    let limits = Limits {
        steps: (cfg.max_steps > 0).then_some(cfg.max_steps),
        seconds: (cfg.max_seconds > 0.0).then_some(cfg.max_seconds),
    };
    let mut progress = Progress::new(limits, quiet);

    let started = Instant::now();
    let base_seconds = trainer.state.train_seconds;
    let mut window = LossWindow::new();
    let pause_at = step_from_env(PAUSE_ENV);
    let stop_at = step_from_env(STOP_ENV);
    'epochs: while !limits.reached(&trainer) {
        let (perm, first) = epoch_order(&mut trainer, n, steps_per_epoch);
        for s in first..steps_per_epoch {
            let idx = &perm[s * cfg.batch..(s + 1) * cfg.batch];
            let labels: Vec<u8> = idx.iter().map(|&i| data.labels[i]).collect();
            let real = image_batch(&pixels, idx, &trainer.device);
            let (dl, gl) = trainer.step(real, &labels);
            ensure!(
                dl.is_finite() && gl.is_finite(),
                "training diverged at step {} (d_loss {dl}, g_loss {gl})",
                trainer.state.step
            );
            trainer.state.train_seconds = base_seconds + started.elapsed().as_secs_f64();
            trainer.state.epoch_step = s + 1;
            if pause_at == Some(trainer.state.step) {
                pause_forever(trainer.state.step);
            }
            if stop_at == Some(trainer.state.step) {
                stop.store(true, Ordering::SeqCst);
            }
            window.add(dl, gl);
            let finishing = limits.reached(&trainer) || stop.load(Ordering::SeqCst);
            if window.steps == LOSS_WINDOW_STEPS || s + 1 == steps_per_epoch || finishing {
                let (row, fresh) = window.finish(trainer.state.step, cfg.batch);
                window = fresh;
                trainer.state.losses.push(row);
                progress.row(&trainer, &row);
            }
            progress.position(&trainer);
            let epoch_done = s + 1 == steps_per_epoch;
            if epoch_done {
                trainer.state.epoch += 1;
                trainer.state.epoch_step = 0;
                end_of_epoch(&trainer, run, &format!("epoch-{:03}", trainer.state.epoch))?;
            }
            if stop.load(Ordering::SeqCst) {
                if !epoch_done {
                    save_progress(&trainer, run)?;
                }
                // Printed, not left on the bar, which is not drawn without a terminal.
                progress.bar.abandon();
                eprintln!(
                    "interrupted at step {}, saved: resume with --resume {}",
                    trainer.state.step,
                    run.0.display()
                );
                bail!("interrupted");
            }
            if limits.reached(&trainer) {
                break 'epochs;
            }
        }
    }
    // A final partial epoch still gets its grid, curves and checkpoint.
    if trainer.state.epoch_step != 0 {
        end_of_epoch(&trainer, run, "final")?;
    }
    progress.bar.finish();
    Ok(trainer)
}

/// The order of the current epoch's images and the first step to take in it: a fresh
/// shuffle at an epoch boundary (the generator's state before it is kept in the progress),
/// or, resuming mid-epoch, the same shuffle again from the kept state.
fn epoch_order(t: &mut Trainer, n: usize, steps_per_epoch: usize) -> (Vec<usize>, usize) {
    let state = &mut t.state;
    if let Some(before) = &state.epoch_rng
        && (1..steps_per_epoch).contains(&state.epoch_step)
    {
        return (before.clone().permutation(n), state.epoch_step);
    }
    state.epoch_step = 0;
    state.epoch_rng = Some(state.rng.clone());
    (state.rng.permutation(n), 0)
}

/// The files written after every epoch: a sample grid and [`save_progress`].
fn end_of_epoch(t: &Trainer, run: &RunDir, tag: &str) -> anyhow::Result<()> {
    report::sample_grid(&t.ema, &run.samples(tag))?;
    save_progress(t, run)
}

/// The loss curves, the EMA generator and the checkpoint (the one before kept).
fn save_progress(t: &Trainer, run: &RunDir) -> anyhow::Result<()> {
    report::write_losses(&t.state.losses, &run.0)?;
    save_generator(&t.ema, &run.generator())?;
    // The checkpoint before is kept (renamed) for a resume when this one is damaged.
    write_atomic_keeping_prev(
        &run.checkpoint(),
        &run.prev_checkpoint(),
        &t.checkpoint_bytes()?,
    )
}

/// Environment variable for crash tests: the process stops making progress after this step
/// (mid-epoch, nothing saved) so that a test can kill it with SIGKILL at a known point.
pub const PAUSE_ENV: &str = "HOST_TRAINER_PAUSE_AT_STEP";

/// Environment variable for stop tests: after this step the run stops as if Ctrl-C had
/// been pressed during it (saves its checkpoint at that step and exits).
pub const STOP_ENV: &str = "HOST_TRAINER_STOP_AFTER_STEP";

fn step_from_env(name: &str) -> Option<usize> {
    std::env::var(name).ok()?.parse().ok()
}

fn pause_forever(step: usize) -> ! {
    eprintln!("paused at step {step} ({PAUSE_ENV})");
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}
