//! The exported functions and the buffers they share with the page.
//!
//! `unsafe` is allowed here only: for `#[no_mangle]` and for the one function that hands
//! out the statics (`with_buffers`), and the `Sync` claim that lets them be a `static`.

#![allow(unsafe_code)]

use core::cell::UnsafeCell;

use generator_core::{DEFAULT_MODEL, Error, IMAGE_PIXELS, Image, MAX_ARENA_BYTES};

use crate::{MAX_IMAGES, MODEL_CAPACITY, Message, check, generate};

/// Everything the page shares with the module.
struct Buffers {
    model: [u8; MODEL_CAPACITY],
    digits: [u8; MAX_IMAGES],
    seeds: [u32; MAX_IMAGES],
    images: [Image; MAX_IMAGES],
    checksums: [u32; MAX_IMAGES],
    arena: [u8; MAX_ARENA_BYTES],
    message: Message,
}

struct Shared(UnsafeCell<Buffers>);

// SAFETY: wasm32-unknown-unknown (built without the `atomics` target feature) runs one
// thread, and no export re-enters another, so at most one reference to the buffers is
// live at a time. On the host only the single test `exports_round_trip` touches them.
unsafe impl Sync for Shared {}

static SHARED: Shared = Shared(UnsafeCell::new(Buffers {
    model: [0; MODEL_CAPACITY],
    digits: [0; MAX_IMAGES],
    seeds: [0; MAX_IMAGES],
    images: [[0; IMAGE_PIXELS]; MAX_IMAGES],
    checksums: [0; MAX_IMAGES],
    arena: [0; MAX_ARENA_BYTES],
    message: Message::new(),
}));

/// Runs `f` on the shared buffers.
fn with_buffers<R>(f: impl FnOnce(&mut Buffers) -> R) -> R {
    // SAFETY: see `impl Sync for Shared`: no other reference exists during the call. The
    // page writes linear memory only between calls.
    f(unsafe { &mut *SHARED.0.get() })
}

/// `0` for `Ok`; `-1` for `Err`, with the error's text in the message buffer.
fn status(result: Result<(), Error>, message: &mut Message) -> i32 {
    match result {
        Ok(()) => 0,
        Err(e) => {
            message.set(e);
            -1
        }
    }
}

/// Address of the shipped model (`generator-core/models/default.dgen`, embedded).
#[unsafe(no_mangle)]
pub extern "C" fn dgen_default_model() -> *const u8 {
    DEFAULT_MODEL.as_ptr()
}

/// Length of the shipped model in bytes.
#[unsafe(no_mangle)]
pub extern "C" fn dgen_default_model_len() -> usize {
    DEFAULT_MODEL.len()
}

/// Address of the model buffer ([`MODEL_CAPACITY`] bytes) the page copies a model into.
#[unsafe(no_mangle)]
pub extern "C" fn dgen_model_buffer() -> *mut u8 {
    with_buffers(|b| b.model.as_mut_ptr())
}

/// [`MODEL_CAPACITY`].
#[unsafe(no_mangle)]
pub extern "C" fn dgen_model_capacity() -> usize {
    MODEL_CAPACITY
}

/// Address of the digit labels ([`MAX_IMAGES`] bytes).
#[unsafe(no_mangle)]
pub extern "C" fn dgen_digits() -> *mut u8 {
    with_buffers(|b| b.digits.as_mut_ptr())
}

/// Address of the seeds ([`MAX_IMAGES`] `u32`, little-endian, 4-byte aligned).
#[unsafe(no_mangle)]
pub extern "C" fn dgen_seeds() -> *mut u32 {
    with_buffers(|b| b.seeds.as_mut_ptr())
}

/// [`MAX_IMAGES`].
#[unsafe(no_mangle)]
pub extern "C" fn dgen_max_images() -> usize {
    MAX_IMAGES
}

/// Address of the images ([`MAX_IMAGES`] x 784 bytes, 28 x 28 row-major, 0 = background).
#[unsafe(no_mangle)]
pub extern "C" fn dgen_images() -> *const u8 {
    with_buffers(|b| b.images.as_ptr().cast())
}

/// Address of the images' FNV-1a checksums ([`MAX_IMAGES`] `u32`).
#[unsafe(no_mangle)]
pub extern "C" fn dgen_checksums() -> *const u32 {
    with_buffers(|b| b.checksums.as_ptr())
}

/// Address of the last error's text (UTF-8, [`dgen_message_len`] bytes).
#[unsafe(no_mangle)]
pub extern "C" fn dgen_message() -> *const u8 {
    with_buffers(|b| b.message.bytes.as_ptr())
}

/// Length of the last error's text.
#[unsafe(no_mangle)]
pub extern "C" fn dgen_message_len() -> usize {
    with_buffers(|b| b.message.len)
}

/// Checks the first `model_len` bytes of the model buffer as a model: `0`, or `-1` with
/// the core's error text in [`dgen_message`].
#[unsafe(no_mangle)]
pub extern "C" fn dgen_check(model_len: usize) -> i32 {
    with_buffers(|b| {
        let result = match b.model.get(..model_len) {
            Some(model) => check(model, &mut b.arena),
            None => Err(Error::Truncated),
        };
        status(result, &mut b.message)
    })
}

/// Generates `count` images (at most [`MAX_IMAGES`]), image `i` of digit `digits[i]` from
/// seed `seeds[i]`, with the model in the first `model_len` bytes of the model buffer;
/// fills the images and checksums. `0`, or `-1` with the core's error text in
/// [`dgen_message`].
#[unsafe(no_mangle)]
pub extern "C" fn dgen_generate(model_len: usize, count: usize) -> i32 {
    with_buffers(|b| {
        let result = match (b.model.get(..model_len), b.digits.get(..count)) {
            (None, _) => Err(Error::Truncated),
            (_, None) => Err(Error::BufferTooSmall),
            (Some(model), Some(digits)) => generate(
                model,
                digits,
                &b.seeds,
                &mut b.images,
                &mut b.checksums,
                &mut b.arena,
            ),
        };
        status(result, &mut b.message)
    })
}
