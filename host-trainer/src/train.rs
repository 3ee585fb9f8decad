//! GAN training: hinge loss, projection discriminator, Adam, EMA of the generator,
//! per-epoch sample grids, loss curves and crash-safe checkpoints.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use burn::module::{ModuleMapper, ModuleVisitor, Param};
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use burn::tensor::activation::relu;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::data::{Mnist, PIXELS};
use crate::fsutil::write_atomic;
use crate::model::{
    CLASSES, Discriminator, DiscriminatorConfig, Generator, GeneratorConfig, Z_DIM,
};
use crate::report;
use crate::rng::Rng;

/// Everything that defines a training run. Saved as `config.json` in the run folder.
#[derive(Config, Debug)]
pub struct TrainConfig {
    /// Generator architecture.
    pub generator: GeneratorConfig,
    /// Discriminator architecture.
    pub discriminator: DiscriminatorConfig,
    /// Images per step.
    #[config(default = 64)]
    pub batch: usize,
    /// Generator learning rate.
    #[config(default = 2e-4)]
    pub lr_g: f64,
    /// Discriminator learning rate.
    #[config(default = 2e-4)]
    pub lr_d: f64,
    /// Adam beta 1.
    #[config(default = 0.5)]
    pub beta1: f32,
    /// Adam beta 2.
    #[config(default = 0.999)]
    pub beta2: f32,
    /// Decay of the exponential moving average of the generator weights.
    #[config(default = 0.999)]
    pub ema_decay: f64,
    /// Seed of weights, batches and noise.
    #[config(default = 1)]
    pub seed: u64,
    /// Stop after this many steps (0 = no step limit).
    #[config(default = 0)]
    pub max_steps: usize,
    /// Stop after this many seconds of training (0 = no time limit).
    #[config(default = 0.0)]
    pub max_seconds: f64,
    /// Use only the first N training images (0 = all 60,000).
    #[config(default = 0)]
    pub train_subset: usize,
}

/// The two CPU backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum BackendKind {
    /// burn-flex: SIMD + rayon, the fast one.
    Flex,
    /// burn-ndarray: deprecated by Burn 0.22, much slower convolution backward.
    Ndarray,
}

impl BackendKind {
    /// The plain (inference) device.
    pub fn device(self) -> anyhow::Result<Device> {
        match self {
            #[cfg(feature = "flex")]
            BackendKind::Flex => Ok(Device::flex()),
            #[cfg(feature = "ndarray")]
            #[allow(deprecated)]
            BackendKind::Ndarray => Ok(Device::ndarray()),
            #[allow(unreachable_patterns)]
            other => bail!("backend {other:?} was not compiled in (cargo feature)"),
        }
    }
}

/// One row of `losses.csv`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct LossRow {
    /// Step at the end of the averaging window.
    pub step: usize,
    /// Discriminator hinge loss.
    pub d_loss: f32,
    /// Generator loss.
    pub g_loss: f32,
    /// Throughput over the window.
    pub images_per_s: f32,
}

/// Progress that a checkpoint restores.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainState {
    /// Optimisation steps done.
    pub step: usize,
    /// Complete epochs done.
    pub epoch: usize,
    /// Batch/noise generator, as at the end of the last complete epoch.
    pub rng: Rng,
    /// Loss history.
    pub losses: Vec<LossRow>,
    /// Seconds of training so far (across resumes).
    pub train_seconds: f64,
}

/// Models and optimisers being trained.
#[allow(missing_debug_implementations)] // Burn's optimisers are not Debug
pub struct Trainer {
    /// Run configuration.
    pub config: TrainConfig,
    /// Training device (autodiff).
    pub device: Device,
    /// Generator being trained.
    pub g: Generator,
    /// Discriminator being trained.
    pub d: Discriminator,
    /// EMA of the generator, on the plain device (the final model).
    pub ema: Generator,
    opt_g: ModuleOptimizer,
    opt_d: ModuleOptimizer,
    /// Progress.
    pub state: TrainState,
}

/// Reads a tensor as a `Vec<f32>`.
pub fn to_vec_f32<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("float tensor data")
}

