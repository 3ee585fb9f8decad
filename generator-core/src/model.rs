//! The model file format and its zero-copy, validating loader.
//!
//! See `FORMAT.md` for the byte-level layout. In short:
//!
//! ```text
//! "DGEN" | version: u16 LE | payload: postcard byte string (varint length + bytes)
//!        | crc32(payload): u32 LE
//! payload = postcard(ModelRepr { layers: [LayerParams; 1..=MAX_LAYERS], output_lut: bytes })
//! ```
//!
//! Everything variable-length is a borrowed `&[u8]` into the caller's buffer: `i8`
//! tensors are read as raw bytes (`b as i8`) and `i32` vectors as little-endian
//! 4-byte groups, so decoding copies nothing and allocates nothing.

use serde::{Deserialize, Serialize};

use crate::{Error, IMAGE_PIXELS, IMAGE_SIDE, INPUT_DIM, MAX_ARENA_BYTES, Result};

/// The four bytes every model file starts with.
pub const MAGIC: [u8; 4] = *b"DGEN";
/// The file format version this crate reads and writes.
pub const FORMAT_VERSION: u16 = 1;
/// Most layers a model may have.
pub const MAX_LAYERS: usize = 8;
/// Most input channels a 3x3 convolution may have (bounds the on-stack patch buffer,
/// `9 * MAX_CONV_IN_CH` bytes).
pub const MAX_CONV_IN_CH: usize = 64;
/// Most output channels a 3x3 convolution may have (bounds the on-stack table of
/// decoded per-channel parameters).
pub const MAX_CONV_OUT_CH: usize = 64;
/// Largest accepted `|bias|`: with it, `bias + sum(w * x)` cannot overflow an `i32`
/// for any dot product of at most 65,535 terms of magnitude `128 * 128`.
pub const MAX_ABS_BIAS: i32 = 1 << 30;
/// Smallest and largest accepted total right shift of a requantisation.
pub const SHIFT_RANGE: core::ops::RangeInclusive<u8> = 1..=62;

/// Bytes of header before the payload: magic and version.
const HEADER_LEN: usize = 6;
/// CRC-32/ISO-HDLC (the zlib/PNG CRC).
pub(crate) const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// The operation and shape of one layer. Dimensions are `u16` in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LayerShape {
    /// Fully connected: `outputs x inputs` weights.
    Linear {
        /// Input features.
        inputs: u16,
        /// Output features.
        outputs: u16,
    },
    /// 3x3 convolution, stride 1, padding 1, optionally reading a nearest-neighbour
    /// 2x upsampled view of its input (output pixel `(y, x)` reads input pixel
    /// `(y / 2, x / 2)` around it). Activations are HWC.
    Conv3x3 {
        /// Input channels.
        in_ch: u16,
        /// Output channels.
        out_ch: u16,
        /// Input height (before upsampling).
        in_h: u16,
        /// Input width (before upsampling).
        in_w: u16,
        /// Whether the input is upsampled 2x first.
        upsample: bool,
    },
}

impl LayerShape {
    /// Number of input values (as `u64`, so that it cannot overflow on 32-bit targets).
    pub fn input_len(&self) -> u64 {
        match *self {
            LayerShape::Linear { inputs, .. } => inputs as u64,
            LayerShape::Conv3x3 {
                in_ch, in_h, in_w, ..
            } => in_ch as u64 * in_h as u64 * in_w as u64,
        }
    }

    /// Output `(height, width, channels)`; a linear layer is `(1, 1, outputs)`.
    pub fn output_hwc(&self) -> (u64, u64, u64) {
        match *self {
            LayerShape::Linear { outputs, .. } => (1, 1, outputs as u64),
            LayerShape::Conv3x3 {
                out_ch,
                in_h,
                in_w,
                upsample,
                ..
            } => {
                let f = if upsample { 2 } else { 1 };
                (in_h as u64 * f, in_w as u64 * f, out_ch as u64)
            }
        }
    }

    /// Number of output values.
    pub fn output_len(&self) -> u64 {
        let (h, w, c) = self.output_hwc();
        h * w * c
    }

    /// Output channels (features for a linear layer): the number of per-channel
    /// quantisation parameters.
    pub fn channels(&self) -> u64 {
        self.output_hwc().2
    }

    /// Weights per output channel (the dot-product length).
    pub fn fan_in(&self) -> u64 {
        match *self {
            LayerShape::Linear { inputs, .. } => inputs as u64,
            LayerShape::Conv3x3 { in_ch, .. } => 9 * in_ch as u64,
        }
    }

    /// Multiply-accumulates of one forward pass.
    pub fn macs(&self) -> u64 {
        let (h, w, c) = self.output_hwc();
        h * w * c * self.fan_in()
    }
}

