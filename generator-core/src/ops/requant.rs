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

/// A channel's bias and [`Requant`] in the form the fast kernels use: the accumulator
/// starts at `bias`, and on 32-bit targets the shift runs on the high word of the
/// product. `apply(bias + sum)` is bit-identical to `requant.apply(bias + sum)`. 16
/// bytes, so that a block's parameters stay small on the Cortex-M stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rescale {
    /// Start value of the channel's accumulator.
    pub bias: i32,
    multiplier: i32,
    /// `2^(shift - 33)` for `shift >= 33` (the rounding constant `2^(shift - 1)` seen
    /// in the high word), else 0.
    round_hi: i32,
    shift: u8,
    zero_point: i8,
    min: i8,
}

impl Rescale {
    /// Maps every input to the zero point (a placeholder for unused slots).
    pub const ZERO: Rescale = Rescale {
        bias: 0,
        multiplier: 0,
        round_hi: 0,
        shift: 1,
        zero_point: 0,
        min: -128,
    };

    /// The fast form of `requant` for a channel with this `bias`.
    pub fn new(bias: i32, requant: Requant) -> Rescale {
        let shift = requant.shift.clamp(1, 62);
        Rescale {
            bias,
            multiplier: requant.multiplier,
            round_hi: if shift >= 33 { 1 << (shift - 33) } else { 0 },
            shift,
            zero_point: requant.zero_point,
            min: requant.min,
        }
    }