/// Builds an image batch `[b, 1, 28, 28]` from signed pixels.
pub fn image_batch(pixels: &[f32], idx: &[usize], device: &Device) -> Tensor<4> {
    let mut v = Vec::with_capacity(idx.len() * PIXELS);
    for &i in idx {
        v.extend_from_slice(&pixels[i * PIXELS..(i + 1) * PIXELS]);
    }
    Tensor::from_data(TensorData::new(v, [idx.len(), 1, 28, 28]), device)
}

/// Labels `[b]` as an int tensor.
pub fn label_tensor(labels: &[u8], device: &Device) -> Tensor<1, Int> {
    let v: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
    Tensor::from_data(TensorData::new(v, [labels.len()]), device)
}

/// One-hot `[b, 10]` float.
pub fn onehot(labels: &[u8], device: &Device) -> Tensor<2> {
    let mut v = vec![0f32; labels.len() * CLASSES];
    for (i, &l) in labels.iter().enumerate() {
        v[i * CLASSES + l as usize] = 1.0;
    }
    Tensor::from_data(TensorData::new(v, [labels.len(), CLASSES]), device)
}

/// Collects every float tensor of a module (parameters and running statistics), flattened.
struct Collect(Vec<Tensor<1>>);
impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let t = param.val().detach().inner();
        let n = t.shape().num_elements();
        self.0.push(t.reshape([n]));
    }
}

/// ema <- decay * ema + (1 - decay) * source, tensor by tensor in visiting order.
struct EmaUpdate {
    source: std::vec::IntoIter<Tensor<1>>,
    decay: f64,
}
impl ModuleMapper for EmaUpdate {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let src = self.source.next().expect("same architecture");
        let decay = self.decay;
        param.map(|t| {
            let dims: [usize; D] = t.dims();
            t.mul_scalar(decay)
                .add(src.reshape(dims).mul_scalar(1.0 - decay))
        })
    }
}

/// A module's weights as Burn record bytes.
pub fn record_bytes<M: Module>(m: &M) -> anyhow::Result<Vec<u8>> {
    Ok(m.clone()
        .into_record()
        .into_bytes()
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .to_vec())
}

/// Loads record bytes written by [`record_bytes`] into `m`.
pub fn load_module<M: Module>(m: M, bytes: &[u8]) -> anyhow::Result<M> {
    let rec = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes.to_vec()))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(m.load_record(rec))
}

/// Saves a generator's weights (Burn record bytes) to `path`, atomically.
pub fn save_generator(g: &Generator, path: &Path) -> anyhow::Result<()> {
    write_atomic(path, &record_bytes(g)?)
}

/// Loads generator weights saved by [`save_generator`] onto `device`.
pub fn load_generator(
    cfg: &GeneratorConfig,
    path: &Path,
    device: &Device,
) -> anyhow::Result<Generator> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    load_module(cfg.init(device), &bytes)
        .with_context(|| format!("{}: not a generator weight file", path.display()))
        .map(|g| g.valid())
}

const CKPT_MAGIC: &[u8; 8] = b"DGCKPT01";

fn pack(blobs: &[&[u8]]) -> Vec<u8> {
    let mut out = CKPT_MAGIC.to_vec();
    for b in blobs {
        out.extend_from_slice(&(b.len() as u64).to_le_bytes());
        out.extend_from_slice(b);
    }
    out
}

fn unpack(bytes: &[u8], n: usize) -> anyhow::Result<Vec<&[u8]>> {
    anyhow::ensure!(bytes.starts_with(CKPT_MAGIC), "not a checkpoint file");
    let mut rest = &bytes[8..];
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        anyhow::ensure!(rest.len() >= 8, "checkpoint truncated");
        let len = u64::from_le_bytes(rest[..8].try_into()?) as usize;
        rest = &rest[8..];
        anyhow::ensure!(rest.len() >= len, "checkpoint truncated");
        out.push(&rest[..len]);
        rest = &rest[len..];
    }
    anyhow::ensure!(rest.is_empty(), "checkpoint has trailing bytes");
    Ok(out)
}

impl Trainer {
    /// Fresh models for `config` on `backend`.
    pub fn new(config: TrainConfig, backend: BackendKind) -> anyhow::Result<Self> {
        let plain = backend.device()?;
        plain.seed(config.seed);
        let device = plain.clone().autodiff();
        let g = config.generator.init(&device);
        let d = config.discriminator.init(&device);
        let ema = g.valid();
        let adam = AdamConfig::new()
            .with_beta_1(config.beta1)
            .with_beta_2(config.beta2);
        let state = TrainState {
            step: 0,
            epoch: 0,
            rng: Rng::new(config.seed),
            losses: Vec::new(),
            train_seconds: 0.0,
        };
        Ok(Self {
            opt_g: adam.init(),
            opt_d: adam.init(),
            config,
            device,
            g,
            d,
            ema,
            state,
        })
    }

