//! `host-trainer`: trains the conditional digit GAN on the CPU with Burn, evaluates it with
//! the project's own MNIST classifier, and writes the int8 model that generator-core runs.
//!
//! `cargo run --release -p host-trainer` does the whole job (train, evaluate, quantize) in
//! about 15 minutes on two cores.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use burn::prelude::*;
use clap::{Args, Parser, Subcommand};
use generator_quant::Calibration;
use serde::Serialize;

use host_trainer::backend::BackendKind;
use host_trainer::checkpoint::{RunDir, load_generator};
use host_trainer::data::{self, Mnist, Split};
use host_trainer::eval::{Metrics, Reference, eval_labels};
use host_trainer::infer::{generate_float, generate_int8, mean_abs_diff};
use host_trainer::model::{DiscriminatorConfig, GeneratorConfig};
use host_trainer::trainer::{DEFAULT_AUX_WEIGHT, TrainConfig, Trainer};
use host_trainer::{bench, eval, fsutil, model, quantize, report, train};

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Train, evaluate and quantize the conditional digit GAN"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train, evaluate and export (the default when no subcommand is given).
    Run(RunArgs),
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
    /// Worker threads for the backend (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// CPU backend.
    #[arg(long, value_enum, default_value = "flex")]
    backend: BackendKind,
}

#[derive(Args, Debug, Clone)]
struct RunArgs {
    /// Wall-time budget in minutes for the whole job (training + evaluation + export);
    /// default 15 for a new run. `--resume` keeps the run's saved limit unless one of
    /// `--minutes`, `--steps` or `--epochs` is given.
    #[arg(long)]
    minutes: Option<f64>,
    /// Train for exactly this many steps instead of a time budget (reproducible).
    #[arg(long)]
    steps: Option<usize>,
    /// Train for this many epochs instead of a time budget (reproducible).
    #[arg(long)]
    epochs: Option<usize>,
    /// Images per step.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Generator learning rate.
    #[arg(long, default_value_t = 4e-4)]
    lr_g: f64,
    /// Discriminator learning rate.
    #[arg(long, default_value_t = 4e-4)]
    lr_d: f64,
    /// EMA decay of the generator weights.
    #[arg(long, default_value_t = 0.999)]
    ema: f64,
    /// EMA warm-up: decay min(ema, (1 + t) / (10 + t)) at step t.
    #[arg(long)]
    ema_warmup: bool,
    /// Adam beta 1 (both networks).
    #[arg(long, default_value_t = 0.5)]
    beta1: f32,
    /// Adam beta 2 (both networks).
    #[arg(long, default_value_t = 0.999)]
    beta2: f32,
    /// Final learning rate as a fraction of the initial one (linear decay over the run's
    /// step or time limit; 1 = constant). Under a time limit the decay follows the clock,
    /// so only step- or epoch-limited runs repeat it exactly.
    #[arg(long, default_value_t = 1.0)]
    lr_end: f64,
    /// Weight of an auxiliary class loss: the discriminator also learns to name real
    /// digits' classes and the generator to make fakes it names as their labels (0: off).
    #[arg(long, default_value_t = DEFAULT_AUX_WEIGHT)]
    aux_weight: f64,
    /// Discriminator widths (channels of its two 4x4/2 convolutions). 16 32 trains about
    /// 1.8x faster per image than 32 64 on this machine (see the README).
    #[arg(long, num_args = 2, default_values_t = [16, 32])]
    d_widths: Vec<usize>,
    /// Seed of weights, batches and noise.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Folder for runs (each run gets its own subfolder).
    #[arg(long, default_value = "runs")]
    out: PathBuf,
    /// Continue an interrupted run from its last checkpoint.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Generated digits per class for the final evaluation.
    #[arg(long, default_value_t = 1000)]
    eval_per_class: usize,
    /// Train on the first N training images only (0: all 60,000); for quick experiments.
    #[arg(long, default_value_t = 0)]
    train_subset: usize,
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
struct EvalArgs {
    /// Generator: Burn weights (`generator-ema.bin`) or an int8 model file (`.dgen`).
    #[arg(long)]
    model: PathBuf,
    /// Generated digits per class.
    #[arg(long, default_value_t = 1000)]
    per_class: usize,
    /// Classifier weights (default: the committed ones).
    #[arg(long)]
    classifier: Option<PathBuf>,
    /// Also write the figures as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
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
        std::process::exit(1);
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Run(cli.run)) {
        Command::Run(a) => run(a),
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

/// Time kept back from the budget for evaluation (the two-sample test included) and export.
const RESERVE_SECONDS: f64 = 120.0;

fn run(a: RunArgs) -> anyhow::Result<()> {
    let t0 = Instant::now();
    set_threads(a.common.threads)?;
    let (train_set, test_set) = load(&a.common)?;
    let stop = stop_on_ctrl_c()?;
    let (run_dir, trainer) = match &a.resume {
        Some(dir) => resume_run(dir, &a, train_set.len())?,
        None => new_run(&a, train_set.len())?,
    };
    eprintln!("run folder: {}", run_dir.0.display());
    let trainer = train::train(trainer, &train_set, &run_dir, stop, false)?;
    let train_secs = t0.elapsed().as_secs_f64();

    eprintln!("evaluating...");
    let outcome = evaluate_and_export(&trainer, &run_dir, &train_set, &test_set, a.eval_per_class)?;
    let total = t0.elapsed().as_secs_f64();
    let summary = RunSummary {
        backend: format!("{:?}", a.common.backend),
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
    print_summary(&summary, &outcome, &run_dir);
    Ok(())
}

/// `metrics.json` of a run (fields in alphabetical order, as the file always had them).
#[derive(Debug, Serialize)]
struct RunSummary {
    backend: String,
    epochs: usize,
    float: Metrics,
    images_per_s_mean: f64,
    int8: Metrics,
    int8_vs_float_mean_abs_pixel_diff: f64,
    model_bytes: usize,
    real: Metrics,
    steps: usize,
    threads: usize,
    train_seconds: f64,
    wall_seconds_total: f64,
    wall_seconds_until_eval: f64,
}

/// `eval --json` output.
#[derive(Debug, Serialize)]
struct EvalSummary<'a> {
    generated: &'a Metrics,
    real: &'a Metrics,
}

/// Scores of the final EMA generator, float and int8.
#[derive(Debug)]
struct Outcome {
    real: Metrics,
    float: Metrics,
    int8: Metrics,
    /// Mean absolute pixel difference int8 vs float, in 1/255 units.
    mae: f64,
    model_bytes: usize,
}

/// A Ctrl-C handler: the first press asks training to stop after the current step, the
/// second exits at once.
fn stop_on_ctrl_c() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
    })
    .context("installing the Ctrl-C handler")?;
    Ok(stop)
}

