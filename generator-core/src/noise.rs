//! Seeded Gaussian noise for the latent vector `z`, bit-identical on every target.
//!
//! A counter-based integer generator (a Weyl sequence finalised with the MurmurHash3
//! mixer) gives uniform `u32`s; Box-Muller turns pairs of them into normal deviates.
//! Only IEEE-754 `+ - * /`, bit manipulation and `micromath` are used, so every
//! target computes the same bits (Rust never contracts into fused multiply-adds on
//! its own). `micromath` is called through the trait explicitly (`F32Ext::cos(x)`,
//! never `x.cos()`): with `std` linked the inherent methods would shadow it and the
//! host would compute different bits than a Cortex-M.
//!
//! `micromath`'s `ln` is biased (measured: absolute error up to 0.12 on `(0, 1]`, mean
//! of `ln u` -1.079 instead of -1, which inflates the variance of `z` to 1.085), so
//! [`ln`] here is a short series on the mantissa instead; `sqrt` is micromath's
//! estimate refined by Newton steps. `sin`/`cos` (error ~0.001) are micromath's.
//!
//! The noise depends only on the seed, so the same seed with a different digit
//! gives the same "style".

use micromath::F32Ext;

use crate::Z_DIM;

/// Weyl increment (2^32 / golden ratio).
const WEYL: u32 = 0x9E37_79B9;

/// MurmurHash3's 32-bit finaliser: a bijection with good avalanche.
const fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85EB_CA6B);
    h ^= h >> 13;
    h = h.wrapping_mul(0xC2B2_AE35);
    h ^= h >> 16;
    h
}

/// The uniform generator behind [`gaussian`].
#[derive(Debug, Clone)]
pub struct Rng {
    state: u32,
}

impl Rng {
    /// A generator whose stream depends only on `seed`. The seed is scrambled first so
    /// that neighbouring seeds start far apart on the Weyl sequence.
    pub const fn new(seed: u32) -> Self {
        Rng {
            state: fmix32(seed ^ 0x5EED_D1C1),
        }
    }

    /// The next uniform `u32`.
    pub fn next_u32(&mut self) -> u32 {
        self.state = self.state.wrapping_add(WEYL);
        fmix32(self.state)
    }
}

/// 2^-24: turns the top 24 bits of a `u32` into an exactly representable fraction.
const INV_2_24: f32 = 1.0 / 16_777_216.0;

/// Natural logarithm of a positive, finite, normal `x`, to about 1 ulp.
///
/// `x = m * 2^e` with `m` in `[sqrt(1/2), sqrt(2))`, and
/// `ln m = 2 atanh(s) = 2 (s + s^3/3 + s^5/5 + ...)` with `s = (m - 1) / (m + 1)`,
/// `|s| <= 0.172`, so five terms reach f32 precision.
pub fn ln(x: f32) -> f32 {
    let bits = x.to_bits();
    let mut e = ((bits >> 23) & 0xFF) as i32 - 127;
    let mut m = f32::from_bits((bits & 0x007F_FFFF) | 0x3F80_0000); // [1, 2)
    if m > core::f32::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let series =
        s * (2.0 + s2 * (2.0 / 3.0 + s2 * (2.0 / 5.0 + s2 * (2.0 / 7.0 + s2 * (2.0 / 9.0)))));
    e as f32 * core::f32::consts::LN_2 + series
}

/// `sqrt` to within an ulp or two with basic arithmetic only: micromath's estimate
/// (about 5% off) refined by three Newton steps.
fn sqrt(x: f32) -> f32 {
    if x <= 0.0 {
        return 0.0;
    }
    let mut y = F32Ext::sqrt(x);
    for _ in 0..3 {
        y = 0.5 * (y + x / y);
    }
    y
}

/// Fills `out` with standard-normal deviates determined by `seed` alone.
///
/// Box-Muller: `u1` in `(0, 1]` and `u2` in `[0, 1)` from 24-bit fractions,
/// `r = sqrt(-2 ln u1)`, `theta = 2 pi u2`, giving `r cos theta` and `r sin theta`.
/// The largest magnitude possible is `sqrt(2 * 24 ln 2) ~= 5.77`.
pub fn gaussian(seed: u32, out: &mut [f32; Z_DIM]) {
    let mut rng = Rng::new(seed);
    for pair in out.chunks_exact_mut(2) {
        let u1 = ((rng.next_u32() >> 8) + 1) as f32 * INV_2_24;
        let u2 = (rng.next_u32() >> 8) as f32 * INV_2_24;
        let r = sqrt(-2.0 * ln(u1));
        // theta in [-pi, pi): keeps the trig arguments small.
        let theta = (u2 - 0.5) * (2.0 * core::f32::consts::PI);
        pair[0] = r * F32Ext::cos(theta);
        pair[1] = r * F32Ext::sin(theta);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_noise() {
        let (mut a, mut b) = ([0.0; Z_DIM], [0.0; Z_DIM]);
        gaussian(7, &mut a);
        gaussian(7, &mut b);
        assert_eq!(a.map(f32::to_bits), b.map(f32::to_bits));
        gaussian(8, &mut b);
        assert_ne!(a.map(f32::to_bits), b.map(f32::to_bits));
    }

    #[test]
    fn ln_is_accurate() {
        for i in 1..=(1 << 16) {
            let x = i as f32 / 65536.0;
            let err = (ln(x) as f64 - (x as f64).ln()).abs();
            assert!(
                err < 4e-7 * (x as f64).ln().abs().max(1.0),
                "ln({x}) err {err}"
            );
        }
        assert_eq!(ln(1.0), 0.0);
        assert!((ln(INV_2_24) as f64 - (INV_2_24 as f64).ln()).abs() < 1e-5);
    }

    #[test]
    fn sqrt_is_accurate() {
        for i in 1..10_000 {
            let x = i as f32 * 0.01;
            let rel = ((sqrt(x) as f64) - (x as f64).sqrt()).abs() / (x as f64).sqrt();
            assert!(rel < 1e-6, "sqrt({x}) rel err {rel}");
        }
        assert_eq!(sqrt(0.0), 0.0);
    }

    #[test]
    fn roughly_standard_normal() {
        let (mut n, mut sum, mut sum2, mut beyond2) = (0usize, 0f64, 0f64, 0usize);
        let mut z = [0.0; Z_DIM];
        for seed in 0..4000 {
            gaussian(seed, &mut z);
            for &v in &z {
                assert!(v.is_finite() && v.abs() < 5.8);
                n += 1;
                sum += v as f64;
                sum2 += (v as f64) * (v as f64);
                beyond2 += usize::from(v.abs() > 2.0);
            }
        }
        let mean = sum / n as f64;
        let var = sum2 / n as f64 - mean * mean;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "var {var}");
        // P(|z| > 2) = 4.55%
        let tail = beyond2 as f64 / n as f64;
        assert!((tail - 0.0455).abs() < 0.004, "tail {tail}");
    }

    /// Pins the exact bits: if this changes, every golden image changes too.
    #[test]
    fn noise_bits_are_stable() {
        let mut z = [0.0; Z_DIM];
        gaussian(0, &mut z);
        let hash = z.iter().fold(0u32, |h, v| fmix32(h ^ v.to_bits()));
        assert_eq!(hash, NOISE_HASH_SEED0, "noise bits changed: {hash:#010x}");
    }

    const NOISE_HASH_SEED0: u32 = 0xa1dc_6832;
}
