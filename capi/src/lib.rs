//! C ABI over [`generator_core`]: five functions, no allocation, no panics.
//!
//! The header is `include/dgen.h` (generated from this file by cbindgen; a test fails
//! when it drifts). Build the static library with
//! `cargo build -p dgen-capi --release` (`target/release/libdgen.a`), or for a
//! Cortex-M4F with `--target thumbv7em-none-eabihf`.
//!
//! Every function checks its pointers and lengths and returns `0` (or a size) on
//! success and a negative `DGEN_ERR_*` code otherwise; [`dgen_error_message`] turns a
//! code into a static string. Nothing keeps state between calls: the model is decoded
//! (header and CRC checked) on each [`dgen_generate`] call, which costs a small part of
//! one generation (measured figures in docs/PERFORMANCE.md, "C").
//!
//! The code is `no_std` in all but name: `std` is linked only on hosted targets, where
//! it supplies the panic runtime; on bare metal (`target_os = "none"`) the crate is
//! `#![no_std]` and, with the default `panic-handler` feature, brings a spinning panic
//! handler so that the static library links on its own. No path in this crate panics:
//! slices are only built from checked pointers, and errors are returned as codes. Were a
//! panic to happen anyway, Rust aborts rather than unwind out of an `extern "C"` function.

#![no_std]
#![deny(missing_docs)]

#[cfg(not(target_os = "none"))]
extern crate std;

use core::ffi::c_char;

use generator_core::{Error, Generator, IMAGE_PIXELS, Model};

/// Success.
pub const DGEN_OK: i32 = 0;
/// A required pointer argument was null.
pub const DGEN_ERR_NULL_POINTER: i32 = -1;
/// The model bytes do not start with the model magic number.
pub const DGEN_ERR_BAD_MAGIC: i32 = -2;
/// The model's format version is not one this library reads.
pub const DGEN_ERR_UNSUPPORTED_VERSION: i32 = -3;
/// The model bytes end too early.
pub const DGEN_ERR_TRUNCATED: i32 = -4;
/// Bytes follow the end of the encoded model.
pub const DGEN_ERR_TRAILING_BYTES: i32 = -5;
/// The model's CRC-32 does not match its payload.
pub const DGEN_ERR_CHECKSUM: i32 = -6;
/// The model payload is not a valid model.
pub const DGEN_ERR_MALFORMED: i32 = -7;
/// The model's layer shapes do not chain.
pub const DGEN_ERR_SHAPE: i32 = -8;
/// The arena is shorter than `dgen_arena_bytes` for this model (or the model needs
/// more than any supported arena).
pub const DGEN_ERR_ARENA_TOO_SMALL: i32 = -9;
/// The digit is above 9.
pub const DGEN_ERR_INVALID_DIGIT: i32 = -10;
/// An output buffer is too short.
pub const DGEN_ERR_BUFFER_TOO_SMALL: i32 = -11;
/// A length is larger than any object can be (`> PTRDIFF_MAX`).
pub const DGEN_ERR_LENGTH: i32 = -12;
/// An error this version of the library has no specific code for.
pub const DGEN_ERR_OTHER: i32 = -13;

/// Bytes in one generated image (28 x 28, row-major, 0 = background, 255 = ink).
pub const DGEN_IMAGE_PIXELS: usize = 784;

/// An arena of this many bytes suffices for every model the library accepts.
pub const DGEN_MAX_ARENA_BYTES: usize = 9408;

// The header carries literal values (cbindgen cannot follow paths into the core):
// keep them equal to the core's constants.
const _: () = assert!(DGEN_IMAGE_PIXELS == IMAGE_PIXELS);
const _: () = assert!(DGEN_MAX_ARENA_BYTES == generator_core::MAX_ARENA_BYTES);

/// The code for a core error.
const fn code(e: Error) -> i32 {
    match e {
        Error::BadMagic => DGEN_ERR_BAD_MAGIC,
        Error::UnsupportedVersion => DGEN_ERR_UNSUPPORTED_VERSION,
        Error::Truncated => DGEN_ERR_TRUNCATED,
        Error::TrailingBytes => DGEN_ERR_TRAILING_BYTES,
        Error::ChecksumMismatch => DGEN_ERR_CHECKSUM,
        Error::Malformed => DGEN_ERR_MALFORMED,
        Error::ShapeMismatch => DGEN_ERR_SHAPE,
        Error::ArenaTooSmall => DGEN_ERR_ARENA_TOO_SMALL,
        Error::InvalidDigit => DGEN_ERR_INVALID_DIGIT,
        Error::BufferTooSmall => DGEN_ERR_BUFFER_TOO_SMALL,
        _ => DGEN_ERR_OTHER,
    }
}

