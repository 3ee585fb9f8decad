//! The optimised kernels against plain, obviously-correct integer references (exact
//! equality) and against a dequantise / float / requantise reference (at most 1 LSB).
//! The references index explicitly on purpose: they are meant to read like the maths.
#![allow(clippy::needless_range_loop)]

mod common;

use common::{OwnedLayer, reference};
use generator_core::ops::requant::{Requant, quantize_multiplier, rounding_shift};
use generator_core::ops::run_layer;
use generator_core::ops::select::{Kernel, select};
use generator_core::{Error, Layer, LayerShape};
use proptest::prelude::*;

fn conv_shape((in_ch, out_ch, in_h, in_w, upsample): (u16, u16, u16, u16, bool)) -> LayerShape {
    LayerShape::Conv3x3 {
        in_ch,
        out_ch,
        in_h,
        in_w,
        upsample,
    }
}

fn shape_strategy() -> impl Strategy<Value = LayerShape> {
    prop_oneof![
        (1u16..=50, 1u16..=40).prop_map(|(inputs, outputs)| LayerShape::Linear { inputs, outputs }),
        // Channel counts cover the monomorphised 8 and 16 fast paths and the run-time one.
        (
            prop_oneof![Just(8u16), Just(16), 1u16..=20],
            1u16..=9,
            1u16..=6,
            1u16..=6,
            any::<bool>()
        )
            .prop_map(conv_shape),
        // Several output-channel blocks: the fast path does at most 16 channels per block.
        (
            prop_oneof![Just(8u16), Just(16), 1u16..=24],
            17u16..=64,
            1u16..=4,
            1u16..=5,
            any::<bool>()
        )
            .prop_map(conv_shape),
        generic_shape_strategy(),
    ]
}

/// Convs too wide for the fast path's 2 KiB scratch, which take the generic path: the
/// padded input rows alone, `k * (in_w + 2) * in_ch` `i16`s with `k` = 3 (2 with
/// upsampling), exceed 1,024, or leave no room for one channel's `k * k * in_ch`
/// weights. With `in_ch >= 40` and `in_w >= 6` both hold for either `k`.
fn generic_shape_strategy() -> impl Strategy<Value = LayerShape> {
    (40u16..=64, 1u16..=64, 1u16..=2, 6u16..=8, any::<bool>()).prop_map(conv_shape)
}

fn channels(s: &LayerShape) -> usize {
    s.channels() as usize
}

/// A random valid layer with an input for it.
fn layer_strategy() -> impl Strategy<Value = (OwnedLayer, Vec<i8>)> {
    shape_strategy().prop_flat_map(layer_for_shape)
}

