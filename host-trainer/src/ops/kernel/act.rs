//! The output activation fused into a convolution, and its derivative.

/// An activation applied to a convolution's output, fused into the same operation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Act {
    /// None: `y = v`.
    Identity,
    /// `y = v` for `v > 0`, else `slope * v` (`slope > 0`).
    LeakyRelu(f32),
    /// `y = tanh(v)`.
    Tanh,
}

impl Act {
    /// `y` of the pre-activation `v`.
    #[inline]
    pub(super) fn apply(self, v: f32) -> f32 {
        match self {
            Act::Identity => v,
            Act::LeakyRelu(slope) => {
                if v > 0.0 {
                    v
                } else {
                    slope * v
                }
            }
            Act::Tanh => v.tanh(),
        }
    }

    /// Gradient of the pre-activation given the output `y` and its gradient `dy` (every
    /// activation here is monotonic, so `y` determines the derivative).
    #[inline]
    pub(super) fn grad(self, y: f32, dy: f32) -> f32 {
        match self {
            Act::Identity => dy,
            Act::LeakyRelu(slope) => {
                if y > 0.0 {
                    dy
                } else {
                    slope * dy
                }
            }
            Act::Tanh => dy * (1.0 - y * y),
        }
    }
}