    /// Writes models, optimisers and progress to `path` in one atomic file.
    pub fn save_checkpoint(&self, path: &Path) -> anyhow::Result<()> {
        let state = serde_json::to_vec(&self.state)?;
        let og = self
            .opt_g
            .into_bytes()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let od = self
            .opt_d
            .into_bytes()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let bytes = pack(&[
            &state,
            &record_bytes(&self.g)?,
            &record_bytes(&self.d)?,
            &record_bytes(&self.ema)?,
            &og,
            &od,
        ]);
        write_atomic(path, &bytes)
    }

    /// Restores what [`save_checkpoint`](Self::save_checkpoint) wrote.
    pub fn load_checkpoint(&mut self, path: &Path) -> anyhow::Result<()> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let parts = unpack(&bytes, 6).with_context(|| format!("{}", path.display()))?;
        self.state = serde_json::from_slice(parts[0])?;
        self.g = load_module(self.g.clone(), parts[1])?;
        self.d = load_module(self.d.clone(), parts[2])?;
        self.ema = load_module(self.ema.clone(), parts[3])?.valid();
        let opt = |o: ModuleOptimizer, b: &[u8]| {
            o.from_bytes(Bytes::from_bytes_vec(b.to_vec()))
                .map_err(|e| anyhow::anyhow!("{e}"))
        };
        self.opt_g = opt(self.opt_g.clone(), parts[4])?;
        self.opt_d = opt(self.opt_d.clone(), parts[5])?;
        Ok(())
    }

    /// One discriminator step and one generator step on a real batch. Returns (d_loss, g_loss).
    pub fn step(&mut self, real: Tensor<4>, labels: &[u8]) -> (f32, f32) {
        let b = labels.len();
        let dev = &self.device;
        let mut z = vec![0f32; b * Z_DIM];
        self.state.rng.fill_normal(&mut z);
        let z = Tensor::<2>::from_data(TensorData::new(z, [b, Z_DIM]), dev);
        let y = label_tensor(labels, dev);
        let fake = self.g.forward(z, onehot(labels, dev)); // [b, 1, 28, 28]

        // Discriminator: hinge loss on real and (detached) fake.
        let d_real = self.d.forward(real, y.clone());
        let d_fake = self.d.forward(fake.clone().detach(), y.clone());
        let d_loss =
            relu(d_real.neg().add_scalar(1.0)).mean() + relu(d_fake.add_scalar(1.0)).mean();
        let grads = GradientsParams::from_grads(d_loss.backward(), &self.d);
        self.d = self.opt_d.step(self.config.lr_d, self.d.clone(), grads);

        // Generator: maximise the updated discriminator's score of the same fakes.
        let g_loss = self.d.forward(fake, y).mean().neg();
        let grads = GradientsParams::from_grads(g_loss.backward(), &self.g);
        self.g = self.opt_g.step(self.config.lr_g, self.g.clone(), grads);

        let mut collect = Collect(Vec::new());
        self.g.visit(&mut collect);
        self.ema = self.ema.clone().map(&mut EmaUpdate {
            source: collect.0.into_iter(),
            decay: self.config.ema_decay,
        });
        self.state.step += 1;
        let (dl, gl) = (to_vec_f32(d_loss.detach()), to_vec_f32(g_loss.detach()));
        (dl[0], gl[0])
    }
}

/// Files of a run folder.
#[derive(Debug, Clone)]
pub struct RunDir(pub PathBuf);

