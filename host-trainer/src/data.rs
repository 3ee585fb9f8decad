//! MNIST in its own IDX format: reading (gzip or raw), batching, and writing.
//!
//! Nothing is downloaded: the files come from a directory (by default the project's
//! `data/mnist/`), and every failure names the file it concerns.

use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use generator_core::{IMAGE_PIXELS, IMAGE_SIDE, pixel_to_signed_unit};

/// IDX magic for unsigned bytes with 3 dimensions (images).
const IMAGES_MAGIC: u32 = 0x0000_0803;
/// IDX magic for unsigned bytes with 1 dimension (labels).
const LABELS_MAGIC: u32 = 0x0000_0801;

/// Default data directory: the project's committed copy.
pub fn default_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist")
}

/// Why an IDX file could not be read. Every variant names the file.
#[derive(Debug)]
pub enum DataError {
    /// The file does not exist (neither `NAME` nor `NAME.gz`).
    Missing(PathBuf),
    /// The file exists but reading or decompressing it failed.
    Io(PathBuf, std::io::Error),
    /// The first four bytes are not the expected IDX magic.
    BadMagic {
        /// File.
        path: PathBuf,
        /// Magic found.
        found: u32,
        /// Magic expected.
        expected: u32,
    },
    /// The dimensions are not those of MNIST (28x28 images).
    BadDimensions(PathBuf, Vec<u32>),
    /// The file is shorter than its header says.
    Truncated {
        /// File.
        path: PathBuf,
        /// Payload bytes the header promises.
        expected: usize,
        /// Payload bytes present.
        found: usize,
    },
    /// The image and label files disagree on the number of items.
    CountMismatch {
        /// Image file.
        images: PathBuf,
        /// Number of images.
        n_images: usize,
        /// Label file.
        labels: PathBuf,
        /// Number of labels.
        n_labels: usize,
    },
    /// A label is not a digit 0-9.
    BadLabel(PathBuf, u8),
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing(p) => write!(
                f,
                "{}: file not found (nothing is downloaded; pass --data DIR pointing at the MNIST IDX files)",
                p.display()
            ),
            Self::Io(p, e) => write!(f, "{}: {e}", p.display()),
            Self::BadMagic {
                path,
                found,
                expected,
            } => write!(
                f,
                "{}: not an IDX file of the expected kind (magic {found:#010x}, expected {expected:#010x})",
                path.display()
            ),
            Self::BadDimensions(p, d) => write!(
                f,
                "{}: dimensions {d:?} are not MNIST's (expected [N, 28, 28] or [N])",
                p.display()
            ),
            Self::Truncated {
                path,
                expected,
                found,
            } => write!(
                f,
                "{}: truncated: header promises {expected} bytes of data, file has {found}",
                path.display()
            ),
            Self::CountMismatch {
                images,
                n_images,
                labels,
                n_labels,
            } => write!(
                f,
                "{} has {n_images} images but {} has {n_labels} labels",
                images.display(),
                labels.display()
            ),
            Self::BadLabel(p, l) => write!(f, "{}: label {l} is not a digit 0-9", p.display()),
        }
    }
}

impl std::error::Error for DataError {}

/// Finds `name.gz` or `name` in `dir`.
fn locate(dir: &Path, name: &str) -> Result<PathBuf, DataError> {
    let gz = dir.join(format!("{name}.gz"));
    if gz.is_file() {
        return Ok(gz);
    }
    let raw = dir.join(name);
    if raw.is_file() {
        return Ok(raw);
    }
    Err(DataError::Missing(gz))
}

/// Reads a whole file, gunzipping it when it starts with the gzip magic.
fn read_maybe_gz(path: &Path) -> Result<Vec<u8>, DataError> {
    let io = |e| DataError::Io(path.to_path_buf(), e);
    let mut raw = Vec::new();
    File::open(path)
        .map_err(io)?
        .read_to_end(&mut raw)
        .map_err(io)?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len() * 4);
        GzDecoder::new(&raw[..]).read_to_end(&mut out).map_err(io)?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Parses an IDX byte file: checks the magic, returns the dimensions and the payload.
fn parse_idx(path: &Path, bytes: Vec<u8>, magic: u32) -> Result<(Vec<u32>, Vec<u8>), DataError> {
    let ndims = (magic & 0xff) as usize;
    let header = 4 + 4 * ndims;
    if bytes.len() < 4 {
        return Err(DataError::Truncated {
            path: path.into(),
            expected: header,
            found: bytes.len(),
        });
    }
    let found = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if found != magic {
        return Err(DataError::BadMagic {
            path: path.into(),
            found,
            expected: magic,
        });
    }
    if bytes.len() < header {
        return Err(DataError::Truncated {
            path: path.into(),
            expected: header,
            found: bytes.len(),
        });
    }
    let dims: Vec<u32> = bytes[4..header]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let expected = dims.iter().map(|&d| d as usize).product::<usize>();
    let found = bytes.len() - header;
    if found < expected {
        return Err(DataError::Truncated {
            path: path.into(),
            expected,
            found,
        });
    }
    let mut payload = bytes;
    payload.drain(..header);
    payload.truncate(expected);
    Ok((dims, payload))
}

