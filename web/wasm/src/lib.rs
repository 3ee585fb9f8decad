//! [`generator_core`] for the browser: a `wasm32-unknown-unknown` module that the page in
//! `web/` instantiates with plain `WebAssembly.instantiate`, no bindings generator.
//!
//! The module owns every buffer (statics, no allocator) and exports their addresses; the
//! page writes the model file, the digits and the seeds into linear memory, calls
//! [`exports::dgen_generate`], and reads the images and their checksums back. Every export is an
//! `extern "C"` function taking and returning numbers. Errors come back as `-1`, with
//! the [`Display`](core::fmt::Display) text of the core's [`Error`] in
//! [`exports::dgen_message`].
//!
//! The logic lives in two safe functions, [`check`] and [`generate`], that the host tests
//! call on their own buffers; the exports only hand them the statics.
//!
//! Build: `web/build.sh` (release profile of this crate: `opt-level = "s"`, fat LTO, one
//! codegen unit, `panic = "abort"`, stripped). Details: `docs/WEB.md`.

#![no_std]

// The host (tests, clippy) links std for its panic runtime; wasm32 gets the handler below.
#[cfg(not(target_arch = "wasm32"))]
extern crate std;

use core::fmt::{self, Write};

use generator_core::{Error, Generator, Image, Model};

pub mod exports;

/// Most images one [`exports::dgen_generate`] call makes: the 10 x 10 grid.
pub const MAX_IMAGES: usize = 100;

/// Longest model file the page can load, in bytes: zero-initialised memory, so it costs
/// nothing in the `.wasm` file. Convolutional models up to the loader's channel limits fit
/// (a 42 -> 7x7x64 linear layer and seven 64 -> 64 convolutions take under 450 KB); the
/// loader also accepts larger files (stacks of wide linear layers), which the page
/// refuses with a message naming this limit.
pub const MODEL_CAPACITY: usize = 1 << 20;

/// Longest error message kept; the core's are far shorter.
pub const MESSAGE_CAPACITY: usize = 128;

/// The error text of the last failed call: a `fmt::Write` sink into a fixed buffer that
/// truncates instead of failing.
#[derive(Debug)]
pub struct Message {
    pub(crate) bytes: [u8; MESSAGE_CAPACITY],
    pub(crate) len: usize,
}

impl Message {
    /// An empty message.
    pub const fn new() -> Self {
        Self {
            bytes: [0; MESSAGE_CAPACITY],
            len: 0,
        }
    }

    /// The text written so far (UTF-8, possibly cut at [`MESSAGE_CAPACITY`] bytes).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// Replaces the text with `e`'s `Display` text.
    pub fn set(&mut self, e: Error) {
        self.len = 0;
        // Cannot fail: `write_str` below truncates instead.
        let _ = write!(self, "{e}");
    }
}

impl Default for Message {
    fn default() -> Self {
        Self::new()
    }
}

