//! Every limit FORMAT.md promises is enforced at load, with files written by the real
//! encoder (so the CRC is right and only the limit itself is wrong), and models at the
//! limits load and generate exactly the reference image whatever the arena held.

mod common;

use common::{OwnedLayer, Rng};
use generator_core::{Error, Layer, LayerShape, MAX_CONV_IN_CH, MAX_CONV_OUT_CH};
#[cfg(feature = "alloc")]
use generator_core::{MAX_ARENA_BYTES, MAX_LAYERS};

/// A single conv layer checked on its own.
fn conv_layer_result(in_ch: u16, out_ch: u16, in_h: u16, in_w: u16) -> Result<(), Error> {
    let shape = LayerShape::Conv3x3 {
        in_ch,
        out_ch,
        in_h,
        in_w,
        upsample: false,
    };
    let l = common::random_layer(shape, 0, 0, false, &mut Rng(1));
    let b = l.bytes();
    Layer::new(l.params(&b)).map(|_| ())
}

#[test]
fn layer_new_enforces_the_channel_limits() {
    assert_eq!(MAX_CONV_IN_CH, 64);
    assert_eq!(MAX_CONV_OUT_CH, 64);
    assert_eq!(conv_layer_result(64, 64, 2, 2), Ok(()));
    assert_eq!(conv_layer_result(65, 1, 2, 2), Err(Error::Malformed));
    for out_ch in [65, 66, 67, 68, 100] {
        assert_eq!(
            conv_layer_result(1, out_ch, 2, 2),
            Err(Error::Malformed),
            "out_ch {out_ch}"
        );
    }
}

#[test]
fn layer_new_rejects_zero_dimensions() {
    for (in_ch, out_ch, h, w) in [(0, 1, 1, 1), (1, 0, 1, 1), (1, 1, 0, 1), (1, 1, 1, 0)] {
        assert_eq!(
            conv_layer_result(in_ch, out_ch, h, w),
            Err(Error::Malformed),
            "{in_ch} {out_ch} {h} {w}"
        );
    }
    for (inputs, outputs) in [(0, 1), (1, 0)] {
        let shape = LayerShape::Linear { inputs, outputs };
        let l = OwnedLayer {
            shape,
            relu: false,
            in_zp: 0,
            out_zp: 0,
            weights: vec![],
            bias: vec![0; outputs as usize],
            multiplier: vec![1; outputs as usize],
            shift: vec![1; outputs as usize],
        };
        let b = l.bytes();
        assert_eq!(Layer::new(l.params(&b)).err(), Some(Error::Malformed));
    }
}

#[cfg(feature = "alloc")]
mod files {
    use super::common::{self, OwnedLayer, Rng};
    use super::*;
    use generator_core::{Generator, Image, Model};

    /// Loads `bytes`, generates a few digits with the arena first zeroed and then filled
    /// with 0xA5 (exactly `arena_bytes()` long), and compares both with the reference.
    fn assert_generates_reference(layers: &[OwnedLayer], lut: &[u8; 256], bytes: &[u8]) {
        let model = Model::from_bytes(bytes).expect("model at the limits loads");
        for (digit, seed) in [(0u8, 0u32), (7, 12345), (9, u32::MAX)] {
            let want = common::reference_image(layers, lut, digit, seed);
            let mut zeroed = [0u8; MAX_ARENA_BYTES];
            let mut img: Image = [0; 784];
            Generator::new(&model, &mut zeroed)
                .expect("arena fits")
                .generate(digit, seed, &mut img)
                .expect("accepted models generate");
            assert_eq!(img, want, "zeroed arena, digit {digit} seed {seed}");
            let mut dirty = vec![0xA5u8; model.arena_bytes()];
            let mut img2: Image = [0; 784];
            Generator::new(&model, &mut dirty)
                .expect("arena fits")
                .generate(digit, seed, &mut img2)
                .expect("accepted models generate");
            assert_eq!(img2, want, "0xA5 arena, digit {digit} seed {seed}");
        }
    }

    fn wide_conv_model(out_ch: u16) -> (Vec<OwnedLayer>, [u8; 256], Vec<u8>) {
        let mut rng = Rng(u64::from(out_ch));
        let layers = common::random_layers(&common::wide_conv_shapes(out_ch), &mut rng);
        let lut = common::random_lut(&mut rng);
        let bytes = common::encode(&layers, &lut);
        (layers, lut, bytes)
    }

    #[test]
    fn conv_with_64_output_channels_on_the_generic_path_generates_exactly() {
        let (layers, lut, bytes) = wide_conv_model(64);
        assert_generates_reference(&layers, &lut, &bytes);
    }

