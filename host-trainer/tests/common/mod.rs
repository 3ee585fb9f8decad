//! What the trainer's process tests share: scratch folders, the run folder and the figures
//! a finished run wrote, and starting the trainer, resuming it, or holding it at a step.
#![allow(dead_code)] // each test file uses a part of it

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};

use host_trainer::checkpoint::unpack;
use host_trainer::train::{PAUSE_ENV, TrainState};

/// The trainer binary.
pub const BIN: &str = env!("CARGO_BIN_EXE_host-trainer");

/// An empty folder for one test: `<temp>/host-trainer-<suite>-<pid>-<name>`.
pub fn scratch(suite: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "host-trainer-{suite}-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The run folder under `out`, once the trainer has made it.
pub fn find_run_dir(out: &Path) -> Option<PathBuf> {
    std::fs::read_dir(out)
        .ok()?
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
}

/// The single run folder under `out`.
pub fn run_dir(out: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(dirs.len(), 1, "one run folder in {}", out.display());
    dirs[0].clone()
}

/// The steps a finished run reports in `metrics.json`.
pub fn steps_in(run: &Path) -> u64 {
    let text = std::fs::read_to_string(run.join("metrics.json")).expect("metrics.json");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["steps"].as_u64().expect("steps in metrics.json")
}

/// The progress saved in a checkpoint file.
pub fn checkpoint_state(path: &Path) -> TrainState {
    let bytes = std::fs::read(path).unwrap();
    let blobs = unpack(&bytes, 6).expect("a valid checkpoint").blobs;
    serde_json::from_slice(blobs[0]).expect("progress JSON")
}

/// The trainer command with `args` and `--out out`, output discarded.
pub fn trainer(args: &[&str], out: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

/// Runs the trainer to its end.
pub fn train(args: &[&str], out: &Path) -> ExitStatus {
    trainer(args, out).status().unwrap()
}

/// `--resume run` on one thread with a small evaluation (as the tests' runs use), stdout
/// discarded, stderr kept.
pub fn resume(run: &Path) -> Output {
    Command::new(BIN)
        .arg("--resume")
        .arg(run)
        .args(["--threads", "1", "--eval-per-class", "2"])
        .stdout(Stdio::null())
        .output()
        .unwrap()
}

/// Starts the trainer held after `step` (nothing saved there, no further steps: see
/// [`PAUSE_ENV`]) and returns once it says so, for a test to signal or kill it at a known
/// point.
pub fn spawn_held(args: &[&str], out: &Path, step: usize) -> Child {
    let mut child = trainer(args, out)
        .env(PAUSE_ENV, step.to_string())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let said = format!("paused at step {step}");
    let held = stderr.lines().any(|l| l.unwrap().starts_with(&said));
    assert!(held, "the run reached step {step}");
    child
}

/// Whether two runs wrote the same int8 model, byte for byte.
pub fn same_model(run_a: &Path, run_b: &Path) -> bool {
    std::fs::read(run_a.join("model.dgen")).unwrap()
        == std::fs::read(run_b.join("model.dgen")).unwrap()
}
