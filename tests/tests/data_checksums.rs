//! The committed MNIST files are the official ones: their SHA-256 sums match
//! `data/mnist/SHA256SUMS`, which matches the sums shipped with the shared data set.

use sha2::{Digest, Sha256};
use std::path::Path;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

#[test]
fn committed_mnist_matches_its_sha256sums() {
    let dir = root().join("data/mnist");
    let sums = std::fs::read_to_string(dir.join("SHA256SUMS")).unwrap();
    let mut checked = 0;
    for line in sums.lines().filter(|l| !l.trim().is_empty()) {
        let (hash, name) = line.split_once(char::is_whitespace).unwrap();
        let name = name.trim().trim_start_matches('*');
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let got: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(got, hash, "{name}");
        checked += 1;
    }
    assert_eq!(checked, 4, "expected the four MNIST files");
}

#[test]
fn sums_file_is_the_official_one() {
    // Pinned so that an edited SHA256SUMS cannot silently bless changed data.
    const OFFICIAL: &str = "\
1a1a05eab793c14bb050b398624a11b0ffd1a2953baed553b1b9bd079e2a20be  t10k-images-idx3-ubyte.gz
b91679a0acfe4ba0e50a2437a903084cba1f5f92592b016a25a7dfd00455798b  t10k-labels-idx1-ubyte.gz
0b367032e93c5d0cea0925647cfdb18614af8ee15f83e6f2fc2ad904a6835971  train-images-idx3-ubyte.gz
1787548bbe0bff1ec2ecdc0ef292b02df999e2d1a6002d27500982c652b17203  train-labels-idx1-ubyte.gz
";
    let sums = std::fs::read_to_string(root().join("data/mnist/SHA256SUMS")).unwrap();
    assert_eq!(sums, OFFICIAL);
}
