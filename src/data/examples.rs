//! Examples as a model takes them: what a model reads ([`ModelInput`], saved in every
//! checkpoint), and labelled images or texts turned into batches ([`Examples`]).

use anyhow::Result;
use burn::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use super::texts::TextSet;
use super::{Augment, Dataset, ImageSet, Normalization, TextTokenizer};
use crate::bail_input;
use crate::models::{Input, Task};

/// Shape and normalisation of the images a model takes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InputSpec {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub normalization: Normalization,
}

impl InputSpec {
    /// Channels, height, width.
    pub fn dims(&self) -> [usize; 3] {
        [self.channels, self.height, self.width]
    }
}

/// Texts a model takes: tokenised with the checkpoint's `tokenizer.json`, at most this long.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TextInput {
    pub max_length: usize,
}

/// What a model takes: images of a shape and normalisation, or texts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum ModelInput {
    Image(InputSpec),
    Text(TextInput),
}

impl ModelInput {
    /// Channels, height, width of image inputs; `None` for text.
    pub fn dims(&self) -> Option<[usize; 3]> {
        match self {
            ModelInput::Image(spec) => Some(spec.dims()),
            ModelInput::Text(_) => None,
        }
    }

    /// `data` as examples this model takes: images normalised its way, or texts tokenised with
    /// `tokenizer` (masked, for masked language modelling).
    pub fn examples<'a>(
        &'a self,
        data: &'a Dataset,
        tokenizer: Option<&'a TextTokenizer>,
        task: Task,
    ) -> Result<Box<dyn Examples + 'a>> {
        Ok(match (self, data, tokenizer) {
            (ModelInput::Image(spec), Dataset::Images(set), _) => {
                Box::new(set.normalized(&spec.normalization))
            }
            (ModelInput::Text(_), Dataset::Texts(set), Some(tokenizer)) => Box::new(TextExamples {
                set,
                tokenizer,
                masked: task == Task::Mlm,
            }),
            _ => bail_input!("the data is not of the kind the model takes (images or texts)"),
        })
    }

    /// The image input, or an error saying this model reads text.
    pub fn image(&self) -> Result<&InputSpec> {
        match self {
            ModelInput::Image(spec) => Ok(spec),
            ModelInput::Text(_) => bail_input!("a text model: it takes texts, not images"),
        }
    }
}

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
    ) -> Result<Batch>;
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
    ) -> Result<Batch> {
        let input = match training {
            Some((augment, rng)) if augment != Augment::None => {
                augmented_images(self.set, indices, self.norm, augment, rng, device)
            }
            _ => images(self.set, indices, self.norm, device),
        };
        Ok(Batch {
            input: Input::Images(input),
            targets: labels(&self.set.labels, indices, device),
        })
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

/// Texts per forward pass when nothing learns.
const TEXT_INFERENCE_BATCH: usize = 32;

/// Texts and the tokenizer the model reads them with.
pub struct TextExamples<'a> {
    pub set: &'a TextSet,
    pub tokenizer: &'a TextTokenizer,
    /// Masked language modelling: the model predicts masked tokens instead of the text's class.
    pub masked: bool,
}

impl Examples for TextExamples<'_> {
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
    ) -> Result<Batch> {
        let texts: Vec<&str> = indices
            .iter()
            .map(|&i| self.set.texts[i].as_str())
            .collect();
        let mut encoded = self.tokenizer.encode(&texts)?;
        if !self.masked {
            let (ids, types, mask) = encoded.tensors(device);
            return Ok(Batch {
                input: Input::Tokens {
                    ids,
                    types,
                    mask,
                    predict_at: None,
                },
                targets: labels(&self.set.labels, indices, device),
            });
        }
        // Evaluation masks the same tokens every time: a seed from the batch's first text.
        let mut fixed;
        let rng = match training {
            Some((_, rng)) => rng,
            None => {
                fixed = StdRng::seed_from_u64(indices.first().map_or(0, |&i| i as u64));
                &mut fixed
            }
        };
        let (positions, targets) = self.tokenizer.mask(&mut encoded, rng);
        let (ids, types, mask) = encoded.tensors(device);
        let n = positions.len();
        Ok(Batch {
            input: Input::Tokens {
                ids,
                types,
                mask,
                predict_at: Some(Tensor::from_data(TensorData::new(positions, [n]), device)),
            },
            targets: Tensor::from_data(TensorData::new(targets, [n]), device),
        })
    }

    fn inference_batch(&self) -> usize {
        TEXT_INFERENCE_BATCH
    }

    fn lengths(&self) -> Option<Vec<usize>> {
        Some(self.set.texts.iter().map(String::len).collect())
    }

    fn noun(&self) -> &'static str {
        "texts"
    }
}
