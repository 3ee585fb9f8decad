//! How a run starts: its settings ([`RunArgs`]), a new run folder with its `config.json`
//! ([`new_run`]) or an interrupted run reopened at its last checkpoint ([`resume_run`]), and
//! the stopping rule either gets ([`apply_limits`]).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use crate::backend::BackendKind;
use crate::checkpoint::RunDir;
use crate::fsutil;
use crate::model::{DiscriminatorConfig, GeneratorConfig};
use crate::train::{DEFAULT_AUX_WEIGHT, TrainConfig, Trainer, ensure_setting};

/// Settings of `host-trainer run`: limits, recipe, seed and folders (the data folder,
/// threads and backend are the binary's common options).
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Wall-time budget in minutes for the whole job (training + evaluation + export);
    /// default 15 for a new run. `--resume` keeps the run's saved limit unless one of
    /// `--minutes`, `--steps` or `--epochs` is given.
    #[arg(long)]
    pub minutes: Option<f64>,
    /// Train for exactly this many steps instead of a time budget (reproducible).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Train for this many epochs instead of a time budget (reproducible).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Images per step.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Generator learning rate.
    #[arg(long, default_value_t = 4e-4)]
    pub lr_g: f64,
    /// Discriminator learning rate.
    #[arg(long, default_value_t = 4e-4)]
    pub lr_d: f64,
    /// EMA decay of the generator weights.
    #[arg(long, default_value_t = 0.999)]
    pub ema: f64,
    /// EMA warm-up: decay min(ema, (1 + t) / (10 + t)) at step t.
    #[arg(long)]
    pub ema_warmup: bool,
    /// Adam beta 1 (both networks).
    #[arg(long, default_value_t = 0.5)]
    pub beta1: f32,
    /// Adam beta 2 (both networks).
    #[arg(long, default_value_t = 0.999)]
    pub beta2: f32,
    /// Final learning rate as a fraction of the initial one (linear decay from
    /// `--lr-decay-start` to the run's step or time limit; 1 = constant). Under a time
    /// limit the decay follows the clock, so only step- or epoch-limited runs repeat it
    /// exactly.
    #[arg(long, default_value_t = 0.0)]
    pub lr_end: f64,
    /// Weight of an auxiliary class loss: the discriminator also learns to name real
    /// digits' classes and the generator to make fakes it names as their labels (0: off).
    #[arg(long, default_value_t = DEFAULT_AUX_WEIGHT)]
    pub aux_weight: f64,
    /// Fade the class loss linearly over this last fraction of the run, to `--aux-end`
    /// of its weight (0: keep it).
    #[arg(long, default_value_t = 0.3)]
    pub aux_fade: f64,
    /// What the fade leaves of the class loss's weight, as a fraction of it (0: none).
    #[arg(long, default_value_t = 0.5)]
    pub aux_end: f64,
    /// Progress (0 to 1) at which the learning rate starts its linear decay to `--lr-end`.
    #[arg(long, default_value_t = 0.8)]
    pub lr_decay_start: f64,
    /// Weight of a consistency loss for the discriminator: the same score for a digit and
    /// the digit shifted by up to 2 pixels, real and generated (0: off).
    #[arg(long, default_value_t = 0.0)]
    pub consistency: f64,
    /// Discriminator widths (channels of its two 4x4/2 convolutions). 16 32 trains about
    /// 1.8x faster per image than 32 64 on this machine (docs/EXPERIMENTS.md, "Recipe ablation").
    #[arg(long, num_args = 2, default_values_t = [16, 32])]
    pub d_widths: Vec<usize>,
    /// Seed of weights, batches and noise.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Folder for runs (each run gets its own subfolder).
    #[arg(long, default_value = "runs")]
    pub out: PathBuf,
    /// Continue an interrupted run from its last checkpoint.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Generated digits per class for the final evaluation.
    #[arg(long, default_value_t = 1000)]
    pub eval_per_class: usize,
    /// Train on the first N training images only (0: all 60,000); for quick experiments.
    #[arg(long, default_value_t = 0)]
    pub train_subset: usize,
}

impl RunArgs {
    /// Refuses settings that cannot mean what they say: a zero step, epoch or
    /// per-class count, a time budget that is not a positive number of minutes
    /// ([`BadSetting`](crate::train::BadSetting)).
    pub fn check(&self) -> anyhow::Result<()> {
        let positive = |name: &str, v: Option<usize>| {
            ensure_setting(v != Some(0), || format!("{name} must be at least 1, got 0"))
        };
        positive("--steps", self.steps)?;
        positive("--epochs", self.epochs)?;
        positive("--eval-per-class", Some(self.eval_per_class))?;
        if let Some(m) = self.minutes {
            ensure_setting(m.is_finite() && m > 0.0, || {
                format!("--minutes must be a positive number, got {m}")
            })?;
        }
        Ok(())
    }
}

/// Time kept back from the budget for evaluation (the two-sample test included) and export.
const RESERVE_SECONDS: f64 = 120.0;

/// The budget of a new run when the command line gives none.
const DEFAULT_MINUTES: f64 = 15.0;

