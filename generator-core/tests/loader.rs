//! The loader: every error variant, and no panic on arbitrary or mutated bytes.

use generator_core::{
    DEFAULT_MODEL, Error, FORMAT_VERSION, Generator, Image, MAGIC, MAX_ARENA_BYTES, Model,
    to_signed_unit,
};
use proptest::prelude::*;

const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// Splits the default model into its payload (re-framing needs it).
fn payload_of(file: &[u8]) -> &[u8] {
    let (payload, rest) = postcard::take_from_bytes::<&[u8]>(&file[6..]).unwrap();
    assert_eq!(rest.len(), 4);
    payload
}

/// The canonical (shortest) unsigned LEB128 varint of `v`, as postcard writes it.
fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
    out
}

/// The same number padded to `n` bytes with zero continuation groups (what postcard
/// also decodes, up to its per-type maximum).
fn padded_varint(v: u64, n: usize) -> Vec<u8> {
    let mut out = varint(v);
    assert!(out.len() <= n);
    while out.len() < n {
        *out.last_mut().unwrap() |= 0x80;
        out.push(0);
    }
    out
}

/// Frames a payload with the given length prefix and a correct CRC.
fn frame_with_length(payload: &[u8], length: &[u8]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(length);
    out.extend_from_slice(payload);
    out.extend_from_slice(&CRC.checksum(payload).to_le_bytes());
    out
}

/// Frames a payload like the writer does, with a correct CRC.
fn frame(payload: &[u8]) -> Vec<u8> {
    frame_with_length(payload, &varint(payload.len() as u64))
}

#[test]
fn default_model_loads_and_reframes() {
    assert!(Model::from_bytes(DEFAULT_MODEL).is_ok());
    assert_eq!(frame(payload_of(DEFAULT_MODEL)), DEFAULT_MODEL);
}

#[test]
fn bad_magic() {
    assert_eq!(Model::from_bytes(b"").err(), Some(Error::Truncated));
    assert_eq!(
        Model::from_bytes(b"XGEN\x01\x00").err(),
        Some(Error::BadMagic)
    );
    assert_eq!(Model::from_bytes(b"DG").err(), Some(Error::Truncated));
    assert_eq!(Model::from_bytes(b"DX").err(), Some(Error::BadMagic));
    let mut m = DEFAULT_MODEL.to_vec();
    m[3] ^= 1;
    assert_eq!(Model::from_bytes(&m).err(), Some(Error::BadMagic));
}

#[test]
fn unsupported_version() {
    let mut m = DEFAULT_MODEL.to_vec();
    m[4] = 2;
    assert_eq!(Model::from_bytes(&m).err(), Some(Error::UnsupportedVersion));
    assert_eq!(
        Model::from_bytes(b"DGEN\x00\x01").err(),
        Some(Error::UnsupportedVersion)
    );
}

#[test]
fn truncated_everywhere() {
    for len in 0..DEFAULT_MODEL.len() {
        let err = Model::from_bytes(&DEFAULT_MODEL[..len]).err();
        assert_eq!(err, Some(Error::Truncated), "prefix of {len} bytes");
    }
}

#[test]
fn trailing_bytes() {
    let mut m = DEFAULT_MODEL.to_vec();
    m.push(0);
    assert_eq!(Model::from_bytes(&m).err(), Some(Error::TrailingBytes));
    // Inside the checksummed payload too.
    let mut p = payload_of(DEFAULT_MODEL).to_vec();
    p.push(0);
    assert_eq!(
        Model::from_bytes(&frame(&p)).err(),
        Some(Error::TrailingBytes)
    );
}

#[test]
fn checksum_mismatch() {
    let n = DEFAULT_MODEL.len();
    for i in [10, n / 2, n - 5, n - 1] {
        let mut m = DEFAULT_MODEL.to_vec();
        m[i] ^= 0x10;
        assert_eq!(
            Model::from_bytes(&m).err(),
            Some(Error::ChecksumMismatch),
            "flip at {i}"
        );
    }
}

