//! Models built by the quantizer and written by the core's encoder: the loader reads
//! back exactly what was written, and rejects every kind of inconsistent parameter.

use generator_core::encode::QuantizedModel;
use generator_core::{Arch, Error, LayerShape, Model};
use generator_quant::{Calibration, FloatGenerator, FloatLayer, QuantizeError, quantize};

fn calibration() -> Calibration {
    Calibration::DEFAULT.with_count(2)
}

fn quantized() -> QuantizedModel {
    quantize(&FloatGenerator::random(Arch::DEFAULT, 5), &calibration()).unwrap()
}

fn load(q: &QuantizedModel) -> Result<(), Error> {
    Model::from_bytes(&q.to_bytes().unwrap()).map(|_| ())
}

#[test]
fn round_trip_preserves_parameters() {
    let q = quantized();
    let bytes = q.to_bytes().unwrap();
    let m = Model::from_bytes(&bytes).unwrap();
    assert_eq!(m.layers().len(), q.layers.len());
    for (l, ql) in m.layers().iter().zip(&q.layers) {
        let p = l.params();
        assert_eq!(p.shape, ql.shape);
        assert_eq!(
            p.weights,
            ql.weights.iter().map(|&w| w as u8).collect::<Vec<_>>()
        );
        assert_eq!(p.shift, &ql.shift[..]);
        assert_eq!(
            (p.in_zero_point, p.out_zero_point, p.relu),
            (ql.in_zero_point, ql.out_zero_point, ql.relu)
        );
    }
    assert_eq!(m.output_lut(), &q.output_lut);
}

#[test]
fn malformed_parameters() {
    let mut q = quantized();
    q.layers[1].shift[3] = 0;
    assert_eq!(load(&q), Err(Error::Malformed));
    let mut q = quantized();
    q.layers[2].shift[0] = 63;
    assert_eq!(load(&q), Err(Error::Malformed));
    let mut q = quantized();
    q.layers[0].multiplier[5] = -1;
    assert_eq!(load(&q), Err(Error::Malformed));
    let mut q = quantized();
    q.layers[3].bias[0] = (1 << 30) + 1;
    assert_eq!(load(&q), Err(Error::Malformed));
    let mut q = quantized();
    q.layers[1].weights.pop();
    assert_eq!(load(&q), Err(Error::Malformed));
    let mut q = quantized();
    q.layers[2].out_zero_point = q.layers[2].out_zero_point.wrapping_add(1);
    assert_eq!(load(&q), Err(Error::Malformed), "zero points must chain");
    let mut q = quantized();
    q.layers[0].out_scale *= 2.0;
    assert_eq!(load(&q), Err(Error::Malformed), "scales must chain");
    let mut q = quantized();
    q.layers[0].in_scale = f32::NAN;
    assert_eq!(load(&q), Err(Error::Malformed));
}

#[test]
fn shape_mismatches() {
    // Wrong network input size.
    let mut q = quantized();
    q.layers[0].shape = LayerShape::Linear {
        inputs: 41,
        outputs: 784,
    };
    q.layers[0].weights.truncate(41 * 784);
    assert_eq!(load(&q), Err(Error::ShapeMismatch));
    // Layers that do not chain (same element count, different HWC).
    let mut q = quantized();
    q.layers[1].shape = LayerShape::Conv3x3 {
        in_ch: 16,
        out_ch: 16,
        in_h: 7,
        in_w: 7,
        upsample: true,
    };
    q.layers[2].shape = LayerShape::Conv3x3 {
        in_ch: 16,
        out_ch: 8,
        in_h: 7,
        in_w: 28,
        upsample: true,
    };
    assert_eq!(load(&q), Err(Error::ShapeMismatch));
    // Last layer not 28x28x1 (drop it: the output is 8x28x28).
    let mut q = quantized();
    q.layers.pop();
    assert_eq!(load(&q), Err(Error::ShapeMismatch));
}

#[test]
fn arena_too_small_at_load() {
    // c2 = 16: a 16-channel 28x28 layer needs 12,544 + 3,136 bytes > MAX_ARENA_BYTES.
    let float = FloatGenerator::random(
        Arch {
            c2: 16,
            ..Arch::DEFAULT
        },
        1,
    );
    let q = quantize(&float, &calibration()).unwrap();
    assert_eq!(load(&q), Err(Error::ArenaTooSmall));
}

#[test]
fn narrower_architecture_loads_and_runs() {
    let arch = Arch {
        c0: 8,
        c1: 12,
        c2: 4,
    };
    let q = quantize(&FloatGenerator::random(arch, 3), &calibration()).unwrap();
    let bytes = q.to_bytes().unwrap();
    let m = Model::from_bytes(&bytes).unwrap();
    assert_eq!(m.arena_bytes(), arch.arena_bytes());
    assert_eq!(m.macs_per_digit(), arch.macs() as u64);
    let shapes: Vec<LayerShape> = m.layers().iter().map(|l| l.shape()).collect();
    assert_eq!(shapes, arch.layer_shapes());
}

#[test]
fn unsupported_networks_are_errors() {
    let cal = calibration();
    assert_eq!(
        quantize(&FloatGenerator { layers: vec![] }, &cal),
        Err(QuantizeError::LayerCount)
    );
    let mut float = FloatGenerator::random(Arch::DEFAULT, 2);
    float.layers[1].bias.pop();
    assert_eq!(
        quantize(&float, &cal),
        Err(QuantizeError::Inconsistent { layer: 1 })
    );
    // A linear layer reading the last convolution's 784 outputs.
    let mut float = FloatGenerator::random(Arch::DEFAULT, 2);
    float.layers.push(FloatLayer {
        shape: LayerShape::Linear {
            inputs: 784,
            outputs: 784,
        },
        weights: vec![0.0; 784 * 784],
        bias: vec![0.0; 784],
        relu: false,
    });
    assert_eq!(
        quantize(&float, &cal),
        Err(QuantizeError::LinearAfterConv { layer: 4 })
    );
    let float = FloatGenerator::random(Arch::DEFAULT, 2);
    assert_eq!(
        quantize(&float, &cal.with_count(0)),
        Err(QuantizeError::NoCalibration)
    );
}
