//! A run killed with SIGKILL mid-epoch and resumed: `--resume` keeps the run's saved
//! stopping rule (25 steps, not the 15-minute default), and the resumed run draws what an
//! uninterrupted run with the same seed and steps draws, within a stated bound (the
//! weights are not bit-identical; the cause is not yet found).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_host-trainer");

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

fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("host-trainer-resume-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The single run folder under `out`.
fn run_dir(out: &Path) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(dirs.len(), 1, "one run folder in {}", out.display());
    dirs.pop().unwrap()
}

fn steps_in(run: &Path) -> u64 {
    let text = std::fs::read_to_string(run.join("metrics.json")).expect("metrics.json");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["steps"].as_u64().expect("steps in metrics.json")
}

#[test]
fn killed_mid_epoch_then_resumed_equals_uninterrupted() {
    // Uninterrupted.
    let out_a = scratch("a");
    let status = Command::new(BIN)
        .args(ARGS)
        .arg("--out")
        .arg(&out_a)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let run_a = run_dir(&out_a);

    // Stopped after step 15 (epoch 2 of 3 half done; the last checkpoint is step 10) and
    // killed with SIGKILL.
    let out_b = scratch("b");
    let mut child = Command::new(BIN)
        .args(ARGS)
        .arg("--out")
        .arg(&out_b)
        .env(host_trainer::train::PAUSE_ENV, "15")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut paused = false;
    for line in stderr.lines() {
        if line.unwrap().starts_with("paused at step 15") {
            paused = true;
            break;
        }
    }
    assert!(paused, "the run reached step 15");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let run_b = run_dir(&out_b);
    assert!(
        !run_b.join("metrics.json").exists(),
        "the killed run did not finish"
    );

    // Resumed with no limit on the command line: it must stop at the saved 25 steps.
    let status = Command::new(BIN)
        .args(["--resume"])
        .arg(&run_b)
        .args(["--threads", "1", "--eval-per-class", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(steps_in(&run_a), 25);
    assert_eq!(steps_in(&run_b), 25, "resume kept the saved step limit");

    // The resumed weights are not bit-identical to the uninterrupted run's (see the README,
    // "Robustness"); the test bounds the difference in what the product draws: 100 digits
    // from each run's int8 model, mean absolute pixel difference.
    let a = std::fs::read(run_a.join("model.dgen")).unwrap();
    let b = std::fs::read(run_b.join("model.dgen")).unwrap();
    let diff = mean_abs_pixel_diff(&a, &b);
    eprintln!("resumed vs uninterrupted: mean |pixel diff| {diff:.3}/255");
    assert!(diff <= MAX_MEAN_ABS_DIFF, "{diff}/255");
    let _ = std::fs::remove_dir_all(&out_a);
    let _ = std::fs::remove_dir_all(&out_b);
}

/// Bound on the mean absolute pixel difference (of 255) between the resumed and the
/// uninterrupted run's digits; measured 0.024 when this test was written (seed 5).
const MAX_MEAN_ABS_DIFF: f64 = 0.5;

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
