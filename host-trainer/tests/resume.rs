//! Resuming is bit-exact.
//!
//! `killed_mid_epoch_then_resumed_equals_uninterrupted`: a run killed with SIGKILL mid-epoch
//! and resumed keeps the run's saved stopping rule (25 steps, not the 15-minute default) and
//! ends with exactly the weights of an uninterrupted run with the same seed and steps: the
//! same `model.dgen` bytes, the same `generator-ema.bin` tensors, and in the final
//! checkpoint the same G, D and EMA tensors and progress, compared as f32 bit patterns.
//! (Burn stamps every tensor of a weight file with a random `ParamId`, so two runs' weight
//! files differ in those ids even when every weight is equal; the tensors are compared, not
//! the files.)
//!
//! `checkpoint_round_trip_continues_bit_exactly`: the same property in-process and step by
//! step, so that a failure names the step and the tensors. It failed before the trainer
//! recorded G through `Module::valid` (batch-norm running statistics were checkpointed one
//! step old; `Trainer::save_checkpoint`).

mod common;

use std::path::Path;

use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;
use common::{resume, run_dir, same_model, scratch, spawn_held, steps_in, train};
use host_trainer::backend::BackendKind;
use host_trainer::checkpoint::load_generator;
use host_trainer::data::{Mnist, Split, default_dir};
use host_trainer::model::{DiscriminatorConfig, GeneratorConfig};
use host_trainer::rng::Rng;
use host_trainer::tensor::{image_batch, to_vec_f32};
use host_trainer::train::{TrainConfig, Trainer};

/// 640 images at batch 64: 10 steps per epoch; 25 steps end mid-epoch 3.
const ARGS: &[&str] = &[
    "--steps",
    "25",
    "--train-subset",
    "640",
    "--threads",
    "1",
    "--seed",
    "5",
    "--eval-per-class",
    "2",
];

/// Every float tensor of a module (parameters and batch-norm running statistics): module
/// path, shape and f32 bit patterns.
#[derive(Default)]
struct Tensors {
    path: Vec<String>,
    out: Vec<(String, Vec<usize>, Vec<u32>)>,
}

impl ModuleVisitor for Tensors {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let t = param.val();
        let shape = t.dims().to_vec();
        let bits = to_vec_f32(t).iter().map(|v| v.to_bits()).collect();
        self.out.push((self.path.join("."), shape, bits));
    }
}

/// The tensors of `m` as they are now: through `valid`, which applies a batch norm's
/// pending running-statistics update (a visit of a training module sees the value from one
/// step before).
fn tensors<M: Module>(m: &M) -> Vec<(String, Vec<usize>, Vec<u32>)> {
    let mut v = Tensors::default();
    m.valid().visit(&mut v);
    v.out
}

/// Asserts that two modules hold bit-identical tensors; the message names every tensor
/// that differs, with how many of its values differ and by how much at most.
fn assert_same<M: Module>(what: &str, a: &M, b: &M) {
    let (ta, tb) = (tensors(a), tensors(b));
    assert_eq!(ta.len(), tb.len(), "{what}: number of tensors");
    let mut diffs = Vec::new();
    for ((name, shape, x), (name_b, shape_b, y)) in ta.iter().zip(&tb) {
        assert_eq!((name, shape), (name_b, shape_b), "{what}: tensor layout");
        let n = x.iter().zip(y).filter(|(p, q)| p != q).count();
        if n > 0 {
            let max = x
                .iter()
                .zip(y)
                .map(|(&p, &q)| (f32::from_bits(p) - f32::from_bits(q)).abs())
                .fold(0f32, f32::max);
            diffs.push(format!(
                "{name}: {n} of {} values, max |d| {max:e}",
                x.len()
            ));
        }
    }
    assert!(diffs.is_empty(), "{what} differ:\n  {}", diffs.join("\n  "));
}

/// A trainer holding a run folder's final checkpoint.
fn final_checkpoint(run: &Path) -> Trainer {
    let config: TrainConfig =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    let mut t = Trainer::new(config, BackendKind::Flex).unwrap();
    t.load_checkpoint(&run.join("checkpoint.bin")).unwrap();
    t
}

