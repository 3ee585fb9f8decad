//! "A model that loads, generates": random *valid* architectures within every documented
//! limit (1-8 layers, conv channels up to 64, arena need up to `MAX_ARENA_BYTES`), written
//! by the real encoder, must load, generate exactly what the integer reference forward
//! pass computes, and not depend on what the arena held before.
#![cfg(feature = "std")]

mod common;

use common::Rng;
use generator_core::{
    Generator, Image, LayerShape, MAX_ARENA_BYTES, MAX_CONV_IN_CH, MAX_CONV_OUT_CH, MAX_LAYERS,
    Model,
};
use proptest::prelude::*;

/// Largest weight matrix a random linear layer gets (keeps a case fast).
const MAX_LINEAR_WEIGHTS: usize = 1 << 20;

/// Reads the proptest choices one at a time.
struct Choices<'a>(&'a [u32], usize);

impl Choices<'_> {
    fn next(&mut self) -> u32 {
        let v = self.0[self.1 % self.0.len()];
        self.1 += 1;
        v
    }

    /// `lo..=hi`, with the ends themselves chosen often (the limits are the point).
    fn pick(&mut self, lo: usize, hi: usize) -> usize {
        let v = self.next() as usize;
        match v % 4 {
            0 => hi,
            1 => lo,
            _ => lo + v / 4 % (hi - lo + 1),
        }
    }
}

/// A valid chain of `n` layers from proptest's choices: the first reads 42 values, the
/// last writes 28x28x1, shapes chain, conv channels stay within 64, every layer's output
/// fits its ping-pong region, and the two regions sum to at most `MAX_ARENA_BYTES`
/// (exactly that, often).
fn architecture(n: usize, raw: &[u32]) -> Vec<LayerShape> {
    let mut ch = Choices(raw, 0);
    let total = MAX_ARENA_BYTES
        - if ch.next() % 2 == 0 {
            0
        } else {
            ch.pick(0, 4000)
        };
    // The last layer's region holds its 784 outputs; the other region gets at least 1.
    let last_region = (n - 1) % 2;
    let mut budget = [0usize; 2];
    if n == 1 {
        budget[0] = total;
    } else {
        budget[last_region] = ch.pick(784, total - 1);
        budget[1 - last_region] = total - budget[last_region];
    }
    let mut shapes = Vec::new();
    // The current activation as (h, w, c); the network input is 1x1x42.
    let (mut h, mut w, mut c) = (1usize, 1usize, 42usize);
    for i in 0..n {
        let cap = budget[i % 2];
        let len = h * w * c;
        if i == n - 1 {
            let conv_ok = c <= MAX_CONV_IN_CH && ch.next() % 2 == 0;
            let shape = match (h, w) {
                (28, 28) if conv_ok => conv(c, 1, h, w, false),
                (14, 14) if conv_ok => conv(c, 1, h, w, true),
                _ => linear(len, 784),
            };
            shapes.push(shape);
            break;
        }
        // The next layer may be the last: keep a linear there small.
        let next_cap = if i + 2 == n {
            cap.min(MAX_LINEAR_WEIGHTS / 784)
        } else {
            cap
        };
        let mut done = false;
        if c <= MAX_CONV_IN_CH && ch.next() % 3 != 0 {
            let up = ch.next() % 2 == 0 && 4 * h * w <= next_cap;
            let (oh, ow) = if up { (2 * h, 2 * w) } else { (h, w) };
            let most = (next_cap / (oh * ow)).min(MAX_CONV_OUT_CH);
            if most >= 1 {
                let out = ch.pick(1, most);
                shapes.push(conv(c, out, h, w, up));
                (h, w, c) = (oh, ow, out);
                done = true;
            }
        }
        if !done {
            // A linear layer, its output read as HWC by whatever follows.
            let most = next_cap.min(MAX_LINEAR_WEIGHTS / len).max(1);
            let (oh, ow) = match ch.next() % 5 {
                0 => (7, 7),
                1 => (14, 14),
                2 => (1, 1),
                _ => (1 + ch.next() as usize % 8, 1 + ch.next() as usize % 8),
            };
            let (oh, ow) = if oh * ow <= most { (oh, ow) } else { (1, 1) };
            // Mostly a width a conv can read next; sometimes any width.
            let limit = if ch.next() % 4 == 0 {
                usize::MAX
            } else {
                MAX_CONV_IN_CH
            };
            let out_c = ch.pick(1, (most / (oh * ow)).min(limit));
            shapes.push(linear(len, oh * ow * out_c));
            (h, w, c) = (oh, ow, out_c);
        }
    }
    shapes
}