/// Reopens an interrupted run at its last checkpoint, with the limits of `a`.
fn resume_run(dir: &Path, a: &RunArgs, n_train: usize) -> anyhow::Result<(RunDir, Trainer)> {
    let run = RunDir(dir.to_path_buf());
    let text = std::fs::read_to_string(run.config())
        .with_context(|| format!("{} is not a run folder", dir.display()))?;
    let mut config = TrainConfig::from_json(&text)
        .with_context(|| format!("reading {}", run.config().display()))?;
    apply_limits(&mut config, a, n_train, true);
    let mut t = Trainer::new(config, a.common.backend)?;
    t.load_checkpoint(&run.checkpoint())?;
    eprintln!(
        "resuming {} at step {} (epoch {})",
        dir.display(),
        t.state.step,
        t.state.epoch
    );
    Ok((run, t))
}

/// A fresh run folder `<out>/<unix time>-seed<seed>` with its `config.json`.
fn new_run(a: &RunArgs, n_train: usize) -> anyhow::Result<(RunDir, Trainer)> {
    let mut config = TrainConfig::new(
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
    .with_seed(a.seed)
    .with_train_subset(a.train_subset);
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
    Ok((run, Trainer::new(config, a.common.backend)?))
}

/// Scores the float EMA generator, writes the int8 model and its grid, scores it too.
fn evaluate_and_export(
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

fn print_summary(s: &RunSummary, outcome: &Outcome, run_dir: &RunDir) {
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

/// The budget of a new run when the command line gives none.
const DEFAULT_MINUTES: f64 = 15.0;

/// Sets the run's stopping rule from the command line. A resumed run (`resuming`) keeps
/// the rule saved in its `config.json` (and its time budget counts the training seconds
/// already saved in the checkpoint) unless the command line names a new limit.
fn apply_limits(config: &mut TrainConfig, a: &RunArgs, n_train: usize, resuming: bool) {
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

/// A generator file is either an int8 model (generator-core) or Burn weights.
enum GeneratorFile {
    Int8(Vec<u8>),
    Float(Box<model::Generator>),
}

fn open_generator(path: &Path, device: &Device) -> anyhow::Result<GeneratorFile> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let check = generator_core::Model::from_bytes(&bytes).map(|_| ());
    match check {
        Ok(()) => Ok(GeneratorFile::Int8(bytes)),
        Err(generator_core::Error::BadMagic) => Ok(GeneratorFile::Float(Box::new(load_generator(
            &GeneratorConfig::new(),
            path,
            device,
        )?))),
        Err(e) => bail!("{}: {e}", path.display()),
    }
}

fn generate_any(file: &GeneratorFile, labels: &[u8], seeds: &[u32]) -> anyhow::Result<Vec<u8>> {
    match file {
        GeneratorFile::Int8(bytes) => generate_int8(bytes, labels, seeds),
        GeneratorFile::Float(g) => Ok(generate_float(g, labels, seeds)),
    }
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
    let device = a.common.backend.device()?;
    let (train_set, test_set) = load(&a.common)?;
    let file = open_generator(&a.model, &device)?;
    let cpath = a.classifier.unwrap_or_else(eval::default_classifier_path);
    let reference = Reference::new(
        eval::load_classifier(&cpath, &device)?,
        &train_set,
        &test_set,
    );
    let (labels, seeds) = eval_labels(a.per_class, 0);
    let images = generate_any(&file, &labels, &seeds)?;
    let m: Metrics = reference.score(&a.model.display().to_string(), &images, &labels)?;
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
    let file = open_generator(&a.model, &device)?;
    let (labels, seeds) = eval_labels(a.per_class, a.seed);
    let images = generate_any(&file, &labels, &seeds)?;
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
