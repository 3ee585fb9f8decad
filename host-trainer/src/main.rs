//! `host-trainer`: trains the conditional digit GAN on the CPU with Burn, evaluates it with
//! the project's own MNIST classifier, and writes the int8 model that generator-core runs.
//!
//! `cargo run --release -p host-trainer` does the whole job (train, evaluate, quantize) in
//! about 15 minutes on two cores.
//!
//! This file parses the command line and dispatches: the `run` job is
//! [`host_trainer::run::run`], the other commands are short calls into the library.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use generator_quant::Calibration;
use serde::Serialize;

use host_trainer::backend::BackendKind;
use host_trainer::checkpoint::load_generator;
use host_trainer::data::{self, Mnist, Split};
use host_trainer::eval::{Metrics, Reference, eval_labels};
use host_trainer::infer::GeneratorFile;
use host_trainer::model::GeneratorConfig;
use host_trainer::run::{self, RunArgs};
use host_trainer::train::{BadSetting, ensure_setting};
use host_trainer::two_sample::TwoSampleConfig;
use host_trainer::{bench, eval, fsutil, quantize};

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Train, evaluate and quantize the conditional digit GAN",
    after_help = "Exit status: 0 done; 1 failed (e.g. a damaged or missing file, a full disk); \
                  2 a refused setting (e.g. --steps 0, --threads 0, a negative --aux-weight, \
                  on the command line or in a run's config.json); 130 a second Ctrl-C."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunCmd,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train, evaluate and export (the default when no subcommand is given).
    Run(RunCmd),
    /// Train the evaluation classifier and save its weights.
    Classifier(ClassifierArgs),
    /// Score a generator (Burn weights or an int8 model file) with the classifier.
    Eval(EvalArgs),
    /// Write generated digits in MNIST's IDX format.
    Sample(SampleArgs),
    /// Quantize generator weights into an int8 model file for generator-core.
    Export(ExportArgs),
    /// Measure training throughput (one D step + one G step).
    Bench(bench::BenchArgs),
}

#[derive(Args, Debug, Clone)]
struct Common {
    /// Directory with the MNIST IDX files (gzip or raw).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Worker threads for the backend, at least 1 (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// CPU backend.
    #[arg(long, value_enum, default_value = "flex")]
    backend: BackendKind,
}

/// `run`: the job's settings and the common options.
#[derive(Args, Debug, Clone)]
struct RunCmd {
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    common: Common,
}

#[derive(Args, Debug)]
struct ClassifierArgs {
    /// Training epochs.
    #[arg(long, default_value_t = 6)]
    epochs: usize,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where to write the weights.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    common: Common,
}

#[derive(Args, Debug)]
#[group(id = "what", required = true, multiple = false, args = ["model", "images"])]
struct EvalArgs {
    /// Generator: Burn weights (`generator-ema.bin`) or an int8 model file (`.dgen`).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Digits instead of a generator: a folder with `images-idx3-ubyte` and
    /// `labels-idx1-ubyte` (gzip or raw), such as `sample` writes, or another generator's
    #[arg(long)]
    images: Option<PathBuf>,
    /// Generated digits per class (with `--model`).
    #[arg(long, default_value_t = 1000)]
    per_class: usize,
    /// Classifier weights (default: the committed ones).
    #[arg(long)]
    classifier: Option<PathBuf>,
    /// Also write the figures as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Two-sample critic: passes over its training half (the protocol's is 10).
    #[arg(long, default_value_t = 10)]
    critic_passes: usize,
    /// Two-sample critic: channel multiplier (1 = 16/32 channels, the protocol's).
    #[arg(long, default_value_t = 1)]
    critic_width: usize,
    /// Two-sample critic: seed of its split, batch order and initialisation.
    #[arg(long, default_value_t = 1)]
    critic_seed: u64,
    #[command(flatten)]
    common: Common,
}

#[derive(Args, Debug)]
struct SampleArgs {
    /// Generator: Burn weights or an int8 model file (generated through generator-core).
    #[arg(long)]
    model: PathBuf,
    /// Digits per class.
    #[arg(long, default_value_t = 1000)]
    per_class: usize,
    /// Output folder for `images-idx3-ubyte.gz` and `labels-idx1-ubyte.gz`.
    #[arg(long)]
    out: PathBuf,
    /// First noise seed.
    #[arg(long, default_value_t = 0)]
    seed: u32,
    #[command(flatten)]
    common: Common,
}

#[derive(Args, Debug)]
struct ExportArgs {
    /// Burn generator weights (`generator-ema.bin`).
    #[arg(long)]
    generator: PathBuf,
    /// Output model file.
    #[arg(long)]
    out: PathBuf,
    /// Generated samples used to calibrate activation ranges.
    #[arg(long, default_value_t = Calibration::DEFAULT.count)]
    calibration: usize,
    #[command(flatten)]
    common: Common,
}

