//! The models being trained and one training step: hinge loss, projection
//! discriminator, Adam, and the exponential moving average of the generator.
//! [`Trainer::step`] is the whole per-batch computation; the loop around it (epochs,
//! limits, progress, per-epoch files) is in [`super::epochs`].

use std::path::Path;

use anyhow::Context;
use burn::module::{ModuleMapper, ModuleVisitor, Param};
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::Bytes;
use burn::tensor::activation::{log_softmax, relu};
use generator_core::{IMAGE_PIXELS, IMAGE_SIDE, Z_DIM};
use serde::{Deserialize, Serialize};

use crate::backend::BackendKind;
use crate::checkpoint::{pack, unpack};
use crate::fsutil::write_atomic;
use crate::model::{Discriminator, DiscriminatorConfig, Generator, GeneratorConfig};
use crate::report::LossRow;
use crate::rng::Rng;
use crate::tensor::{label_tensor, load_module, onehot, record_bytes, to_vec_f32};

/// Weight of the auxiliary class loss in new runs (`--aux-weight`). [`TrainConfig`] keeps 0
/// as its default, so a `config.json` written before the setting existed resumes as it
/// trained.
pub const DEFAULT_AUX_WEIGHT: f64 = 0.03;

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
    #[config(default = 4e-4)]
    pub lr_g: f64,
    /// Discriminator learning rate.
    #[config(default = 4e-4)]
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
    /// EMA warm-up: the decay at step `t` is `min(ema_decay, (1 + t) / (10 + t))`, so the
    /// average forgets the random initial weights within the first few hundred steps.
    #[config(default = false)]
    pub ema_warmup: bool,
    /// Learning rate at the end of the run as a fraction of `lr_g` / `lr_d`; both decay
    /// linearly with the run's progress (steps of a step limit, seconds of a time limit).
    /// 1.0 keeps them constant.
    #[config(default = 1.0)]
    pub lr_end: f64,
    /// Weight of the auxiliary class loss (0 = none). The discriminator's class
    /// embeddings double as a 10-way classifier of its features: it learns to name the
    /// class of real digits, and the generator is pushed to make fakes it names as their
    /// label (cross-entropy of both, on real images only for the discriminator). New runs
    /// take [`DEFAULT_AUX_WEIGHT`].
    #[config(default = 0.0)]
    pub aux_weight: f64,
    /// The class loss fades linearly to 0 over this last fraction of the run (0 = it keeps
    /// its weight to the end; 1 = it fades over the whole run).
    #[config(default = 0.0)]
    pub aux_fade: f64,
    /// What is left of the class loss's weight at the end of the fade, as a fraction of
    /// `aux_weight` (0 = it fades out; in [0, 1]).
    #[config(default = 0.0)]
    pub aux_end: f64,
    /// Progress of the run (in [0, 1)) at which the learning-rate decay towards `lr_end`
    /// starts; 0 decays over the whole run.
    #[config(default = 0.0)]
    pub lr_decay_start: f64,
    /// Weight of the discriminator's consistency loss (0 = none): the squared difference
    /// between its scores of an image and of the same image shifted by up to
    /// [`CONSISTENCY_SHIFT`] pixels each way, on the real and the fake batch.
    #[config(default = 0.0)]
    pub consistency: f64,
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

/// Progress that a checkpoint restores.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainState {
    /// Optimisation steps done.
    pub step: usize,
    /// Complete epochs done.
    pub epoch: usize,
    /// Batch/noise generator, as after the last step.
    pub rng: Rng,
    /// Steps done in the current epoch (0 at an epoch boundary). A checkpoint written when
    /// a run is stopped mid-epoch continues from here.
    #[serde(default)]
    pub epoch_step: usize,
    /// [`rng`](Self::rng) as it was before it drew the current epoch's shuffle, so that a
    /// resume mid-epoch draws the same order again. `None` in checkpoints written before
    /// it existed (those are always at an epoch boundary).
    #[serde(default)]
    pub epoch_rng: Option<Rng>,
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

/// Mean cross-entropy of class `logits` `[b, 10]` against one-hot `targets` `[b, 10]`.
fn class_loss(logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
    log_softmax(logits, 1).mul(targets).sum_dim(1).mean().neg()
}

/// The largest shift, in pixels each way, of the consistency loss.
pub const CONSISTENCY_SHIFT: usize = 2;

