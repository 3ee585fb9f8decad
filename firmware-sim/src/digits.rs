//! The digits to draw: parsing, the seed schedule, generation and checksums.

use core::fmt;

use generator_core::fnv::fnv1a32;
use generator_core::{Generator, IMAGE_PIXELS, Image, MAX_ARENA_BYTES, Model, NUM_CLASSES};

/// Most digits accepted in one request (keeps the PNG and the preview a sane size).
pub const MAX_DIGITS: usize = 64;

/// Why a digit list was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// The list is empty.
    Empty,
    /// A character that is not `0`-`9`, with its position (0-based, in characters).
    NotADigit {
        /// The offending character.
        found: char,
        /// Its position in the list.
        position: usize,
    },
    /// More than [`MAX_DIGITS`] digits.
    TooLong(usize),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Empty => f.write_str("no digits given (expected e.g. 3141592653)"),
            ParseError::NotADigit { found, position } => write!(
                f,
                "{found:?} at position {position} is not a digit 0-9 (expected e.g. 3141592653)"
            ),
            ParseError::TooLong(n) => write!(f, "{n} digits given, at most {MAX_DIGITS} allowed"),
        }
    }
}

impl std::error::Error for ParseError {}

/// Parses a string such as `"3141592653"` into digit labels.
pub fn parse_digits(text: &str) -> Result<Vec<u8>, ParseError> {
    let mut digits = Vec::with_capacity(text.len());
    for (position, found) in text.chars().enumerate() {
        match found.to_digit(10) {
            // `to_digit(10)` only yields 0..=9, so the cast is lossless.
            Some(d) => digits.push(d as u8),
            None => return Err(ParseError::NotADigit { found, position }),
        }
    }
    if digits.is_empty() {
        return Err(ParseError::Empty);
    }
    if digits.len() > MAX_DIGITS {
        return Err(ParseError::TooLong(digits.len()));
    }
    debug_assert!(digits.iter().all(|&d| usize::from(d) < NUM_CLASSES));
    Ok(digits)
}

/// The seed of the `index`-th image (row-major over rows of the digit list).
///
/// Image `k` uses `base + k` (wrapping), so `firmware-sim --seed 42 0123456789` generates
/// digit `d` with seed `42 + d`, the schedule the Cortex-M4 firmware uses.
pub fn seed_for(base: u32, index: usize) -> u32 {
    // Truncation is the documented wrap-around: indices never approach 2^32 anyway.
    base.wrapping_add(index as u32)
}

/// Generates `rows` rows of `digits`, image `k` with [`seed_for`]`(seed, k)`.
///
/// The generation path is the firmware's: one fixed arena of
/// [`MAX_ARENA_BYTES`] on the stack, one image buffer, one [`Generator`]. Only the
/// collecting `Vec` is host-specific.
pub fn generate_grid(
    model: &Model<'_>,
    digits: &[u8],
    rows: usize,
    seed: u32,
) -> generator_core::Result<Vec<Image>> {
    let mut arena = [0u8; MAX_ARENA_BYTES];
    let mut generator = Generator::new(model, &mut arena)?;
    let mut images = Vec::with_capacity(digits.len() * rows);
    let mut image = [0u8; IMAGE_PIXELS];
    for row in 0..rows {
        for (column, &digit) in digits.iter().enumerate() {
            let index = row * digits.len() + column;
            generator.generate(digit, seed_for(seed, index), &mut image)?;
            images.push(image);
        }
    }
    Ok(images)
}

/// One checksum line, in the exact format the firmware prints.
pub fn checksum_line(digit: u8, seed: u32, image: &Image) -> String {
    format!("digit {digit} seed {seed} fnv1a {:#010x}", fnv1a32(image))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_digits() {
        assert_eq!(parse_digits("3141"), Ok(vec![3, 1, 4, 1]));
        assert_eq!(parse_digits(""), Err(ParseError::Empty));
        assert_eq!(
            parse_digits("12x"),
            Err(ParseError::NotADigit {
                found: 'x',
                position: 2
            })
        );
        // Non-ASCII digits are not 0-9.
        assert!(matches!(
            parse_digits("٣"),
            Err(ParseError::NotADigit { .. })
        ));
        assert_eq!(
            parse_digits(&"1".repeat(MAX_DIGITS + 1)),
            Err(ParseError::TooLong(MAX_DIGITS + 1))
        );
    }

    #[test]
    fn seed_schedule_wraps() {
        assert_eq!(seed_for(42, 3), 45);
        assert_eq!(seed_for(u32::MAX, 1), 0);
    }

    #[test]
    fn checksum_line_format() {
        let image = [0u8; IMAGE_PIXELS];
        let line = checksum_line(7, 49, &image);
        assert!(line.starts_with("digit 7 seed 49 fnv1a 0x"), "{line}");
        assert_eq!(line.len(), "digit 7 seed 49 fnv1a 0x".len() + 8);
    }
}