/// One quantised layer as stored in the file.
///
/// Semantics, with `x` the int8 input and `w` the int8 weights of output channel `c`:
/// `acc = bias[c] + sum(w * x)` (the bias already includes `-in_zero_point * sum(w)`, so
/// padding with `in_zero_point` is exact), then
/// `y = clamp(round_half_up(acc * multiplier[c] / 2^shift[c]) + out_zero_point, lo, 127)`
/// with `lo = out_zero_point` after a ReLU and `-128` otherwise.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct LayerParams<'a> {
    /// Operation and shape.
    pub shape: LayerShape,
    /// Whether a ReLU follows (a clamp at `out_zero_point`).
    pub relu: bool,
    /// Scale of the input activation (informational: the kernels do not use it).
    pub in_scale: f32,
    /// Zero point of the input activation (the conv's padding value).
    pub in_zero_point: i8,
    /// Scale of the output activation (informational).
    pub out_scale: f32,
    /// Zero point of the output activation.
    pub out_zero_point: i8,
    /// `i8` weights as raw bytes: linear `[out][in]`, conv `[out][ky][kx][in]`.
    pub weights: &'a [u8],
    /// `i32` little-endian effective bias per output channel.
    pub bias: &'a [u8],
    /// `i32` little-endian Q0.31 multiplier per output channel, in `0..=i32::MAX`.
    pub multiplier: &'a [u8],
    /// Total right shift per output channel, in [`SHIFT_RANGE`].
    pub shift: &'a [u8],
}

/// A [`LayerParams`] whose lengths and ranges have been checked, so the kernels can run
/// it without any further validation.
#[derive(Debug, Clone, Copy)]
pub struct Layer<'a> {
    params: LayerParams<'a>,
}

fn le_i32s(bytes: &[u8]) -> impl Iterator<Item = i32> + '_ {
    bytes
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
}

impl<'a> Layer<'a> {
    /// Validates one layer on its own: dimensions non-zero, conv channels within
    /// [`MAX_CONV_IN_CH`] and [`MAX_CONV_OUT_CH`], buffer lengths matching the shape,
    /// requantisation parameters in range, activations within [`MAX_ARENA_BYTES`].
    pub fn new(params: LayerParams<'a>) -> Result<Layer<'a>> {
        let s = params.shape;
        let dims_ok = match s {
            LayerShape::Linear { inputs, outputs } => inputs > 0 && outputs > 0,
            LayerShape::Conv3x3 {
                in_ch,
                out_ch,
                in_h,
                in_w,
                ..
            } => {
                in_ch > 0
                    && out_ch > 0
                    && in_h > 0
                    && in_w > 0
                    && in_ch as usize <= MAX_CONV_IN_CH
                    && out_ch as usize <= MAX_CONV_OUT_CH
            }
        };
        if !dims_ok {
            return Err(Error::Malformed);
        }
        let limit = MAX_ARENA_BYTES as u64;
        // Inputs are bounded too: a conv's by `out_h * out_w * MAX_CONV_IN_CH`, a linear's
        // by `u16::MAX`, so every index fits a 32-bit `usize`.
        if s.output_len() > limit {
            return Err(Error::ArenaTooSmall);
        }
        let ch = s.channels();
        let lengths_ok = params.weights.len() as u64 == ch * s.fan_in()
            && params.bias.len() as u64 == 4 * ch
            && params.multiplier.len() as u64 == 4 * ch
            && params.shift.len() as u64 == ch;
        if !lengths_ok {
            return Err(Error::Malformed);
        }
        let values_ok = le_i32s(params.bias).all(|b| (-MAX_ABS_BIAS..=MAX_ABS_BIAS).contains(&b))
            && le_i32s(params.multiplier).all(|m| m >= 0)
            && params.shift.iter().all(|s| SHIFT_RANGE.contains(s))
            && [params.in_scale, params.out_scale]
                .iter()
                .all(|x| x.is_finite() && *x > 0.0);
        if !values_ok {
            return Err(Error::Malformed);
        }
        Ok(Layer { params })
    }

    /// The validated parameters.
    pub fn params(&self) -> &LayerParams<'a> {
        &self.params
    }

    /// Operation and shape.
    pub fn shape(&self) -> LayerShape {
        self.params.shape
    }

    /// Number of input values.
    pub fn input_len(&self) -> usize {
        self.params.shape.input_len() as usize
    }

    /// Number of output values.
    pub fn output_len(&self) -> usize {
        self.params.shape.output_len() as usize
    }

    /// Bytes of parameters stored for this layer.
    pub fn param_bytes(&self) -> usize {
        let p = &self.params;
        p.weights.len() + p.bias.len() + p.multiplier.len() + p.shift.len()
    }
}

/// The postcard payload of a model file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ModelRepr<'a> {
    #[serde(borrow)]
    pub layers: heapless::Vec<LayerParams<'a>, MAX_LAYERS>,
    pub output_lut: &'a [u8],
}

