//! Turning images into tensors.

use burn::prelude::*;

use super::{ImageSet, Normalization};

/// The images at `indices` as a normalised `[B, 1, H, W]` tensor.
pub fn images(set: &ImageSet, indices: &[usize], norm: &Normalization, device: &Device) -> Tensor<4> {
    let (h, w) = (set.height, set.width);
    let mut values = Vec::with_capacity(indices.len() * h * w);
    for &i in indices {
        norm.extend(&mut values, set.image(i));
    }
    Tensor::<1>::from_data(TensorData::new(values, [indices.len() * h * w]), device).reshape([indices.len(), 1, h, w])
}

/// The labels at `indices` as a `[B]` tensor.
pub fn labels(set: &ImageSet, indices: &[usize], device: &Device) -> Tensor<1, Int> {
    let values: Vec<i64> = indices.iter().map(|&i| set.labels[i] as i64).collect();
    Tensor::<1, Int>::from_data(TensorData::new(values, [indices.len()]), device)
}