impl Write for Message {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = MESSAGE_CAPACITY - self.len;
        let mut take = s.len().min(room);
        while !s.is_char_boundary(take) {
            take -= 1;
        }
        self.bytes[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

/// Decodes and validates `model` as the page is about to use it: the loader's checks
/// (magic, version, truncation, CRC-32, shapes, arena need) and binding to `arena`.
pub fn check(model: &[u8], arena: &mut [u8]) -> Result<(), Error> {
    let model = Model::from_bytes(model)?;
    Generator::new(&model, arena).map(|_| ())
}

/// Generates `images[i]` of digit `digits[i]` from seed `seeds[i]` with `model`, and
/// stores the 32-bit FNV-1a of each image (the checksum `firmware-sim --checksums`
/// prints) in `checksums[i]`. The model is decoded once; every digit is checked before
/// anything is generated. [`Error::BufferTooSmall`] if `seeds`, `images` or `checksums`
/// is shorter than `digits`.
pub fn generate(
    model: &[u8],
    digits: &[u8],
    seeds: &[u32],
    images: &mut [Image],
    checksums: &mut [u32],
    arena: &mut [u8],
) -> Result<(), Error> {
    let n = digits.len();
    if seeds.len() < n || images.len() < n || checksums.len() < n {
        return Err(Error::BufferTooSmall);
    }
    if digits.iter().any(|&d| d > 9) {
        return Err(Error::InvalidDigit);
    }
    let model = Model::from_bytes(model)?;
    let mut generator = Generator::new(&model, arena)?;
    for (((&digit, &seed), image), sum) in digits.iter().zip(seeds).zip(images).zip(checksums) {
        generator.generate(digit, seed, image)?;
        *sum = generator_core::fnv::fnv1a32(image);
    }
    Ok(())
}

/// Traps: no path in this crate panics (slices are taken with `get`, errors returned), so
/// this only completes the link.
#[cfg(all(target_arch = "wasm32", not(test)))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}

#[cfg(test)]
mod tests {
    use std::vec;
    use std::vec::Vec;

    use generator_core::{DEFAULT_MODEL, IMAGE_PIXELS, MAX_ARENA_BYTES, fnv::fnv1a32};

    use super::*;

    /// The core's own images for `(digit, seed)` pairs, the reference the module must equal.
    fn core_images(pairs: &[(u8, u32)]) -> Vec<Image> {
        let model = Model::from_bytes(DEFAULT_MODEL).unwrap();
        let mut arena = vec![0u8; MAX_ARENA_BYTES];
        let mut g = Generator::new(&model, &mut arena).unwrap();
        pairs
            .iter()
            .map(|&(d, s)| {
                let mut img = [0u8; IMAGE_PIXELS];
                g.generate(d, s, &mut img).unwrap();
                img
            })
            .collect()
    }

    fn message_of(e: Error) -> std::string::String {
        let mut m = Message::new();
        m.set(e);
        std::string::String::from_utf8(m.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn generate_equals_the_core_with_per_image_seeds() {
        // The page's grid schedule: row = digit, column c = seed base + c.
        let digits = [0, 0, 7, 7, 9];
        let seeds = [5, 6, 5, 6, u32::MAX];
        let mut images = vec![[0u8; IMAGE_PIXELS]; 5];
        let mut sums = [0u32; 5];
        let mut arena = [0xA5u8; MAX_ARENA_BYTES];
        generate(
            DEFAULT_MODEL,
            &digits,
            &seeds,
            &mut images,
            &mut sums,
            &mut arena,
        )
        .unwrap();
        let pairs: Vec<(u8, u32)> = digits.iter().copied().zip(seeds).collect();
        let want = core_images(&pairs);
        assert_eq!(images, want);
        for (img, sum) in want.iter().zip(sums) {
            assert_eq!(sum, fnv1a32(img));
        }
        // Different digits and seeds give different images (the test can tell them apart).
        assert_ne!(images[0], images[1]);
        assert_ne!(images[0], images[2]);
    }

    #[test]
    fn errors_are_the_core_display_text() {
        let mut arena = [0u8; MAX_ARENA_BYTES];
        let mut corrupt = DEFAULT_MODEL.to_vec();
        let mid = corrupt.len() / 2;
        corrupt[mid] ^= 0x55;
        let e = check(&corrupt, &mut arena).unwrap_err();
        assert_eq!(e, Error::ChecksumMismatch);
        assert_eq!(message_of(e), std::format!("{e}"));
        assert_eq!(check(&[], &mut arena), Err(Error::Truncated));
        assert_eq!(check(b"PNG\0not a model", &mut arena), Err(Error::BadMagic));
        assert_eq!(
            check(DEFAULT_MODEL, &mut arena[..100]),
            Err(Error::ArenaTooSmall)
        );
        assert_eq!(check(DEFAULT_MODEL, &mut arena), Ok(()));

        let mut img = [[0u8; IMAGE_PIXELS]; 1];
        let mut sum = [0u32; 1];
        let e = generate(DEFAULT_MODEL, &[10], &[0], &mut img, &mut sum, &mut arena);
        assert_eq!(e, Err(Error::InvalidDigit));
        let e = generate(
            DEFAULT_MODEL,
            &[1, 2],
            &[0, 1],
            &mut img,
            &mut sum,
            &mut arena,
        );
        assert_eq!(e, Err(Error::BufferTooSmall));
    }

    #[test]
    fn message_truncates_on_a_char_boundary() {
        let mut m = Message::new();
        let long = "é".repeat(MESSAGE_CAPACITY); // two bytes each
        m.write_str(&long).unwrap();
        assert_eq!(m.as_bytes().len(), MESSAGE_CAPACITY);
        m.write_str("x").unwrap();
        assert_eq!(m.as_bytes().len(), MESSAGE_CAPACITY);
        let mut odd = Message::new();
        odd.write_str("a").unwrap();
        odd.write_str(&long).unwrap();
        assert_eq!(odd.as_bytes().len(), MESSAGE_CAPACITY - 1);
        assert!(core::str::from_utf8(odd.as_bytes()).is_ok());
    }

    /// The only test that touches the statics (see `impl Sync for Shared`).
    #[test]
    fn exports_round_trip() {
        use crate::exports::*;
        let len = dgen_default_model_len();
        assert_eq!(len, DEFAULT_MODEL.len());
        assert!(len <= dgen_model_capacity());
        let model = dgen_model_buffer();
        let digits = [3u8, 1, 4];
        let seeds = [42u32, 43, 44];
        // SAFETY: the buffers hold MODEL_CAPACITY and MAX_IMAGES entries; nothing else
        // uses them during this test.
        #[allow(unsafe_code)]
        unsafe {
            core::ptr::copy_nonoverlapping(dgen_default_model(), model, len);
            core::ptr::copy_nonoverlapping(digits.as_ptr(), dgen_digits(), 3);
            core::ptr::copy_nonoverlapping(seeds.as_ptr(), dgen_seeds(), 3);
        }
        assert_eq!(dgen_check(len), 0);
        assert_eq!(dgen_generate(len, 3), 0);
        let want = core_images(&[(3, 42), (1, 43), (4, 44)]);
        // SAFETY: as above, read-only.
        #[allow(unsafe_code)]
        let (images, sums) = unsafe {
            (
                core::slice::from_raw_parts(dgen_images(), 3 * IMAGE_PIXELS),
                core::slice::from_raw_parts(dgen_checksums(), 3),
            )
        };
        assert_eq!(images, want.concat());
        assert_eq!(sums[2], fnv1a32(&want[2]));

        let message = || {
            // SAFETY: as above.
            #[allow(unsafe_code)]
            let text = unsafe { core::slice::from_raw_parts(dgen_message(), dgen_message_len()) };
            std::string::String::from_utf8(text.to_vec()).unwrap()
        };
        assert_eq!(dgen_generate(len, MAX_IMAGES + 1), -1);
        assert_eq!(message(), std::format!("{}", Error::BufferTooSmall));
        assert_eq!(dgen_check(len - 1), -1);
        assert_eq!(message(), std::format!("{}", Error::Truncated));
        assert_eq!(dgen_check(MODEL_CAPACITY + 1), -1);
    }
}
