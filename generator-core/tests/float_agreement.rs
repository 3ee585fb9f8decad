//! The int8 pipeline against the float reference it was quantised from.
#![cfg(feature = "std")]

use generator_core::build::{FloatGenerator, quantize};
use generator_core::{Generator, Image, MAX_ARENA_BYTES, Model};

fn calibration(n: u32) -> Vec<[f32; 42]> {
    (0..n)
        .map(|i| FloatGenerator::input((i % 10) as u8, 1_000_000 + i))
        .collect()
}

/// Mean absolute pixel difference and the share of pixels off by more than 32.
fn compare(float: &FloatGenerator, model: &Model<'_>, n: u32) -> (f64, f64) {
    let mut arena = [0u8; MAX_ARENA_BYTES];
    let mut g = Generator::new(model, &mut arena).unwrap();
    let (mut sum, mut big, mut count) = (0u64, 0u64, 0u64);
    for i in 0..n {
        let (digit, seed) = ((i % 10) as u8, i * 7919);
        let mut img: Image = [0; 784];
        g.generate(digit, seed, &mut img).unwrap();
        let reference = float.forward_image(&FloatGenerator::input(digit, seed));
        for (&a, &b) in img.iter().zip(&reference) {
            let d = (a as i32 - b as i32).unsigned_abs() as u64;
            sum += d;
            big += u64::from(d > 32);
            count += 1;
        }
    }
    (sum as f64 / count as f64, big as f64 / count as f64)
}

#[test]
fn random_models_match_float_closely() {
    for seed in [1u64, 2, 3] {
        let float = FloatGenerator::random(seed);
        // Fewer calibration inputs in unoptimised builds: the float reference is slow there.
        let n = if cfg!(debug_assertions) { 40 } else { 200 };
        let bytes = quantize(&float, &calibration(n)).to_bytes();
        let model = Model::from_bytes(&bytes).unwrap();
        let (mad, big) = compare(&float, &model, if cfg!(debug_assertions) { 5 } else { 20 });
        println!(
            "seed {seed}: mean |diff| {mad:.3} px, {:.3}% pixels off by > 32",
            big * 100.0
        );
        assert!(mad < 3.0, "mean absolute pixel difference {mad}");
        assert!(big < 0.01, "share of pixels off by > 32: {big}");
    }
}