/// `x` `[b, 1, 28, 28]` with every image moved by its own random shift of up to
/// [`CONSISTENCY_SHIFT`] pixels in each direction; the pixels moved in are background (-1).
fn shift_images(x: Tensor<4>, rng: &mut Rng) -> Tensor<4> {
    let dims = x.dims();
    let device = x.device();
    let v = to_vec_f32(x);
    let side = IMAGE_SIDE as isize;
    let span = 2 * CONSISTENCY_SHIFT + 1;
    let mut out = vec![-1f32; v.len()];
    for (src, dst) in v
        .chunks_exact(IMAGE_PIXELS)
        .zip(out.chunks_exact_mut(IMAGE_PIXELS))
    {
        let dy = rng.below(span) as isize - CONSISTENCY_SHIFT as isize;
        let dx = rng.below(span) as isize - CONSISTENCY_SHIFT as isize;
        for r in 0..side {
            let sr = r - dy;
            if !(0..side).contains(&sr) {
                continue;
            }
            for c in 0..side {
                let sc = c - dx;
                if (0..side).contains(&sc) {
                    dst[(r * side + c) as usize] = src[(sr * side + sc) as usize];
                }
            }
        }
    }
    Tensor::from_data(TensorData::new(out, dims), &device)
}

/// Blobs of a checkpoint, in order: state (JSON), G, D, EMA, G optimiser, D optimiser.
const CHECKPOINT_BLOBS: usize = 6;

impl TrainConfig {
    /// Reads a run's `config.json`. Settings added after the file was written take their
    /// defaults, which reproduce how older versions trained (constant learning rates, no
    /// EMA warm-up).
    pub fn from_json(text: &str) -> anyhow::Result<Self> {
        let file: serde_json::Value = serde_json::from_str(text)?;
        let mut merged = serde_json::to_value(TrainConfig::new(
            GeneratorConfig::new(),
            DiscriminatorConfig::new(),
        ))?;
        let (Some(into), serde_json::Value::Object(from)) = (merged.as_object_mut(), file) else {
            anyhow::bail!("not a JSON object");
        };
        into.extend(from);
        Ok(serde_json::from_value(merged)?)
    }

    /// How far a run in `state` is towards its limit, in [0, 1]: the larger of the step
    /// and the time fractions (0 when the run has no limit).
    pub fn progress(&self, state: &TrainState) -> f64 {
        let by_steps = if self.max_steps > 0 {
            state.step as f64 / self.max_steps as f64
        } else {
            0.0
        };
        let by_time = if self.max_seconds > 0.0 {
            state.train_seconds / self.max_seconds
        } else {
            0.0
        };
        by_steps.max(by_time).clamp(0.0, 1.0)
    }

    /// Learning-rate multiplier of the step after `state`: 1 at the start, `lr_end` at the
    /// end of the run.
    pub fn lr_scale(&self, state: &TrainState) -> f64 {
        let start = self.lr_decay_start;
        let p = self.progress(state);
        if p <= start {
            return 1.0;
        }
        1.0 + (self.lr_end - 1.0) * (p - start) / (1.0 - start)
    }

    /// Weight of the class loss in the step after `state`: `aux_weight`, falling linearly
    /// to `aux_end * aux_weight` over the last `aux_fade` of the run.
    pub fn aux_weight_at(&self, state: &TrainState) -> f64 {
        let left = 1.0 - self.progress(state);
        if self.aux_fade <= 0.0 || left >= self.aux_fade {
            return self.aux_weight;
        }
        let end = self.aux_weight * self.aux_end;
        end + (self.aux_weight - end) * left / self.aux_fade
    }

    /// EMA decay of the update after `step` steps.
    pub fn ema_decay_at(&self, step: usize) -> f64 {
        if self.ema_warmup {
            let t = step as f64;
            self.ema_decay.min((1.0 + t) / (10.0 + t))
        } else {
            self.ema_decay
        }
    }

    /// Rejects settings that cannot train: a zero batch or width, a learning rate that is
    /// not a positive number, a decay or beta outside [0, 1).
    pub fn check(&self) -> anyhow::Result<()> {
        self.check_values()
            .map_err(|e| anyhow::Error::new(BadSetting(e.to_string())))
    }

