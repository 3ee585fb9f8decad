//! The shipped model decodes with the current code and has the expected architecture
//! (the stale-asset check).

use generator_core::{DEFAULT_MODEL, Generator, Image, LayerShape, MAX_ARENA_BYTES, default_model};

#[test]
fn default_model_has_expected_architecture() {
    let m = default_model().expect("models/default.dgen decodes with the current format");
    let shapes: Vec<LayerShape> = m.layers().iter().map(|l| l.shape()).collect();
    assert_eq!(
        shapes,
        [
            LayerShape::Linear {
                inputs: 42,
                outputs: 784
            },
            LayerShape::Conv3x3 {
                in_ch: 16,
                out_ch: 16,
                in_h: 7,
                in_w: 7,
                upsample: true
            },
            LayerShape::Conv3x3 {
                in_ch: 16,
                out_ch: 8,
                in_h: 14,
                in_w: 14,
                upsample: true
            },
            LayerShape::Conv3x3 {
                in_ch: 8,
                out_ch: 1,
                in_h: 28,
                in_w: 28,
                upsample: false
            },
        ]
    );
    let relu: Vec<bool> = m.layers().iter().map(|l| l.params().relu).collect();
    assert_eq!(relu, [true, true, true, false]);
    assert_eq!(m.arena_bytes(), 9408);
    assert_eq!(m.arena_bytes(), MAX_ARENA_BYTES);
    assert_eq!(m.macs_per_digit(), 32_928 + 451_584 + 903_168 + 56_448);
    assert_eq!(m.input_zero_point(), 0);
    assert!(m.weight_bytes() > 39_000 && m.weight_bytes() < DEFAULT_MODEL.len());
    // ReLU outputs use the full int8 range from their zero.
    for l in &m.layers()[..3] {
        assert_eq!(l.params().out_zero_point, -128);
    }
    // tanh is monotonic, so the folded table is too.
    assert!(m.output_lut().windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn default_model_is_aligned_and_conditional() {
    assert_eq!(DEFAULT_MODEL.as_ptr() as usize % 4, 0);
    let m = default_model().unwrap();
    let mut arena = [0u8; MAX_ARENA_BYTES];
    let mut g = Generator::new(&m, &mut arena).unwrap();
    let mut imgs = Vec::new();
    for (d, s) in [(0u8, 1u32), (1, 1), (0, 2)] {
        let mut img: Image = [0; 784];
        g.generate(d, s, &mut img).unwrap();
        let (lo, hi) = (img.iter().min().unwrap(), img.iter().max().unwrap());
        assert!(hi - lo > 50, "image has contrast");
        imgs.push(img);
    }
    assert_ne!(imgs[0], imgs[1], "the label changes the image");
    assert_ne!(imgs[0], imgs[2], "the seed changes the image");
}
