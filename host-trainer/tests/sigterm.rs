//! SIGTERM behaves like Ctrl-C (issue 20, item 4): a running trainer that gets SIGTERM
//! stops after the current step, writes its checkpoint at that step, and `--resume` ends
//! bit-exact with an uninterrupted run; a second SIGTERM exits at once with 130.
//!
//! Where the signal lands is up to the scheduler, so a second test stops a run at a known
//! step in the middle of an epoch (the stop flag set after step 15, as the signal handler
//! sets it) to hold the mid-epoch resume to the same standard every time.
#![cfg(unix)]

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    checkpoint_state, find_run_dir, resume, same_model, scratch, spawn_held, steps_in, train,
    trainer,
};
use host_trainer::train::STOP_ENV;

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

/// Waits until the first epoch's checkpoint has been written (the step-0 one is then
/// `checkpoint.prev.bin`), so that the trainer is in the middle of training.
fn wait_for_epoch_1(out: &Path) -> std::path::PathBuf {
    let t0 = Instant::now();
    loop {
        if let Some(run) = find_run_dir(out)
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

/// The step named by the trainer's "interrupted at step N" line.
fn interrupted_at(stderr: &str) -> usize {
    let line = stderr
        .lines()
        .find_map(|l| l.split("interrupted at step ").nth(1))
        .unwrap_or_else(|| panic!("no 'interrupted at step' line: {stderr}"));
    line.split(',').next().unwrap().parse().unwrap()
}

/// Checks a stopped run (stderr `stderr`, folder `run`) and resumes it to the end: its
/// checkpoint holds the step it stopped at, and the resumed run ends with the same
/// `model.dgen` as the uninterrupted `done`. Returns the step.
fn resume_stopped(stderr: &str, run: &Path, done: &Path) -> usize {
    assert_eq!(
        stderr.lines().last(),
        Some("error: interrupted"),
        "{stderr}"
    );
    assert!(!run.join("metrics.json").exists());
    let step = interrupted_at(stderr);
    let saved = checkpoint_state(&run.join("checkpoint.bin"));
    assert_eq!(
        saved.step, step,
        "the checkpoint is at the step the run stopped"
    );
    assert_eq!(saved.epoch_step, step % 10);

    let o = resume(run);
    let said = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{said}");
    assert!(said.contains(&format!("at step {step} ")), "{said}");
    assert_eq!((steps_in(done), steps_in(run)), (40, 40));
    assert!(
        same_model(done, run),
        "model.dgen of the resumed run differs"
    );
    step
}

#[test]
fn sigterm_stops_after_the_step_and_the_run_resumes_bit_exact() {
    let out_a = scratch("term", "a");
    assert!(train(ARGS, &out_a).success());
    let run_a = common::run_dir(&out_a);

    let out_b = scratch("term", "b");
    let child = trainer(ARGS, &out_b)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
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
    let step = resume_stopped(&stderr, &run_b, &run_a);
    eprintln!("SIGTERM stopped the run after step {step}");

    // Stopped after step 15, in the middle of the second epoch.
    let out_c = scratch("term", "c");
    let o = trainer(ARGS, &out_c)
        .env(STOP_ENV, "15")
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let run_c = common::run_dir(&out_c);
    assert_eq!(
        resume_stopped(&String::from_utf8_lossy(&o.stderr), &run_c, &run_a),
        15
    );
    for out in [out_a, out_b, out_c] {
        let _ = std::fs::remove_dir_all(out);
    }
}

/// The trainer is held at step 5 (nothing saved, no further steps, so the first SIGTERM
/// cannot end the run on its own): the second SIGTERM must end it, with status 130.
#[test]
fn a_second_sigterm_exits_at_once() {
    let out = scratch("term", "twice");
    let mut child = spawn_held(ARGS, &out, 5);
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
