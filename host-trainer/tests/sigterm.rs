//! SIGTERM behaves like Ctrl-C (issue 20, item 4): a running trainer that gets SIGTERM
//! stops after the current step with the last complete epoch's checkpoint, and `--resume`
//! ends bit-exact with an uninterrupted run; a second SIGTERM exits at once with 130.
#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_host-trainer");

/// 640 images at batch 64: 10 steps per epoch.
const ARGS: &[&str] = &[
    "--steps",
    "40",
    "--train-subset",
    "640",
    "--threads",
    "1",
    "--seed",
    "6",
    "--eval-per-class",
    "2",
];

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("host-trainer-term-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run_dir(out: &Path) -> Option<PathBuf> {
    std::fs::read_dir(out)
        .ok()?
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
}

fn start(out: &Path) -> Child {
    Command::new(BIN)
        .args(ARGS)
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until the first epoch's checkpoint has been written (the step-0 one is then
/// `checkpoint.prev.bin`), so that the trainer is in the middle of training.
fn wait_for_epoch_1(out: &Path) -> PathBuf {
    let t0 = Instant::now();
    loop {
        if let Some(run) = run_dir(out)
            && run.join("checkpoint.prev.bin").exists()
        {
            return run;
        }
        assert!(t0.elapsed() < Duration::from_secs(300), "no epoch finished");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn term(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

fn steps_in(run: &Path) -> u64 {
    let text = std::fs::read_to_string(run.join("metrics.json")).expect("metrics.json");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["steps"].as_u64().unwrap()
}

#[test]
fn sigterm_stops_after_the_step_and_the_run_resumes_bit_exact() {
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
    let run_a = run_dir(&out_a).unwrap();

    let out_b = scratch("b");
    let child = start(&out_b);
    let run_b = wait_for_epoch_1(&out_b);
    term(&child);
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{stderr}");
    assert_ne!(
        o.status.code(),
        None,
        "killed by the signal, not stopped: {stderr}"
    );
    assert_eq!(
        stderr.lines().last(),
        Some("error: interrupted"),
        "{stderr}"
    );
    assert!(!run_b.join("metrics.json").exists());

    let status = Command::new(BIN)
        .arg("--resume")
        .arg(&run_b)
        .args(["--threads", "1", "--eval-per-class", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!((steps_in(&run_a), steps_in(&run_b)), (40, 40));
    let a = std::fs::read(run_a.join("model.dgen")).unwrap();
    let b = std::fs::read(run_b.join("model.dgen")).unwrap();
    assert!(a == b, "model.dgen of the resumed run differs");
    let _ = std::fs::remove_dir_all(&out_a);
    let _ = std::fs::remove_dir_all(&out_b);
}

/// The trainer is held at step 5 (nothing saved, no further steps, so the first SIGTERM
/// cannot end the run on its own): the second SIGTERM must end it, with status 130.
#[test]
fn a_second_sigterm_exits_at_once() {
    let out = scratch("twice");
    let mut child = Command::new(BIN)
        .args(ARGS)
        .arg("--out")
        .arg(&out)
        .env(host_trainer::train::PAUSE_ENV, "5")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let paused = stderr
        .lines()
        .any(|l| l.unwrap().starts_with("paused at step 5"));
    assert!(paused, "the run reached step 5");
    term(&child);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "one SIGTERM ended a held run"
    );
    term(&child);
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t0.elapsed() > Duration::from_secs(30) {
            child.kill().unwrap();
            panic!("the second SIGTERM did not end the run");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(130));
    let _ = std::fs::remove_dir_all(&out);
}
