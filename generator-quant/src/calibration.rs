//! Calibration: the activation range of every layer, measured by running the float
//! network on a fixed set of inputs.

use generator_core::{INPUT_DIM, NUM_CLASSES, float_input};

use crate::float::FloatGenerator;

/// Which inputs calibrate the activation ranges: `count` inputs, input `i` being digit
/// `i % 10` with the noise of seed `seed_offset + i`.
///
/// The shipped model was quantised with [`Calibration::DEFAULT`]; re-quantising its
/// float weights reproduces it byte for byte only with these settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Calibration {
    /// Number of calibration inputs.
    pub count: usize,
    /// Noise seed of the first input. It keeps calibration noise away from the seeds
    /// that evaluation and the goldens use.
    pub seed_offset: u32,
}

impl Calibration {
    /// The settings of the shipped model: 2,000 inputs from seed 1,000,000.
    pub const DEFAULT: Calibration = Calibration {
        count: 2000,
        seed_offset: 1_000_000,
    };

    /// The same settings with `count` inputs.
    pub const fn with_count(self, count: usize) -> Calibration {
        Calibration { count, ..self }
    }

    /// The calibration inputs, in order.
    pub fn inputs(&self) -> Vec<[f32; INPUT_DIM]> {
        (0..self.count)
            .map(|i| {
                let digit = (i % NUM_CLASSES) as u8;
                let seed = self.seed_offset.wrapping_add(i as u32);
                float_input(digit, seed).expect("digit is below NUM_CLASSES")
            })
            .collect()
    }

    /// `(min, max)` of every layer's output (after its ReLU) over the calibration inputs.
    pub fn ranges(&self, float: &FloatGenerator) -> Vec<(f32, f32)> {
        let mut ranges = vec![(0f32, 0f32); float.layers.len()];
        for x in self.inputs() {
            for (r, out) in ranges.iter_mut().zip(float.forward_all(&x)) {
                for v in out {
                    *r = (r.0.min(v), r.1.max(v));
                }
            }
        }
        ranges
    }
}

impl Default for Calibration {
    fn default() -> Self {
        Calibration::DEFAULT
    }
}
