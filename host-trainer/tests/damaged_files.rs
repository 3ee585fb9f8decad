//! Training files cannot be silently wrong (issue 20, item 1): a checkpoint with any byte
//! changed is refused on load with one line naming the file, and `--resume` of a run folder
//! whose checkpoint is damaged exits non-zero with that line; a checkpoint written before
//! the checksum (`DGCKPT01`, no CRC-32) still loads, with a warning, to the same weights.
//! (Every byte position of a small container image, changed in every way, is refused in
//! `checkpoint`'s unit tests; here a real trainer checkpoint is sampled.)

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{BIN, scratch};
use host_trainer::backend::BackendKind;
use host_trainer::checkpoint::unpack;
use host_trainer::model::{DiscriminatorConfig, GeneratorConfig};
use host_trainer::tensor::to_vec_f32;
use host_trainer::train::{TrainConfig, Trainer};

fn config() -> TrainConfig {
    TrainConfig::new(GeneratorConfig::new(), DiscriminatorConfig::new())
        .with_batch(32)
        .with_seed(7)
        .with_max_steps(3)
}

/// A run folder with a fresh trainer's config and checkpoint; the checkpoint's bytes.
fn run_folder(name: &str) -> (PathBuf, Vec<u8>) {
    let dir = scratch("damage", name);
    let cfg = config();
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string_pretty(&cfg).unwrap(),
    )
    .unwrap();
    let t = Trainer::new(cfg, BackendKind::Flex).unwrap();
    t.save_checkpoint(&dir.join("checkpoint.bin")).unwrap();
    let bytes = std::fs::read(dir.join("checkpoint.bin")).unwrap();
    (dir, bytes)
}

#[test]
fn a_changed_byte_anywhere_in_a_checkpoint_is_refused() {
    let (dir, good) = run_folder("flip");
    let path = dir.join("checkpoint.bin");
    let mut t = Trainer::new(config(), BackendKind::Flex).unwrap();
    t.load_checkpoint(&path).unwrap();
    // The magic, the first blob lengths, every 997th byte through the weights and
    // optimisers, and the checksum.
    let positions: Vec<usize> = (0..40)
        .chain((40..good.len()).step_by(997))
        .chain(good.len() - 4..good.len())
        .collect();
    for &pos in &positions {
        let mut b = good.clone();
        b[pos] ^= 0x10;
        std::fs::write(&path, &b).unwrap();
        let e = t
            .load_checkpoint(&path)
            .expect_err("a damaged checkpoint loaded");
        let msg = format!("{e:#}");
        assert!(msg.contains("checkpoint.bin"), "byte {pos}: {msg}");
        assert!(!msg.contains('\n'), "byte {pos}: {msg}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn resume_of_a_damaged_checkpoint_exits_with_one_line() {
    let (dir, mut bytes) = run_folder("resume");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(dir.join("checkpoint.bin"), &bytes).unwrap();
    let out = Command::new(BIN)
        .arg("--resume")
        .arg(&dir)
        .args(["--threads", "1", "--eval-per-class", "2"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "resumed from a damaged checkpoint");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or("");
    assert!(
        last.starts_with("error: ")
            && last.contains("checkpoint.bin")
            && last.contains("checksum mismatch"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_old_checkpoint_without_checksum_still_loads() {
    let (dir, bytes) = run_folder("old");
    let path = dir.join("checkpoint.bin");
    let blobs = unpack(&bytes, 6).unwrap().blobs;
    let mut old = b"DGCKPT01".to_vec();
    for b in &blobs {
        old.extend_from_slice(&(b.len() as u64).to_le_bytes());
        old.extend_from_slice(b);
    }
    std::fs::write(&path, &old).unwrap();
    let mut a = Trainer::new(config(), BackendKind::Flex).unwrap();
    a.load_checkpoint(&path).unwrap();
    std::fs::write(&path, &bytes).unwrap();
    let mut b = Trainer::new(config().with_seed(8), BackendKind::Flex).unwrap();
    b.load_checkpoint(&path).unwrap();
    // The same content: the same progress and weights (b started from other weights).
    assert_eq!(
        serde_json::to_string(&a.state).unwrap(),
        serde_json::to_string(&b.state).unwrap()
    );
    let w = |t: &Trainer| {
        (
            to_vec_f32(t.g.fc.weight.val()),
            to_vec_f32(t.ema.fc.weight.val()),
        )
    };
    assert!(
        w(&a) == w(&b),
        "weights of the old and new checkpoint differ"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