    fn check_values(&self) -> anyhow::Result<()> {
        let unit = |name: &str, v: f64| {
            anyhow::ensure!((0.0..1.0).contains(&v), "{name} must be in [0, 1), got {v}");
            Ok(())
        };
        anyhow::ensure!(self.batch > 0, "batch must be at least 1");
        anyhow::ensure!(
            self.discriminator.c1 > 0 && self.discriminator.c2 > 0,
            "discriminator widths must be at least 1"
        );
        for (name, lr) in [("lr-g", self.lr_g), ("lr-d", self.lr_d)] {
            anyhow::ensure!(
                lr.is_finite() && lr > 0.0,
                "{name} must be a positive number, got {lr}"
            );
        }
        for (name, v) in [
            ("aux-weight", self.aux_weight),
            ("lr-end", self.lr_end),
            ("aux-fade", self.aux_fade),
            ("aux-end", self.aux_end),
            ("consistency", self.consistency),
        ] {
            anyhow::ensure!(
                v.is_finite() && v >= 0.0,
                "{name} must be a number >= 0, got {v}"
            );
        }
        anyhow::ensure!(self.aux_fade <= 1.0, "aux-fade must be at most 1");
        anyhow::ensure!(self.aux_end <= 1.0, "aux-end must be at most 1");
        unit("lr-decay-start", self.lr_decay_start)?;
        unit("ema", self.ema_decay)?;
        unit("beta1", f64::from(self.beta1))?;
        unit("beta2", f64::from(self.beta2))
    }
}

/// A setting that cannot mean what it says (from the command line or a run's
/// `config.json`). The binary exits with [`BadSetting::EXIT_CODE`] for every one of them.
#[derive(Debug)]
pub struct BadSetting(pub String);

impl BadSetting {
    /// The exit status of a refused setting (the same as clap's for a malformed command line).
    pub const EXIT_CODE: i32 = 2;

    /// Whether `e` (or an error it wraps) is a refused setting.
    pub fn is_in(e: &anyhow::Error) -> bool {
        e.chain().any(|c| c.is::<BadSetting>())
    }
}

impl std::fmt::Display for BadSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadSetting {}

/// Refuses a setting with `msg` unless `ok`.
pub fn ensure_setting(ok: bool, msg: impl FnOnce() -> String) -> anyhow::Result<()> {
    if ok {
        Ok(())
    } else {
        Err(anyhow::Error::new(BadSetting(msg())))
    }
}

impl Trainer {
    /// Fresh models for `config` on `backend`.
    pub fn new(config: TrainConfig, backend: BackendKind) -> anyhow::Result<Self> {
        config.check()?;
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
            epoch_step: 0,
            epoch_rng: None,
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
        let targets = onehot(labels, dev); // [b, 10]: G's condition and the class targets
        let fake = self.g.forward(z, targets.clone()); // [b, 1, 28, 28]

        // Discriminator: hinge loss on real and (detached) fake, plus the class loss on
        // real digits when it has a weight.
        let aux = self.config.aux_weight_at(&self.state);
        let onehot_y = (aux > 0.0).then_some(targets);
        let cr = self.config.consistency;
        let shifted = (cr > 0.0).then(|| {
            let both = Tensor::cat(vec![real.clone(), fake.clone().detach()], 0);
            shift_images(both, &mut self.state.rng)
        });
        let (d_real, real_logits) = self.d.forward_with_logits(real, y.clone());
        let d_fake = self.d.forward(fake.clone().detach(), y.clone());
        let mut d_loss = relu(d_real.clone().neg().add_scalar(1.0)).mean()
            + relu(d_fake.clone().add_scalar(1.0)).mean();
        if let Some(moved) = shifted {
            let yy = Tensor::cat(vec![y.clone(), y.clone()], 0);
            let d_moved = self.d.forward(moved, yy);
            let d_both = Tensor::cat(vec![d_real, d_fake], 0);
            d_loss = d_loss + (d_both - d_moved).powi_scalar(2).mean().mul_scalar(cr);
        }
        if let Some(t) = &onehot_y {
            d_loss = d_loss + class_loss(real_logits, t.clone()).mul_scalar(aux);
        }
        let grads = GradientsParams::from_grads(d_loss.backward(), &self.d);
        let lr_scale = self.config.lr_scale(&self.state);
        self.d = self
            .opt_d
            .step(self.config.lr_d * lr_scale, self.d.clone(), grads);

        // Generator: maximise the updated discriminator's score of the same fakes (and
        // have it name their labels). The discriminator's parameters are constants here:
        // only the input gradient flows back through it, and no weight gradient is
        // computed for it.
        let (score, fake_logits) = self.d.clone().no_grad().forward_with_logits(fake, y);
        let mut g_loss = score.mean().neg();
        if let Some(t) = onehot_y {
            g_loss = g_loss + class_loss(fake_logits, t).mul_scalar(aux);
        }
        let grads = GradientsParams::from_grads(g_loss.backward(), &self.g);
        self.g = self
            .opt_g
            .step(self.config.lr_g * lr_scale, self.g.clone(), grads);

        self.update_ema();
        self.state.step += 1;
        let (dl, gl) = (to_vec_f32(d_loss.detach()), to_vec_f32(g_loss.detach()));
        (dl[0], gl[0])
    }