#[test]
fn killed_mid_epoch_then_resumed_equals_uninterrupted() {
    // Uninterrupted.
    let out_a = scratch("resume", "a");
    assert!(train(ARGS, &out_a).success());
    let run_a = run_dir(&out_a);

    // Held after step 15 (epoch 2 of 3 half done; the last checkpoint is step 10) and
    // killed with SIGKILL.
    let out_b = scratch("resume", "b");
    let mut child = spawn_held(ARGS, &out_b, 15);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let run_b = run_dir(&out_b);
    assert!(
        !run_b.join("metrics.json").exists(),
        "the killed run did not finish"
    );

    // Resumed with no limit on the command line: it must stop at the saved 25 steps.
    assert!(resume(&run_b).status.success());
    assert_eq!(steps_in(&run_a), 25);
    assert_eq!(steps_in(&run_b), 25, "resume kept the saved step limit");

    // The final float generator (EMA), as written to generator-ema.bin.
    let config: TrainConfig =
        serde_json::from_str(&std::fs::read_to_string(run_a.join("config.json")).unwrap()).unwrap();
    let device = BackendKind::Flex.device().unwrap();
    let load = |run: &Path| {
        load_generator(&config.generator, &run.join("generator-ema.bin"), &device).unwrap()
    };
    assert_same(
        "generator-ema.bin tensors (resumed vs uninterrupted)",
        &load(&run_a),
        &load(&run_b),
    );

    // The raw G, D, EMA and progress of the final checkpoint (step 25).
    let (ta, tb) = (final_checkpoint(&run_a), final_checkpoint(&run_b));
    assert_eq!((ta.state.step, ta.state.epoch), (25, 2));
    assert_eq!((tb.state.step, tb.state.epoch), (25, 2));
    assert_eq!(
        serde_json::to_string(&ta.state.rng).unwrap(),
        serde_json::to_string(&tb.state.rng).unwrap(),
        "rng state"
    );
    assert_same("checkpoint G", &ta.g, &tb.g);
    assert_same("checkpoint D", &ta.d, &tb.d);
    assert_same("checkpoint EMA", &ta.ema, &tb.ema);

    // The product: the int8 model file, byte for byte.
    assert_same_model(&run_a, &run_b);
    let _ = std::fs::remove_dir_all(&out_a);
    let _ = std::fs::remove_dir_all(&out_b);
}

/// Asserts that two runs wrote the same `model.dgen`; the message says how far apart their
/// digits are.
fn assert_same_model(run_a: &Path, run_b: &Path) {
    if !same_model(run_a, run_b) {
        let read = |run: &Path| std::fs::read(run.join("model.dgen")).unwrap();
        panic!(
            "model.dgen differs; mean |pixel diff| over 100 digits {:.3}/255",
            mean_abs_pixel_diff(&read(run_a), &read(run_b))
        );
    }
}

/// Mean absolute difference (of 255) between 100 digits drawn by two int8 models; only
/// computed to describe a failure.
fn mean_abs_pixel_diff(a: &[u8], b: &[u8]) -> f64 {
    let draw = |bytes: &[u8]| {
        let model = generator_core::Model::from_bytes(bytes).expect("model loads");
        let mut arena = vec![0u8; model.arena_bytes()];
        let mut g = generator_core::Generator::new(&model, &mut arena).unwrap();
        let mut out = Vec::new();
        for i in 0..100u32 {
            let mut img = [0u8; 784];
            g.generate((i % 10) as u8, i, &mut img).unwrap();
            out.extend_from_slice(&img);
        }
        out
    };
    let (x, y) = (draw(a), draw(b));
    x.iter()
        .zip(&y)
        .map(|(&p, &q)| (p as f64 - q as f64).abs())
        .sum::<f64>()
        / x.len() as f64
}

