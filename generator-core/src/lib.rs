#![doc = include_str!("../README.md")]
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![deny(missing_docs)]
#![deny(unsafe_code)]

#[cfg(feature = "alloc")]
extern crate alloc;

pub mod arch;
#[cfg(feature = "alloc")]
pub mod encode;
mod error;
pub mod fnv;
mod generate;
mod model;
pub mod noise;
pub mod ops;
pub mod splitmix;
mod stream;
#[cfg(feature = "std")]
pub mod threads;

pub use arch::Arch;
pub use error::{Error, Result};
pub use generate::{
    Generator, float_input, pixel_to_signed_unit, signed_unit_to_pixel, to_signed_unit,
};
pub use model::{
    FORMAT_VERSION, Layer, LayerParams, LayerShape, MAGIC, MAX_ABS_BIAS, MAX_CONV_IN_CH,
    MAX_CONV_OUT_CH, MAX_LAYERS, Model, SHIFT_RANGE,
};
pub use stream::StreamGenerator;

/// Length of the latent noise vector `z`.
pub const Z_DIM: usize = 32;
/// Number of digit classes (the one-hot part of the input).
pub const NUM_CLASSES: usize = 10;
/// Number of network inputs: `z` followed by the one-hot label.
pub const INPUT_DIM: usize = Z_DIM + NUM_CLASSES;
/// Width and height of a generated image.
pub const IMAGE_SIDE: usize = 28;
/// Pixels in a generated image.
pub const IMAGE_PIXELS: usize = IMAGE_SIDE * IMAGE_SIDE;

/// A generated grey-scale digit, row-major; 0 is background, 255 is ink (MNIST convention).
pub type Image = [u8; IMAGE_PIXELS];

/// An arena of this many bytes suffices for every model that [`Model::from_bytes`]
/// accepts; the loader rejects models needing more with [`Error::ArenaTooSmall`].
///
/// It is the need of [`Arch::DEFAULT`] ([`Arch::arena_bytes`]): the two ping-pong
/// activation regions. A wider shipped architecture raises it with no other change.
pub const MAX_ARENA_BYTES: usize = Arch::DEFAULT.arena_bytes();

/// Keeps the embedded model 4-byte aligned (`include_bytes!` alone gives alignment 1).
#[repr(C, align(4))]
struct Aligned<T: ?Sized>(T);

static DEFAULT_MODEL_ALIGNED: &Aligned<[u8]> = &Aligned(*include_bytes!("../models/default.dgen"));

/// The shipped model file (`models/default.dgen`), embedded in the binary.
pub static DEFAULT_MODEL: &[u8] = &DEFAULT_MODEL_ALIGNED.0;

/// Decodes [`DEFAULT_MODEL`].
pub fn default_model() -> Result<Model<'static>> {
    Model::from_bytes(DEFAULT_MODEL)
}