    /// Moves the EMA generator towards the current generator.
    fn update_ema(&mut self) {
        let mut collect = Collect(Vec::new());
        self.g.visit(&mut collect);
        let decay = self.config.ema_decay_at(self.state.step);
        self.ema = self.ema.clone().map(&mut EmaUpdate {
            source: collect.0.into_iter(),
            decay,
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
        write_atomic(path, &self.checkpoint_bytes()?)
    }

    /// The checkpoint image [`save_checkpoint`](Self::save_checkpoint) writes.
    pub fn checkpoint_bytes(&self) -> anyhow::Result<Vec<u8>> {
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
        Ok(pack(&blobs))
    }

    /// Restores what [`save_checkpoint`](Self::save_checkpoint) wrote.
    pub fn load_checkpoint(&mut self, path: &Path) -> anyhow::Result<()> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        self.restore(&bytes, path)
    }

    /// Restores a checkpoint image read from `path` (named in messages). On an error the
    /// trainer may hold part of it: load it again or drop it.
    pub fn restore(&mut self, bytes: &[u8], path: &Path) -> anyhow::Result<()> {
        let unpacked =
            unpack(bytes, CHECKPOINT_BLOBS).with_context(|| format!("{}", path.display()))?;
        if !unpacked.checksummed {
            eprintln!(
                "warning: {}: old checkpoint (DGCKPT01) without a checksum; damage cannot be detected",
                path.display()
            );
        }
        let parts = unpacked.blobs;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> TrainConfig {
        TrainConfig::new(GeneratorConfig::new(), DiscriminatorConfig::new())
    }

    fn state(step: usize, train_seconds: f64) -> TrainState {
        TrainState {
            step,
            epoch: 0,
            rng: Rng::new(1),
            epoch_step: 0,
            epoch_rng: None,
            losses: Vec::new(),
            train_seconds,
        }
    }

    #[test]
    fn learning_rate_decays_linearly_with_steps_or_time() {
        let by_steps = config().with_lr_end(0.25).with_max_steps(1000);
        assert_eq!(by_steps.lr_scale(&state(0, 50.0)), 1.0);
        assert!((by_steps.lr_scale(&state(500, 0.0)) - 0.625).abs() < 1e-12);
        assert!((by_steps.lr_scale(&state(1000, 0.0)) - 0.25).abs() < 1e-12);
        // Past the limit (a resumed run that trains on) it stays at the end value.
        assert!((by_steps.lr_scale(&state(3000, 0.0)) - 0.25).abs() < 1e-12);

        let by_time = config().with_lr_end(0.0).with_max_seconds(200.0);
        assert!((by_time.lr_scale(&state(10, 50.0)) - 0.75).abs() < 1e-12);
        // The default is constant, and a run without limits never decays.
        assert_eq!(config().with_max_steps(10).lr_scale(&state(7, 0.0)), 1.0);
        assert_eq!(config().with_lr_end(0.0).lr_scale(&state(7, 9.0)), 1.0);
    }

    #[test]
    fn decay_can_start_late_and_the_class_loss_can_fade() {
        let tail = config()
            .with_lr_end(0.0)
            .with_lr_decay_start(0.8)
            .with_max_steps(1000);
        assert_eq!(tail.lr_scale(&state(800, 0.0)), 1.0);
        assert!((tail.lr_scale(&state(900, 0.0)) - 0.5).abs() < 1e-12);
        assert!(tail.lr_scale(&state(1000, 0.0)).abs() < 1e-12);

        let fade = config()
            .with_aux_weight(0.04)
            .with_aux_fade(0.5)
            .with_max_steps(1000);
        assert_eq!(fade.aux_weight_at(&state(500, 0.0)), 0.04);
        assert!((fade.aux_weight_at(&state(750, 0.0)) - 0.02).abs() < 1e-12);
        assert_eq!(fade.aux_weight_at(&state(1000, 0.0)), 0.0);
        // It can fade to a part of its weight instead.
        let part = fade.clone().with_aux_end(0.25);
        assert_eq!(part.aux_weight_at(&state(500, 0.0)), 0.04);
        assert!((part.aux_weight_at(&state(750, 0.0)) - 0.025).abs() < 1e-12);
        assert!((part.aux_weight_at(&state(1000, 0.0)) - 0.01).abs() < 1e-12);
        // Without a fade the weight is constant.
        let keep = config().with_aux_weight(0.04).with_max_steps(1000);
        assert_eq!(keep.aux_weight_at(&state(999, 0.0)), 0.04);
    }

    #[test]
    fn shifted_images_keep_their_pixels_and_fill_with_background() {
        let device = Device::flex();
        // One bright pixel in the middle of each of 50 images: after the shift it is still
        // there exactly once, at most CONSISTENCY_SHIFT away, and all else is background.
        let n = 50;
        let mut v = vec![-1f32; n * IMAGE_PIXELS];
        for i in 0..n {
            v[i * IMAGE_PIXELS + 14 * IMAGE_SIDE + 14] = 0.5;
        }
        let x = Tensor::<4>::from_data(TensorData::new(v, [n, 1, IMAGE_SIDE, IMAGE_SIDE]), &device);
        let out = to_vec_f32(shift_images(x, &mut Rng::new(3)));
        let mut moved = 0;
        for img in out.chunks_exact(IMAGE_PIXELS) {
            let lit: Vec<usize> = (0..IMAGE_PIXELS).filter(|&p| img[p] != -1.0).collect();
            assert_eq!(lit.len(), 1);
            assert_eq!(img[lit[0]], 0.5);
            let (r, c) = (lit[0] / IMAGE_SIDE, lit[0] % IMAGE_SIDE);
            assert!(r.abs_diff(14) <= CONSISTENCY_SHIFT && c.abs_diff(14) <= CONSISTENCY_SHIFT);
            moved += usize::from(lit[0] != 14 * IMAGE_SIDE + 14);
        }
        assert!(moved > n / 2, "most images move: {moved} of {n}");
    }

    #[test]
    fn ema_warm_up_ramps_the_decay() {
        let warm = config().with_ema_warmup(true);
        assert!((warm.ema_decay_at(0) - 0.1).abs() < 1e-12);
        assert!((warm.ema_decay_at(90) - 0.91).abs() < 1e-12);
        assert_eq!(warm.ema_decay_at(100_000), 0.999);
        assert_eq!(config().ema_decay_at(0), 0.999);
    }

    #[test]
    fn bad_settings_are_errors_not_panics() {
        assert!(config().check().is_ok());
        let bad = [
            config().with_batch(0),
            config().with_lr_g(0.0),
            config().with_lr_d(f64::NAN),
            config().with_lr_end(-0.5),
            config().with_aux_weight(-0.1),
            config().with_aux_weight(f64::INFINITY),
            config().with_aux_fade(1.5),
            config().with_aux_fade(-0.1),
            config().with_aux_end(1.5),
            config().with_aux_end(f64::NAN),
            config().with_lr_decay_start(1.0),
            config().with_consistency(f64::NAN),
            config().with_ema_decay(1.0),
            config().with_beta1(1.0),
            config().with_beta2(-0.1),
            TrainConfig::new(
                GeneratorConfig::new(),
                DiscriminatorConfig::new().with_c1(0),
            ),
        ];
        for c in bad {
            let e = c.check().expect_err("must be rejected");
            assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn config_files_of_older_versions_take_the_old_behaviour() {
        let mut old = serde_json::to_value(config().with_lr_g(1e-4).with_max_steps(42)).unwrap();
        let obj = old.as_object_mut().unwrap();
        obj.remove("lr_end");
        obj.remove("ema_warmup");
        obj.remove("aux_weight");
        obj.remove("aux_fade");
        obj.remove("aux_end");
        obj.remove("lr_decay_start");
        obj.remove("consistency");
        let read = TrainConfig::from_json(&old.to_string()).unwrap();
        assert_eq!(read.aux_weight, 0.0);
        assert_eq!((read.aux_fade, read.aux_end), (0.0, 0.0));
        assert_eq!((read.lr_decay_start, read.consistency), (0.0, 0.0));
        assert_eq!(read.lr_end, 1.0);
        assert!(!read.ema_warmup);
        assert_eq!(read.lr_g, 1e-4);
        assert_eq!(read.max_steps, 42);
        assert!(TrainConfig::from_json("[1, 2]").is_err());
        assert!(TrainConfig::from_json("{\"batch\": \"x\"}").is_err());
    }
}
