//! A few real training steps on a small MNIST subset with each backend: the losses stay
//! finite, the run folder gets its checkpoint, grid and curves, and a resumed trainer
//! continues exactly where the checkpoint left off. A generator of non-default width
//! trains, exports and runs in generator-core.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use generator_core::{Arch, LayerShape, Model};
use generator_quant::Calibration;
use host_trainer::backend::BackendKind;
use host_trainer::checkpoint::RunDir;
use host_trainer::data::{Mnist, Split, default_dir};
use host_trainer::infer::{generate_float, generate_int8, mean_abs_diff};
use host_trainer::model::{DiscriminatorConfig, GeneratorConfig};
use host_trainer::quantize::export;
use host_trainer::train::{DEFAULT_AUX_WEIGHT, TrainConfig, Trainer, train};

fn run_dir(name: &str) -> RunDir {
    let d = std::env::temp_dir().join(format!("train-steps-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    RunDir(d)
}

fn config(steps: usize) -> TrainConfig {
    TrainConfig::new(GeneratorConfig::new(), DiscriminatorConfig::new())
        .with_batch(16)
        .with_train_subset(64) // 4 steps per epoch
        .with_max_steps(steps)
        .with_seed(5)
        .with_aux_weight(DEFAULT_AUX_WEIGHT)
}

fn steps_then_resume(backend: BackendKind) {
    let data = Mnist::load(&default_dir(), Split::Test).unwrap();
    let run = run_dir(&format!("{backend:?}"));
    let stop = Arc::new(AtomicBool::new(false));

    let t = train(
        Trainer::new(config(6), backend).unwrap(),
        &data,
        &run,
        stop.clone(),
        true,
    )
    .unwrap();
    assert_eq!(t.state.step, 6);
    assert_eq!(t.state.epoch, 1);
    assert!(!t.state.losses.is_empty());
    for r in &t.state.losses {
        assert!(r.d_loss.is_finite() && r.g_loss.is_finite(), "{r:?}");
    }
    for f in [
        "checkpoint.bin",
        "generator-ema.bin",
        "losses.csv",
        "losses.png",
        "samples-epoch-001.png",
        "samples-final.png",
    ] {
        assert!(run.0.join(f).is_file(), "{f} missing");
    }

    // Resume from the checkpoint (written after step 6) and train two more steps.
    let mut resumed = Trainer::new(config(8), backend).unwrap();
    resumed.load_checkpoint(&run.checkpoint()).unwrap();
    assert_eq!(resumed.state.step, 6);
    assert_eq!(resumed.state.losses.len(), t.state.losses.len());
    let resumed = train(resumed, &data, &run, stop, true).unwrap();
    assert_eq!(resumed.state.step, 8);
    assert!(resumed.state.train_seconds >= t.state.train_seconds);
}

#[test]
fn flex_trains_checkpoints_and_resumes() {
    steps_then_resume(BackendKind::Flex);
}

#[test]
fn ndarray_trains_checkpoints_and_resumes() {
    steps_then_resume(BackendKind::Ndarray);
}

#[test]
fn same_seed_same_model() {
    let data = Mnist::load(&default_dir(), Split::Test).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let weights = |name: &str| {
        let run = run_dir(name);
        let t = train(
            Trainer::new(config(3), BackendKind::Flex).unwrap(),
            &data,
            &run,
            stop.clone(),
            true,
        )
        .unwrap();
        host_trainer::quantize::to_float(&t.ema)
            .layers
            .into_iter()
            .flat_map(|l| l.weights)
            .collect::<Vec<f32>>()
    };
    assert_eq!(weights("det-a"), weights("det-b"));
}

#[test]
fn non_default_width_trains_exports_and_generates_through_the_core() {
    let arch = Arch {
        c1: 12,
        ..Arch::DEFAULT
    };
    let data = Mnist::load(&default_dir(), Split::Test).unwrap();
    let run = run_dir("c1-12");
    let mut cfg = config(3);
    cfg.generator = GeneratorConfig::from_arch(arch);
    let t = train(
        Trainer::new(cfg, BackendKind::Flex).unwrap(),
        &data,
        &run,
        Arc::new(AtomicBool::new(false)),
        true,
    )
    .unwrap();
    assert_eq!(t.ema.arch(), arch);

    let bytes = export(
        &t.ema,
        &Calibration::DEFAULT.with_count(200),
        &run.0.join("model.dgen"),
    )
    .unwrap();
    let model = Model::from_bytes(&bytes).unwrap();
    let shapes: Vec<LayerShape> = model.layers().iter().map(|l| l.shape()).collect();
    assert_eq!(shapes, arch.layer_shapes());
    assert_ne!(shapes, Arch::DEFAULT.layer_shapes());
    assert_eq!(model.arena_bytes(), arch.arena_bytes());
    assert_eq!(model.macs_per_digit(), arch.macs() as u64);

    let labels: Vec<u8> = (0..20).map(|i| i % 10).collect();
    let seeds: Vec<u32> = (0..20).collect();
    let int8 = generate_int8(&bytes, &labels, &seeds).unwrap();
    let float = generate_float(&t.ema, &labels, &seeds);
    let mae = mean_abs_diff(&float, &int8);
    eprintln!("c1 = 12: int8 vs float mean |diff| {mae:.2}/255");
    assert!(mae <= 6.0, "mean abs pixel difference {mae}/255");
}