#[test]
fn malformed_payloads() {
    // Not a model at all, but correctly framed.
    assert_eq!(
        Model::from_bytes(&frame(&[0xFF; 12])).err(),
        Some(Error::Malformed)
    );
    // Zero layers.
    assert_eq!(
        Model::from_bytes(&frame(&[0, 0])).err(),
        Some(Error::Malformed)
    );
    // Payload cut short inside (the CRC matches the short payload).
    let p = payload_of(DEFAULT_MODEL);
    assert_eq!(
        Model::from_bytes(&frame(&p[..p.len() - 10])).err(),
        Some(Error::Malformed)
    );
}

#[test]
fn only_the_canonical_length_varint_is_accepted() {
    let p = payload_of(DEFAULT_MODEL);
    let canonical = varint(p.len() as u64);
    assert_eq!(
        canonical.len(),
        3,
        "the default payload needs a 3-byte length"
    );
    assert!(Model::from_bytes(&frame_with_length(p, &canonical)).is_ok());
    // Padded to 4-5 bytes (decodable on every target) and to 6-10 bytes (decodable as a
    // 64-bit usize only): the CRC does not cover the length, so these are the same
    // model in another spelling, and every spelling but one is refused everywhere.
    for n in 4..=10 {
        let file = frame_with_length(p, &padded_varint(p.len() as u64, n));
        assert_eq!(
            Model::from_bytes(&file).err(),
            Some(Error::Malformed),
            "length padded to {n} bytes"
        );
    }
    let header = |length: &[u8]| {
        let mut f = b"DGEN\x01\x00".to_vec();
        f.extend_from_slice(length);
        f
    };
    // A fifth group above 0x0F does not fit a u32.
    assert_eq!(
        Model::from_bytes(&header(&[0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0, 0, 0, 0])).err(),
        Some(Error::Malformed)
    );
    // u32::MAX is a well-formed length of a file that is too short.
    assert_eq!(
        Model::from_bytes(&header(&[0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0, 0, 0, 0])).err(),
        Some(Error::Truncated)
    );
    // Six groups are too many even when the sixth is the last.
    assert_eq!(
        Model::from_bytes(&header(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0, 0, 0, 0])).err(),
        Some(Error::Malformed)
    );
    // A file that ends inside the length is truncated.
    assert_eq!(
        Model::from_bytes(&header(&[0x80, 0x80])).err(),
        Some(Error::Truncated)
    );
}

#[test]
fn only_canonical_varints_inside_the_payload_are_accepted() {
    let p = payload_of(DEFAULT_MODEL);
    // The payload ends with the output table: length 256 (`80 02`), then 256 bytes.
    let lut_at = p.len() - 258;
    assert_eq!(p[lut_at..lut_at + 2], [0x80, 0x02]);
    // Padded to 3-5 bytes (a usize on every target) and 6-10 bytes (64-bit only), with
    // a correct CRC over the padded payload.
    for n in 3..=10 {
        let mut q = p[..lut_at].to_vec();
        q.extend_from_slice(&padded_varint(256, n));
        q.extend_from_slice(&p[lut_at + 2..]);
        assert_eq!(
            Model::from_bytes(&frame(&q)).err(),
            Some(Error::Malformed),
            "table length padded to {n} bytes"
        );
    }
    // The layer count (first byte) padded to two bytes.
    let mut q = vec![p[0] | 0x80, 0];
    q.extend_from_slice(&p[1..]);
    assert_eq!(Model::from_bytes(&frame(&q)).err(), Some(Error::Malformed));
}

#[test]
fn output_table_must_have_256_entries() {
    let p = payload_of(DEFAULT_MODEL);
    let lut_at = p.len() - 258;
    for n in [0usize, 1, 255, 257, 512] {
        let mut q = p[..lut_at].to_vec();
        q.extend_from_slice(&varint(n as u64));
        q.extend(std::iter::repeat_n(7u8, n));
        assert_eq!(
            Model::from_bytes(&frame(&q)).err(),
            Some(Error::Malformed),
            "{n} entries"
        );
    }
}

