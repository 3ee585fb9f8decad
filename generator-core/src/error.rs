//! The crate's single error type.

use core::fmt;

/// Everything that can go wrong when loading a model or generating digits.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The bytes do not start with the model magic number.
    BadMagic,
    /// The file's format version is not one this crate reads.
    UnsupportedVersion,
    /// The file ends before its header, payload or checksum is complete.
    Truncated,
    /// Bytes follow the end of the encoded model.
    TrailingBytes,
    /// The payload's CRC-32 does not match the stored one.
    ChecksumMismatch,
    /// The payload decodes to something that is not a valid model (bad lengths,
    /// out-of-range quantisation parameters, undecodable data).
    Malformed,
    /// Layer shapes do not chain, or the network's input or output is not the
    /// expected `42` values in, `28x28x1` out; or a kernel got buffers of the wrong size.
    ShapeMismatch,
    /// The model needs more arena than [`crate::MAX_ARENA_BYTES`], or the arena given to
    /// [`crate::Generator::new`] is smaller than [`crate::Model::arena_bytes`].
    ArenaTooSmall,
    /// A digit label above 9.
    InvalidDigit,
    /// An output buffer is too short for the requested number of images.
    BufferTooSmall,
}

impl Error {
    /// A short static description.
    pub const fn as_str(self) -> &'static str {
        match self {
            Error::BadMagic => "not a digit-generator model (bad magic number)",
            Error::UnsupportedVersion => "unsupported model format version",
            Error::Truncated => "model file is truncated",
            Error::TrailingBytes => "unexpected bytes after the model",
            Error::ChecksumMismatch => "model checksum mismatch",
            Error::Malformed => "malformed model",
            Error::ShapeMismatch => "layer shapes do not match",
            Error::ArenaTooSmall => "arena too small",
            Error::InvalidDigit => "digit label must be 0..=9",
            Error::BufferTooSmall => "output buffer too small",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::error::Error for Error {}

/// `core::result::Result` specialised to [`Error`].
pub type Result<T> = core::result::Result<T, Error>;
