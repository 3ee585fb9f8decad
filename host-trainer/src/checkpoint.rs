//! Files on disk: the run folder, generator weight files and the checkpoint container.
//!
//! A checkpoint is `DGCKPT02` followed by length-prefixed blobs (`u64` LE length, then
//! the bytes) and a CRC-32 (ISO-HDLC, `u32` LE) of everything before it;
//! [`Trainer`](crate::train::Trainer) decides what the blobs hold. A float weight file
//! (`generator-ema.bin`, the classifier) is `DGWGHT01`, the Burn record bytes, and a CRC-32
//! of everything before it, in the same way.
//!
//! Every load checks the checksum, so any single changed byte is refused. Files written
//! before the checksum still load, with a one-line warning: an old checkpoint by its exact
//! magic `DGCKPT01` and a full parse of its blobs, an old weight file by a full parse of its
//! Burn record (it has no magic of its own).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};
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
    /// The checkpoint before [`checkpoint`](Self::checkpoint) (renamed from it when the
    /// next one is written), for `--resume` when the latest is damaged.
    pub fn prev_checkpoint(&self) -> PathBuf {
        self.0.join("checkpoint.prev.bin")
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

/// CRC-32 of the training files: the same as generator-core's model file.
const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// Magic of a checksummed float weight file.
const WEIGHTS_MAGIC: &[u8; 8] = b"DGWGHT01";

/// Appends the CRC-32 of `out` to it.
fn seal(mut out: Vec<u8>) -> Vec<u8> {
    let crc = CRC.checksum(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The bytes before a trailing CRC-32 when it matches them.
fn verify(bytes: &[u8]) -> anyhow::Result<&[u8]> {
    let (body, crc) = bytes
        .split_last_chunk::<4>()
        .context("file truncated (no checksum)")?;
    ensure!(
        CRC.checksum(body) == u32::from_le_bytes(*crc),
        "checksum mismatch: the file is damaged"
    );
    Ok(body)
}

/// A weight file image: `DGWGHT01`, the record bytes, their CRC-32.
pub fn seal_weights(record: &[u8]) -> Vec<u8> {
    let mut out = WEIGHTS_MAGIC.to_vec();
    out.extend_from_slice(record);
    seal(out)
}

/// Loads a module from a weight file image `bytes` read from `path` into `m`: a
/// checksummed one (checksum checked), or an old one without a checksum when its whole
/// content parses as a Burn record (with a one-line warning). `what` names the kind of file
/// in the error.
pub fn load_weights<M: Module>(m: M, bytes: &[u8], path: &Path, what: &str) -> anyhow::Result<M> {
    if bytes.starts_with(WEIGHTS_MAGIC) {
        let body = verify(bytes).with_context(|| format!("{}", path.display()))?;
        return load_module(m, &body[WEIGHTS_MAGIC.len()..])
            .with_context(|| format!("{}: not a {what} weight file", path.display()));
    }
    let m = load_module(m, bytes).with_context(|| {
        format!(
            "{}: not a {what} weight file (neither magic {} nor a Burn record)",
            path.display(),
            String::from_utf8_lossy(WEIGHTS_MAGIC)
        )
    })?;
    eprintln!(
        "warning: {}: old {what} weight file without a checksum; damage cannot be detected",
        path.display()
    );
    Ok(m)
}

/// Saves a generator's weights (a checksummed weight file) to `path`, atomically.
pub fn save_generator(g: &Generator, path: &Path) -> anyhow::Result<()> {
    write_atomic(path, &seal_weights(&record_bytes(g)?))
}

/// Loads generator weights saved by [`save_generator`] (or an old file without a checksum)
/// onto `device`.
pub fn load_generator(
    cfg: &GeneratorConfig,
    path: &Path,
    device: &Device,
) -> anyhow::Result<Generator> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    load_weights(cfg.init(device), &bytes, path, "generator").map(|g| g.valid())
}

const MAGIC: &[u8; 8] = b"DGCKPT02";

/// The magic of checkpoints written before the checksum (no trailing CRC-32).
const OLD_MAGIC: &[u8; 8] = b"DGCKPT01";

/// Packs blobs into one checkpoint file image.
pub fn pack(blobs: &[&[u8]]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    for b in blobs {
        out.extend_from_slice(&(b.len() as u64).to_le_bytes());
        out.extend_from_slice(b);
    }
    seal(out)
}

/// A checkpoint image split into its blobs.
#[derive(Debug, PartialEq)]
pub struct Unpacked<'a> {
    /// The blobs, in the order [`pack`] took them.
    pub blobs: Vec<&'a [u8]>,
    /// False for an old checkpoint (`DGCKPT01`) without a checksum.
    pub checksummed: bool,
}

/// Splits a checkpoint file image into exactly `n` blobs, after checking its checksum
/// (or, for an old `DGCKPT01` image, its exact layout).
pub fn unpack(bytes: &[u8], n: usize) -> anyhow::Result<Unpacked<'_>> {
    let (body, checksummed) = if bytes.starts_with(MAGIC) {
        (verify(bytes)?, true)
    } else if bytes.starts_with(OLD_MAGIC) {
        (bytes, false)
    } else {
        bail!("not a checkpoint file (bad magic)");
    };
    let mut rest = &body[MAGIC.len()..];
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
    Ok(Unpacked {
        blobs: out,
        checksummed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The image an old trainer wrote: `DGCKPT01` and the blobs, no checksum.
    fn old_pack(blobs: &[&[u8]]) -> Vec<u8> {
        let mut out = OLD_MAGIC.to_vec();
        for b in blobs {
            out.extend_from_slice(&(b.len() as u64).to_le_bytes());
            out.extend_from_slice(b);
        }
        out
    }

    #[test]
    fn pack_round_trips_and_unpack_rejects_damage() {
        let bytes = pack(&[b"abc", b"", b"de"]);
        let u = unpack(&bytes, 3).unwrap();
        assert_eq!(u.blobs, vec![&b"abc"[..], b"", b"de"]);
        assert!(u.checksummed);
        assert!(unpack(&bytes, 2).is_err(), "trailing blob");
        assert!(unpack(&bytes, 4).is_err(), "missing blob");
        assert!(unpack(&bytes[..bytes.len() - 1], 3).is_err(), "cut short");
        assert!(unpack(b"NOTACKPT", 0).is_err(), "magic");
    }

    /// Every byte position of a checkpoint image, magic and checksum included, changed in
    /// every possible way (all 255 non-zero XOR masks), is refused.
    #[test]
    fn every_single_byte_change_of_a_checkpoint_is_refused() {
        let blobs: [&[u8]; 3] = [b"{\"step\":3}", &[0u8; 17], b"optimiser"];
        let bytes = pack(&blobs);
        assert_eq!(unpack(&bytes, 3).unwrap().blobs, blobs.to_vec());
        let mut refused = 0;
        for pos in 0..bytes.len() {
            for mask in 1..=255u8 {
                let mut b = bytes.clone();
                b[pos] ^= mask;
                assert!(
                    unpack(&b, 3).is_err(),
                    "byte {pos} ^ {mask:#04x} was accepted"
                );
                refused += 1;
            }
        }
        assert_eq!(refused, bytes.len() * 255);
    }

    #[test]
    fn old_checkpoints_load_by_exact_magic_and_full_parse() {
        let blobs: [&[u8]; 2] = [b"state", b"weights"];
        let old = old_pack(&blobs);
        let u = unpack(&old, 2).unwrap();
        assert_eq!(u.blobs, blobs.to_vec());
        assert!(!u.checksummed);
        // An old image must parse exactly: no missing or extra bytes.
        assert!(unpack(&old[..old.len() - 1], 2).is_err());
        let mut longer = old.clone();
        longer.push(0);
        assert!(unpack(&longer, 2).is_err());
        // A new image whose magic was damaged into the old one is refused (its checksum is
        // left over as trailing bytes).
        let mut new = pack(&blobs);
        new[7] = b'1';
        assert!(unpack(&new, 2).is_err());
    }

    /// The committed weights are checksummed files (an old bare record would load with a
    /// warning on every `eval`).
    #[test]
    fn committed_assets_are_checksummed() {
        let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
        for name in ["generator-ema.bin", "classifier.bin"] {
            let bytes = std::fs::read(assets.join(name)).unwrap();
            assert!(
                bytes.starts_with(WEIGHTS_MAGIC),
                "{name}: no {WEIGHTS_MAGIC:?}"
            );
            verify(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn weight_files_are_checked_and_old_ones_still_load() {
        let device = Device::default();
        let cfg = GeneratorConfig::new();
        let g = cfg.init(&device);
        let dir = std::env::temp_dir().join(format!("weights-{}", std::process::id()));
        let path = dir.join("generator-ema.bin");
        save_generator(&g, &path).unwrap();
        load_generator(&cfg, &path, &device).unwrap();
        let good = std::fs::read(&path).unwrap();
        assert!(good.starts_with(WEIGHTS_MAGIC));

        // Old file: the bare record loads (with a warning).
        let record = record_bytes(&g).unwrap();
        std::fs::write(&path, &record).unwrap();
        load_generator(&cfg, &path, &device).unwrap();

        // A changed byte anywhere (sampled: magic, record, checksum) is refused, naming
        // the file.
        let positions = (0..good.len()).step_by(4099).chain([0, 7, good.len() - 1]);
        for pos in positions {
            let mut b = good.clone();
            b[pos] ^= 0x01;
            std::fs::write(&path, &b).unwrap();
            let e = load_generator(&cfg, &path, &device).expect_err("damaged weights loaded");
            let msg = format!("{e:#}");
            assert!(msg.contains("generator-ema.bin"), "{msg}");
            assert!(!msg.contains('\n'), "{msg}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