impl RunDir {
    /// The checkpoint file.
    pub fn checkpoint(&self) -> PathBuf {
        self.0.join("checkpoint.bin")
    }
    /// The run's configuration.
    pub fn config(&self) -> PathBuf {
        self.0.join("config.json")
    }
    /// The final EMA generator weights.
    pub fn generator(&self) -> PathBuf {
        self.0.join("generator-ema.bin")
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
    anyhow::ensure!(
        n >= cfg.batch,
        "need at least one batch of {} images, have {n}",
        cfg.batch
    );
    let steps_per_epoch = n / cfg.batch;
    let time_limit = (cfg.max_seconds > 0.0).then_some(cfg.max_seconds);
    let step_limit = (cfg.max_steps > 0).then_some(cfg.max_steps);

    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(match (step_limit, time_limit) {
            (Some(s), _) => s as u64,
            (None, Some(t)) => t.ceil() as u64,
            (None, None) => 0,
        })
    };
    let unit = if step_limit.is_some() { "steps" } else { "s" };
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{elapsed_precise}} [{{bar:30}}] {{pos}}/{{len}} {unit} ETA {{eta}} {{msg}}"
        ))
        .expect("valid template")
        .progress_chars("=> "),
    );

    let started = Instant::now();
    let base_seconds = trainer.state.train_seconds;
    let done = |t: &Trainer| {
        step_limit.is_some_and(|s| t.state.step >= s)
            || time_limit.is_some_and(|l| t.state.train_seconds >= l)
    };
    let mut window = (0f32, 0f32, 0usize, Instant::now());
    // Without a terminal (nohup, CI logs) the bar is invisible: print a line now and then.
    let log_lines = !quiet && !std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut last_line = Instant::now();
    'epochs: while !done(&trainer) {
        let perm = trainer.state.rng.permutation(n);
        for s in 0..steps_per_epoch {
            let idx = &perm[s * cfg.batch..(s + 1) * cfg.batch];
            let labels: Vec<u8> = idx.iter().map(|&i| data.labels[i]).collect();
            let real = image_batch(&pixels, idx, &trainer.device);
            let (dl, gl) = trainer.step(real, &labels);
            anyhow::ensure!(
                dl.is_finite() && gl.is_finite(),
                "training diverged at step {} (d_loss {dl}, g_loss {gl})",
                trainer.state.step
            );
            trainer.state.train_seconds = base_seconds + started.elapsed().as_secs_f64();
            window.0 += dl;
            window.1 += gl;
            window.2 += 1;
            let finishing = done(&trainer) || stop.load(Ordering::SeqCst);
            if window.2 == 25 || s + 1 == steps_per_epoch || finishing {
                let secs = window.3.elapsed().as_secs_f32();
                let row = LossRow {
                    step: trainer.state.step,
                    d_loss: window.0 / window.2 as f32,
                    g_loss: window.1 / window.2 as f32,
                    images_per_s: (window.2 * cfg.batch) as f32 / secs,
                };
                trainer.state.losses.push(row);
                let msg = format!(
                    "epoch {} step {} d {:.3} g {:.3} {:.0} img/s",
                    trainer.state.epoch + 1,
                    row.step,
                    row.d_loss,
                    row.g_loss,
                    row.images_per_s
                );
                if log_lines && last_line.elapsed().as_secs() >= 30 {
                    eprintln!("[{:>6.0} s] {msg}", trainer.state.train_seconds);
                    last_line = Instant::now();
                }
                bar.set_message(msg);
                window = (0.0, 0.0, 0, Instant::now());
            }
            bar.set_position(match step_limit {
                Some(_) => trainer.state.step as u64,
                None => trainer.state.train_seconds as u64,
            });
            if stop.load(Ordering::SeqCst) {
                bar.abandon_with_message(format!(
                    "interrupted at step {}; the last complete epoch ({}) is saved: resume with --resume {}",
                    trainer.state.step,
                    trainer.state.epoch,
                    run.0.display()
                ));
                bail!("interrupted");
            }
            if done(&trainer) {
                break 'epochs;
            }
        }
        trainer.state.epoch += 1;
        end_of_epoch(&trainer, run, &format!("epoch-{:03}", trainer.state.epoch))?;
    }
    // A final partial epoch still gets its grid, curves and checkpoint.
    if !trainer.state.step.is_multiple_of(steps_per_epoch) {
        end_of_epoch(&trainer, run, "final")?;
    }
    bar.finish();
    Ok(trainer)
}

fn end_of_epoch(t: &Trainer, run: &RunDir, tag: &str) -> anyhow::Result<()> {
    report::sample_grid(&t.ema, &run.0.join(format!("samples-{tag}.png")))?;
    report::write_losses(&t.state.losses, &run.0)?;
    save_generator(&t.ema, &run.generator())?;
    t.save_checkpoint(&run.checkpoint())
}
