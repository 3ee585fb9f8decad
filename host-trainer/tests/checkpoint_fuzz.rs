//! Mutated checkpoint containers and run configurations never panic (issue 20, item 6,
//! the container and config part): a deterministic mutation loop (byte changes, inserts,
//! deletes, truncation) over a checkpoint image with its CRC-32 fixed up after every
//! mutation, so that the mutations reach the blob parser and the progress (JSON) decoder,
//! and over a `config.json`, through `TrainConfig::from_json` and `check`.
//!
//! `replay_committed_seeds` runs the committed seeds (a fixed 20,000 inputs each) in every
//! test run; `million_mutations` (`--ignored`) runs 1,000,000 of each.
//!
//! The whole restore, Burn's decoding of the weight records and optimiser states included,
//! is fuzzed separately and more slowly (a real trainer's checkpoint is about 1 MB):
//! mutations land in the first 2 KiB of a blob, where a Burn record keeps its header
//! (tensor names, shapes, offsets), and the image is packed again with a fresh checksum.
//! `replay_restore_seeds` runs 150 in every test run, `restore_mutations` (`--ignored`)
//! 20,000, and both require no panic.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use host_trainer::backend::BackendKind;
use host_trainer::checkpoint::{pack, unpack};
use host_trainer::model::{DiscriminatorConfig, GeneratorConfig};
use host_trainer::rng::Rng;
use host_trainer::train::{TrainConfig, TrainState, Trainer};

const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// The committed seeds of the replay.
const SEEDS: [u64; 3] = [1, 20, 0x5eed_c0de];

/// xorshift64*: the mutation source.
struct Mut(u64);

impl Mut {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    /// One to four random edits of `b`.
    fn mutate(&mut self, b: &mut Vec<u8>) {
        self.mutate_within(b, usize::MAX);
    }
    /// One to four random edits of `b` at positions below `span`.
    fn mutate_within(&mut self, b: &mut Vec<u8>, span: usize) {
        for _ in 0..1 + self.below(4) {
            let i = self.below(b.len().min(span) + 1);
            match self.below(5) {
                0 | 1 if i < b.len() => b[i] ^= 1 << self.below(8),
                2 if i < b.len() => b[i] = self.next() as u8,
                3 => b.insert(i, self.next() as u8),
                _ if i < b.len() => {
                    b.remove(i);
                }
                _ => b.truncate(i),
            }
        }
    }
}

fn base_checkpoint_body() -> Vec<u8> {
    let state = TrainState {
        step: 12,
        epoch: 1,
        rng: Rng::new(3),
        epoch_step: 2,
        epoch_rng: Some(Rng::new(4)),
        losses: Vec::new(),
        train_seconds: 1.5,
    };
    let state = serde_json::to_vec(&state).unwrap();
    let image = pack(&[&state, b"g-record", b"d", b"", b"opt-g", b"opt-d"]);
    image[..image.len() - 4].to_vec()
}

fn base_config() -> Vec<u8> {
    let c = TrainConfig::new(GeneratorConfig::new(), DiscriminatorConfig::new()).with_max_steps(9);
    serde_json::to_vec_pretty(&c).unwrap()
}

/// `n` mutated checkpoints and configs from `seed`; how many checkpoints unpacked.
fn run(seed: u64, n: usize) -> usize {
    let (ckpt, config) = (base_checkpoint_body(), base_config());
    let mut m = Mut(seed.max(1));
    let mut unpacked = 0;
    for _ in 0..n {
        let mut body = ckpt.clone();
        m.mutate(&mut body);
        // A random body now and then, the checksum fixed up as always.
        if m.below(64) == 0 {
            body = (0..m.below(96)).map(|_| m.next() as u8).collect();
        }
        let crc = CRC.checksum(&body);
        body.extend_from_slice(&crc.to_le_bytes());
        if let Ok(u) = unpack(&body, 6) {
            unpacked += 1;
            let _ = serde_json::from_slice::<TrainState>(u.blobs[0]);
        }
        let mut c = config.clone();
        m.mutate(&mut c);
        if let Ok(cfg) = TrainConfig::from_json(&String::from_utf8_lossy(&c)) {
            let _ = cfg.check();
        }
    }
    unpacked
}

#[test]
fn replay_committed_seeds() {
    for seed in SEEDS {
        let ok = run(seed, 20_000);
        // Some mutations (inside a blob) must keep the container valid, or the loop would
        // never reach the blob decoding.
        assert!(ok > 100, "seed {seed}: only {ok} mutated images unpacked");
    }
}

#[test]
#[ignore = "1,000,000 mutated checkpoints and configs: cargo test --release -- --ignored"]
fn million_mutations() {
    let t0 = std::time::Instant::now();
    let ok = run(0xdead_beef, 1_000_000);
    eprintln!(
        "1,000,000 checkpoints ({ok} unpacked) and configs in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
}

/// Mutations of a restore reach this far into a blob.
const RESTORE_SPAN: usize = 2048;

/// `n` mutated images of a real trainer's checkpoint through [`Trainer::restore`]: how many
/// restored and how many were refused. Panics (caught, so that all are counted) fail it.
fn restore_fuzz(seed: u64, n: usize) -> (usize, usize) {
    let config = TrainConfig::new(GeneratorConfig::new(), DiscriminatorConfig::new());
    let mut trainer = Trainer::new(config, BackendKind::Flex).unwrap();
    let image = trainer.checkpoint_bytes().unwrap();
    let blobs: Vec<Vec<u8>> = unpack(&image, 6)
        .unwrap()
        .blobs
        .iter()
        .map(|b| b.to_vec())
        .collect();
    let mut m = Mut(seed.max(1));
    let (mut restored, mut refused, mut panics) = (0, 0, Vec::new());
    for i in 0..n {
        let mut b = blobs.clone();
        let which = m.below(b.len());
        m.mutate_within(&mut b[which], RESTORE_SPAN);
        let refs: Vec<&[u8]> = b.iter().map(|v| v.as_slice()).collect();
        let mutated = pack(&refs);
        let path = Path::new("fuzz/checkpoint.bin");
        match catch_unwind(AssertUnwindSafe(|| trainer.restore(&mutated, path))) {
            Ok(Ok(())) => restored += 1,
            Ok(Err(_)) => refused += 1,
            Err(_) => {
                panics.push(format!("input {i} (blob {which})"));
                // The trainer may be half-restored by a panic: start again from a fresh one.
                trainer = Trainer::new(trainer.config.clone(), BackendKind::Flex).unwrap();
            }
        }
    }
    assert!(
        panics.is_empty(),
        "seed {seed}: restore panicked on {panics:?}"
    );
    (restored, refused)
}

#[test]
fn replay_restore_seeds() {
    for seed in SEEDS {
        let (restored, refused) = restore_fuzz(seed, 50);
        // Both outcomes must occur, or the mutations would not reach the decoders.
        assert!(refused > 0, "seed {seed}: no mutation was refused");
        assert!(restored > 0, "seed {seed}: no mutation was restored");
    }
}

#[test]
#[ignore = "20,000 mutated real checkpoints through Trainer::restore: cargo test --release -- --ignored"]
fn restore_mutations() {
    let t0 = std::time::Instant::now();
    let (restored, refused) = restore_fuzz(0xfeed_f00d, 20_000);
    let s = t0.elapsed().as_secs_f64();
    eprintln!(
        "20,000 restores ({restored} restored, {refused} refused) in {s:.1} s: {:.0} per second",
        20_000.0 / s
    );
}
