//! C ABI over [`generator_core`]: seven functions, no allocation, no panics.
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
//! handler so that the static library links on its own. With the `threads` feature
//! (hosts only), [`dgen_generate_batch`] splits a batch across threads
//! (`generator_core::threads`; the count from `DGEN_THREADS`, else every core, or the
//! argument of [`dgen_generate_batch_threads`]); the standard library then allocates the
//! threads and their stacks. Without it a batch runs on the calling thread, in the
//! caller's arena. No path in this crate panics:
//! slices are only built from checked pointers, and errors are returned as codes. Were a
//! panic to happen anyway, Rust aborts rather than unwind out of an `extern "C"` function.

#![no_std]
#![deny(missing_docs)]

#[cfg(all(feature = "threads", target_os = "none"))]
compile_error!("feature `threads` needs an operating system: leave it off on bare metal");

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
/// A thread count outside `0..=DGEN_MAX_THREADS`, or a `DGEN_THREADS` environment
/// variable that is not a whole number from 1 to `DGEN_MAX_THREADS`.
pub const DGEN_ERR_THREADS: i32 = -14;

/// Bytes in one generated image (28 x 28, row-major, 0 = background, 255 = ink).
pub const DGEN_IMAGE_PIXELS: usize = 784;

/// An arena of this many bytes suffices for every model the library accepts.
pub const DGEN_MAX_ARENA_BYTES: usize = 9408;

/// The largest thread count `dgen_generate_batch_threads` and `DGEN_THREADS` accept.
pub const DGEN_MAX_THREADS: u32 = 1024;

// The header carries literal values (cbindgen cannot follow paths into the core):
// keep them equal to the core's constants.
const _: () = assert!(DGEN_IMAGE_PIXELS == IMAGE_PIXELS);
const _: () = assert!(DGEN_MAX_ARENA_BYTES == generator_core::MAX_ARENA_BYTES);
#[cfg(feature = "threads")]
const _: () = assert!(DGEN_MAX_THREADS as usize == generator_core::threads::MAX_THREADS);

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
/// A library built with the `threads` feature splits the batch across
/// `dgen_default_threads()` threads (`DGEN_ERR_THREADS` if the `DGEN_THREADS`
/// environment variable is set to something that is not a count); without it, the batch
/// runs on the calling thread. The bytes are the same either way.
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
    // SAFETY: the same contract.
    unsafe {
        dgen_generate_batch_threads(
            model, model_len, digits, count, seed, images, images_len, arena, arena_len, 0,
        )
    }
}

/// `dgen_generate_batch` on at most `threads` threads: `0` means the default
/// (`dgen_default_threads()`), `1` to `DGEN_MAX_THREADS` that many (never more than
/// `count`); other values give `DGEN_ERR_THREADS`. With more than one thread, each
/// thread has its own arena on its stack and `arena` is only checked for size. A
/// library built without the `threads` feature runs every batch on the calling thread.
/// The bytes do not depend on the thread count.
///
/// # Safety
/// As `dgen_generate_batch`.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dgen_generate_batch_threads(
    model: *const u8,
    model_len: usize,
    digits: *const u8,
    count: usize,
    seed: u32,
    images: *mut u8,
    images_len: usize,
    arena: *mut u8,
    arena_len: usize,
    threads: u32,
) -> i32 {
    if images.is_null() || arena.is_null() || (digits.is_null() && count > 0) {
        return DGEN_ERR_NULL_POINTER;
    }
    if images_len > isize::MAX as usize || arena_len > isize::MAX as usize {
        return DGEN_ERR_LENGTH;
    }
    if threads > DGEN_MAX_THREADS {
        return DGEN_ERR_THREADS;
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
    let threads = match threads {
        0 => match default_threads() {
            Ok(n) => n,
            Err(e) => return e,
        },
        n => n as usize,
    };
    #[cfg(not(feature = "threads"))]
    let _ = threads; // one thread: the loop below
    // SAFETY: non-null, length bounded, writable and unaliased per the contract.
    let images = unsafe { core::slice::from_raw_parts_mut(images, needed) };
    // SAFETY: as above.
    let arena = unsafe { core::slice::from_raw_parts_mut(arena, arena_len) };
    let (images, _) = images.as_chunks_mut::<IMAGE_PIXELS>();
    let result = Generator::new(&model, arena).and_then(|mut g| {
        #[cfg(feature = "threads")]
        if let Some(n) = core::num::NonZeroUsize::new(threads).filter(|n| n.get() > 1) {
            return generator_core::threads::generate_batch_threads(
                &model, labels, seed, images, n,
            );
        }
        g.generate_batch(labels, seed, images)
    });
    match result {
        Ok(()) => DGEN_OK,
        Err(e) => code(e),
    }
}

/// The thread count from `DGEN_THREADS` or the host, or `DGEN_ERR_THREADS`.
#[cfg(feature = "threads")]
fn default_threads() -> Result<usize, i32> {
    generator_core::threads::default_threads()
        .map(core::num::NonZeroUsize::get)
        .map_err(|_| DGEN_ERR_THREADS)
}

/// Without the `threads` feature every batch runs on the calling thread.
#[cfg(not(feature = "threads"))]
fn default_threads() -> Result<usize, i32> {
    Ok(1)
}

/// Returns the number of threads `dgen_generate_batch` uses: with the `threads`
/// feature, the `DGEN_THREADS` environment variable if set (`DGEN_ERR_THREADS` if it
/// is not a whole number from 1 to `DGEN_MAX_THREADS`), else the host's core count;
/// `1` in a library built without it.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub extern "C" fn dgen_default_threads() -> i32 {
    match default_threads() {
        // At most MAX_THREADS, or the host's parallelism: far below i32::MAX.
        Ok(n) => i32::try_from(n).unwrap_or(i32::MAX),
        Err(e) => e,
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
        DGEN_ERR_THREADS => {
            c"thread count must be 0 (default) or 1..1024; DGEN_THREADS, if set, 1..1024"
        }
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
