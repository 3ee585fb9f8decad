//! The models being trained and one training step: hinge loss, projection
//! discriminator, Adam, and the exponential moving average of the generator.
//! [`Trainer::step`] is the whole per-batch computation; the loop around it (epochs,
//! limits, progress, per-epoch files) is in [`crate::train`].

use std::path::Path;

use anyhow::Context;
use burn::module::{ModuleMapper, ModuleVisitor, Param};
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::Bytes;
use burn::tensor::activation::relu;
use generator_core::Z_DIM;
use serde::{Deserialize, Serialize};

use crate::backend::BackendKind;
use crate::checkpoint::{pack, unpack};
use crate::fsutil::write_atomic;
use crate::model::{Discriminator, DiscriminatorConfig, Generator, GeneratorConfig};
use crate::rng::Rng;
use crate::tensor::{label_tensor, load_module, onehot, record_bytes, to_vec_f32};

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

/// One row of `losses.csv`: losses averaged over a window of steps.
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

/// Blobs of a checkpoint, in order: state (JSON), G, D, EMA, G optimiser, D optimiser.
const CHECKPOINT_BLOBS: usize = 6;

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

        // Generator: maximise the updated discriminator's score of the same fakes. The
        // discriminator's parameters are constants here: only the input gradient flows back
        // through it, and no weight gradient is computed for it.
        let g_loss = self.d.clone().no_grad().forward(fake, y).mean().neg();
        let grads = GradientsParams::from_grads(g_loss.backward(), &self.g);
        self.g = self.opt_g.step(self.config.lr_g, self.g.clone(), grads);

        self.update_ema();
        self.state.step += 1;
        let (dl, gl) = (to_vec_f32(d_loss.detach()), to_vec_f32(g_loss.detach()));
        (dl[0], gl[0])
    }

    /// Moves the EMA generator towards the current generator.
    fn update_ema(&mut self) {
        let mut collect = Collect(Vec::new());
        self.g.visit(&mut collect);
        self.ema = self.ema.clone().map(&mut EmaUpdate {
            source: collect.0.into_iter(),
            decay: self.config.ema_decay,
        });
    }

    /// Writes models, optimisers and progress to `path` in one atomic file.
    ///
    /// G and D are recorded through `Module::valid`. Burn's `BatchNorm` keeps the running
    /// mean and variance of the last training forward pass as a pending update of its
    /// `RunningState`; a record of the training module reads the value from one step
    /// before, `valid` applies the pending update first. (Recording G directly made a
    /// resumed run continue from statistics one step old, which reached the EMA generator
    /// and the int8 model.) Trainable parameters keep their `ParamId`s through `valid` and
    /// the load, so the optimiser states, keyed by those ids, find them again.
    pub fn save_checkpoint(&self, path: &Path) -> anyhow::Result<()> {
        let state = serde_json::to_vec(&self.state)?;
        let og = self
            .opt_g
            .into_bytes()
            .context("encoding the G optimiser")?;
        let od = self
            .opt_d
            .into_bytes()
            .context("encoding the D optimiser")?;
        let blobs: [&[u8]; CHECKPOINT_BLOBS] = [
            &state,
            &record_bytes(&self.g.valid())?,
            &record_bytes(&self.d.valid())?,
            &record_bytes(&self.ema)?,
            &og,
            &od,
        ];
        write_atomic(path, &pack(&blobs))
    }

    /// Restores what [`save_checkpoint`](Self::save_checkpoint) wrote.
    pub fn load_checkpoint(&mut self, path: &Path) -> anyhow::Result<()> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let parts =
            unpack(&bytes, CHECKPOINT_BLOBS).with_context(|| format!("{}", path.display()))?;
        self.state = serde_json::from_slice(parts[0])?;
        self.g = load_module(self.g.clone(), parts[1])?;
        self.d = load_module(self.d.clone(), parts[2])?;
        self.ema = load_module(self.ema.clone(), parts[3])?.valid();
        let opt = |o: ModuleOptimizer, b: &[u8]| {
            o.from_bytes(Bytes::from_bytes_vec(b.to_vec()))
                .context("decoding an optimiser")
        };
        self.opt_g = opt(self.opt_g.clone(), parts[4])?;
        self.opt_d = opt(self.opt_d.clone(), parts[5])?;
        Ok(())
    }
}
