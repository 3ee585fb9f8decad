//! Files on disk: the run folder, generator weight files and the checkpoint container.
//!
//! A checkpoint is `DGCKPT01` followed by length-prefixed blobs (`u64` LE length, then
//! the bytes); [`Trainer`](crate::train::Trainer) decides what the blobs hold.

use std::path::{Path, PathBuf};

use anyhow::{Context, ensure};
use burn::prelude::*;

use crate::fsutil::write_atomic;
use crate::model::{Generator, GeneratorConfig};
use crate::tensor::{load_module, record_bytes};

/// Files of a run folder.
#[derive(Debug, Clone)]
pub struct RunDir(pub PathBuf);

impl RunDir {
    /// The checkpoint file.
    pub fn checkpoint(&self) -> PathBuf {
        self.0.join("checkpoint.bin")
    }
    /// The run's configuration.
    pub fn config(&self) -> PathBuf {
        self.0.join("config.json")
    }
    /// The final EMA generator weights.
    pub fn generator(&self) -> PathBuf {
        self.0.join("generator-ema.bin")
    }
    /// The int8 model file.
    pub fn model(&self) -> PathBuf {
        self.0.join("model.dgen")
    }
    /// The final figures.
    pub fn metrics(&self) -> PathBuf {
        self.0.join("metrics.json")
    }
    /// A 10x10 sample grid; `tag` is e.g. `epoch-003`, `final` or `int8`.
    pub fn samples(&self, tag: &str) -> PathBuf {
        self.0.join(format!("samples-{tag}.png"))
    }
}

/// Saves a generator's weights (Burn record bytes) to `path`, atomically.
pub fn save_generator(g: &Generator, path: &Path) -> anyhow::Result<()> {
    write_atomic(path, &record_bytes(g)?)
}

/// Loads generator weights saved by [`save_generator`] onto `device`.
pub fn load_generator(
    cfg: &GeneratorConfig,
    path: &Path,
    device: &Device,
) -> anyhow::Result<Generator> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    load_module(cfg.init(device), &bytes)
        .with_context(|| format!("{}: not a generator weight file", path.display()))
        .map(|g| g.valid())
}

const MAGIC: &[u8; 8] = b"DGCKPT01";

/// Packs blobs into one checkpoint file image.
pub fn pack(blobs: &[&[u8]]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    for b in blobs {
        out.extend_from_slice(&(b.len() as u64).to_le_bytes());
        out.extend_from_slice(b);
    }
    out
}

/// Splits a checkpoint file image into exactly `n` blobs.
pub fn unpack(bytes: &[u8], n: usize) -> anyhow::Result<Vec<&[u8]>> {
    let mut rest = bytes.strip_prefix(MAGIC).context("not a checkpoint file")?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let (len, tail) = rest
            .split_first_chunk::<8>()
            .context("checkpoint truncated")?;
        let len = usize::try_from(u64::from_le_bytes(*len)).context("checkpoint truncated")?;
        ensure!(tail.len() >= len, "checkpoint truncated");
        let (blob, tail) = tail.split_at(len);
        out.push(blob);
        rest = tail;
    }
    ensure!(rest.is_empty(), "checkpoint has trailing bytes");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_round_trips_and_unpack_rejects_damage() {
        let bytes = pack(&[b"abc", b"", b"de"]);
        assert_eq!(unpack(&bytes, 3).unwrap(), vec![&b"abc"[..], b"", b"de"]);
        assert!(unpack(&bytes, 2).is_err(), "trailing blob");
        assert!(unpack(&bytes, 4).is_err(), "missing blob");
        assert!(unpack(&bytes[..bytes.len() - 1], 3).is_err(), "cut short");
        assert!(unpack(b"NOTACKPT", 0).is_err(), "magic");
    }
}
