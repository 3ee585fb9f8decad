//! Failures leave nothing behind (issue 20, item 3), tested as `firmware-sim`'s PNG test
//! does: the trainer runs under `ulimit -f` with SIGXFSZ ignored, so a write past the limit
//! fails part way with EFBIG, as on a full disk.
//!
//! - A new run whose folder cannot hold a checkpoint stops at once (it writes its step-0
//!   checkpoint first) with a one-line error, a non-zero exit and no temporary file.
//! - A resumed run that cannot write its next checkpoint stops with a one-line error and
//!   keeps the last good checkpoint, byte for byte, and no temporary file.
#![cfg(unix)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{BIN, scratch};

/// 640 images at batch 64: 10 steps per epoch.
const ARGS: &[&str] = &[
    "--train-subset",
    "640",
    "--threads",
    "1",
    "--seed",
    "4",
    "--eval-per-class",
    "2",
];

/// The trainer with files limited to `kib` KiB (`ulimit -f` counts 512-byte blocks).
fn limited(kib: u64, args: &[&str], out: &Path) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -f {} && trap '' XFSZ && exec \"$0\" \"$@\"",
            kib * 2
        ))
        .arg(BIN)
        .args(args)
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .output()
        .unwrap()
}

/// Every file under `dir` (recursively).
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn assert_no_temp(dir: &Path) {
    let temps: Vec<_> = files(dir)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(temps.is_empty(), "temporary files left: {temps:?}");
}

fn one_error_line(o: &Output) -> String {
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert_eq!(stderr.lines().last(), Some(errors[0]), "{stderr}");
    errors[0].to_string()
}

#[test]
fn a_run_that_cannot_hold_a_checkpoint_stops_at_once() {
    let out = scratch("full", "new");
    // A checkpoint is about 230 KB.
    let o = limited(100, &[&["--steps", "5"], ARGS].concat(), &out);
    assert!(!o.status.success());
    let err = one_error_line(&o);
    assert!(err.contains("cannot hold a checkpoint"), "{err}");
    assert!(err.contains("checkpoint.bin"), "{err}");
    assert_no_temp(&out);
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn a_full_disk_keeps_the_last_good_checkpoint() {
    let out = scratch("full", "resume");
    // 12 steps: the checkpoint of step 12 (epoch 1 and 2 steps).
    let o = limited(100_000, &[&["--steps", "12"], ARGS].concat(), &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let run = files(&out)
        .into_iter()
        .find(|p| p.ends_with("checkpoint.bin"))
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let good = std::fs::read(run.join("checkpoint.bin")).unwrap();
    let ema = std::fs::read(run.join("generator-ema.bin")).unwrap();

    // Resumed with files limited to less than a checkpoint: the first checkpoint write
    // fails part way (the one a resumed run starts with), and the old one must survive.
    let kib = (good.len() as u64 / 1024) - 1;
    let run_s = run.to_str().unwrap();
    let o = limited(
        kib,
        &["--resume", run_s, "--steps", "25", "--threads", "1"],
        &out,
    );
    assert!(!o.status.success());
    let err = one_error_line(&o);
    assert!(err.contains("checkpoint.bin"), "{err}");
    assert_no_temp(&out);
    assert!(
        std::fs::read(run.join("checkpoint.bin")).unwrap() == good,
        "the last good checkpoint changed"
    );
    assert!(std::fs::read(run.join("generator-ema.bin")).unwrap() == ema);
    let _ = std::fs::remove_dir_all(&out);
}
