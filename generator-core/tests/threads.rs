//! Batches across threads (feature `std`): the same bytes as one generator's
//! `generate_batch` for 1, 2 and 3 threads and batches of 1, 13 and 10,000.

use std::num::NonZeroUsize;

use generator_core::threads::{generate_batch_threads, generate_batch_threads_f32_bytes};
use generator_core::{
    Error, Generator, IMAGE_PIXELS, Image, MAX_ARENA_BYTES, default_model, to_signed_unit,
};

fn labels(n: usize) -> Vec<u8> {
    // Not periodic in 10, so that a chunk boundary in the wrong place shows.
    (0..n).map(|i| ((i * 7 + i / 3) % 10) as u8).collect()
}

fn sequential(labels: &[u8], seed: u32) -> Vec<Image> {
    let model = default_model().unwrap();
    let mut arena = [0u8; MAX_ARENA_BYTES];
    let mut g = Generator::new(&model, &mut arena).unwrap();
    let mut out = vec![[0u8; IMAGE_PIXELS]; labels.len()];
    g.generate_batch(labels, seed, &mut out).unwrap();
    out
}

fn threads(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap()
}

#[test]
fn bytes_do_not_depend_on_the_thread_count() {
    let model = default_model().unwrap();
    // The last seed wraps inside the large batch.
    for (n, seed) in [(1usize, 42u32), (13, 7), (10_000, u32::MAX - 5_000)] {
        let labels = labels(n);
        let expected = sequential(&labels, seed);
        for t in [1, 2, 3] {
            let mut out = vec![[0u8; IMAGE_PIXELS]; n];
            generate_batch_threads(&model, &labels, seed, &mut out, threads(t)).unwrap();
            assert!(out == expected, "batch {n}, {t} threads: images differ");
        }
    }
}

#[test]
fn float_bytes_are_to_signed_unit_of_the_images() {
    let model = default_model().unwrap();
    for n in [1usize, 13, 200] {
        let labels = labels(n);
        let images = sequential(&labels, 3);
        let mut floats = vec![0f32; n * IMAGE_PIXELS];
        to_signed_unit(&images, &mut floats).unwrap();
        let expected: Vec<u8> = floats.iter().flat_map(|v| v.to_ne_bytes()).collect();
        for t in [1, 2, 3] {
            // One spare byte in front: the output need not be aligned.
            let mut out = vec![0xAAu8; n * IMAGE_PIXELS * 4 + 1];
            generate_batch_threads_f32_bytes(&model, &labels, 3, &mut out[1..], threads(t))
                .unwrap();
            assert!(out[1..] == expected[..], "batch {n}, {t} threads");
            assert_eq!(out[0], 0xAA);
        }
    }
}

#[test]
fn more_threads_than_images_and_empty_batches() {
    let model = default_model().unwrap();
    let labels = labels(5);
    let expected = sequential(&labels, 0);
    let mut out = vec![[0u8; IMAGE_PIXELS]; 5];
    generate_batch_threads(&model, &labels, 0, &mut out, threads(64)).unwrap();
    assert!(out == expected);
    generate_batch_threads(&model, &[], 0, &mut [], threads(3)).unwrap();
    generate_batch_threads_f32_bytes(&model, &[], 0, &mut [], threads(3)).unwrap();
}

#[test]
fn errors_before_any_work() {
    let model = default_model().unwrap();
    let mut out = vec![[7u8; IMAGE_PIXELS]; 20];
    let mut bad = labels(20);
    bad[17] = 10;
    assert_eq!(
        generate_batch_threads(&model, &bad, 0, &mut out, threads(2)),
        Err(Error::InvalidDigit)
    );
    assert!(
        out.iter().all(|img| img.iter().all(|&p| p == 7)),
        "nothing written"
    );
    assert_eq!(
        generate_batch_threads(&model, &labels(20), 0, &mut out[..19], threads(2)),
        Err(Error::BufferTooSmall)
    );
    let mut bytes = vec![0u8; 20 * IMAGE_PIXELS * 4 - 1];
    assert_eq!(
        generate_batch_threads_f32_bytes(&model, &labels(20), 0, &mut bytes, threads(2)),
        Err(Error::BufferTooSmall)
    );
}
