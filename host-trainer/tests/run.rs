//! The `run` job through the library entry point, as the binary calls it: a two-step run
//! into a temporary folder writes every file of a run folder, with the settings and figures
//! it was given and reached, and a resume of that folder with a new step limit trains on to
//! it in the same folder.

use std::path::{Path, PathBuf};

use clap::Parser;
use host_trainer::backend::BackendKind;
use host_trainer::checkpoint::RunDir;
use host_trainer::data::default_dir;
use host_trainer::run::{Finished, RunArgs, run};
use host_trainer::train::{TrainConfig, Trainer};

/// The `run` settings as the command line gives them (so every default is the binary's).
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    run: RunArgs,
}

fn args(words: &[&str]) -> RunArgs {
    Cli::try_parse_from(std::iter::once("host-trainer").chain(words.iter().copied()))
        .expect("valid arguments")
        .run
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("host-trainer-run-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The folders under `out`.
fn folders(out: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect()
}

fn metrics(run: &RunDir) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run.metrics()).unwrap()).unwrap()
}

/// Checks the files of a run folder after a finished run of `steps` steps.
fn check_folder(done: &Finished, steps: usize) {
    let run = &done.dir;
    for f in [
        "config.json",
        "checkpoint.bin",
        "generator-ema.bin",
        "losses.csv",
        "samples-final.png",
        "samples-int8.png",
        "model.dgen",
        "metrics.json",
    ] {
        assert!(run.0.join(f).is_file(), "{f} missing");
    }
    let config = TrainConfig::from_json(&std::fs::read_to_string(run.config()).unwrap()).unwrap();
    assert_eq!(
        (config.batch, config.train_subset, config.seed),
        (16, 64, 4)
    );
    let mut t = Trainer::new(config, BackendKind::Flex).unwrap();
    t.load_checkpoint(&run.checkpoint()).unwrap();
    assert_eq!(t.state.step, steps, "checkpoint step");

    let model = std::fs::read(run.model()).unwrap();
    generator_core::Model::from_bytes(&model).expect("model.dgen loads in generator-core");
    assert_eq!(done.summary.steps, steps);
    assert_eq!(done.summary.model_bytes, model.len());
    assert_eq!(done.summary.int8.images, 20, "2 digits per class");
    assert!(
        done.summary.int8.two_sample.is_some(),
        "int8 two-sample test"
    );
    let m = metrics(run);
    assert_eq!(m["steps"].as_u64(), Some(steps as u64));
    assert_eq!(m["model_bytes"].as_u64(), Some(model.len() as u64));
    assert_eq!(m["backend"].as_str(), Some("Flex"));

    let csv = std::fs::read_to_string(run.0.join("losses.csv")).unwrap();
    let last = csv.lines().last().unwrap();
    assert!(
        last.starts_with(&format!("{steps},")),
        "last losses.csv row is step {steps}: {last}"
    );
}

#[test]
fn two_step_run_writes_its_folder_and_resumes_to_a_new_limit() {
    let out = scratch();
    let out_arg = out.to_str().unwrap();
    // 64 images at batch 16: 4 steps per epoch, so two steps end inside the first epoch.
    let common = ["--batch", "16", "--train-subset", "64", "--seed", "4"];
    let mut words = vec!["--steps", "2", "--eval-per-class", "2", "--out", out_arg];
    words.extend(common);
    let done = run(&args(&words), BackendKind::Flex, &default_dir()).unwrap();
    assert_eq!(folders(&out), vec![done.dir.0.clone()], "one run folder");
    assert_eq!(done.summary.epochs, 0);
    check_folder(&done, 2);

    // Resumed with a new step limit: the saved settings (batch, subset, seed) are kept.
    let dir = done.dir.0.to_str().unwrap();
    let resumed = run(
        &args(&["--resume", dir, "--steps", "3", "--eval-per-class", "2"]),
        BackendKind::Flex,
        &default_dir(),
    )
    .unwrap();
    assert_eq!(resumed.dir.0, done.dir.0);
    assert_eq!(folders(&out).len(), 1, "no new run folder");
    check_folder(&resumed, 3);
    // One losses.csv row per run here; the plot is drawn from two rows on.
    assert!(
        resumed.dir.0.join("losses.png").is_file(),
        "losses.png missing"
    );
    let _ = std::fs::remove_dir_all(&out);
}