#[cfg(feature = "std")]
mod built {
    use super::*;
    use generator_core::LayerShape;
    use generator_core::build::{FloatGenerator, FloatLayer, LayerKind, QuantizedModel, quantize};

    fn quantized() -> QuantizedModel {
        let float = FloatGenerator::random(5);
        quantize(
            &float,
            &[FloatGenerator::input(3, 1), FloatGenerator::input(4, 2)],
        )
    }

    fn load(q: &QuantizedModel) -> Result<(), Error> {
        Model::from_bytes(&q.to_bytes()).map(|_| ())
    }

    #[test]
    fn round_trip_preserves_parameters() {
        let q = quantized();
        let bytes = q.to_bytes();
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
        // A 16-channel 28x28 middle layer needs 12,544 + 3,136 bytes > MAX_ARENA_BYTES.
        let conv = |in_ch, out_ch, in_h, in_w, upsample, relu| {
            let kind = LayerKind::Conv3x3 {
                in_ch,
                out_ch,
                in_h,
                in_w,
                upsample,
            };
            FloatLayer {
                kind,
                weights: vec![0.01; kind.weight_len()],
                bias: vec![0.0; out_ch],
                relu,
            }
        };
        let mut float = FloatGenerator::random(1);
        float.layers[2] = conv(16, 16, 14, 14, true, true);
        float.layers[3] = conv(16, 1, 28, 28, false, false);
        let q = quantize(&float, &[FloatGenerator::input(0, 0)]);
        assert_eq!(load(&q), Err(Error::ArenaTooSmall));
    }
}

#[test]
fn arena_too_small_at_new() {
    let model = Model::from_bytes(DEFAULT_MODEL).unwrap();
    let mut arena = [0u8; MAX_ARENA_BYTES];
    assert_eq!(
        Generator::new(&model, &mut arena[..model.arena_bytes() - 1]).err(),
        Some(Error::ArenaTooSmall)
    );
    assert!(Generator::new(&model, &mut arena[..model.arena_bytes()]).is_ok());
}

#[test]
fn invalid_digit_and_buffer_too_small() {
    let model = Model::from_bytes(DEFAULT_MODEL).unwrap();
    let mut arena = [0u8; MAX_ARENA_BYTES];
    let mut g = Generator::new(&model, &mut arena).unwrap();
    let mut img: Image = [0; 784];
    assert_eq!(g.generate(10, 0, &mut img), Err(Error::InvalidDigit));
    assert_eq!(g.generate(255, 0, &mut img), Err(Error::InvalidDigit));
    let mut out = [[0u8; 784]; 2];
    assert_eq!(
        g.generate_batch(&[1, 2, 3], 0, &mut out),
        Err(Error::BufferTooSmall)
    );
    assert_eq!(
        g.generate_batch(&[1, 12], 0, &mut out),
        Err(Error::InvalidDigit)
    );
    let mut f = vec![0f32; 784 * 2 - 1];
    assert_eq!(to_signed_unit(&out, &mut f), Err(Error::BufferTooSmall));
}

#[test]
fn batch_matches_single_and_signed_unit() {
    let model = Model::from_bytes(DEFAULT_MODEL).unwrap();
    let mut arena = [0u8; MAX_ARENA_BYTES];
    let mut g = Generator::new(&model, &mut arena).unwrap();
    let labels = [3u8, 1, 4, 1, 5];
    let mut batch = [[0u8; 784]; 6];
    g.generate_batch(&labels, u32::MAX - 1, &mut batch).unwrap();
    for (i, &d) in labels.iter().enumerate() {
        let mut one: Image = [0; 784];
        g.generate(d, (u32::MAX - 1).wrapping_add(i as u32), &mut one)
            .unwrap();
        assert_eq!(one, batch[i], "image {i}");
    }
    assert_eq!(batch[5], [0; 784], "untouched beyond labels.len()");
    let mut f = vec![9f32; 784 * 5];
    to_signed_unit(&batch[..5], &mut f).unwrap();
    for (v, &p) in f.iter().zip(batch.iter().flatten()) {
        assert_eq!(*v, p as f32 / 127.5 - 1.0);
        assert!((-1.0..=1.0).contains(v));
    }
}

