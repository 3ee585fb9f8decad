//! Golden outputs of the shipped model: exact bytes for fixed `(digit, seed)` pairs.
//!
//! When `models/default.dgen` changes on purpose, regenerate with
//! `UPDATE_GOLDEN=1 cargo test -p generator-core --release --test golden`
//! and commit `tests/golden/default.bin`.
//!
//! File layout: the model's CRC-32 (its last 4 bytes), then per pair: digit (u8),
//! seed (u32 LE), the 784-byte image.

use generator_core::{DEFAULT_MODEL, Generator, Image, MAX_ARENA_BYTES, Model};

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/default.bin");

fn pairs() -> Vec<(u8, u32)> {
    let mut v: Vec<(u8, u32)> = (0..10u8).map(|d| (d, 1000 * d as u32 + 7)).collect();
    v.extend((0..10u8).map(|d| (d, 42))); // same style, every digit
    v.extend([(0, 0), (9, u32::MAX), (5, 0x8000_0000), (1, 1)]);
    v
}

fn render() -> Vec<u8> {
    let model = Model::from_bytes(DEFAULT_MODEL).expect("default model loads");
    let mut arena = [0u8; MAX_ARENA_BYTES];
    let mut g = Generator::new(&model, &mut arena).unwrap();
    let mut out = DEFAULT_MODEL[DEFAULT_MODEL.len() - 4..].to_vec();
    for (digit, seed) in pairs() {
        let mut img: Image = [0; 784];
        g.generate(digit, seed, &mut img).unwrap();
        out.push(digit);
        out.extend_from_slice(&seed.to_le_bytes());
        out.extend_from_slice(&img);
    }
    out
}

#[test]
fn golden_images_match() {
    let got = render();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(PATH, &got).unwrap();
        eprintln!("wrote {PATH}");
        return;
    }
    let want = std::fs::read(PATH).expect("golden file exists (UPDATE_GOLDEN=1 creates it)");
    assert_eq!(
        got[..4],
        want[..4],
        "models/default.dgen changed since the golden images were written: \
         check the change, then rerun with UPDATE_GOLDEN=1"
    );
    assert_eq!(got.len(), want.len(), "number of golden pairs changed");
    for (i, (g, w)) in got[4..].chunks(789).zip(want[4..].chunks(789)).enumerate() {
        let diff = g[5..].iter().zip(&w[5..]).filter(|(a, b)| a != b).count();
        assert_eq!(g[..5], w[..5], "pair {i} header");
        assert!(
            diff == 0,
            "pair {i} (digit {}, seed {:?}): {diff} pixels differ",
            g[0],
            &g[1..5]
        );
    }
}
