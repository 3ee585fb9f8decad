//! Writes `models/default.dgen` from a randomly initialised float generator, until the
//! trained model replaces it (through the same `quantize(..).to_bytes()`).
//!
//! `cargo run -p generator-core --release --features std --example make_placeholder_model`

use generator_core::build::{FloatGenerator, quantize};

fn main() -> std::io::Result<()> {
    let float = FloatGenerator::random(2024);
    let calibration: Vec<_> = (0..1000u32)
        .map(|i| FloatGenerator::input((i % 10) as u8, i))
        .collect();
    let bytes = quantize(&float, &calibration).to_bytes();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/models/default.dgen");
    std::fs::write(path, &bytes)?;
    let model = generator_core::Model::from_bytes(&bytes).expect("the written model loads");
    println!(
        "wrote {path}: {} bytes, arena {} bytes, {} MACs/digit, {} parameter bytes",
        bytes.len(),
        model.arena_bytes(),
        model.macs_per_digit(),
        model.weight_bytes()
    );
    Ok(())
}