/// A validated, zero-copy view of a model file.
#[derive(Debug, Clone)]
pub struct Model<'a> {
    layers: heapless::Vec<Layer<'a>, MAX_LAYERS>,
    lut: &'a [u8; 256],
    regions: [usize; 2],
}

/// Most bytes of the payload-length varint: 5 hold any `u32`.
const MAX_LENGTH_BYTES: usize = 5;

/// Decodes the payload length: an unsigned LEB128 varint of 1 to [`MAX_LENGTH_BYTES`]
/// bytes in its canonical (shortest) form, as postcard writes it. A padded or overlong
/// encoding, or one above `u32::MAX`, is [`Error::Malformed`]; a file that ends inside
/// it is [`Error::Truncated`].
fn take_length(bytes: &[u8]) -> Result<(u32, &[u8])> {
    let mut value = 0u32;
    for (i, &b) in bytes.iter().enumerate().take(MAX_LENGTH_BYTES) {
        let last_group = i == MAX_LENGTH_BYTES - 1;
        // The fifth group holds bits 28..32: only its low four bits fit a `u32`.
        if last_group && b > 0x0F {
            return Err(Error::Malformed);
        }
        value |= u32::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            // A final group of zero after others only pads the number.
            if i > 0 && b == 0 {
                return Err(Error::Malformed);
            }
            return Ok((value, &bytes[i + 1..]));
        }
    }
    if bytes.len() < MAX_LENGTH_BYTES {
        Err(Error::Truncated)
    } else {
        Err(Error::Malformed)
    }
}

/// A postcard output that writes nothing and checks that what would be written is
/// exactly `expected`: a serialization succeeds only if it reproduces those bytes.
struct SameBytes<'b> {
    expected: &'b [u8],
}

impl postcard::ser_flavors::Flavor for SameBytes<'_> {
    type Output = ();

    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.try_extend(&[byte])
    }

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        match self.expected.split_at_checked(data.len()) {
            Some((head, rest)) if head == data => {
                self.expected = rest;
                Ok(())
            }
            _ => Err(postcard::Error::SerializeBufferFull),
        }
    }

    fn finalize(self) -> postcard::Result<()> {
        if self.expected.is_empty() {
            Ok(())
        } else {
            Err(postcard::Error::SerializeBufferFull)
        }
    }
}

fn map_postcard(e: postcard::Error) -> Error {
    match e {
        postcard::Error::DeserializeUnexpectedEnd => Error::Truncated,
        _ => Error::Malformed,
    }
}

