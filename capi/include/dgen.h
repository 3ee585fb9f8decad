/* dgen.h: C interface to the int8 conditional digit generator (crate dgen-capi).
 *
 * Generated from capi/src/lib.rs by cbindgen; do not edit by hand. Regenerate with
 *   DGEN_BLESS=1 cargo test -p dgen-capi --test header
 *
 * Link: target/<profile>/libdgen.a (host builds also need -lpthread -ldl -lm). */

#ifndef DGEN_H
#define DGEN_H

#include <stddef.h>
#include <stdint.h>

// Success.
#define DGEN_OK 0

// A required pointer argument was null.
#define DGEN_ERR_NULL_POINTER -1

// The model bytes do not start with the model magic number.
#define DGEN_ERR_BAD_MAGIC -2

// The model's format version is not one this library reads.
#define DGEN_ERR_UNSUPPORTED_VERSION -3

// The model bytes end too early.
#define DGEN_ERR_TRUNCATED -4

// Bytes follow the end of the encoded model.
#define DGEN_ERR_TRAILING_BYTES -5

// The model's CRC-32 does not match its payload.
#define DGEN_ERR_CHECKSUM -6

// The model payload is not a valid model.
#define DGEN_ERR_MALFORMED -7

// The model's layer shapes do not chain.
#define DGEN_ERR_SHAPE -8

// The arena is shorter than `dgen_arena_bytes` for this model (or the model needs
// more than any supported arena).
#define DGEN_ERR_ARENA_TOO_SMALL -9

// The digit is above 9.
#define DGEN_ERR_INVALID_DIGIT -10

// An output buffer is too short.
#define DGEN_ERR_BUFFER_TOO_SMALL -11

// A length is larger than any object can be (`> PTRDIFF_MAX`).
#define DGEN_ERR_LENGTH -12

// An error this version of the library has no specific code for.
#define DGEN_ERR_OTHER -13

// A thread count outside `0..=DGEN_MAX_THREADS`, or a `DGEN_THREADS` environment
// variable that is not a whole number from 1 to `DGEN_MAX_THREADS`.
#define DGEN_ERR_THREADS -14

// Bytes in one generated image (28 x 28, row-major, 0 = background, 255 = ink).
#define DGEN_IMAGE_PIXELS 784

// An arena of this many bytes suffices for every model the library accepts.
#define DGEN_MAX_ARENA_BYTES 9408

// The largest thread count `dgen_generate_batch_threads` and `DGEN_THREADS` accept.
#define DGEN_MAX_THREADS 1024

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

// Returns the arena size in bytes that `dgen_generate` needs for this model (at most
// `DGEN_MAX_ARENA_BYTES`), or a negative `DGEN_ERR_*` code if the model is null or
// invalid.
//
// # Safety
// `model` is null or points to `model_len` readable bytes.
int32_t dgen_arena_bytes(const uint8_t *model, size_t model_len);

// Returns the model shipped with the library (the `.dgen` file embedded at build time,
// 4-byte aligned, static) and stores its length in `*len` when `len` is not null.
//
// # Safety
// `len` is null or points to a writable `size_t`.
const uint8_t *dgen_default_model(size_t *len);

// Generates one 28 x 28 image of `digit` (0-9) from the noise of `seed` into
// `image_784` (784 bytes, row-major, 0 = background, 255 = ink), using `arena`
// (`arena_len` >= `dgen_arena_bytes(model, model_len)`) as scratch memory.
//
// Returns `DGEN_OK` or a negative `DGEN_ERR_*` code; on error `image_784` may be
// partly written. The same `(model, digit, seed)` gives the same bytes on every
// platform.
//
// # Safety
// - `model` is null or points to `model_len` readable bytes.
// - `image_784` is null or points to 784 writable bytes.
// - `arena` is null or points to `arena_len` writable bytes.
// - The three regions do not overlap, and nothing else touches them during the call.
int32_t dgen_generate(const uint8_t *model,
                      size_t model_len,
                      uint8_t digit,
                      uint32_t seed,
                      uint8_t *image_784,
                      uint8_t *arena,
                      size_t arena_len);

// Generates `count` images, image `i` of digit `digits[i]` from seed `seed + i`
// (wrapping), into `images` (`images_len` >= `count * 784` bytes, image after image).
// Decodes the model once for the whole batch, where `dgen_generate` decodes it
// (checksum included) on every call. Every digit is checked before anything is
// generated. Returns `DGEN_OK` or a negative `DGEN_ERR_*` code.
//
// A library built with the `threads` feature splits the batch across
// `dgen_default_threads()` threads (`DGEN_ERR_THREADS` if the `DGEN_THREADS`
// environment variable is set to something that is not a count); without it, the batch
// runs on the calling thread. The bytes are the same either way.
//
// # Safety
// - `model` is null or points to `model_len` readable bytes.
// - `digits` is null or points to `count` readable bytes (it may be null if `count` is 0).
// - `images` is null or points to `images_len` writable bytes.
// - `arena` is null or points to `arena_len` writable bytes.
// - The regions written (`images`, `arena`) overlap nothing else passed in, and nothing
//   else touches them during the call.
int32_t dgen_generate_batch(const uint8_t *model,
                            size_t model_len,
                            const uint8_t *digits,
                            size_t count,
                            uint32_t seed,
                            uint8_t *images,
                            size_t images_len,
                            uint8_t *arena,
                            size_t arena_len);

// `dgen_generate_batch` on at most `threads` threads: `0` means the default
// (`dgen_default_threads()`), `1` to `DGEN_MAX_THREADS` that many (never more than
// `count`); other values give `DGEN_ERR_THREADS`. With more than one thread, each
// thread has its own arena on its stack and `arena` is only checked for size. A
// library built without the `threads` feature runs every batch on the calling thread.
// The bytes do not depend on the thread count.
//
// # Safety
// As `dgen_generate_batch`.
int32_t dgen_generate_batch_threads(const uint8_t *model,
                                    size_t model_len,
                                    const uint8_t *digits,
                                    size_t count,
                                    uint32_t seed,
                                    uint8_t *images,
                                    size_t images_len,
                                    uint8_t *arena,
                                    size_t arena_len,
                                    uint32_t threads);

// Returns the number of threads `dgen_generate_batch` uses: with the `threads`
// feature, the `DGEN_THREADS` environment variable if set (`DGEN_ERR_THREADS` if it
// is not a whole number from 1 to `DGEN_MAX_THREADS`), else the host's core count;
// `1` in a library built without it.
int32_t dgen_default_threads(void);

// Returns a static, NUL-terminated English description of a `DGEN_*` code (a generic
// text for codes it does not know). Never returns null.
const char *dgen_error_message(int32_t code);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* DGEN_H */
