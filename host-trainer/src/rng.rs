//! A small seeded PRNG for batching and training noise, so runs are reproducible
//! independently of the backend's own random generator.

use generator_core::splitmix::SplitMix64;
use serde::{Deserialize, Serialize};

/// Shuffling and Gaussian noise on top of generator-core's [`SplitMix64`]. Serialises
/// as `{"state": <u64>}` inside checkpoints.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rng {
    state: SplitMix64,
}

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            state: SplitMix64::new(seed ^ 0x5DEE_CE66_D1CE_4E5B),
        }
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state.next_u64()
    }

    /// Uniform in [0, n).
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 11) as u128 * n as u128) >> 53) as usize
    }

    /// Uniform in (0, 1].
    fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// Fills `out` with standard normal values (Box-Muller).
    pub fn fill_normal(&mut self, out: &mut [f32]) {
        for pair in out.chunks_mut(2) {
            let r = (-2.0 * self.unit().ln()).sqrt();
            let t = std::f64::consts::TAU * self.unit();
            pair[0] = (r * t.cos()) as f32;
            if let Some(s) = pair.get_mut(1) {
                *s = (r * t.sin()) as f32;
            }
        }
    }

    /// A random permutation of 0..n (Fisher-Yates).
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut p: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            p.swap(i, self.below(i + 1));
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_serialises_as_a_bare_number() {
        // Checkpoints store the state this way: keep old ones readable.
        let r = Rng::new(0x5DEE_CE66_D1CE_4E5B);
        assert_eq!(serde_json::to_string(&r).unwrap(), r#"{"state":0}"#);
        let back: Rng = serde_json::from_str(r#"{"state":0}"#).unwrap();
        assert_eq!(
            back.clone().next_u64(),
            Rng::new(0x5DEE_CE66_D1CE_4E5B).next_u64()
        );
    }

    #[test]
    fn deterministic_and_roughly_normal() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        let mut x = vec![0.0; 10_000];
        let mut y = vec![0.0; 10_000];
        a.fill_normal(&mut x);
        b.fill_normal(&mut y);
        assert_eq!(x, y);
        let mean = x.iter().sum::<f32>() / x.len() as f32;
        let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / x.len() as f32;
        assert!(
            mean.abs() < 0.05 && (var - 1.0).abs() < 0.05,
            "{mean} {var}"
        );
        let mut p = a.permutation(100);
        p.sort_unstable();
        assert_eq!(p, (0..100).collect::<Vec<_>>());
    }
}
