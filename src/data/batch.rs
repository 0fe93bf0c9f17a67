//! Turning images into tensors.

use burn::prelude::*;

use rand::rngs::StdRng;

use super::{Augment, ImageSet, Normalization};

/// The images at `indices` as a normalised `[B, C, H, W]` tensor.
pub fn images(
    set: &ImageSet,
    indices: &[usize],
    norm: &Normalization,
    device: &Device,
) -> Tensor<4> {
    let mut values = Vec::with_capacity(indices.len() * set.image_len());
    for &i in indices {
        norm.extend(&mut values, set.image(i));
    }
    image_tensor(values, shape(set, indices.len()), device)
}

/// The labels at `indices` as a `[B]` tensor.
pub fn labels(set: &ImageSet, indices: &[usize], device: &Device) -> Tensor<1, Int> {
    let values: Vec<i64> = indices.iter().map(|&i| set.labels[i] as i64).collect();
    Tensor::<1, Int>::from_data(TensorData::new(values, [indices.len()]), device)
}

/// Like [`images`], with each image randomly augmented.
pub fn augmented_images(
    set: &ImageSet,
    indices: &[usize],
    norm: &Normalization,
    augment: Augment,
    rng: &mut StdRng,
    device: &Device,
) -> Tensor<4> {
    let mut scratch = vec![0u8; set.image_len()];
    let mut values = Vec::with_capacity(indices.len() * set.image_len());
    for &i in indices {
        augment.apply(set.image(i), &mut scratch, set.height, set.width, rng);
        norm.extend(&mut values, &scratch);
    }
    image_tensor(values, shape(set, indices.len()), device)
}

fn shape(set: &ImageSet, batch: usize) -> [usize; 4] {
    [batch, set.channels, set.height, set.width]
}

fn image_tensor(values: Vec<f32>, shape: [usize; 4], device: &Device) -> Tensor<4> {
    Tensor::<1>::from_data(
        TensorData::new(values, [shape.iter().product::<usize>()]),
        device,
    )
    .reshape(shape)
}
