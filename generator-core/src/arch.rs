//! The generator's architecture as data: three channel widths, from which every layer
//! shape, the arena need, the parameter count and the multiply-accumulate count follow.
//!
//! The trainer builds its Burn modules from an [`Arch`], the quantizer its float layers,
//! and [`MAX_ARENA_BYTES`](crate::MAX_ARENA_BYTES) is the arena of [`Arch::DEFAULT`], so
//! changing a width here changes all of them consistently.
//!
//! ```text
//! z ++ one-hot (INPUT_DIM) ─ linear ─► c0 x B x B ─ up 2x + conv3x3 ─► c1 x 2B x 2B
//!   ─ up 2x + conv3x3 ─► c2 x 4B x 4B ─ conv3x3 ─► 1 x 4B x 4B = IMAGE_SIDE x IMAGE_SIDE
//! ```
//! with `B` = [`BASE_SIDE`].

use crate::{IMAGE_PIXELS, IMAGE_SIDE, INPUT_DIM, LayerShape};

/// 2x nearest upsamplings between the linear layer's map and the image.
pub const UPSAMPLINGS: usize = 2;
/// Side of the feature map the linear layer produces: the image side halved once per
/// upsampling (7 for 28x28 images).
pub const BASE_SIDE: usize = IMAGE_SIDE >> UPSAMPLINGS;
/// Number of layers of the generator.
pub const LAYERS: usize = 4;

const _: () = assert!(
    BASE_SIDE << UPSAMPLINGS == IMAGE_SIDE,
    "image side must divide by 4"
);

/// The generator's channel widths; every other size is derived from them and the crate
/// constants ([`INPUT_DIM`], [`IMAGE_SIDE`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Arch {
    /// Channels of the `BASE_SIDE x BASE_SIDE` map after the linear layer.
    pub c0: usize,
    /// Channels after the first upsample + conv (`2 * BASE_SIDE` square).
    pub c1: usize,
    /// Channels after the second upsample + conv (`IMAGE_SIDE` square).
    pub c2: usize,
}

/// A dimension as stored in the file. Panics (at compile time in const contexts) if it
/// does not fit a `u16`.
const fn dim(v: usize) -> u16 {
    assert!(v <= u16::MAX as usize, "layer dimension exceeds u16");
    v as u16
}

impl Arch {
    /// The shipped architecture: 16, 16, 8 channels.
    pub const DEFAULT: Arch = Arch {
        c0: 16,
        c1: 16,
        c2: 8,
    };

    /// `(channels, side)` of each layer's output, first to last.
    pub const fn outputs(&self) -> [(usize, usize); LAYERS] {
        [
            (self.c0, BASE_SIDE),
            (self.c1, 2 * BASE_SIDE),
            (self.c2, IMAGE_SIDE),
            (1, IMAGE_SIDE),
        ]
    }

    /// Output values of each layer, first to last.
    pub const fn output_lens(&self) -> [usize; LAYERS] {
        let o = self.outputs();
        [
            o[0].0 * o[0].1 * o[0].1,
            o[1].0 * o[1].1 * o[1].1,
            o[2].0 * o[2].1 * o[2].1,
            o[3].0 * o[3].1 * o[3].1,
        ]
    }

    /// The layer shapes as stored in a model file, first to last: linear, two
    /// upsample + 3x3 convolutions, and a 3x3 convolution to one channel.
    pub const fn layer_shapes(&self) -> [LayerShape; LAYERS] {
        [
            LayerShape::Linear {
                inputs: dim(INPUT_DIM),
                outputs: dim(self.c0 * BASE_SIDE * BASE_SIDE),
            },
            LayerShape::Conv3x3 {
                in_ch: dim(self.c0),
                out_ch: dim(self.c1),
                in_h: dim(BASE_SIDE),
                in_w: dim(BASE_SIDE),
                upsample: true,
            },
            LayerShape::Conv3x3 {
                in_ch: dim(self.c1),
                out_ch: dim(self.c2),
                in_h: dim(2 * BASE_SIDE),
                in_w: dim(2 * BASE_SIDE),
                upsample: true,
            },
            LayerShape::Conv3x3 {
                in_ch: dim(self.c2),
                out_ch: 1,
                in_h: dim(IMAGE_SIDE),
                in_w: dim(IMAGE_SIDE),
                upsample: false,
            },
        ]
    }