/// One training step on batch `i` of a fixed sequence of MNIST test images.
fn step(t: &mut Trainer, data: &Mnist, pixels: &[f32], i: u64) {
    let mut rng = Rng::new(100 + i);
    let idx: Vec<usize> = (0..t.config.batch).map(|_| rng.below(data.len())).collect();
    let labels: Vec<u8> = idx.iter().map(|&j| data.labels[j]).collect();
    let real = image_batch(pixels, &idx, &t.device);
    t.step(real, &labels);
}

#[test]
fn checkpoint_round_trip_continues_bit_exactly() {
    let data = Mnist::load(&default_dir(), Split::Test).unwrap();
    let pixels = data.signed_pixels();
    let config = || {
        TrainConfig::new(GeneratorConfig::new(), DiscriminatorConfig::new())
            .with_batch(32)
            .with_seed(5)
    };
    let path = scratch("resume", "round-trip").join("checkpoint.bin");

    let mut a = Trainer::new(config(), BackendKind::Flex).unwrap();
    for i in 0..6 {
        step(&mut a, &data, &pixels, i);
    }
    a.save_checkpoint(&path).unwrap();

    let mut b = Trainer::new(config(), BackendKind::Flex).unwrap();
    b.load_checkpoint(&path).unwrap();
    assert_eq!(b.state.step, 6);
    assert_same("G after loading", &a.g, &b.g);
    assert_same("D after loading", &a.d, &b.d);
    assert_same("EMA after loading", &a.ema, &b.ema);
    // Optimiser state is checked through its effect: every following step must match.
    for i in 6..10 {
        step(&mut a, &data, &pixels, i);
        step(&mut b, &data, &pixels, i);
        assert_same(&format!("G after step {}", i + 1), &a.g, &b.g);
        assert_same(&format!("D after step {}", i + 1), &a.d, &b.d);
        assert_same(&format!("EMA after step {}", i + 1), &a.ema, &b.ema);
    }
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

/// Issue 20, item 2: a run killed at step 25 (before its final checkpoint; the latest is
/// step 20, the previous one step 10) whose latest checkpoint is then damaged resumes from
/// `checkpoint.prev.bin`, says so in one line, and ends bit-exact with an uninterrupted run.
#[test]
fn damaged_latest_checkpoint_falls_back_to_the_previous_one() {
    let out_a = scratch("resume", "prev-a");
    assert!(train(ARGS, &out_a).success());
    let run_a = run_dir(&out_a);
    // The finished run keeps the checkpoint before its last (step 20 before 25).
    let config: TrainConfig =
        serde_json::from_str(&std::fs::read_to_string(run_a.join("config.json")).unwrap()).unwrap();
    let mut prev = Trainer::new(config, BackendKind::Flex).unwrap();
    prev.load_checkpoint(&run_a.join("checkpoint.prev.bin"))
        .unwrap();
    assert_eq!(prev.state.step, 20);

    let out_b = scratch("resume", "prev-b");
    let mut child = spawn_held(ARGS, &out_b, 25);
    child.kill().unwrap();
    child.wait().unwrap();
    let run_b = run_dir(&out_b);
    let latest = run_b.join("checkpoint.bin");
    let mut bytes = std::fs::read(&latest).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&latest, &bytes).unwrap();

    let o = resume(&run_b);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    let said: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("resuming from the previous checkpoint"))
        .collect();
    assert_eq!(said.len(), 1, "{stderr}");
    assert!(said[0].contains("checkpoint.bin") && said[0].contains("checksum mismatch"));
    assert!(stderr.contains("at step 10 (epoch 1)"), "{stderr}");
    assert_eq!(steps_in(&run_b), 25);
    assert_same_model(&run_a, &run_b);
    let (ta, tb) = (final_checkpoint(&run_a), final_checkpoint(&run_b));
    assert_same("checkpoint G", &ta.g, &tb.g);
    assert_same("checkpoint D", &ta.d, &tb.d);
    assert_same("checkpoint EMA", &ta.ema, &tb.ema);
    let _ = std::fs::remove_dir_all(&out_a);
    let _ = std::fs::remove_dir_all(&out_b);
}
