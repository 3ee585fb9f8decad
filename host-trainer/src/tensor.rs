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

/// Loads record bytes written by [`record_bytes`] into `m`. Burn checks every tensor's
/// shape against `m` (and that none is missing or left over) before it uses the data, and
/// a mismatch is an error here, not a panic.
pub fn load_module<M: Module>(m: M, bytes: &[u8]) -> anyhow::Result<M> {
    let rec = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes.to_vec()))
        .context("decoding module weights")?;
    m.try_load_record(rec)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("the weights do not fit the model")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DiscriminatorConfig;

    /// Weights of another shape (a discriminator of other widths) are refused with an
    /// error, not a panic.
    #[test]
    fn weights_of_another_shape_are_an_error() {
        let device = Device::default();
        let wide = DiscriminatorConfig::new()
            .with_c1(32)
            .with_c2(64)
            .init(&device);
        let narrow = DiscriminatorConfig::new()
            .with_c1(16)
            .with_c2(32)
            .init(&device);
        let bytes = record_bytes(&wide).unwrap();
        let e = load_module(narrow.clone(), &bytes).expect_err("other shapes loaded");
        assert!(format!("{e:#}").contains("do not fit"), "{e:#}");
        load_module(narrow.clone(), &record_bytes(&narrow).unwrap()).unwrap();
    }
}
