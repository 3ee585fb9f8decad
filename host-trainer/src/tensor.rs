//! Moving data between plain Rust buffers and Burn: tensors from pixels, labels and
//! one-hot codes, tensors back to `Vec<f32>`, and module weights to and from bytes.

use anyhow::Context;
use burn::prelude::*;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use generator_core::{IMAGE_PIXELS, IMAGE_SIDE, NUM_CLASSES};

/// Reads a tensor as a `Vec<f32>`.
pub fn to_vec_f32<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("float tensor data")
}

/// Builds an image batch `[b, 1, 28, 28]` from signed pixels (`IMAGE_PIXELS` per image),
/// taking images `idx`.
pub fn image_batch(pixels: &[f32], idx: &[usize], device: &Device) -> Tensor<4> {
    let mut v = Vec::with_capacity(idx.len() * IMAGE_PIXELS);
    for &i in idx {
        v.extend_from_slice(&pixels[i * IMAGE_PIXELS..(i + 1) * IMAGE_PIXELS]);
    }
    Tensor::from_data(
        TensorData::new(v, [idx.len(), 1, IMAGE_SIDE, IMAGE_SIDE]),
        device,
    )
}

/// Labels `[b]` as an int tensor.
pub fn label_tensor(labels: &[u8], device: &Device) -> Tensor<1, Int> {
    let v: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
    Tensor::from_data(TensorData::new(v, [labels.len()]), device)
}

/// One-hot `[b, 10]` float.
pub fn onehot(labels: &[u8], device: &Device) -> Tensor<2> {
    let mut v = vec![0f32; labels.len() * NUM_CLASSES];
    for (i, &l) in labels.iter().enumerate() {
        v[i * NUM_CLASSES + l as usize] = 1.0;
    }
    Tensor::from_data(TensorData::new(v, [labels.len(), NUM_CLASSES]), device)
}

/// A module's weights as Burn record bytes.
pub fn record_bytes<M: Module>(m: &M) -> anyhow::Result<Vec<u8>> {
    Ok(m.clone()
        .into_record()
        .into_bytes()
        .context("encoding module weights")?
        .to_vec())
}

/// Loads record bytes written by [`record_bytes`] into `m`.
pub fn load_module<M: Module>(m: M, bytes: &[u8]) -> anyhow::Result<M> {
    let rec = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes.to_vec()))
        .context("decoding module weights")?;
    Ok(m.load_record(rec))
}
