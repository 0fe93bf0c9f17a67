//! Turning examples into model inputs.

use burn::prelude::*;

use rand::rngs::StdRng;

use super::{Augment, ImageSet, Normalization};
use crate::models::Input;

/// What the model sees of some examples, and what it should predict for them.
pub struct Batch {
    pub input: Input,
    /// The class of each example, or (masked language modelling) of each masked token.
    pub targets: Tensor<1, Int>,
}

/// Labelled examples that the training loop and inference turn into batches: images with their
/// normalisation, or tokenised texts.
pub trait Examples {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn labels(&self) -> &[usize];
    /// The batch of the examples at `indices`. Training passes the run's augmentation and the
    /// step's random source (images are augmented, texts masked with it); evaluation passes
    /// `None` and gets the same batch every time.
    fn batch(
        &self,
        indices: &[usize],
        training: Option<(Augment, &mut StdRng)>,
        device: &Device,
    ) -> Batch;
    /// Examples per forward pass when nothing learns (no activations are kept for backward).
    fn inference_batch(&self) -> usize;
    /// Each example's size when sizes differ (texts): batches of similar sizes need less padding.
    fn lengths(&self) -> Option<Vec<usize>> {
        None
    }
    /// What the examples are, for throughput lines (`img`, `texts`).
    fn noun(&self) -> &'static str;
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

    fn batch(
        &self,
        indices: &[usize],
        training: Option<(Augment, &mut StdRng)>,
        device: &Device,
    ) -> Batch {
        let input = match training {
            Some((augment, rng)) if augment != Augment::None => {
                augmented_images(self.set, indices, self.norm, augment, rng, device)
            }
            _ => images(self.set, indices, self.norm, device),
        };
        Batch {
            input: Input::Images(input),
            targets: labels(&self.set.labels, indices, device),
        }
    }

    fn noun(&self) -> &'static str {
        "img"
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
