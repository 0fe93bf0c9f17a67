//! Turning examples into model inputs.

use burn::prelude::*;

use rand::rngs::StdRng;

use super::{Augment, ImageSet, Normalization};
use crate::models::Input;

/// Labelled examples that the training loop and inference turn into batches: images with their
/// normalisation, or tokenised texts.
pub trait Examples {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn labels(&self) -> &[usize];
    /// Model inputs for the examples at `indices`, augmented (images) when `augment` is given.
    fn inputs(
        &self,
        indices: &[usize],
        augment: Option<(Augment, &mut StdRng)>,
        device: &Device,
    ) -> Input;
    /// Examples per forward pass when nothing learns (no activations are kept for backward).
    fn inference_batch(&self) -> usize;
}

/// Images and the normalisation the model expects.
pub struct ImageExamples<'a> {
    pub set: &'a ImageSet,
    pub norm: &'a Normalization,
}

impl ImageSet {
    /// These images as model inputs normalised with `norm`.
    pub fn normalized<'a>(&'a self, norm: &'a Normalization) -> ImageExamples<'a> {
        ImageExamples { set: self, norm }
    }
}

impl Examples for ImageExamples<'_> {
    fn len(&self) -> usize {
        self.set.len()
    }

    fn labels(&self) -> &[usize] {
        &self.set.labels
    }

    fn inputs(
        &self,
        indices: &[usize],
        augment: Option<(Augment, &mut StdRng)>,
        device: &Device,
    ) -> Input {
        Input::Images(match augment {
            Some((augment, rng)) => {
                augmented_images(self.set, indices, self.norm, augment, rng, device)
            }
            None => images(self.set, indices, self.norm, device),
        })
    }

    /// 500 of 28×28, fewer of larger images, so activations stay within a few hundred MB.
    fn inference_batch(&self) -> usize {
        (500 * 28 * 28 / self.set.image_len().max(1)).clamp(8, 500)
    }
}

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
pub fn labels(labels: &[usize], indices: &[usize], device: &Device) -> Tensor<1, Int> {
    let values: Vec<i64> = indices.iter().map(|&i| labels[i] as i64).collect();
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