/// Reopens an interrupted run at its last checkpoint, with the limits of `a`; at the
/// previous one (`checkpoint.prev.bin`), saying so, when the last is missing or damaged.
pub fn resume_run(
    dir: &Path,
    a: &RunArgs,
    backend: BackendKind,
    n_train: usize,
) -> anyhow::Result<(RunDir, Trainer)> {
    let run = RunDir(dir.to_path_buf());
    let text = std::fs::read_to_string(run.config())
        .with_context(|| format!("{} is not a run folder", dir.display()))?;
    let mut config = TrainConfig::from_json(&text)
        .with_context(|| format!("reading {}", run.config().display()))?;
    apply_limits(&mut config, a, n_train, true);
    let mut t = Trainer::new(config.clone(), backend)?;
    if let Err(latest) = t.load_checkpoint(&run.checkpoint()) {
        let prev = run.prev_checkpoint();
        if !prev.exists() {
            return Err(latest);
        }
        t = Trainer::new(config, backend)?;
        t.load_checkpoint(&prev)
            .map_err(|e| anyhow::anyhow!("{latest:#}; the previous checkpoint too: {e:#}"))?;
        eprintln!(
            "warning: {latest:#}; resuming from the previous checkpoint {}",
            prev.display()
        );
    }
    eprintln!(
        "resuming {} at step {} (epoch {})",
        dir.display(),
        t.state.step,
        t.state.epoch
    );
    Ok((run, t))
}

/// The training settings of a new run from the command line (its limit apart).
fn train_config(a: &RunArgs) -> TrainConfig {
    TrainConfig::new(
        GeneratorConfig::new(),
        DiscriminatorConfig::new()
            .with_c1(a.d_widths[0])
            .with_c2(a.d_widths[1]),
    )
    .with_batch(a.batch)
    .with_lr_g(a.lr_g)
    .with_lr_d(a.lr_d)
    .with_ema_decay(a.ema)
    .with_ema_warmup(a.ema_warmup)
    .with_beta1(a.beta1)
    .with_beta2(a.beta2)
    .with_lr_end(a.lr_end)
    .with_aux_weight(a.aux_weight)
    .with_aux_fade(a.aux_fade)
    .with_aux_end(a.aux_end)
    .with_lr_decay_start(a.lr_decay_start)
    .with_consistency(a.consistency)
    .with_seed(a.seed)
    .with_train_subset(a.train_subset)
}

/// A fresh run folder `<out>/<unix time>-seed<seed>` with its `config.json`.
pub fn new_run(
    a: &RunArgs,
    backend: BackendKind,
    n_train: usize,
) -> anyhow::Result<(RunDir, Trainer)> {
    let mut config = train_config(a);
    apply_limits(&mut config, a, n_train, false);
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let run = RunDir(a.out.join(format!("{stamp}-seed{}", a.seed)));
    std::fs::create_dir_all(&run.0).with_context(|| format!("creating {}", run.0.display()))?;
    fsutil::write_atomic(
        &run.config(),
        serde_json::to_string_pretty(&config)?.as_bytes(),
    )?;
    Ok((run, Trainer::new(config, backend)?))
}

/// Sets the run's stopping rule from the command line. A resumed run (`resuming`) keeps
/// the rule saved in its `config.json` (and its time budget counts the training seconds
/// already saved in the checkpoint) unless the command line names a new limit.
pub fn apply_limits(config: &mut TrainConfig, a: &RunArgs, n_train: usize, resuming: bool) {
    if resuming && a.steps.is_none() && a.epochs.is_none() && a.minutes.is_none() {
        return;
    }
    let images = match config.train_subset {
        0 => n_train,
        k => k.min(n_train),
    };
    let steps_per_epoch = images / config.batch.max(1);
    if let Some(s) = a.steps {
        config.max_steps = s;
        config.max_seconds = 0.0;
    } else if let Some(e) = a.epochs {
        config.max_steps = e * steps_per_epoch;
        config.max_seconds = 0.0;
    } else {
        config.max_steps = 0;
        config.max_seconds =
            (a.minutes.unwrap_or(DEFAULT_MINUTES) * 60.0 - RESERVE_SECONDS).max(10.0);
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    fn config_of<'a>(args: impl IntoIterator<Item = &'a str>) -> String {
        let cli = Cli::parse_from(std::iter::once("host-trainer").chain(args));
        serde_json::to_string(&train_config(&cli.run)).unwrap()
    }

    /// The default run trains the shipped model's recipe: the command that made it, as
    /// `host-trainer/assets/README.md` gives it, sets nothing the defaults do not.
    #[test]
    fn the_default_run_is_the_shipped_models_recipe() {
        let readme = include_str!("../../assets/README.md");
        let section = readme
            .split("## `generator-ema.bin`")
            .nth(1)
            .expect("the README has the generator's section");
        let start = section
            .find("cargo run --release -p host-trainer --")
            .expect("the section gives the command that made the model");
        let command: String = section[start..]
            .lines()
            .scan(true, |more, line| {
                let this = more.then_some(line);
                *more = line.trim_end().ends_with('\\');
                this
            })
            .collect::<Vec<_>>()
            .join(" ")
            .replace('\\', " ");
        let args: Vec<&str> = command.split_whitespace().skip(6).collect();
        assert!(args.contains(&"--seed"), "parsed the command: {args:?}");
        assert_eq!(config_of(args.iter().copied()), config_of([]));
    }
}