    /// `[multiplier, round_hi, shift - 32, zero_point, min]` when `shift >= 33` (the
    /// high-word form of [`Rescale::scaled_split`], which vector kernels compute lane
    /// by lane: `clamp(((hi(acc * multiplier) + round_hi) >> (shift - 32)) +
    /// zero_point, min, 127)`), else `None`.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) fn high_word_parts(&self) -> Option<[i32; 5]> {
        (self.shift >= 33).then_some([
            self.multiplier,
            self.round_hi,
            i32::from(self.shift) - 32,
            i32::from(self.zero_point),
            i32::from(self.min),
        ])
    }

    /// `(multiplier, c, shift - 32, min)` with `c = round_hi + zero_point * 2^(shift -
    /// 32)` when `33 <= shift <= 54` and `multiplier >= 0` (then `|c| < 2^30`): the
    /// Cortex-M4 row kernels' form, `clamp((hi(acc * multiplier) + c) >> (shift - 32),
    /// min, 127)`; else `None`.
    #[cfg_attr(not(arm_dsp_kernel), allow(dead_code))]
    #[inline(always)]
    pub(crate) fn smmla_form(&self) -> Option<(i32, i32, u32, i8)> {
        if !(33..=54).contains(&self.shift) || self.multiplier < 0 {
            return None;
        }
        let s = u32::from(self.shift) - 32;
        let c = self.round_hi + (i32::from(self.zero_point) << s);
        Some((self.multiplier, c, s, self.min))
    }

    /// `Requant::apply(acc)` as a byte, `acc` already including the bias.
    #[inline(always)]
    pub fn apply(&self, acc: i32) -> u8 {
        #[cfg(target_pointer_width = "64")]
        let v = self.scaled_wide(acc);
        #[cfg(not(target_pointer_width = "64"))]
        let v = self.scaled_split(acc);
        #[cfg(target_arch = "arm")]
        let q = self.clamp_sat(v);
        #[cfg(not(target_arch = "arm"))]
        let q = self.clamp(v);
        q as u8
    }

    /// `rounding_shift(acc)`, saturated to `-1024..=1024` (the clamp to `min..=127` after
    /// adding a zero point in `-128..=127` gives the same result as for the exact
    /// value), with one 64-bit shift: cheap on 64-bit CPUs.
    #[inline(always)]
    #[cfg_attr(not(target_pointer_width = "64"), allow(dead_code))] // 32-bit: tests only
    pub(crate) fn scaled_wide(&self, acc: i32) -> i32 {
        let p = i64::from(acc) * i64::from(self.multiplier) + (1i64 << (self.shift - 1));
        (p >> self.shift).clamp(-1024, 1024) as i32
    }

    /// [`Rescale::scaled_wide`] for 32-bit CPUs. For `shift >= 33` (realistic layers)
    /// it works on the high word `hi = floor(acc * multiplier / 2^32)` alone (Cortex-M:
    /// one `smull`): the rounding constant `2^(shift - 1)` is a multiple of `2^32`, so
    /// `floor((p + 2^(shift - 1)) / 2^shift) == (hi + 2^(shift - 33)) >> (shift - 32)`
    /// exactly, and `|hi| < 2^30`. Smaller shifts take the 64-bit shift.
    #[inline(always)]
    #[cfg_attr(target_pointer_width = "64", allow(dead_code))] // 64-bit: tests only
    pub(crate) fn scaled_split(&self, acc: i32) -> i32 {
        let p = i64::from(acc) * i64::from(self.multiplier);
        if self.shift >= 33 {
            (((p >> 32) as i32) + self.round_hi) >> (self.shift - 32)
        } else {
            ((p + (1i64 << (self.shift - 1))) >> self.shift).clamp(-1024, 1024) as i32
        }
    }

    /// [`Rescale::clamp`] as a saturation to `i8` and a maximum: on Arm one `SSAT`
    /// (`SSAT` is in Armv7-M; LLVM lowers the pair of clamps to it) and a conditional
    /// move, two instructions fewer than the masks.
    #[inline(always)]
    #[cfg_attr(not(target_arch = "arm"), allow(dead_code))] // elsewhere: tests only
    fn clamp_sat(&self, v: i32) -> i8 {
        let v = (v + i32::from(self.zero_point)).clamp(-128, 127);
        v.max(i32::from(self.min)) as i8
    }

    /// `clamp(v + zero_point, min, 127)` with sign masks, no branches (see
    /// [`Requant::apply`]); `|v| < 2^31 - 256`.
    #[inline(always)]
    #[cfg_attr(target_arch = "arm", allow(dead_code))] // there: tests only
    fn clamp(&self, v: i32) -> i8 {
        let v = v + i32::from(self.zero_point);
        let below = v - i32::from(self.min);
        let v = v - (below & (below >> 31));
        let above = v - 127;
        (v - (above & !(above >> 31))) as i8
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

    use proptest::prelude::*;

    proptest! {
        /// Both forms of the fast rescale equal `Requant::apply`, for every shift.
        #[test]
        fn rescale_equals_requant(
            acc in prop_oneof![any::<i32>(), -70_000i32..70_000],
            bias in -(1i32 << 30)..(1 << 30),
            multiplier in prop_oneof![0..=i32::MAX, (1i32 << 30)..=i32::MAX],
            shift in prop_oneof![1u8..=62, 30u8..=40],
            zero_point in any::<i8>(),
            relu in any::<bool>(),
        ) {
            let requant = Requant { multiplier, shift, zero_point, min: if relu { zero_point } else { i8::MIN } };
            let r = Rescale::new(bias, requant);
            let acc = acc.saturating_add(bias);
            let want = requant.apply(acc);
            prop_assert_eq!(r.apply(acc) as i8, want);
            prop_assert_eq!(r.clamp(r.scaled_wide(acc)), want);
            prop_assert_eq!(r.clamp(r.scaled_split(acc)), want);
            prop_assert_eq!(r.clamp_sat(r.scaled_split(acc)), want);
        }
    }

    #[test]
    fn rescale_table() {
        // (acc, multiplier, shift, zero point, min) -> output: ties round up, both sides
        // of shift 32, the clamps.
        let cases: [(i32, i32, u8, i8, i8, i8); 10] = [
            (-3, 1 << 30, 32, 0, -128, -1),       // -0.75 -> -1
            (-2, 1 << 30, 32, 0, -128, 0),        // -0.5 -> 0
            (-6, 1 << 30, 32, 0, -128, -1),       // -1.5 -> -1
            (5, 1 << 30, 31, 0, -128, 3),         // 2.5 -> 3
            (-5, 1 << 30, 31, 0, -128, -2),       // -2.5 -> -2
            (1 << 20, 1 << 30, 40, 3, -128, 127), // 1024 + 3, clamped
            (-(1 << 20), 1 << 30, 40, 3, -128, -128),
            (-(1 << 20), 1 << 30, 40, 3, 3, 3), // ReLU floor
            (i32::MAX, i32::MAX, 62, -128, -128, -128 + 1),
            (i32::MIN, i32::MAX, 1, 0, -128, -128),
        ];
        for (acc, multiplier, shift, zero_point, min, want) in cases {
            let requant = Requant {
                multiplier,
                shift,
                zero_point,
                min,
            };
            assert_eq!(
                requant.apply(acc),
                want,
                "Requant {acc} {multiplier} {shift}"
            );
            let r = Rescale::new(0, requant);
            assert_eq!(r.apply(acc) as i8, want, "{acc} {multiplier} {shift}");
            assert_eq!(
                r.clamp(r.scaled_split(acc)),
                want,
                "split {acc} {multiplier} {shift}"
            );
        }
    }

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
