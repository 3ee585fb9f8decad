//! `eval --images`: digits from a folder are scored exactly as the generator that made
//! them, and a folder that is not there, or both sources, or neither, are clear errors.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{BIN, scratch};

fn shipped_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../generator-core/models/default.dgen")
}

fn host_trainer(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .args(["--threads", "1"])
        .output()
        .unwrap()
}

fn generated(json: &Path) -> serde_json::Value {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    v["generated"].clone()
}

#[test]
fn a_folder_of_digits_scores_as_the_model_that_wrote_it() {
    let dir = scratch("eval-images", "same");
    let model = shipped_model();
    let model = model.to_str().unwrap();
    let digits = dir.join("digits");
    let (a, b) = (dir.join("model.json"), dir.join("images.json"));
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let o = host_trainer(&[
        "sample",
        "--model",
        model,
        "--per-class",
        "30",
        "--out",
        &s(&digits),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = host_trainer(&[
        "eval",
        "--model",
        model,
        "--per-class",
        "30",
        "--json",
        &s(&a),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = host_trainer(&["eval", "--images", &s(&digits), "--json", &s(&b)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (a, b) = (generated(&a), generated(&b));
    assert_eq!(a["images"], 300);
    for key in [
        "images",
        "accuracy_per_class",
        "fid",
        "diversity_per_class",
        "two_sample",
    ] {
        assert_eq!(a[key], b[key], "{key}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn missing_folders_and_ambiguous_sources_are_errors() {
    let dir = scratch("eval-images", "errors");
    let missing = dir.join("nothing-here");
    let o = host_trainer(&["eval", "--images", missing.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("nothing-here"), "names the folder: {err}");
    assert!(!err.contains("panicked"), "{err}");

    let model = shipped_model();
    let both = host_trainer(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--images",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(both.status.code(), Some(2), "both sources are refused");
    let neither = host_trainer(&["eval"]);
    assert_eq!(neither.status.code(), Some(2), "one source is required");
    let _ = std::fs::remove_dir_all(&dir);
}
