//! Activation-side helpers: quantising the float network input and mapping the last
//! layer's int8 output through the tanh table.

/// `clamp(round_half_away_from_zero(x / scale) + zero_point, -128, 127)`, with basic
/// IEEE arithmetic only so every target gets the same result.
#[inline]
pub fn quantize_input(x: f32, scale: f32, zero_point: i8) -> i8 {
    let v = x / scale;
    // `as` saturates (NaN -> 0); adding +-0.5 then truncating rounds half away from 0.
    let r = if v >= 0.0 {
        (v + 0.5) as i32
    } else {
        (v - 0.5) as i32
    };
    r.saturating_add(i32::from(zero_point)).clamp(-128, 127) as i8
}

/// Index into a 256-entry table for an int8 value stored as a raw byte: `q + 128`.
#[inline(always)]
pub fn lut_index(raw: u8) -> usize {
    (raw ^ 0x80) as usize
}

/// Maps raw int8 bytes through `lut` (indexed by `q + 128`) into pixels.
pub fn apply_lut(lut: &[u8; 256], input: &[u8], output: &mut [u8]) {
    for (o, &q) in output.iter_mut().zip(input) {
        *o = lut[lut_index(q)];
    }
}

/// Maps raw int8 bytes through `lut` in place (the streaming generator's last layer
/// writes its int8 output straight into the image).
pub fn apply_lut_in_place(lut: &[u8; 256], bytes: &mut [u8]) {
    for b in bytes {
        *b = lut[lut_index(*b)];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_rounding_table() {
        let s = 0.5;
        for (x, q) in [
            (0.0, 0),
            (0.24, 0),
            (0.25, 1), // 0.5 -> 1 (away from zero)
            (-0.25, -1),
            (0.74, 1),
            (0.75, 2), // 1.5 -> 2
            (-0.75, -2),
            (100.0, 127),
            (-100.0, -128),
            (f32::NAN, 0),
            (f32::INFINITY, 127),
        ] {
            assert_eq!(quantize_input(x, s, 0), q, "x = {x}");
        }
        assert_eq!(quantize_input(0.0, s, -128), -128);
        assert_eq!(quantize_input(100.0, s, 10), 127);
    }

    #[test]
    fn lut_index_is_q_plus_128() {
        for q in i8::MIN..=i8::MAX {
            assert_eq!(lut_index(q as u8), (q as i32 + 128) as usize);
        }
    }
}