/// A random valid layer of `shape` with an input for it.
fn layer_for_shape(shape: LayerShape) -> impl Strategy<Value = (OwnedLayer, Vec<i8>)> {
    let ch = channels(&shape);
    let wl = ch * shape.fan_in() as usize;
    let il = shape.input_len() as usize;
    (
        proptest::collection::vec(any::<i8>(), wl),
        proptest::collection::vec(-(1i32 << 20)..(1 << 20), ch),
        proptest::collection::vec(0..=i32::MAX, ch),
        // Mostly realistic shifts, sometimes the extremes.
        proptest::collection::vec(prop_oneof![30u8..=45, 1u8..=62], ch),
        any::<i8>(),
        any::<i8>(),
        any::<bool>(),
        proptest::collection::vec(any::<i8>(), il),
    )
        .prop_map(
            move |(weights, bias, multiplier, shift, in_zp, out_zp, relu, x)| {
                (
                    OwnedLayer {
                        shape,
                        relu,
                        in_zp,
                        out_zp,
                        weights,
                        bias,
                        multiplier,
                        shift,
                    },
                    x,
                )
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn kernels_equal_integer_reference((layer, x) in layer_strategy()) {
        prop_assert_eq!(layer.run(&x), reference(&layer, &x));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    /// The generic path alone (a quarter of the cases above reach it too).
    #[test]
    fn generic_conv_path_equals_integer_reference(
        (layer, x) in generic_shape_strategy().prop_flat_map(layer_for_shape)
    ) {
        prop_assert_eq!(layer.run(&x), reference(&layer, &x));
    }
}

#[test]
fn extreme_values_do_not_overflow() {
    // Largest magnitudes everywhere: weights -128, inputs -128, |bias| = 2^30.
    for (bias, m, s) in [
        (1 << 30, i32::MAX, 1u8),
        (-(1 << 30), i32::MAX, 62),
        (1 << 30, 0, 1),
    ] {
        for shape in [
            LayerShape::Linear {
                inputs: 2000,
                outputs: 3,
            },
            LayerShape::Conv3x3 {
                in_ch: 64,
                out_ch: 3,
                in_h: 3,
                in_w: 3,
                upsample: true,
            },
        ] {
            let ch = channels(&shape);
            let l = OwnedLayer {
                shape,
                relu: false,
                in_zp: -128,
                out_zp: 0,
                weights: vec![-128; ch * shape.fan_in() as usize],
                bias: vec![bias; ch],
                multiplier: vec![m; ch],
                shift: vec![s; ch],
            };
            let x = vec![-128i8; shape.input_len() as usize];
            assert_eq!(l.run(&x), reference(&l, &x));
        }
    }
}

#[test]
fn kernels_reject_wrong_buffer_lengths() {
    let l = OwnedLayer {
        shape: LayerShape::Conv3x3 {
            in_ch: 2,
            out_ch: 1,
            in_h: 2,
            in_w: 2,
            upsample: true,
        },
        relu: true,
        in_zp: 0,
        out_zp: 0,
        weights: vec![1; 18],
        bias: vec![0],
        multiplier: vec![1 << 30],
        shift: vec![30],
    };
    let b = l.bytes();
    let layer = Layer::new(l.params(&b)).unwrap();
    let mut out = vec![0u8; 16];
    assert_eq!(
        run_layer(&layer, &[0; 7], &mut out),
        Err(Error::ShapeMismatch)
    );
    assert_eq!(
        run_layer(&layer, &[0; 8], &mut out[..15]),
        Err(Error::ShapeMismatch)
    );
    assert_eq!(run_layer(&layer, &[0; 8], &mut out), Ok(()));
}

// ---- rounding rule: round half up, as tables (tract's style) ----

#[test]
fn rounding_shift_table() {
    // multiplier 2^30 with shift 32 divides by 4.
    let q = |acc: i32| rounding_shift(acc, 1 << 30, 32);
    let table = [
        (-10, -2), // -2.5  -> -2 (tie, up)
        (-7, -2),  // -1.75 -> -2
        (-6, -1),  // -1.5  -> -1 (tie, up)
        (-5, -1),  // -1.25 -> -1
        (-3, -1),  // -0.75 -> -1
        (-2, 0),   // -0.5  ->  0 (tie, up)
        (-1, 0),   // -0.25 ->  0
        (0, 0),
        (1, 0),  // 0.25 -> 0
        (2, 1),  // 0.5  -> 1 (tie, up)
        (3, 1),  // 0.75 -> 1
        (5, 1),  // 1.25 -> 1
        (6, 2),  // 1.5  -> 2 (tie, up)
        (10, 3), // 2.5  -> 3 (tie, up)
    ];
    for (acc, want) in table {
        assert_eq!(q(acc), want, "{acc} / 4");
    }
    // shift 1 with multiplier 1: halves.
    assert_eq!(rounding_shift(-1, 1, 1), 0); // -0.5 -> 0
    assert_eq!(rounding_shift(-3, 1, 1), -1); // -1.5 -> -1
    assert_eq!(rounding_shift(3, 1, 1), 2); // 1.5 -> 2
    // Extremes stay exact in i64.
    assert_eq!(
        rounding_shift(i32::MIN, i32::MAX, 1),
        (i32::MIN as i64 * i32::MAX as i64) / 2
    );
    assert_eq!(rounding_shift(i32::MAX, i32::MAX, 62), 1); // (2^31-1)^2 / 2^62 ~= 1.0
}

#[test]
fn requant_clamps_and_relu_table() {
    let r = Requant {
        multiplier: 1 << 30,
        shift: 30,
        zero_point: -10,
        min: -128,
    };
    for (acc, want) in [
        (0, -10),
        (5, -5),
        (-118, -128),
        (-200, -128),
        (137, 127),
        (500, 127),
    ] {
        assert_eq!(r.apply(acc), want, "acc {acc}");
    }
    let relu = Requant { min: -10, ..r };
    for (acc, want) in [(-1, -10), (-500, -10), (3, -7)] {
        assert_eq!(relu.apply(acc), want, "relu acc {acc}");
    }
}

#[test]
fn multiplier_quantisation_examples() {
    assert_eq!(quantize_multiplier(0.25), (1 << 30, 32));
    let (m, s) = quantize_multiplier(0.1);
    assert_eq!((m, s), (1_717_986_918, 34)); // round(0.8 * 2^31), 0.1 = 0.8 * 2^-3
}

// ---- kernels vs a float reference: dequantise, compute, requantise ----

/// A layer quantised from float scales exactly as `generator_quant::quantize` does.
fn float_layer_strategy()
-> impl Strategy<Value = (OwnedLayer, Vec<i8>, f64, Vec<f64>, f64, Vec<f64>)> {
    (
        shape_strategy(),
        0.001f64..0.1,
        0.001f64..0.05,
        0.01f64..1.0,
    )
        .prop_flat_map(|(shape, s_in, w_scale_base, s_out)| {
            let ch = channels(&shape);
            let wl = ch * shape.fan_in() as usize;
            let il = shape.input_len() as usize;
            (
                Just(shape),
                Just(s_in),
                proptest::collection::vec(0.5f64..2.0, ch)
                    .prop_map(move |v| v.into_iter().map(|f| f * w_scale_base).collect::<Vec<_>>()),
                Just(s_out),
                proptest::collection::vec(-127i8..=127, wl),
                proptest::collection::vec(-2.0f64..2.0, ch),
                any::<i8>(),
                any::<i8>(),
                any::<bool>(),
                proptest::collection::vec(any::<i8>(), il),
            )
        })
        .prop_map(
            |(shape, s_in, ws, s_out, weights, bias_real, in_zp, out_zp, relu, x)| {
                let fan = shape.fan_in() as usize;
                let mut bias = Vec::new();
                let (mut multiplier, mut shift) = (Vec::new(), Vec::new());
                for c in 0..ws.len() {
                    let sum_w: i64 = weights[c * fan..(c + 1) * fan]
                        .iter()
                        .map(|&w| w as i64)
                        .sum();
                    let b = (bias_real[c] / (s_in * ws[c])).round() as i64 - in_zp as i64 * sum_w;
                    bias.push(b as i32);
                    let (m, s) = quantize_multiplier(s_in * ws[c] / s_out);
                    multiplier.push(m);
                    shift.push(s);
                }
                let l = OwnedLayer {
                    shape,
                    relu,
                    in_zp,
                    out_zp,
                    weights,
                    bias,
                    multiplier,
                    shift,
                };
                (l, x, s_in, ws, s_out, bias_real)
            },
        )
}

/// Float semantics of the same layer: real inputs `(x - zp) * s_in`, real weights,
/// real bias, then `round(y / s_out) + zp_out`, clamped (and ReLU'd).
fn float_reference(
    l: &OwnedLayer,
    x: &[i8],
    s_in: f64,
    ws: &[f64],
    s_out: f64,
    b: &[f64],
) -> Vec<i8> {
    // Reuse the integer reference's indexing by running it on a layer whose
    // "accumulator" is computed in floats: simplest is to recompute directly.
    let fan = l.shape.fan_in() as usize;
    let xr: Vec<f64> = x
        .iter()
        .map(|&v| (v as f64 - l.in_zp as f64) * s_in)
        .collect();
    let pick = |acc_real: f64| {
        let q = (acc_real / s_out).round() + l.out_zp as f64;
        let lo = if l.relu { l.out_zp as f64 } else { -128.0 };
        q.clamp(lo, 127.0) as i8
    };
    match l.shape {
        LayerShape::Linear { outputs, .. } => (0..outputs as usize)
            .map(|o| {
                let dot: f64 = (0..fan)
                    .map(|i| l.weights[o * fan + i] as f64 * ws[o] * xr[i])
                    .sum();
                pick(dot + b[o])
            })
            .collect(),
        LayerShape::Conv3x3 {
            in_ch,
            out_ch,
            in_h,
            in_w,
            upsample,
        } => {
            let (ci, co, ih, iw) = (
                in_ch as usize,
                out_ch as usize,
                in_h as usize,
                in_w as usize,
            );
            let f = if upsample { 2 } else { 1 };
            let (oh, ow) = (ih * f, iw * f);
            let mut out = vec![0i8; oh * ow * co];
            for y in 0..oh {
                for xx in 0..ow {
                    for o in 0..co {
                        let mut acc = b[o];
                        for ky in 0..3 {
                            for kx in 0..3 {
                                let (uy, ux) =
                                    (y as isize + ky as isize - 1, xx as isize + kx as isize - 1);
                                if uy < 0 || ux < 0 || uy >= oh as isize || ux >= ow as isize {
                                    continue; // real zero padding
                                }
                                let (sy, sx) = (uy as usize / f, ux as usize / f);
                                for c in 0..ci {
                                    let w =
                                        l.weights[((o * 3 + ky) * 3 + kx) * ci + c] as f64 * ws[o];
                                    acc += w * xr[(sy * iw + sx) * ci + c];
                                }
                            }
                        }
                        out[(y * ow + xx) * co + o] = pick(acc);
                    }
                }
            }
            out
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn kernels_within_one_lsb_of_float((l, x, s_in, ws, s_out, b) in float_layer_strategy()) {
        let got = l.run(&x);
        let want = float_reference(&l, &x, s_in, &ws, s_out, &b);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            prop_assert!((*g as i32 - *w as i32).abs() <= 1, "element {}: kernel {} float {}", i, g, w);
        }
    }
}

// ---- the generic conv path and row bands ----

/// A random valid conv layer with an input for it.
fn conv_layer_strategy() -> impl Strategy<Value = (OwnedLayer, Vec<i8>)> {
    layer_strategy().prop_filter("conv layers only", |(l, _)| {
        matches!(l.shape, LayerShape::Conv3x3 { .. })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    /// The generic (patch) path, which no shipped layer takes, against the reference.
    #[test]
    fn generic_conv_equals_integer_reference((l, x) in conv_layer_strategy()) {
        let b = l.bytes();
        let layer = Layer::new(l.params(&b)).expect("valid layer");
        let input: Vec<u8> = x.iter().map(|&v| v as u8).collect();
        let mut out = vec![0u8; layer.output_len()];
        generator_core::ops::conv::conv3x3_generic(&layer, &input, &mut out).expect("runs");
        let out: Vec<i8> = out.iter().map(|&v| v as i8).collect();
        prop_assert_eq!(out, reference(&l, &x));
    }

    /// Any band of output rows, computed from the smallest input band that holds the
    /// rows it reads, equals the same rows of the whole-map kernel.
    #[test]
    fn conv_row_bands_equal_whole_map(
        (l, x) in conv_layer_strategy(),
        a in 0usize..64,
        b in 0usize..64,
    ) {
        let bytes = l.bytes();
        let layer = Layer::new(l.params(&bytes)).expect("valid layer");
        let LayerShape::Conv3x3 { in_ch, in_h, in_w, upsample, .. } = l.shape else {
            unreachable!()
        };
        let (out_h, out_w, out_ch) = l.shape.output_hwc();
        let (out_h, out_row) = (out_h as usize, (out_w * out_ch) as usize);
        let in_row = in_w as usize * in_ch as usize;
        let input: Vec<u8> = x.iter().map(|&v| v as u8).collect();
        let mut whole = vec![0u8; layer.output_len()];
        run_layer(&layer, &input, &mut whole).expect("runs");
        let (r0, r1) = (a.min(b) % (out_h + 1), a.max(b) % (out_h + 1));
        let (r0, r1) = (r0.min(r1), r0.max(r1));
        let up = usize::from(upsample);
        let (i0, i1) = if r0 == r1 {
            (0, 0)
        } else {
            ((r0 >> up).saturating_sub(1), (((r1 - 1) >> up) + 2).min(in_h as usize))
        };
        let band = &input[i0 * in_row..i1 * in_row];
        let mut rows = vec![0u8; (r1 - r0) * out_row];
        generator_core::ops::conv::conv3x3_rows(&layer, band, i0, &mut rows, r0..r1)
            .expect("band runs");
        prop_assert_eq!(&rows[..], &whole[r0 * out_row..r1 * out_row]);
        // One input row fewer at either end is refused, not silently padded.
        if i1 > i0 {
            let mut scratch = vec![0u8; rows.len()];
            let short = &input[(i0 + 1) * in_row..i1 * in_row];
            prop_assert_eq!(
                generator_core::ops::conv::conv3x3_rows(&layer, short, i0 + 1, &mut scratch, r0..r1),
                Err(Error::ShapeMismatch)
            );
        }
    }
}

// ---- every kernel, forced: each must run where it can, and equal the reference ----

/// Every kernel (`ops::select::Kernel`).
const KERNELS: [Kernel; 6] = [
    Kernel::Reference,
    Kernel::Portable,
    Kernel::ArmDsp,
    Kernel::Sse2,
    Kernel::Avx2,
    Kernel::Avx2Pixels,
];

/// The layer run through every kernel that runs here (`Kernel::runs`), whole with
/// weights merged per call and, for a conv, from its prepared weights: each run must
/// report the very kernel asked for (a kernel that silently fell back to another would
/// report that one), and kernels that cannot run here must report the reference.
fn other_paths(l: &OwnedLayer, x: &[i8]) -> Vec<(String, Vec<i8>)> {
    use generator_core::ops::seams;
    let b = l.bytes();
    let layer = Layer::new(l.params(&b)).expect("valid layer");
    let input: Vec<u8> = x.iter().map(|&v| v as u8).collect();
    let signed = |out: Vec<u8>| out.iter().map(|&v| v as i8).collect::<Vec<i8>>();
    let mut outs = Vec::new();
    for k in KERNELS {
        let mut out = vec![0u8; layer.output_len()];
        let ran = seams::run_with(k, &layer, &input, &mut out).expect("runs");
        let want = if k.runs(&layer) { k } else { Kernel::Reference };
        assert_eq!(ran, want, "asked for {k:?}");
        outs.push((format!("{k:?}, merged per call"), signed(out)));
        if !matches!(l.shape, LayerShape::Conv3x3 { .. }) || ran == Kernel::Reference {
            continue;
        }
        let mut prepared = vec![0u32; seams::prepared_words_any(&layer)];
        seams::prepare_with(k, &layer, &mut prepared).expect("prepares");
        let out_h = l.shape.output_hwc().0 as usize;
        let mut out = vec![0u8; layer.output_len()];
        let ran =
            seams::rows_with(k, &layer, &prepared, &input, 0, &mut out, 0..out_h).expect("runs");
        assert_eq!(ran, k, "asked for {k:?} with prepared weights");
        outs.push((format!("{k:?}, prepared"), signed(out)));
    }
    outs
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    /// Every fast-path variant equals the integer reference, on the same layers as
    /// `kernels_equal_integer_reference` (odd and even channel counts, several blocks,
    /// one-channel layers that take the four-pixel kernel, the generic path).
    #[test]
    fn other_fast_paths_equal_integer_reference((l, x) in layer_strategy()) {
        let want = reference(&l, &x);
        for (name, got) in other_paths(&l, &x) {
            prop_assert_eq!(&got, &want, "{}", name);
        }
    }

    /// Row bands from prepared weights, native and portable, equal the whole map.
    #[test]
    fn prepared_row_bands_equal_whole_map(
        (l, x) in conv_layer_strategy(),
        a in 0usize..64,
        b in 0usize..64,
    ) {
        use generator_core::ops::{conv, seams};
        let bytes = l.bytes();
        let layer = Layer::new(l.params(&bytes)).expect("valid layer");
        let LayerShape::Conv3x3 { in_ch, in_h, in_w, upsample, .. } = l.shape else {
            unreachable!()
        };
        let (out_h, out_w, out_ch) = l.shape.output_hwc();
        let (out_h, out_row) = (out_h as usize, (out_w * out_ch) as usize);
        let in_row = in_w as usize * in_ch as usize;
        let input: Vec<u8> = x.iter().map(|&v| v as u8).collect();
        let mut whole = vec![0u8; layer.output_len()];
        run_layer(&layer, &input, &mut whole).expect("runs");
        let mut prepared = vec![0u32; conv::prepared_words(&layer)];
        if prepared.is_empty() {
            return Ok(()); // the generic path: nothing to prepare
        }
        conv::prepare(&layer, &mut prepared).expect("prepares");
        let (r0, r1) = (a.min(b) % (out_h + 1), a.max(b) % (out_h + 1));
        let (r0, r1) = (r0.min(r1), r0.max(r1));
        let up = usize::from(upsample);
        let (i0, i1) = if r0 == r1 {
            (0, 0)
        } else {
            ((r0 >> up).saturating_sub(1), (((r1 - 1) >> up) + 2).min(in_h as usize))
        };
        let band = &input[i0 * in_row..i1 * in_row];
        let mut rows = vec![0u8; (r1 - r0) * out_row];
        conv::conv3x3_rows_prepared(&layer, &prepared, band, i0, &mut rows, r0..r1)
            .expect("band runs");
        prop_assert_eq!(&rows[..], &whole[r0 * out_row..r1 * out_row]);
        // The same band with every other kernel that takes the layer, from its own
        // prepared weights.
        for k in KERNELS.into_iter().filter(|k| *k != Kernel::Reference && k.runs(&layer)) {
            let mut prepared = vec![0u32; seams::prepared_words_any(&layer)];
            seams::prepare_with(k, &layer, &mut prepared).expect("prepares");
            rows.fill(0xA5);
            let ran = seams::rows_with(k, &layer, &prepared, band, i0, &mut rows, r0..r1)
                .expect("band runs");
            prop_assert_eq!(ran, k);
            prop_assert_eq!(&rows[..], &whole[r0 * out_row..r1 * out_row], "{:?}", k);
        }
        // Prepared weights of the wrong length are refused.
        prop_assert_eq!(
            conv::conv3x3_rows_prepared(&layer, &prepared[1..], band, i0, &mut rows, r0..r1),
            Err(Error::ShapeMismatch)
        );
    }
}

// ---- the Arm DSP kernel's whole-row loops, on their portable twins ----

/// Layers the Arm DSP kernel's whole-row loops take when the requantisation has their
/// form: upsampling convolutions of 16 input channels (four channels per pass, any
/// output count: the rest take the pair loops), one-channel 3x3 convolutions of 8
/// inputs (four pixels per pass, any width), linear layers up to 64 inputs (four
/// outputs per pass).
fn arm_row_shape_strategy() -> impl Strategy<Value = LayerShape> {
    prop_oneof![
        (
            Just(16u16),
            prop_oneof![Just(4u16), Just(8), Just(16), 1u16..=16],
            1u16..=14,
            1u16..=14,
            Just(true),
        )
            .prop_map(conv_shape),
        (Just(8u16), Just(1u16), 1u16..=28, 1u16..=28, Just(false)).prop_map(conv_shape),
        (1u16..=64, 1u16..=40).prop_map(|(inputs, outputs)| LayerShape::Linear { inputs, outputs }),
    ]
    .prop_filter("output fits the arena", |s| {
        s.output_len() <= generator_core::MAX_ARENA_BYTES as u64
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    /// The Arm DSP kernel, forced through `ops::seams` (on hosts its assembly's portable
    /// twins), equals the integer reference whole, from prepared weights and on a row
    /// band, with every shift in 33..=54 (half the cases) so that its whole-row loops
    /// (`isa::arm_row`) take the layer, or some outside (the loops hand those over).
    #[test]
    fn arm_dsp_row_kernels_equal_integer_reference(
        (mut l, x) in arm_row_shape_strategy().prop_flat_map(layer_for_shape),
        shifts in proptest::collection::vec(prop_oneof![8 => 33u8..=54, 1 => 1u8..=62], 1..=64),
        all_in_range in any::<bool>(),
        band in 0usize..28,
    ) {
        use generator_core::ops::seams;
        // Half the cases have every shift in range (the linear loop takes a layer only
        // whole), the others some outside it (the loops hand those channels over).
        for (s, &t) in l.shift.iter_mut().zip(shifts.iter().cycle()) {
            *s = if all_in_range { t.clamp(33, 54) } else { t };
        }
        let want = reference(&l, &x);
        let b = l.bytes();
        let layer = Layer::new(l.params(&b)).expect("valid layer");
        let input: Vec<u8> = x.iter().map(|&v| v as u8).collect();
        let signed = |out: &[u8]| out.iter().map(|&v| v as i8).collect::<Vec<i8>>();
        let mut out = vec![0u8; layer.output_len()];
        let ran = seams::run_with(Kernel::ArmDsp, &layer, &input, &mut out).expect("runs");
        prop_assert_eq!(ran, Kernel::ArmDsp);
        prop_assert_eq!(signed(&out), want.clone());
        let LayerShape::Conv3x3 { in_w, in_ch, upsample, .. } = l.shape else {
            return Ok(());
        };
        let mut prepared = vec![0u32; seams::prepared_words_any(&layer)];
        seams::prepare_with(Kernel::ArmDsp, &layer, &mut prepared).expect("prepares");
        let (out_h, out_w, out_ch) = l.shape.output_hwc();
        let out_row = (out_w * out_ch) as usize;
        let mut out = vec![0u8; layer.output_len()];
        let ran = seams::rows_with(Kernel::ArmDsp, &layer, &prepared, &input, 0, &mut out, 0..out_h as usize)
            .expect("runs");
        prop_assert_eq!(ran, Kernel::ArmDsp);
        prop_assert_eq!(signed(&out), want.clone());
        // One output row from the input rows it reads.
        let y = band % out_h as usize;
        let up = usize::from(upsample);
        let in_row = in_w as usize * in_ch as usize;
        let (i0, i1) = ((y >> up).saturating_sub(1), ((y >> up) + 2).min(input.len() / in_row));
        let mut row = vec![0u8; out_row];
        seams::rows_with(Kernel::ArmDsp, &layer, &prepared, &input[i0 * in_row..i1 * in_row], i0, &mut row, y..y + 1)
            .expect("band runs");
        prop_assert_eq!(signed(&row), want[y * out_row..(y + 1) * out_row].to_vec());
    }
}

// ---- the x86-64 host kernels, called directly ----

/// Layers the AVX2 kernels take: convolutions with multiples of eight output channels
/// up to 32 (one lane per channel), other counts without upsampling (one lane per
/// pixel), input channel counts up to 16 (odd ones have a padding slot), maps up to 14
/// x 14 or rows up to 28 wide; linear layers up to 64 inputs.
fn host_shape_strategy() -> impl Strategy<Value = LayerShape> {
    prop_oneof![
        (
            prop_oneof![Just(8u16), Just(16), 1u16..=16],
            prop_oneof![Just(8u16), Just(16), Just(24), Just(32)],
            1u16..=14,
            1u16..=14,
            any::<bool>(),
        )
            .prop_map(conv_shape),
        (
            prop_oneof![Just(8u16), Just(16), 1u16..=16],
            1u16..=12,
            1u16..=10,
            1u16..=28,
            Just(false),
        )
            .prop_map(conv_shape),
        (1u16..=64, 1u16..=40).prop_map(|(inputs, outputs)| LayerShape::Linear { inputs, outputs }),
    ]
    .prop_filter("output fits the arena", |s| {
        s.output_len() <= generator_core::MAX_ARENA_BYTES as u64
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    /// The AVX2 kernels (when this CPU has AVX2) and the paths of CPUs without it
    /// (SSE2 convolution, reference linear layer), each forced, equal the integer
    /// reference, as does the dispatch; on a CPU with AVX2 the AVX2 kernels take every
    /// one of these layers. Half the cases have every shift at 33 or more, where the
    /// AVX2 requantisation runs in vectors rather than channel by channel.
    #[test]
    fn host_kernels_equal_integer_reference(
        (mut l, x) in host_shape_strategy().prop_flat_map(layer_for_shape),
        high_shifts in any::<bool>(),
    ) {
        use generator_core::ops::seams;
        if high_shifts {
            for s in &mut l.shift {
                *s = (*s).max(33);
            }
        }
        let want = reference(&l, &x);
        let b = l.bytes();
        let layer = Layer::new(l.params(&b)).expect("valid layer");
        let input: Vec<u8> = x.iter().map(|&v| v as u8).collect();
        let signed = |out: &[u8]| out.iter().map(|&v| v as i8).collect::<Vec<i8>>();
        let avx2 = host_has_avx2();
        let avx2_kernel = match l.shape {
            LayerShape::Conv3x3 { out_ch, .. } if out_ch % 8 != 0 => Kernel::Avx2Pixels,
            _ => Kernel::Avx2,
        };
        let mut out = vec![0u8; layer.output_len()];
        let ran = seams::run_with(avx2_kernel, &layer, &input, &mut out).expect("runs");
        prop_assert_eq!(ran == avx2_kernel, avx2, "AVX2 kernel skipped");
        prop_assert_eq!(signed(&out), want.clone(), "{:?}", ran);
        if cfg!(target_arch = "x86_64") {
            let fallback = match l.shape {
                LayerShape::Conv3x3 { .. } => Kernel::Sse2,
                LayerShape::Linear { .. } => Kernel::Reference,
            };
            let mut out = vec![0u8; layer.output_len()];
            let ran = seams::run_with(fallback, &layer, &input, &mut out).expect("runs");
            prop_assert_eq!(ran, fallback, "SSE2 kernel skipped");
            prop_assert_eq!(signed(&out), want.clone(), "{:?}", ran);
        }
        if cfg!(feature = "reference-only") {
            // The forced kernels above still run; the dispatch takes none of them.
            prop_assert_eq!(select(&layer), Kernel::Reference);
        } else if avx2 {
            prop_assert_eq!(select(&layer), avx2_kernel);
        }
        prop_assert_eq!(layer_run(&layer, &input), want, "dispatch");
    }
}

/// Whether this CPU has AVX2 (`false` off x86-64).
fn host_has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The shipped model's layers take the fastest kernels of this host, and each reports
/// running it: on x86-64 with AVX2 the AVX2 kernels (one lane per channel for the
/// upsampling layers, per pixel for the last), with SSE2 only the SSE2 convolution; with
/// the feature `reference-only`, every layer the reference.
#[test]
fn default_model_layers_run_the_fastest_kernels() {
    use generator_core::ops::seams;
    let model = generator_core::default_model().expect("default model loads");
    let want: Vec<Kernel> = if cfg!(feature = "reference-only") {
        vec![Kernel::Reference; 4]
    } else if !cfg!(target_arch = "x86_64") {
        return;
    } else if host_has_avx2() {
        vec![Kernel::Avx2, Kernel::Avx2, Kernel::Avx2, Kernel::Avx2Pixels]
    } else {
        vec![Kernel::Reference, Kernel::Sse2, Kernel::Sse2, Kernel::Sse2]
    };
    let got: Vec<Kernel> = model.layers().iter().map(select).collect();
    assert_eq!(got, want);
    for layer in model.layers() {
        let input = vec![3u8; layer.input_len()];
        let mut out = vec![0u8; layer.output_len()];
        let ran = seams::run_with(select(layer), layer, &input, &mut out).expect("runs");
        assert_eq!(ran, select(layer));
    }
}

fn layer_run(layer: &Layer<'_>, input: &[u8]) -> Vec<i8> {
    let mut out = vec![0u8; layer.output_len()];
    run_layer(layer, input, &mut out).expect("runs");
    out.iter().map(|&v| v as i8).collect()
}