/// Borrows `len` bytes at `ptr`, after checking the pointer and the length.
///
/// # Safety
/// If `ptr` is not null, it must point to `len` readable bytes that stay unchanged for
/// `'a`.
#[allow(unsafe_code)]
unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> Result<&'a [u8], i32> {
    if ptr.is_null() {
        return Err(DGEN_ERR_NULL_POINTER);
    }
    if len > isize::MAX as usize {
        return Err(DGEN_ERR_LENGTH);
    }
    // SAFETY: non-null, length bounded, validity guaranteed by the caller.
    Ok(unsafe { core::slice::from_raw_parts(ptr, len) })
}

/// Decodes and validates a model (magic, version, CRC-32, shapes).
///
/// # Safety
/// As [`bytes`].
#[allow(unsafe_code)]
unsafe fn model<'a>(ptr: *const u8, len: usize) -> Result<Model<'a>, i32> {
    // SAFETY: forwarded contract.
    let raw = unsafe { bytes(ptr, len) }?;
    Model::from_bytes(raw).map_err(code)
}

/// Returns the arena size in bytes that `dgen_generate` needs for this model (at most
/// `DGEN_MAX_ARENA_BYTES`), or a negative `DGEN_ERR_*` code if the model is null or
/// invalid.
///
/// # Safety
/// `model` is null or points to `model_len` readable bytes.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dgen_arena_bytes(model: *const u8, model_len: usize) -> i32 {
    // SAFETY: the caller's contract is the one `model` needs.
    match unsafe { self::model(model, model_len) } {
        // The loader caps the arena at MAX_ARENA_BYTES (9,408), so this never saturates.
        Ok(m) => i32::try_from(m.arena_bytes()).unwrap_or(DGEN_ERR_ARENA_TOO_SMALL),
        Err(e) => e,
    }
}

/// Returns the model shipped with the library (the `.dgen` file embedded at build time,
/// 4-byte aligned, static) and stores its length in `*len` when `len` is not null.
///
/// # Safety
/// `len` is null or points to a writable `size_t`.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dgen_default_model(len: *mut usize) -> *const u8 {
    let bytes = generator_core::DEFAULT_MODEL;
    if !len.is_null() {
        // SAFETY: non-null and writable per the contract.
        unsafe { len.write(bytes.len()) };
    }
    bytes.as_ptr()
}

/// Generates one 28 x 28 image of `digit` (0-9) from the noise of `seed` into
/// `image_784` (784 bytes, row-major, 0 = background, 255 = ink), using `arena`
/// (`arena_len` >= `dgen_arena_bytes(model, model_len)`) as scratch memory.
///
/// Returns `DGEN_OK` or a negative `DGEN_ERR_*` code; on error `image_784` may be
/// partly written. The same `(model, digit, seed)` gives the same bytes on every
/// platform.
///
/// # Safety
/// - `model` is null or points to `model_len` readable bytes.
/// - `image_784` is null or points to 784 writable bytes.
/// - `arena` is null or points to `arena_len` writable bytes.
/// - The three regions do not overlap, and nothing else touches them during the call.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dgen_generate(
    model: *const u8,
    model_len: usize,
    digit: u8,
    seed: u32,
    image_784: *mut u8,
    arena: *mut u8,
    arena_len: usize,
) -> i32 {
    if image_784.is_null() || arena.is_null() {
        return DGEN_ERR_NULL_POINTER;
    }
    if arena_len > isize::MAX as usize {
        return DGEN_ERR_LENGTH;
    }
    // SAFETY: the caller's contract covers `model`.
    let model = match unsafe { self::model(model, model_len) } {
        Ok(m) => m,
        Err(e) => return e,
    };
    // SAFETY: non-null, 784 writable bytes that nothing else aliases, per the contract;
    // `[u8; 784]` has alignment 1.
    let image = unsafe { &mut *image_784.cast::<[u8; IMAGE_PIXELS]>() };
    // SAFETY: non-null, length bounded, writable and unaliased per the contract.
    let arena = unsafe { core::slice::from_raw_parts_mut(arena, arena_len) };
    let result = Generator::new(&model, arena).and_then(|mut g| g.generate(digit, seed, image));
    match result {
        Ok(()) => DGEN_OK,
        Err(e) => code(e),
    }
}

