//! The C functions called from Rust: same bytes as the core, and every misuse
//! rejected with its documented code.

#![allow(unsafe_code)]

use std::ffi::CStr;
use std::ptr;

use dgen::*;
use generator_core::{Generator, IMAGE_PIXELS, MAX_ARENA_BYTES, default_model};

fn default_bytes() -> &'static [u8] {
    let mut len = 0usize;
    // SAFETY: `len` is a valid out-pointer; the returned pointer is static.
    unsafe {
        let p = dgen_default_model(&mut len);
        std::slice::from_raw_parts(p, len)
    }
}

fn generate(model: &[u8], digit: u8, seed: u32, arena_len: usize) -> (i32, [u8; 784]) {
    let mut image = [0u8; 784];
    let mut arena = vec![0u8; arena_len.max(1)];
    // SAFETY: all buffers are live and sized as passed.
    let rc = unsafe {
        dgen_generate(
            model.as_ptr(),
            model.len(),
            digit,
            seed,
            image.as_mut_ptr(),
            arena.as_mut_ptr(),
            arena_len,
        )
    };
    (rc, image)
}

fn core_image(digit: u8, seed: u32) -> [u8; IMAGE_PIXELS] {
    let model = default_model().unwrap();
    let mut arena = [0u8; MAX_ARENA_BYTES];
    let mut g = Generator::new(&model, &mut arena).unwrap();
    let mut image = [0u8; IMAGE_PIXELS];
    g.generate(digit, seed, &mut image).unwrap();
    image
}

#[test]
fn default_model_is_the_cores() {
    assert_eq!(default_bytes(), generator_core::DEFAULT_MODEL);
    // SAFETY: a null length pointer is allowed.
    assert!(!unsafe { dgen_default_model(ptr::null_mut()) }.is_null());
    let m = default_bytes();
    // SAFETY: valid slice.
    let need = unsafe { dgen_arena_bytes(m.as_ptr(), m.len()) };
    assert_eq!(need as usize, default_model().unwrap().arena_bytes());
}

#[test]
fn images_equal_the_cores() {
    let m = default_bytes();
    // SAFETY: valid slice.
    let need = unsafe { dgen_arena_bytes(m.as_ptr(), m.len()) } as usize;
    for (digit, seed) in [(0u8, 42u32), (7, 0), (9, u32::MAX)] {
        let (rc, image) = generate(m, digit, seed, need);
        assert_eq!(rc, DGEN_OK);
        assert_eq!(image, core_image(digit, seed));
    }
}

#[test]
fn batch_equals_single_calls() {
    let m = default_bytes();
    let digits = [3u8, 1, 4, 1, 5];
    let mut images = vec![0u8; digits.len() * 784];
    let mut arena = [0u8; DGEN_MAX_ARENA_BYTES];
    let call = |images: &mut [u8], len: usize, digits: &[u8], arena: &mut [u8]| {
        // SAFETY: buffers live; `len` never exceeds `images.len()` here.
        unsafe {
            dgen_generate_batch(
                m.as_ptr(),
                m.len(),
                digits.as_ptr(),
                digits.len(),
                u32::MAX - 1,
                images.as_mut_ptr(),
                len,
                arena.as_mut_ptr(),
                arena.len(),
            )
        }
    };
    assert_eq!(
        call(&mut images, digits.len() * 784, &digits, &mut arena),
        DGEN_OK
    );
    for (i, (&d, img)) in digits.iter().zip(images.chunks_exact(784)).enumerate() {
        assert_eq!(img, core_image(d, (u32::MAX - 1).wrapping_add(i as u32)));
    }
    let len = images.len();
    assert_eq!(
        call(&mut images, len - 1, &digits, &mut arena),
        DGEN_ERR_BUFFER_TOO_SMALL
    );
    assert_eq!(
        call(&mut images, len, &[1, 2, 10], &mut arena),
        DGEN_ERR_INVALID_DIGIT
    );
    assert_eq!(
        call(&mut images, len, &[1], &mut arena[..100]),
        DGEN_ERR_ARENA_TOO_SMALL
    );
    assert_eq!(call(&mut images, len, &[], &mut arena), DGEN_OK);
    // SAFETY: null digits with count 0 is allowed; null digits with count 1 is rejected.
    unsafe {
        let rc = dgen_generate_batch(
            m.as_ptr(),
            m.len(),
            ptr::null(),
            0,
            0,
            images.as_mut_ptr(),
            0,
            arena.as_mut_ptr(),
            arena.len(),
        );
        assert_eq!(rc, DGEN_OK);
        let rc = dgen_generate_batch(
            m.as_ptr(),
            m.len(),
            ptr::null(),
            1,
            0,
            images.as_mut_ptr(),
            len,
            arena.as_mut_ptr(),
            arena.len(),
        );
        assert_eq!(rc, DGEN_ERR_NULL_POINTER);
        let rc = dgen_generate_batch(
            m.as_ptr(),
            m.len(),
            digits.as_ptr(),
            usize::MAX / 2,
            0,
            images.as_mut_ptr(),
            len,
            arena.as_mut_ptr(),
            arena.len(),
        );
        assert_eq!(rc, DGEN_ERR_BUFFER_TOO_SMALL);
    }
}