impl<'a> Model<'a> {
    /// Decodes and validates a model file without copying or allocating.
    ///
    /// Checks, in order: magic, version, framing (truncation, trailing bytes, a
    /// canonical length varint), CRC-32, payload decoding (only its canonical encoding
    /// is accepted, so one file means the same on 32- and 64-bit targets), each layer ([`Layer::new`]), the chaining of shapes and
    /// quantisation parameters, the `42`-value input and `28x28x1` output, and the
    /// arena need. Any byte string yields `Ok` or an [`Error`]; it never panics.
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Model<'a>> {
        // Header.
        let n = bytes.len().min(MAGIC.len());
        if bytes[..n] != MAGIC[..n] {
            return Err(Error::BadMagic);
        }
        let (header, rest) = bytes.split_at_checked(HEADER_LEN).ok_or(Error::Truncated)?;
        if u16::from_le_bytes([header[4], header[5]]) != FORMAT_VERSION {
            return Err(Error::UnsupportedVersion);
        }
        // Framing: length-prefixed payload, then exactly four CRC bytes. The length is
        // decoded as a `u32` (not a `usize`), so a file means the same on every target.
        let (len, rest) = take_length(rest)?;
        let (payload, rest) = usize::try_from(len)
            .ok()
            .and_then(|len| rest.split_at_checked(len))
            .ok_or(Error::Truncated)?;
        let crc: [u8; 4] = match rest.len() {
            0..4 => return Err(Error::Truncated),
            4 => [rest[0], rest[1], rest[2], rest[3]],
            _ => return Err(Error::TrailingBytes),
        };
        if CRC.checksum(payload) != u32::from_le_bytes(crc) {
            return Err(Error::ChecksumMismatch);
        }
        // Payload. Its length is covered by the CRC, so an inner truncation is malformed.
        let (repr, rest) =
            postcard::take_from_bytes::<ModelRepr<'a>>(payload).map_err(
                |e| match map_postcard(e) {
                    Error::Truncated => Error::Malformed,
                    other => other,
                },
            )?;
        if !rest.is_empty() {
            return Err(Error::TrailingBytes);
        }
        // Only the canonical encoding is accepted: postcard reads a padded varint (a
        // zero continuation group) as the same number, and reads byte-string lengths as
        // `usize`, up to 5 bytes on 32-bit targets but 10 on 64-bit ones. Re-encoding
        // the decoded model must give back exactly the payload.
        postcard::serialize_with_flavor(&repr, SameBytes { expected: payload })
            .map_err(|_| Error::Malformed)?;
        Self::validate(repr)
    }

    fn validate(repr: ModelRepr<'a>) -> Result<Model<'a>> {
        let mut layers = heapless::Vec::new();
        for p in repr.layers.iter() {
            // Cannot fail: both vectors have capacity MAX_LAYERS.
            layers.push(Layer::new(*p)?).map_err(|_| Error::Malformed)?;
        }
        let first = layers.first().ok_or(Error::Malformed)?;
        if first.shape().input_len() != INPUT_DIM as u64 {
            return Err(Error::ShapeMismatch);
        }
        for pair in layers.windows(2) {
            let (a, b) = (pair[0].params(), pair[1].params());
            if a.shape.output_len() != b.shape.input_len() {
                return Err(Error::ShapeMismatch);
            }
            let conv_to_conv_mismatch = match (a.shape, b.shape) {
                (
                    LayerShape::Conv3x3 { .. },
                    LayerShape::Conv3x3 {
                        in_ch, in_h, in_w, ..
                    },
                ) => a.shape.output_hwc() != (in_h as u64, in_w as u64, in_ch as u64),
                _ => false,
            };
            if conv_to_conv_mismatch {
                return Err(Error::ShapeMismatch);
            }
            if a.out_zero_point != b.in_zero_point || a.out_scale.to_bits() != b.in_scale.to_bits()
            {
                return Err(Error::Malformed);
            }
        }
        let last = layers.last().ok_or(Error::Malformed)?;
        let side = IMAGE_SIDE as u64;
        let out_ok = match last.shape() {
            LayerShape::Linear { outputs, .. } => outputs as usize == IMAGE_PIXELS,
            s @ LayerShape::Conv3x3 { .. } => s.output_hwc() == (side, side, 1),
        };
        if !out_ok {
            return Err(Error::ShapeMismatch);
        }
        let lut: &'a [u8; 256] = repr.output_lut.try_into().map_err(|_| Error::Malformed)?;
        // Ping-pong: even layers write region 0, odd layers region 1.
        let mut regions = [0usize; 2];
        for (i, l) in layers.iter().enumerate() {
            regions[i % 2] = regions[i % 2].max(l.output_len());
        }
        if regions[0] + regions[1] > MAX_ARENA_BYTES {
            return Err(Error::ArenaTooSmall);
        }
        Ok(Model {
            layers,
            lut,
            regions,
        })
    }

    /// Exact arena bytes this model needs: the largest output of an even layer plus
    /// the largest output of an odd layer.
    pub fn arena_bytes(&self) -> usize {
        self.regions[0] + self.regions[1]
    }

    /// Sizes of the two ping-pong regions (even layers write the first).
    pub fn arena_regions(&self) -> [usize; 2] {
        self.regions
    }

    /// Multiply-accumulates per generated digit.
    pub fn macs_per_digit(&self) -> u64 {
        self.layers.iter().map(|l| l.shape().macs()).sum()
    }

    /// Bytes of int8 weights, int32 biases, multipliers, shifts and the output table.
    pub fn weight_bytes(&self) -> usize {
        self.layers.iter().map(Layer::param_bytes).sum::<usize>() + self.lut.len()
    }

    /// The validated layers, first to last.
    pub fn layers(&self) -> &[Layer<'a>] {
        &self.layers
    }

    /// The output table: pixel = `lut[(q as u8 ^ 0x80) as usize]` for the last layer's
    /// int8 output `q` (index `q + 128`), with `tanh` folded in.
    pub fn output_lut(&self) -> &'a [u8; 256] {
        self.lut
    }

    /// Scale of the network input: `q = clamp(round(x / scale) + zero_point)`.
    pub fn input_scale(&self) -> f32 {
        self.layers[0].params().in_scale
    }

    /// Zero point of the network input.
    pub fn input_zero_point(&self) -> i8 {
        self.layers[0].params().in_zero_point
    }
}

/// Frames a payload: magic, version, length-prefixed payload, CRC.
#[cfg(feature = "std")]
pub(crate) fn encode(repr: &ModelRepr<'_>) -> std::vec::Vec<u8> {
    let payload = postcard::to_allocvec(repr).expect("serialising to a Vec cannot fail");
    let mut out = std::vec::Vec::with_capacity(payload.len() + 16);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(
        &postcard::to_allocvec(payload.as_slice()).expect("serialising to a Vec cannot fail"),
    );
    out.extend_from_slice(&CRC.checksum(&payload).to_le_bytes());
    out
}
