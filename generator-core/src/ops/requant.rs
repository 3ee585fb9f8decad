//! Integer-only requantisation: `i32` accumulator to `i8` activation.
//!
//! # Rounding rule: round half up
//!
//! `acc * multiplier / 2^shift` is rounded to the nearest integer, ties toward
//! positive infinity: `floor(v + 1/2)`, computed as `(p + 2^(shift-1)) >> shift` with
//! an arithmetic shift on the exact `i64` product `p`. This is TFLite Micro's
//! "single rounding" (`TFLITE_SINGLE_ROUNDING`) variant; gemmlowp's double rounding
//! differs by one on some negative ties. Examples: `-0.5 -> 0`, `-1.5 -> -1`,
//! `-2.5 -> -2`, `-0.75 -> -1`, `0.5 -> 1`, `2.5 -> 3`.

/// Rescales by `multiplier / 2^shift` with the crate's rounding rule (round half up).
///
/// `shift` must be in `1..=62` and `multiplier` non-negative (the loader checks both);
/// then the `i64` arithmetic cannot overflow: `|acc * multiplier| < 2^62`.
#[inline(always)]
pub fn rounding_shift(acc: i32, multiplier: i32, shift: u8) -> i64 {
    let p = i64::from(acc) * i64::from(multiplier);
    (p + (1i64 << (shift - 1))) >> shift
}

/// Per-output-channel requantisation parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requant {
    /// Q0.31 multiplier (`real_multiplier = multiplier * 2^-31 * 2^(31 - shift)`).
    pub multiplier: i32,
    /// Total right shift, `1..=62`.
    pub shift: u8,
    /// Output zero point.
    pub zero_point: i8,
    /// Lower clamp: the zero point after a ReLU, `-128` otherwise.
    pub min: i8,
}

impl Requant {
    /// `clamp(rounding_shift(acc) + zero_point, min, 127)`.
    #[inline(always)]
    pub fn apply(&self, acc: i32) -> i8 {
        let v = rounding_shift(acc, self.multiplier, self.shift) + i64::from(self.zero_point);
        // `v.clamp(min, 127)` written with sign masks (`|v| < 2^62`, so no overflow):
        // LLVM turns `clamp`, `max`/`min` and even `select_unpredictable` into branches
        // here, which after a ReLU mispredict about half the time (measured on x86-64:
        // requantisation then took about half of the convolution time).
        let below = v - i64::from(self.min);
        let v = v - (below & (below >> 63));
        let above = v - 127;
        (v - (above & !(above >> 63))) as i8
    }
}

/// Splits a positive real multiplier into a Q0.31 `multiplier` and a total right
/// `shift` so that `real ~= multiplier / 2^shift`, frexp-style, from the `f64` bits.
///
/// Results outside the representable range saturate: tiny multipliers lose mantissa
/// bits (shift capped at 62) and multipliers `>= 2^30` clamp to `(i32::MAX, 1)`.
/// Zero, negative and non-finite inputs give `(0, 1)`, which maps everything to the
/// zero point.
pub fn quantize_multiplier(real: f64) -> (i32, u8) {
    if !(real.is_finite() && real > 0.0) {
        return (0, 1);
    }
    let bits = real.to_bits();
    let biased_exp = ((bits >> 52) & 0x7FF) as i64;
    if biased_exp == 0 {
        // Subnormal: far below anything representable.
        return (0, 62);
    }
    // real = m * 2^e with m = 1.fraction in [1, 2); as Q0.31: m/2 in [0.5, 1), e + 1.
    let e = biased_exp - 1023 + 1;
    let mantissa = (bits & ((1u64 << 52) - 1)) | (1u64 << 52); // m * 2^52
    // q = round(m/2 * 2^31) = round(mantissa * 2^-22), half up.
    let mut q = ((mantissa + (1 << 21)) >> 22) as i64;
    let mut e = e;
    if q == 1 << 31 {
        q >>= 1;
        e += 1;
    }
    // real = q * 2^-31 * 2^e, so the total right shift is 31 - e.
    let mut shift = 31 - e;
    if shift < 1 {
        return (i32::MAX, 1);
    }
    while shift > 62 {
        q = (q + 1) >> 1;
        shift -= 1;
    }
    (q as i32, shift as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiplier_round_trips() {
        for &r in &[1.0, 0.5, 0.75, 1e-3, 3.3e-5, 0.999_999_999, 123.456, 1e-9] {
            let (m, s) = quantize_multiplier(r);
            let back = m as f64 / (1u64 << s) as f64;
            assert!(
                (back - r).abs() <= r * 1e-9 + 2f64.powi(-(s as i32)),
                "{r} -> {m} {s}"
            );
            assert!((1..=62).contains(&s));
        }
        assert_eq!(quantize_multiplier(0.5), (1 << 30, 31));
        assert_eq!(quantize_multiplier(1.0), (1 << 30, 30));
        assert_eq!(quantize_multiplier(0.0), (0, 1));
        assert_eq!(quantize_multiplier(f64::NAN), (0, 1));
        assert_eq!(quantize_multiplier(1e12), (i32::MAX, 1));
    }
}