#[test]
fn misuse_gives_the_documented_codes() {
    let m = default_bytes();
    let need = default_model().unwrap().arena_bytes();
    assert_eq!(generate(m, 10, 0, need).0, DGEN_ERR_INVALID_DIGIT);
    assert_eq!(generate(m, 1, 0, need - 1).0, DGEN_ERR_ARENA_TOO_SMALL);
    assert_eq!(generate(m, 1, 0, 0).0, DGEN_ERR_ARENA_TOO_SMALL);
    assert_eq!(
        generate(&m[..m.len() / 2], 1, 0, need).0,
        DGEN_ERR_TRUNCATED
    );
    assert_eq!(
        generate(b"not a model at all", 1, 0, need).0,
        DGEN_ERR_BAD_MAGIC
    );
    let mut flipped = m.to_vec();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x55;
    assert_eq!(generate(&flipped, 1, 0, need).0, DGEN_ERR_CHECKSUM);
    let mut longer = m.to_vec();
    longer.push(0);
    assert!(generate(&longer, 1, 0, need).0 < 0);

    let mut image = [0u8; 784];
    let mut arena = vec![0u8; need];
    // SAFETY: every pointer is null or valid for its length.
    unsafe {
        assert_eq!(dgen_arena_bytes(ptr::null(), 10), DGEN_ERR_NULL_POINTER);
        assert_eq!(dgen_arena_bytes(m.as_ptr(), usize::MAX), DGEN_ERR_LENGTH);
        let (mp, ml) = (m.as_ptr(), m.len());
        let (ip, ap) = (image.as_mut_ptr(), arena.as_mut_ptr());
        assert_eq!(
            dgen_generate(ptr::null(), ml, 1, 0, ip, ap, need),
            DGEN_ERR_NULL_POINTER
        );
        assert_eq!(
            dgen_generate(mp, ml, 1, 0, ptr::null_mut(), ap, need),
            DGEN_ERR_NULL_POINTER
        );
        assert_eq!(
            dgen_generate(mp, ml, 1, 0, ip, ptr::null_mut(), need),
            DGEN_ERR_NULL_POINTER
        );
        assert_eq!(
            dgen_generate(mp, ml, 1, 0, ip, ap, usize::MAX),
            DGEN_ERR_LENGTH
        );
    }
}

#[test]
fn every_code_has_its_own_message() {
    let codes = (DGEN_ERR_THREADS..=DGEN_OK).collect::<Vec<_>>();
    let unknown = unsafe { CStr::from_ptr(dgen_error_message(1)) };
    let mut seen = std::collections::HashSet::new();
    for code in codes {
        // SAFETY: the function returns static NUL-terminated strings.
        let text = unsafe { CStr::from_ptr(dgen_error_message(code)) };
        assert_ne!(text, unknown, "code {code} has no message");
        assert!(
            seen.insert(text.to_owned()),
            "code {code} repeats a message"
        );
    }
    for code in [1, -15, i32::MIN, i32::MAX] {
        // SAFETY: as above.
        assert_eq!(unsafe { CStr::from_ptr(dgen_error_message(code)) }, unknown);
    }
}

/// `dgen_generate_batch_threads` with `threads` threads: its code and the images.
fn batch_threads(digits: &[u8], seed: u32, threads: u32) -> (i32, Vec<u8>) {
    let m = default_bytes();
    let mut images = vec![0u8; digits.len() * 784];
    let mut arena = [0u8; DGEN_MAX_ARENA_BYTES];
    // SAFETY: all buffers are live and sized as passed.
    let rc = unsafe {
        dgen_generate_batch_threads(
            m.as_ptr(),
            m.len(),
            digits.as_ptr(),
            digits.len(),
            seed,
            images.as_mut_ptr(),
            images.len(),
            arena.as_mut_ptr(),
            arena.len(),
            threads,
        )
    };
    (rc, images)
}

#[test]
fn batch_bytes_do_not_depend_on_the_thread_count() {
    for (n, seed) in [(1usize, 5u32), (13, u32::MAX - 3), (10_000, 42)] {
        let digits: Vec<u8> = (0..n).map(|i| ((i * 7 + i / 3) % 10) as u8).collect();
        let (rc, one) = batch_threads(&digits, seed, 1);
        assert_eq!(rc, DGEN_OK);
        if n <= 13 {
            for (i, img) in one.chunks_exact(784).enumerate() {
                assert_eq!(img, core_image(digits[i], seed.wrapping_add(i as u32)));
            }
        }
        for threads in [0, 2, 3] {
            let (rc, images) = batch_threads(&digits, seed, threads);
            assert_eq!(rc, DGEN_OK);
            assert!(images == one, "batch {n}, threads {threads}: images differ");
        }
    }
}

#[test]
fn thread_counts() {
    assert_eq!(batch_threads(&[1, 2], 0, DGEN_MAX_THREADS).0, DGEN_OK);
    assert_eq!(
        batch_threads(&[1, 2], 0, DGEN_MAX_THREADS + 1).0,
        DGEN_ERR_THREADS
    );
    assert_eq!(batch_threads(&[1, 2], 0, u32::MAX).0, DGEN_ERR_THREADS);
    // The default: DGEN_THREADS if set (CI may set it), else the host's parallelism.
    let expected =
        generator_core::threads::default_threads().map_or(DGEN_ERR_THREADS, |n| n.get() as i32);
    assert_eq!(dgen_default_threads(), expected);
    assert!(dgen_default_threads() >= 1 || std::env::var_os("DGEN_THREADS").is_some());
}