fn conv(in_ch: usize, out_ch: usize, in_h: usize, in_w: usize, upsample: bool) -> LayerShape {
    let d = |v: usize| u16::try_from(v).unwrap();
    LayerShape::Conv3x3 {
        in_ch: d(in_ch),
        out_ch: d(out_ch),
        in_h: d(in_h),
        in_w: d(in_w),
        upsample,
    }
}

fn linear(inputs: usize, outputs: usize) -> LayerShape {
    LayerShape::Linear {
        inputs: u16::try_from(inputs).unwrap(),
        outputs: u16::try_from(outputs).unwrap(),
    }
}

/// Generates with an arena of `len` bytes that held `fill`.
fn generate(model: &Model<'_>, fill: u8, len: usize, digit: u8, seed: u32) -> Image {
    let mut arena = vec![fill; len];
    let mut image = [0u8; 784];
    Generator::new(model, &mut arena)
        .expect("the arena holds arena_bytes()")
        .generate(digit, seed, &mut image)
        .expect("accepted models generate");
    image
}

fn check(
    shapes: &[LayerShape],
    param_seed: u64,
    digit: u8,
    seed: u32,
) -> Result<(), TestCaseError> {
    let mut rng = Rng(param_seed);
    let layers = common::random_layers(shapes, &mut rng);
    let lut = common::random_lut(&mut rng);
    let bytes = common::encode(&layers, &lut);
    let model = Model::from_bytes(&bytes);
    prop_assert!(model.is_ok(), "{:?}: {:?}", shapes, model.err());
    let model = model.unwrap();
    prop_assert_eq!(model.layers().len(), shapes.len());
    prop_assert!(model.arena_bytes() <= MAX_ARENA_BYTES);
    let want = common::reference_image(&layers, &lut, digit, seed);
    let zeroed = generate(&model, 0x00, MAX_ARENA_BYTES, digit, seed);
    prop_assert!(zeroed == want, "{:?}: differs from the reference", shapes);
    let dirty = generate(&model, 0xA5, model.arena_bytes(), digit, seed);
    prop_assert!(
        dirty == want,
        "{:?}: depends on the arena's old contents",
        shapes
    );
    Ok(())
}

/// Proptest cases (fewer in unoptimised builds).
const CASES: u32 = if cfg!(debug_assertions) { 48 } else { 512 };

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    #[test]
    fn valid_random_models_load_and_generate_the_reference(
        n in 1..=MAX_LAYERS,
        raw in proptest::collection::vec(any::<u32>(), 64),
        param_seed in any::<u64>(),
        digit in 0u8..10,
        seed in any::<u32>(),
    ) {
        let shapes = architecture(n, &raw);
        check(&shapes, param_seed, digit, seed)?;
    }
}

/// The builder reaches every limit it is meant to, over the first few hundred choice
/// vectors (so the property above really covers them).
#[test]
fn architectures_reach_the_limits() {
    let mut rng = Rng(99);
    let (mut in64, mut out64, mut full_arena, mut eight, mut conv_last) =
        (false, false, false, false, false);
    for _ in 0..2000 {
        let n = 1 + rng.next_u64() as usize % MAX_LAYERS;
        let raw: Vec<u32> = (0..64).map(|_| rng.next_u64() as u32).collect();
        let shapes = architecture(n, &raw);
        assert_eq!(shapes.len(), n);
        let mut regions = [0u64; 2];
        for (i, s) in shapes.iter().enumerate() {
            regions[i % 2] = regions[i % 2].max(s.output_len());
            if let LayerShape::Conv3x3 { in_ch, out_ch, .. } = *s {
                in64 |= in_ch == 64;
                out64 |= out_ch == 64;
                conv_last |= i == n - 1;
            }
        }
        let need = regions[0] + regions[1];
        assert!(need <= MAX_ARENA_BYTES as u64, "{shapes:?}");
        full_arena |= need == MAX_ARENA_BYTES as u64;
        eight |= n == 8;
    }
    assert!(in64 && out64 && full_arena && eight && conv_last);
}

/// The default architecture's shapes, through the same check.
#[test]
fn default_architecture_shapes_generate_the_reference() {
    let shapes = [
        linear(42, 784),
        conv(16, 16, 7, 7, true),
        conv(16, 8, 14, 14, true),
        conv(8, 1, 28, 28, false),
    ];
    check(&shapes, 3, 4, 42).unwrap();
}
