//! Settings that cannot mean what they say are refused (issue 20, item 5): each with one
//! line on stderr naming the option and the exit status that `--help` gives for every
//! refused setting (2), the older checks (a negative `--aux-weight`) included.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_host-trainer");

/// Runs the binary with `args`; its exit code and stderr. A run that was not refused
/// would train for minutes: it is killed after 120 s and the test fails.
fn refused(args: &[&str]) -> (Option<i32>, String) {
    let out = std::env::temp_dir().join(format!("host-trainer-settings-{}", std::process::id()));
    let mut child = Command::new(BIN)
        .args(args)
        .args(["--train-subset", "640"])
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > Duration::from_secs(120) {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("{args:?} was not refused: still running after 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = child.wait_with_output().unwrap();
    let _ = std::fs::remove_dir_all(&out);
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn settings_that_cannot_mean_what_they_say_are_refused() {
    let cases: &[(&[&str], &str)] = &[
        (&["--steps", "0"], "--steps"),
        (&["--epochs", "0"], "--epochs"),
        (&["--minutes", "0"], "--minutes"),
        (&["--minutes=-1"], "--minutes"),
        (&["--minutes", "NaN"], "--minutes"),
        (&["--steps", "2", "--threads", "0"], "--threads"),
        (
            &["--steps", "2", "--eval-per-class", "0"],
            "--eval-per-class",
        ),
        (&["--steps", "2", "--aux-weight=-1"], "aux-weight"),
    ];
    for (args, name) in cases {
        let (code, stderr) = refused(args);
        assert_eq!(code, Some(2), "{args:?}: exit status; stderr:\n{stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: one line; stderr:\n{stderr}");
        assert!(
            lines[0].starts_with("error: ") && lines[0].contains(name),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn help_states_the_exit_status_of_a_refused_setting() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("2 a refused setting"), "{help}");
}