#[test]
fn errors_display_static_strings() {
    let all = [
        Error::BadMagic,
        Error::UnsupportedVersion,
        Error::Truncated,
        Error::TrailingBytes,
        Error::ChecksumMismatch,
        Error::Malformed,
        Error::ShapeMismatch,
        Error::ArenaTooSmall,
        Error::InvalidDigit,
        Error::BufferTooSmall,
    ];
    let texts: std::collections::HashSet<String> = all.iter().map(|e| e.to_string()).collect();
    assert_eq!(texts.len(), all.len());
    let _: &dyn core::error::Error = &Error::Malformed;
}

/// Loading must never panic; whatever loads must also generate without panicking.
fn exercise(bytes: &[u8]) {
    if let Ok(model) = Model::from_bytes(bytes) {
        let mut arena = [0u8; MAX_ARENA_BYTES];
        let mut g =
            Generator::new(&model, &mut arena).expect("accepted models fit MAX_ARENA_BYTES");
        let mut img: Image = [0; 784];
        g.generate(7, 1, &mut img)
            .expect("accepted models generate");
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Append(Vec<u8>),
    Overwrite(usize, Vec<u8>),
}

fn apply(m: &Mutation, bytes: &mut Vec<u8>) {
    let n = bytes.len();
    if n == 0 {
        return;
    }
    match m {
        Mutation::Flip(i, bit) => bytes[i % n] ^= 1 << (bit % 8),
        Mutation::Truncate(len) => bytes.truncate(len % n),
        Mutation::Append(extra) => bytes.extend_from_slice(extra),
        Mutation::Overwrite(i, data) => {
            for (k, &d) in data.iter().enumerate() {
                if let Some(b) = bytes.get_mut((i + k) % n) {
                    *b = d;
                }
            }
        }
    }
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        proptest::collection::vec(any::<u8>(), 1..16).prop_map(Mutation::Append),
        (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(i, d)| Mutation::Overwrite(i, d)),
    ]
}

/// Once found by `mutated_files_never_panic` (then kept in a regressions file that was
/// never replayed): truncate to a huge index modulo the length, then flip bit 0 of the
/// first byte twice.
#[test]
fn regression_truncate_then_double_flip() {
    let muts = [
        Mutation::Truncate(1944793498480793835),
        Mutation::Flip(0, 0),
        Mutation::Flip(0, 0),
    ];
    let mut bytes = DEFAULT_MODEL.to_vec();
    let mut p = payload_of(DEFAULT_MODEL).to_vec();
    for m in &muts {
        apply(m, &mut bytes);
        apply(m, &mut p);
    }
    assert_eq!(bytes.len(), 1944793498480793835 % DEFAULT_MODEL.len());
    assert_eq!(Model::from_bytes(&bytes).err(), Some(Error::Truncated));
    exercise(&frame(&p));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if cfg!(debug_assertions) { 300 } else { 2000 }, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        exercise(&bytes);
        // And with a valid header in front.
        let mut framed = b"DGEN\x01\x00".to_vec();
        framed.extend_from_slice(&bytes);
        exercise(&framed);
    }

    #[test]
    fn mutated_files_never_panic(muts in proptest::collection::vec(mutation(), 1..4)) {
        let mut bytes = DEFAULT_MODEL.to_vec();
        for m in &muts {
            apply(m, &mut bytes);
        }
        exercise(&bytes);
    }

    /// Mutations inside the payload with the CRC fixed up reach the decoder and the
    /// validator rather than stopping at the checksum.
    #[test]
    fn mutated_payloads_never_panic(muts in proptest::collection::vec(mutation(), 1..4)) {
        let mut p = payload_of(DEFAULT_MODEL).to_vec();
        for m in &muts {
            apply(m, &mut p);
        }
        exercise(&frame(&p));
    }
}
