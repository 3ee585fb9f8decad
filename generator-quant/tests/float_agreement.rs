//! The int8 pipeline against the float reference it was quantised from.

use generator_core::{Arch, Generator, IMAGE_PIXELS, Image, MAX_ARENA_BYTES, Model, float_input};
use generator_quant::{Calibration, FloatGenerator, quantize};

/// Mean absolute pixel difference and the share of pixels off by more than 32.
fn compare(float: &FloatGenerator, model: &Model<'_>, n: u32) -> (f64, f64) {
    let mut arena = [0u8; MAX_ARENA_BYTES];
    let mut g = Generator::new(model, &mut arena).unwrap();
    let (mut sum, mut big, mut count) = (0u64, 0u64, 0u64);
    for i in 0..n {
        let (digit, seed) = ((i % 10) as u8, i * 7919);
        let mut img: Image = [0; IMAGE_PIXELS];
        g.generate(digit, seed, &mut img).unwrap();
        let reference = float.forward_image(&float_input(digit, seed).unwrap());
        for (&a, &b) in img.iter().zip(&reference) {
            let d = (a as i32 - b as i32).unsigned_abs() as u64;
            sum += d;
            big += u64::from(d > 32);
            count += 1;
        }
    }
    (sum as f64 / count as f64, big as f64 / count as f64)
}

fn random_models_match_float_closely(arch: Arch) {
    for seed in [1u64, 2, 3] {
        let float = FloatGenerator::random(arch, seed);
        // Fewer calibration inputs in unoptimised builds: the float reference is slow there.
        let n = if cfg!(debug_assertions) { 40 } else { 200 };
        let q = quantize(&float, &Calibration::DEFAULT.with_count(n)).unwrap();
        let bytes = q.to_bytes().unwrap();
        let model = Model::from_bytes(&bytes).unwrap();
        let (mad, big) = compare(&float, &model, if cfg!(debug_assertions) { 5 } else { 20 });
        println!(
            "{arch:?} seed {seed}: mean |diff| {mad:.3} px, {:.3}% pixels off by > 32",
            big * 100.0
        );
        assert!(mad < 3.0, "mean absolute pixel difference {mad}");
        assert!(big < 0.01, "share of pixels off by > 32: {big}");
    }
}

#[test]
fn default_architecture_matches_float_closely() {
    random_models_match_float_closely(Arch::DEFAULT);
}

#[test]
fn narrower_architecture_matches_float_closely() {
    random_models_match_float_closely(Arch {
        c0: 8,
        c1: 12,
        c2: 4,
    });
}