fn main() {
    host_trainer::backend::keep_freed_memory();
    let cli = Cli::parse();
    if let Err(e) = dispatch(cli) {
        eprintln!("error: {e:#}");
        let code = if BadSetting::is_in(&e) {
            BadSetting::EXIT_CODE
        } else {
            1
        };
        std::process::exit(code);
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Run(cli.run)) {
        Command::Run(a) => {
            set_threads(a.common.threads)?;
            run::run(&a.run, a.common.backend, &data_dir(&a.common)).map(|_| ())
        }
        Command::Classifier(a) => classifier(a),
        Command::Eval(a) => eval_cmd(a),
        Command::Sample(a) => sample(a),
        Command::Export(a) => export(a),
        Command::Bench(a) => {
            set_threads(a.threads)?;
            bench::run(&a)
        }
    }
}

fn set_threads(threads: Option<usize>) -> anyhow::Result<()> {
    if let Some(n) = threads {
        ensure_setting(n > 0, || "--threads must be at least 1, got 0".to_string())?;
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .context("configuring the thread pool")?;
    }
    Ok(())
}

fn data_dir(c: &Common) -> PathBuf {
    c.data.clone().unwrap_or_else(data::default_dir)
}

fn load(c: &Common) -> anyhow::Result<(Mnist, Mnist)> {
    let dir = data_dir(c);
    Ok((
        Mnist::load(&dir, Split::Train)?,
        Mnist::load(&dir, Split::Test)?,
    ))
}

/// `eval --json` output.
#[derive(Debug, Serialize)]
struct EvalSummary<'a> {
    generated: &'a Metrics,
    real: &'a Metrics,
}

fn classifier(a: ClassifierArgs) -> anyhow::Result<()> {
    set_threads(a.common.threads)?;
    let (train_set, test_set) = load(&a.common)?;
    let device = a.common.backend.device()?;
    let t0 = Instant::now();
    let (model, acc) = eval::train_classifier(&train_set, &test_set, a.epochs, a.seed, &device)?;
    let out = a.out.unwrap_or_else(eval::default_classifier_path);
    eval::save_classifier(&model, &out)?;
    println!(
        "classifier: {:.2}% on the 10k test set after {} epochs ({:.0} s); weights -> {}",
        acc * 100.0,
        a.epochs,
        t0.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(())
}

fn eval_cmd(a: EvalArgs) -> anyhow::Result<()> {
    set_threads(a.common.threads)?;
    ensure_setting(a.critic_passes > 0, || {
        "--critic-passes must be at least 1, got 0".to_string()
    })?;
    ensure_setting(a.critic_width > 0, || {
        "--critic-width must be at least 1, got 0".to_string()
    })?;
    let device = a.common.backend.device()?;
    let (train_set, test_set) = load(&a.common)?;
    let (name, images, labels) = match (&a.model, &a.images) {
        (Some(model), None) => {
            let file = GeneratorFile::open(model, &device)?;
            let (labels, seeds) = eval_labels(a.per_class, 0);
            (model, file.generate(&labels, &seeds)?, labels)
        }
        (None, Some(dir)) => {
            let set = Mnist::load_pair(dir)?;
            anyhow::ensure!(!set.is_empty(), "{} holds no digits", dir.display());
            (dir, set.images, set.labels)
        }
        _ => anyhow::bail!("give exactly one of --model and --images"),
    };
    let cpath = a.classifier.unwrap_or_else(eval::default_classifier_path);
    let reference = Reference::new(
        eval::load_classifier(&cpath, &device)?,
        &train_set,
        &test_set,
    );
    let critic = TwoSampleConfig::new()
        .with_epochs(a.critic_passes)
        .with_width(a.critic_width)
        .with_seed(a.critic_seed);
    let m: Metrics =
        reference.score_with(&name.display().to_string(), &images, &labels, &critic)?;
    println!("{}", reference.floor.table());
    println!("{}", m.table());
    if let Some(j) = a.json {
        let v = EvalSummary {
            generated: &m,
            real: &reference.floor,
        };
        fsutil::write_atomic(&j, serde_json::to_string_pretty(&v)?.as_bytes())?;
    }
    Ok(())
}

fn sample(a: SampleArgs) -> anyhow::Result<()> {
    let device = a.common.backend.device()?;
    let file = GeneratorFile::open(&a.model, &device)?;
    let (labels, seeds) = eval_labels(a.per_class, a.seed);
    let images = file.generate(&labels, &seeds)?;
    data::write_idx_pair(&a.out, &images, &labels)?;
    println!("{} digits -> {}", labels.len(), a.out.display());
    Ok(())
}

fn export(a: ExportArgs) -> anyhow::Result<()> {
    let device = a.common.backend.device()?;
    let g = load_generator(&GeneratorConfig::new(), &a.generator, &device)?;
    let calibration = Calibration::DEFAULT.with_count(a.calibration);
    let bytes = quantize::export(&g, &calibration, &a.out)?;
    println!("{} bytes -> {}", bytes.len(), a.out.display());
    Ok(())
}
