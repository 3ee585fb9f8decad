//! The model file format and its loader (work in progress).

use crate::{Error, Result};

/// A validated, zero-copy view of a model file.
#[derive(Debug, Clone)]
pub struct Model<'a> {
    #[allow(dead_code)]
    bytes: &'a [u8],
}

impl<'a> Model<'a> {
    /// Decodes and validates a model file without copying or allocating.
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Model<'a>> {
        let _ = bytes;
        Err(Error::Malformed)
    }
    /// Exact arena bytes this model needs.
    pub fn arena_bytes(&self) -> usize {
        crate::MAX_ARENA_BYTES
    }
    /// Multiply-accumulates per generated digit.
    pub fn macs_per_digit(&self) -> u64 {
        1_444_128
    }
    /// Bytes of weights, biases and requantisation parameters.
    pub fn weight_bytes(&self) -> usize {
        0
    }
}