    /// 65-67 channels used to load and leave the channels above 64 unwritten (the image
    /// then depended on the arena's old contents); 68 and more used to load and then
    /// panic in `generate` (slice index out of range in the generic conv path).
    #[test]
    fn conv_with_more_than_64_output_channels_is_rejected_at_load() {
        for out_ch in [65, 66, 67, 68, 69, 100, 1000] {
            let (_, _, bytes) = wide_conv_model(out_ch);
            assert_eq!(
                Model::from_bytes(&bytes).err(),
                Some(Error::Malformed),
                "out_ch {out_ch}"
            );
        }
    }

    /// Linear 42 -> `hidden`, linear `hidden` -> 784: the arena need is `hidden + 784`.
    fn two_linear(hidden: u16) -> (Vec<OwnedLayer>, [u8; 256], Vec<u8>) {
        let shapes = [
            LayerShape::Linear {
                inputs: 42,
                outputs: hidden,
            },
            LayerShape::Linear {
                inputs: hidden,
                outputs: 784,
            },
        ];
        let mut rng = Rng(7);
        let layers = common::random_layers(&shapes, &mut rng);
        let lut = common::random_lut(&mut rng);
        let bytes = common::encode(&layers, &lut);
        (layers, lut, bytes)
    }

    #[test]
    fn arena_need_of_exactly_max_arena_bytes_loads_and_one_more_does_not() {
        let hidden = (MAX_ARENA_BYTES - 784) as u16;
        let (layers, lut, bytes) = two_linear(hidden);
        let model = Model::from_bytes(&bytes).expect("loads");
        assert_eq!(model.arena_bytes(), MAX_ARENA_BYTES);
        assert_generates_reference(&layers, &lut, &bytes);
        let (_, _, bytes) = two_linear(hidden + 1);
        assert_eq!(Model::from_bytes(&bytes).err(), Some(Error::ArenaTooSmall));
    }

    /// A chain of `n` layers: linear 42 -> 8x8x8, then convs 8 -> 8 on 8x8 (the last
    /// but one upsampling 8x8 is impossible to 28x28, so the last layer is a linear).
    fn chain(n: usize) -> Vec<LayerShape> {
        let conv = LayerShape::Conv3x3 {
            in_ch: 8,
            out_ch: 8,
            in_h: 8,
            in_w: 8,
            upsample: false,
        };
        let mut shapes = vec![LayerShape::Linear {
            inputs: 42,
            outputs: 512,
        }];
        shapes.extend(std::iter::repeat_n(conv, n - 2));
        shapes.push(LayerShape::Linear {
            inputs: 512,
            outputs: 784,
        });
        shapes
    }

    #[test]
    fn eight_layers_load_and_nine_do_not() {
        assert_eq!(MAX_LAYERS, 8);
        let mut rng = Rng(8);
        let layers = common::random_layers(&chain(8), &mut rng);
        let lut = common::random_lut(&mut rng);
        assert_generates_reference(&layers, &lut, &common::encode(&layers, &lut));
        // The encoder refuses a ninth layer, so frame the payload by hand: append a
        // ninth layer to the eight-layer payload and bump its count.
        let layers9 = common::random_layers(&chain(9), &mut rng);
        let bytes = encode_unchecked(&layers9, &lut);
        assert_eq!(Model::from_bytes(&bytes).err(), Some(Error::Malformed));
    }

    /// Writes a model file of any number of layers (the real encoder stops at
    /// `MAX_LAYERS`): the payload of the first eight layers from the encoder, with the
    /// remaining layers' bytes spliced in and the layer count raised.
    fn encode_unchecked(layers: &[OwnedLayer], lut: &[u8; 256]) -> Vec<u8> {
        let first = payload(&common::encode(&layers[..MAX_LAYERS], lut));
        // Each layer's bytes: the payload of a one-layer model minus its count (1 byte)
        // and output table (2 + 256 bytes).
        let mut p = vec![layers.len() as u8];
        p.extend_from_slice(&first[1..first.len() - 258]);
        for l in &layers[MAX_LAYERS..] {
            let one = payload(&common::encode(std::slice::from_ref(l), lut));
            p.extend_from_slice(&one[1..one.len() - 258]);
        }
        p.extend_from_slice(&first[first.len() - 258..]);
        frame(&p)
    }

    fn payload(file: &[u8]) -> Vec<u8> {
        let (p, rest) = postcard::take_from_bytes::<&[u8]>(&file[6..]).unwrap();
        assert_eq!(rest.len(), 4);
        p.to_vec()
    }

    fn frame(payload: &[u8]) -> Vec<u8> {
        let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
        let mut out = b"DGEN\x01\x00".to_vec();
        // postcard writes a byte string as its varint length, then the bytes.
        out.extend_from_slice(&postcard::to_allocvec(payload).unwrap());
        out.extend_from_slice(&crc.checksum(payload).to_le_bytes());
        out
    }
}