/// Generates `count` images, image `i` of digit `digits[i]` from seed `seed + i`
/// (wrapping), into `images` (`images_len` >= `count * 784` bytes, image after image).
/// Decodes the model once for the whole batch, where `dgen_generate` decodes it
/// (checksum included) on every call. Every digit is checked before anything is
/// generated. Returns `DGEN_OK` or a negative `DGEN_ERR_*` code.
///
/// # Safety
/// - `model` is null or points to `model_len` readable bytes.
/// - `digits` is null or points to `count` readable bytes (it may be null if `count` is 0).
/// - `images` is null or points to `images_len` writable bytes.
/// - `arena` is null or points to `arena_len` writable bytes.
/// - The regions written (`images`, `arena`) overlap nothing else passed in, and nothing
///   else touches them during the call.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dgen_generate_batch(
    model: *const u8,
    model_len: usize,
    digits: *const u8,
    count: usize,
    seed: u32,
    images: *mut u8,
    images_len: usize,
    arena: *mut u8,
    arena_len: usize,
) -> i32 {
    if images.is_null() || arena.is_null() || (digits.is_null() && count > 0) {
        return DGEN_ERR_NULL_POINTER;
    }
    if images_len > isize::MAX as usize || arena_len > isize::MAX as usize {
        return DGEN_ERR_LENGTH;
    }
    let Some(needed) = count.checked_mul(IMAGE_PIXELS) else {
        return DGEN_ERR_BUFFER_TOO_SMALL;
    };
    if images_len < needed {
        return DGEN_ERR_BUFFER_TOO_SMALL;
    }
    // SAFETY: the caller's contract covers `model`.
    let model = match unsafe { self::model(model, model_len) } {
        Ok(m) => m,
        Err(e) => return e,
    };
    let labels: &[u8] = if count == 0 {
        &[]
    } else {
        // SAFETY: non-null (checked above), `count` readable bytes per the contract.
        match unsafe { bytes(digits, count) } {
            Ok(l) => l,
            Err(e) => return e,
        }
    };
    // SAFETY: non-null, length bounded, writable and unaliased per the contract.
    let images = unsafe { core::slice::from_raw_parts_mut(images, needed) };
    // SAFETY: as above.
    let arena = unsafe { core::slice::from_raw_parts_mut(arena, arena_len) };
    let (images, _) = images.as_chunks_mut::<IMAGE_PIXELS>();
    let result =
        Generator::new(&model, arena).and_then(|mut g| g.generate_batch(labels, seed, images));
    match result {
        Ok(()) => DGEN_OK,
        Err(e) => code(e),
    }
}

/// Returns a static, NUL-terminated English description of a `DGEN_*` code (a generic
/// text for codes it does not know). Never returns null.
#[unsafe(no_mangle)]
#[allow(unsafe_code)]
pub extern "C" fn dgen_error_message(code: i32) -> *const c_char {
    let text: &'static core::ffi::CStr = match code {
        DGEN_OK => c"success",
        DGEN_ERR_NULL_POINTER => c"a required pointer is null",
        DGEN_ERR_BAD_MAGIC => c"not a digit-generator model (bad magic number)",
        DGEN_ERR_UNSUPPORTED_VERSION => c"unsupported model format version",
        DGEN_ERR_TRUNCATED => c"model data is truncated",
        DGEN_ERR_TRAILING_BYTES => c"unexpected bytes after the model",
        DGEN_ERR_CHECKSUM => c"model checksum mismatch",
        DGEN_ERR_MALFORMED => c"malformed model",
        DGEN_ERR_SHAPE => c"model layer shapes do not match",
        DGEN_ERR_ARENA_TOO_SMALL => c"arena too small (see dgen_arena_bytes)",
        DGEN_ERR_INVALID_DIGIT => c"digit must be 0..9",
        DGEN_ERR_BUFFER_TOO_SMALL => c"output buffer too small",
        DGEN_ERR_LENGTH => c"length larger than PTRDIFF_MAX",
        DGEN_ERR_OTHER => c"unclassified error",
        _ => c"unknown dgen error code",
    };
    text.as_ptr()
}

/// Spins forever: no code path in this crate panics, so this only completes the link.
#[cfg(all(target_os = "none", feature = "panic-handler", not(test)))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {
        core::hint::spin_loop();
    }
}