/// Which half of MNIST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// 60,000 training images.
    Train,
    /// 10,000 test images.
    Test,
}

impl Split {
    fn prefix(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "t10k",
        }
    }
}

/// A set of 28x28 images (row-major u8, 0 = background) with their labels.
#[derive(Debug, Clone)]
pub struct Mnist {
    /// `len * 784` pixels.
    pub images: Vec<u8>,
    /// `len` labels 0-9.
    pub labels: Vec<u8>,
}

impl Mnist {
    /// Loads one split from `dir`.
    pub fn load(dir: &Path, split: Split) -> Result<Self, DataError> {
        let ip = locate(dir, &format!("{}-images-idx3-ubyte", split.prefix()))?;
        let lp = locate(dir, &format!("{}-labels-idx1-ubyte", split.prefix()))?;
        Self::load_files(&ip, &lp)
    }

    /// Loads an image file and a label file (gzip or raw IDX).
    pub fn load_files(images_path: &Path, labels_path: &Path) -> Result<Self, DataError> {
        let (idims, images) = parse_idx(images_path, read_maybe_gz(images_path)?, IMAGES_MAGIC)?;
        if idims[1] as usize != IMAGE_SIDE || idims[2] as usize != IMAGE_SIDE {
            return Err(DataError::BadDimensions(images_path.into(), idims));
        }
        let (ldims, labels) = parse_idx(labels_path, read_maybe_gz(labels_path)?, LABELS_MAGIC)?;
        if idims[0] != ldims[0] {
            return Err(DataError::CountMismatch {
                images: images_path.into(),
                n_images: idims[0] as usize,
                labels: labels_path.into(),
                n_labels: ldims[0] as usize,
            });
        }
        if let Some(&bad) = labels.iter().find(|&&l| l > 9) {
            return Err(DataError::BadLabel(labels_path.into(), bad));
        }
        Ok(Self { images, labels })
    }