    /// Arena bytes a model of this architecture needs: layers ping-pong between two
    /// regions, so it is the largest even-layer output plus the largest odd-layer output
    /// (the same rule as [`Model::arena_bytes`](crate::Model::arena_bytes)).
    pub const fn arena_bytes(&self) -> usize {
        let n = self.output_lens();
        max(n[0], n[2]) + max(n[1], n[3])
    }

    /// Arena bytes the streaming generator needs for a model of this architecture
    /// ([`StreamGenerator::arena_bytes`](crate::StreamGenerator::arena_bytes)): the
    /// linear layer and the first convolution run whole (regions of `n[0]` and `n[1]`
    /// bytes), and the second convolution keeps a window of three output rows in the
    /// first region while the last one writes image rows.
    pub const fn stream_arena_bytes(&self) -> usize {
        let n = self.output_lens();
        max(n[0], crate::stream::WINDOW_ROWS * IMAGE_SIDE * self.c2) + n[1]
    }

    /// Number of int8 weights.
    pub const fn weights(&self) -> usize {
        INPUT_DIM * self.c0 * BASE_SIDE * BASE_SIDE
            + 9 * (self.c0 * self.c1 + self.c1 * self.c2 + self.c2)
    }

    /// Multiply-accumulates per generated digit.
    pub const fn macs(&self) -> usize {
        let n = self.output_lens();
        INPUT_DIM * n[0] + 9 * (self.c0 * n[1] + self.c1 * n[2] + self.c2 * n[3])
    }
}

impl Default for Arch {
    fn default() -> Self {
        Arch::DEFAULT
    }
}

const fn max(a: usize, b: usize) -> usize {
    if a > b { a } else { b }
}

const _: () = assert!(Arch::DEFAULT.output_lens()[LAYERS - 1] == IMAGE_PIXELS);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_figures_match_the_architecture_table() {
        // ARCHITECTURE.md's network table and budgets.
        let a = Arch::DEFAULT;
        assert_eq!(a.output_lens(), [784, 3136, 6272, 784]);
        assert_eq!(a.weights(), 36_456);
        assert_eq!(a.macs(), 1_444_128);
        assert_eq!(a.arena_bytes(), 9408);
        assert_eq!(a.stream_arena_bytes(), 3920);
        assert!(a.weights() <= 48 * 1024, "int8 parameter budget");
        assert!(a.macs() <= 1_500_000, "MAC budget");
        assert!(a.arena_bytes() <= 16 * 1024, "activation budget");
    }

    /// The budgets of issue 21: the streaming arena stays at most 3,920 bytes and the
    /// whole-image arena at most `MAX_ARENA_BYTES`. The shipped widths sit in the corner
    /// of both: one more channel anywhere breaks one of them, so capacity can only move
    /// between the layers by taking it from another (docs/EXPERIMENTS.md).
    #[test]
    fn one_more_channel_anywhere_breaks_an_arena_budget() {
        let fits =
            |a: Arch| a.stream_arena_bytes() <= 3920 && a.arena_bytes() <= crate::MAX_ARENA_BYTES;
        let d = Arch::DEFAULT;
        assert!(fits(d));
        for grown in [
            Arch { c0: d.c0 + 1, ..d },
            Arch { c1: d.c1 + 1, ..d },
            Arch { c2: d.c2 + 1, ..d },
        ] {
            assert!(!fits(grown), "{grown:?} fits the arenas");
        }
    }

    #[test]
    fn shapes_chain_and_agree_with_the_derived_figures() {
        for a in [
            Arch::DEFAULT,
            Arch {
                c0: 8,
                c1: 12,
                c2: 4,
            },
        ] {
            let s = a.layer_shapes();
            assert_eq!(s[0].input_len(), INPUT_DIM as u64);
            for pair in s.windows(2) {
                assert_eq!(pair[0].output_len(), pair[1].input_len());
            }
            let lens: [u64; LAYERS] = core::array::from_fn(|i| s[i].output_len());
            assert_eq!(lens, a.output_lens().map(|n| n as u64));
            let w: u64 = s.iter().map(|l| l.channels() * l.fan_in()).sum();
            assert_eq!(w, a.weights() as u64);
            assert_eq!(s.iter().map(|l| l.macs()).sum::<u64>(), a.macs() as u64);
        }
    }
}
