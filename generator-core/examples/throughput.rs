//! Generates digits in a loop and prints digits/s and MAC/s (a quick check beside the
//! criterion bench; run it under `perf stat` to count instructions per digit).
//!
//! `cargo run -p generator-core --release --example throughput -- 2000`

use std::time::Instant;

use generator_core::{Generator, Image, MAX_ARENA_BYTES, default_model};

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    let model = default_model().expect("default model loads");
    let mut arena = [0u8; MAX_ARENA_BYTES];
    let mut g = Generator::new(&model, &mut arena).unwrap();
    let mut img: Image = [0; 784];
    let mut check = 0u64;
    let t = Instant::now();
    for i in 0..n {
        g.generate((i % 10) as u8, i, &mut img).unwrap();
        check = check.wrapping_add(img.iter().map(|&p| p as u64).sum::<u64>());
    }
    let s = t.elapsed().as_secs_f64();
    let rate = n as f64 / s;
    println!(
        "{n} digits in {s:.3} s: {rate:.0} digits/s, {:.2} GMAC/s (checksum {check})",
        rate * model.macs_per_digit() as f64 / 1e9
    );
}