    /// Loads a pair written by [`write_idx_pair`] (or any `images-idx3-ubyte` and
    /// `labels-idx1-ubyte`, gzip or raw) from `dir`.
    pub fn load_pair(dir: &Path) -> Result<Self, DataError> {
        let ip = locate(dir, "images-idx3-ubyte")?;
        let lp = locate(dir, "labels-idx1-ubyte")?;
        Self::load_files(&ip, &lp)
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The first `n` items (or all of them).
    pub fn take(&self, n: usize) -> Self {
        let n = n.min(self.len());
        Self {
            images: self.images[..n * IMAGE_PIXELS].to_vec(),
            labels: self.labels[..n].to_vec(),
        }
    }

    /// Pixels scaled to [-1, 1], the generator's output range.
    pub fn signed_pixels(&self) -> Vec<f32> {
        self.images
            .iter()
            .map(|&p| pixel_to_signed_unit(p))
            .collect()
    }
}

/// Writes images and labels as MNIST-format gzip IDX files into `dir`
/// (`images-idx3-ubyte.gz`, `labels-idx1-ubyte.gz`).
pub fn write_idx_pair(dir: &Path, images: &[u8], labels: &[u8]) -> anyhow::Result<()> {
    anyhow::ensure!(
        images.len() == labels.len() * IMAGE_PIXELS,
        "{} image bytes do not match {} labels",
        images.len(),
        labels.len()
    );
    std::fs::create_dir_all(dir)?;
    let n = labels.len() as u32;
    let mut ih = IMAGES_MAGIC.to_be_bytes().to_vec();
    for d in [n, IMAGE_SIDE as u32, IMAGE_SIDE as u32] {
        ih.extend_from_slice(&d.to_be_bytes());
    }
    let mut lh = LABELS_MAGIC.to_be_bytes().to_vec();
    lh.extend_from_slice(&n.to_be_bytes());
    for (name, header, body) in [
        ("images-idx3-ubyte.gz", ih, images),
        ("labels-idx1-ubyte.gz", lh, labels),
    ] {
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(&header)?;
        enc.write_all(body)?;
        crate::fsutil::write_atomic(&dir.join(name), &enc.finish()?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("idx-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn idx(magic: u32, dims: &[u32], payload: &[u8]) -> Vec<u8> {
        let mut v = magic.to_be_bytes().to_vec();
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.extend_from_slice(payload);
        v
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn reads_committed_test_split() {
        let m = Mnist::load(&default_dir(), Split::Test).unwrap();
        assert_eq!(m.len(), 10_000);
        assert_eq!(m.images.len(), 10_000 * IMAGE_PIXELS);
        // First test label of MNIST is a 7.
        assert_eq!(m.labels[0], 7);
    }

    #[test]
    fn missing_file_names_it() {
        let d = tmpdir("missing");
        let e = Mnist::load(&d, Split::Train).unwrap_err();
        assert!(matches!(e, DataError::Missing(_)));
        assert!(e.to_string().contains("train-images-idx3-ubyte"));
    }

    #[test]
    fn wrong_magic() {
        let d = tmpdir("magic");
        let i = write(&d, "i", &idx(0x0000_0801, &[1], &[0]));
        let l = write(&d, "l", &idx(LABELS_MAGIC, &[1], &[0]));
        let e = Mnist::load_files(&i, &l).unwrap_err();
        assert!(matches!(e, DataError::BadMagic { .. }), "{e}");
        assert!(e.to_string().contains(&i.display().to_string()));
    }

    #[test]
    fn wrong_dimensions() {
        let d = tmpdir("dims");
        let i = write(&d, "i", &idx(IMAGES_MAGIC, &[1, 27, 29], &[0; 27 * 29]));
        let l = write(&d, "l", &idx(LABELS_MAGIC, &[1], &[0]));
        let e = Mnist::load_files(&i, &l).unwrap_err();
        assert!(matches!(e, DataError::BadDimensions(..)), "{e}");
    }

    #[test]
    fn truncated_payload_and_header() {
        let d = tmpdir("trunc");
        let i = write(
            &d,
            "i",
            &idx(IMAGES_MAGIC, &[2, 28, 28], &[0; IMAGE_PIXELS + 5]),
        );
        let l = write(&d, "l", &idx(LABELS_MAGIC, &[2], &[0, 1]));
        let e = Mnist::load_files(&i, &l).unwrap_err();
        assert!(matches!(e, DataError::Truncated { .. }), "{e}");
        let i = write(&d, "i2", &IMAGES_MAGIC.to_be_bytes()[..3]);
        let e = Mnist::load_files(&i, &l).unwrap_err();
        assert!(matches!(e, DataError::Truncated { .. }), "{e}");
    }

    #[test]
    fn count_mismatch() {
        let d = tmpdir("count");
        let i = write(
            &d,
            "i",
            &idx(IMAGES_MAGIC, &[2, 28, 28], &[0; 2 * IMAGE_PIXELS]),
        );
        let l = write(&d, "l", &idx(LABELS_MAGIC, &[3], &[0, 1, 2]));
        let e = Mnist::load_files(&i, &l).unwrap_err();
        assert!(matches!(e, DataError::CountMismatch { .. }), "{e}");
    }

    #[test]
    fn bad_label_and_bad_gzip() {
        let d = tmpdir("label");
        let i = write(
            &d,
            "i",
            &idx(IMAGES_MAGIC, &[1, 28, 28], &[0; IMAGE_PIXELS]),
        );
        let l = write(&d, "l", &idx(LABELS_MAGIC, &[1], &[12]));
        assert!(matches!(
            Mnist::load_files(&i, &l).unwrap_err(),
            DataError::BadLabel(_, 12)
        ));
        let g = write(&d, "g.gz", &[0x1f, 0x8b, 1, 2, 3]);
        assert!(matches!(
            Mnist::load_files(&g, &l).unwrap_err(),
            DataError::Io(..)
        ));
    }

    #[test]
    fn writer_round_trips_in_mnist_format() {
        let d = tmpdir("writer");
        let images: Vec<u8> = (0..3 * IMAGE_PIXELS).map(|i| (i % 256) as u8).collect();
        let labels = [3u8, 1, 4];
        write_idx_pair(&d, &images, &labels).unwrap();
        // Header bytes exactly as MNIST's.
        let raw = read_maybe_gz(&d.join("images-idx3-ubyte.gz")).unwrap();
        assert_eq!(
            &raw[..16],
            &[0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 28, 0, 0, 0, 28]
        );
        let raw = read_maybe_gz(&d.join("labels-idx1-ubyte.gz")).unwrap();
        assert_eq!(&raw[..8], &[0, 0, 8, 1, 0, 0, 0, 3]);
        let m = Mnist::load_files(
            &d.join("images-idx3-ubyte.gz"),
            &d.join("labels-idx1-ubyte.gz"),
        )
        .unwrap();
        assert_eq!(m.images, images);
        assert_eq!(m.labels, labels);
    }
}
