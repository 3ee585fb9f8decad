//! SplitMix64, the host side's seeded generator: the trainer's batch order and training
//! noise, and the quantizer's random test networks. (The noise `z` of a generated digit
//! comes from [`noise`](crate::noise), which stays 32-bit for the microcontroller.)

use serde::{Deserialize, Serialize};

/// SplitMix64 (Steele, Lea and Flood): a 64-bit Weyl sequence through a mixing
/// function. Tiny, fast, and good enough for shuffling and test weights. Serialises as
/// its bare `u64` state, so a generator can be saved and resumed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator starting from `state` (used as is: callers mix their seed with a
    /// constant of their own so that different uses of one seed differ).
    pub const fn new(state: u64) -> Self {
        SplitMix64 { state }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_sequence() {
        // First outputs of the reference C implementation seeded with 0.
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }
}
