//! The encoder (feature `alloc`): an owned model and its `to_bytes`, the writing half
//! of [`Model::from_bytes`](crate::Model::from_bytes). The quantizer (crate
//! `generator-quant`) fills a [`QuantizedModel`]; this module only lays it out.

use alloc::vec::Vec;

use crate::model::{CRC, FORMAT_VERSION, LayerParams, MAGIC, ModelRepr};
use crate::{LayerShape, MAX_LAYERS};

/// An int8 layer with owned buffers, in the kernels' layout (see [`LayerParams`] for the
/// semantics of each field).
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedLayer {
    /// Operation and shape.
    pub shape: LayerShape,
    /// Whether a ReLU follows.
    pub relu: bool,
    /// Input scale.
    pub in_scale: f32,
    /// Input zero point.
    pub in_zero_point: i8,
    /// Output scale.
    pub out_scale: f32,
    /// Output zero point.
    pub out_zero_point: i8,
    /// Weights, linear `[out][in]`, conv `[out][ky][kx][in]`.
    pub weights: Vec<i8>,
    /// Effective bias per channel (includes `-in_zero_point * sum(w)`).
    pub bias: Vec<i32>,
    /// Q0.31 multiplier per channel.
    pub multiplier: Vec<i32>,
    /// Total right shift per channel.
    pub shift: Vec<u8>,
}

/// A quantised model ready to be written.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedModel {
    /// Layers, first to last (at most [`MAX_LAYERS`]).
    pub layers: Vec<QuantizedLayer>,
    /// Pixel per last-layer int8 output, indexed by `q + 128`.
    pub output_lut: [u8; 256],
}

fn le_bytes(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Why a [`QuantizedModel`] cannot be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// More than [`MAX_LAYERS`] layers.
    TooManyLayers,
}

impl core::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            EncodeError::TooManyLayers => "a model file holds at most MAX_LAYERS layers",
        })
    }
}

impl core::error::Error for EncodeError {}

impl QuantizedModel {
    /// Encodes the model file: magic, version, length-prefixed postcard payload, CRC-32
    /// of the payload. The result loads with [`Model::from_bytes`](crate::Model::from_bytes)
    /// if the parameters are valid (this function does not validate them).
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let owned: Vec<[Vec<u8>; 4]> = self
            .layers
            .iter()
            .map(|l| {
                [
                    l.weights.iter().map(|&w| w as u8).collect(),
                    le_bytes(&l.bias),
                    le_bytes(&l.multiplier),
                    l.shift.clone(),
                ]
            })
            .collect();
        let mut layers = heapless::Vec::<_, MAX_LAYERS>::new();
        for (l, [weights, bias, multiplier, shift]) in self.layers.iter().zip(&owned) {
            let params = LayerParams {
                shape: l.shape,
                relu: l.relu,
                in_scale: l.in_scale,
                in_zero_point: l.in_zero_point,
                out_scale: l.out_scale,
                out_zero_point: l.out_zero_point,
                weights,
                bias,
                multiplier,
                shift,
            };
            layers
                .push(params)
                .map_err(|_| EncodeError::TooManyLayers)?;
        }
        Ok(frame(&ModelRepr {
            layers,
            output_lut: &self.output_lut,
        }))
    }
}

/// Frames a payload: magic, version, length-prefixed payload, CRC.
fn frame(repr: &ModelRepr<'_>) -> Vec<u8> {
    let payload = postcard::to_allocvec(repr).expect("serialising to a Vec cannot fail");
    let mut out = Vec::with_capacity(payload.len() + 16);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(
        &postcard::to_allocvec(payload.as_slice()).expect("serialising to a Vec cannot fail"),
    );
    out.extend_from_slice(&CRC.checksum(&payload).to_le_bytes());
    out
}
