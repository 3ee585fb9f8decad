//! The streaming generator against the whole-image one: same bytes for every image.

mod common;

use generator_core::{Arch, Generator, Image, MAX_ARENA_BYTES, StreamGenerator, default_model};
use proptest::prelude::*;

#[test]
fn streaming_arena_is_small() {
    let model = default_model().expect("shipped model loads");
    // 7x7x16 linear output (784) + 14x14x16 map (3,136); the 3x28x8 window (672) reuses
    // the first region.
    assert_eq!(StreamGenerator::arena_bytes(&model), 784 + 3136);
    let mut arena = vec![0u8; StreamGenerator::arena_bytes(&model)];
    assert!(StreamGenerator::new(&model, &mut arena[..3919]).is_err());
    assert!(StreamGenerator::new(&model, &mut arena).is_ok());
}

/// `Arch` is the one source of the budgets: its streaming figure is the streaming
/// generator's own, for the shipped model and for other widths.
#[test]
fn the_architecture_knows_the_streaming_arena() {
    let model = default_model().expect("shipped model loads");
    assert_eq!(
        Arch::DEFAULT.stream_arena_bytes(),
        StreamGenerator::arena_bytes(&model)
    );
    #[cfg(feature = "alloc")]
    for (c0, c1, c2) in [(16, 16, 8), (8, 18, 7), (12, 12, 9), (4, 8, 10), (1, 1, 1)] {
        let arch = Arch { c0, c1, c2 };
        let mut rng = common::Rng(c0 as u64 * 10_000 + c1 as u64 * 100 + c2 as u64);
        let layers = common::random_layers(&arch.layer_shapes(), &mut rng);
        let bytes = common::encode(&layers, &common::random_lut(&mut rng));
        let model = generator_core::Model::from_bytes(&bytes).expect("model loads");
        assert_eq!(
            arch.stream_arena_bytes(),
            StreamGenerator::arena_bytes(&model),
            "{arch:?}"
        );
    }
}

#[test]
fn weight_cache_size() {
    let model = default_model().expect("shipped model loads");
    let mut arena = vec![0u8; StreamGenerator::arena_bytes(&model)];
    if cfg!(feature = "reference-only") {
        // The reference kernels prepare no weights: the cache needs nothing.
        assert_eq!(StreamGenerator::weight_cache_words(&model), 0);
        assert!(StreamGenerator::with_weight_cache(&model, &mut arena, &mut []).is_ok());
        return;
    }
    // The two streamed layers' merged weights: 4 phases x 8 channels x 2x2 taps x 8
    // pairs, and 1 channel x 3x3 taps x 4 pairs.
    assert_eq!(StreamGenerator::weight_cache_words(&model), 1024 + 36);
    let mut cache = vec![0u32; 1059];
    assert!(StreamGenerator::with_weight_cache(&model, &mut arena, &mut cache).is_err());
    let mut cache = vec![0u32; 1060];
    assert!(StreamGenerator::with_weight_cache(&model, &mut arena, &mut cache).is_ok());
}

#[test]
fn streaming_rejects_bad_digits() {
    let model = default_model().expect("shipped model loads");
    let mut arena = vec![0u8; StreamGenerator::arena_bytes(&model)];
    let mut g = StreamGenerator::new(&model, &mut arena).expect("arena fits");
    let mut img: Image = [0; 784];
    assert_eq!(
        g.generate(10, 1, &mut img),
        Err(generator_core::Error::InvalidDigit)
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn streaming_equals_whole_image(digit in 0u8..10, seed in any::<u32>()) {
        let model = default_model().expect("shipped model loads");
        let mut arena = vec![0u8; MAX_ARENA_BYTES];
        let mut whole = Generator::new(&model, &mut arena).expect("arena fits");
        let mut want: Image = [0; 784];
        whole.generate(digit, seed, &mut want).expect("generates");
        // A dirty arena and image must not matter.
        let mut small = vec![0xA5u8; StreamGenerator::arena_bytes(&model)];
        let mut stream = StreamGenerator::new(&model, &mut small).expect("arena fits");
        let mut got: Image = [0x5A; 784];
        stream.generate(digit, seed, &mut got).expect("generates");
        prop_assert_eq!(&got[..], &want[..]);
        // With the weight cache (dirty before it is filled): the same bytes.
        let mut cache = vec![0xDEAD_BEEFu32; StreamGenerator::weight_cache_words(&model) + 3];
        let mut cached = StreamGenerator::with_weight_cache(&model, &mut small, &mut cache)
            .expect("arena and cache fit");
        let mut got: Image = [0x5A; 784];
        cached.generate(digit, seed, &mut got).expect("generates");
        prop_assert_eq!(&got[..], &want[..]);
    }
}
