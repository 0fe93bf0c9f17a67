//! Examples as a model takes them: what a model reads ([`ModelInput`], saved in every
//! checkpoint), and labelled images or texts turned into batches ([`Examples`]) (speech:
//! [`super::speech`]).

use std::ops::Range;

use anyhow::Result;
use burn::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use super::pairs::{PairExamples, TextPairInput, TokenPairs, Vocab};
use super::speech::SpeechInput;
use super::texts::TextSet;
use super::tokenizer::Encoded;
use super::{Augment, Dataset, ImageSet, Normalization, Reads, TextTokenizer};
use crate::bail_input;
use crate::models::{Classifier, Input, Interpolation, Task};

/// Shape, scaling and normalisation of the images a model takes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InputSpec {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub normalization: Normalization,
    /// How image files of other sizes are resized (absent from checkpoints before it existed:
    /// bilinear).
    #[serde(default, skip_serializing_if = "Interpolation::is_default")]
    pub interpolation: Interpolation,
}

impl InputSpec {
    /// Channels, height, width.
    pub fn dims(&self) -> [usize; 3] {
        [self.channels, self.height, self.width]
    }

    /// Channels, height, width and how files are scaled to them.
    pub fn shape(&self) -> ImageShape {
        ImageShape {
            dims: self.dims(),
            interpolation: self.interpolation,
        }
    }
}

/// The images a model reads before normalisation: channels, height, width, and how image
/// files of other sizes are scaled to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageShape {
    /// Channels, height, width.
    pub dims: [usize; 3],
    /// The filter that scales image files of other sizes.
    pub interpolation: Interpolation,
}

/// Bilinear scaling, as before the choice existed.
impl From<[usize; 3]> for ImageShape {
    fn from(dims: [usize; 3]) -> Self {
        ImageShape {
            dims,
            interpolation: Interpolation::default(),
        }
    }
}

/// Texts a model takes: tokenised with the checkpoint's `tokenizer.json`, at most this long.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TextInput {
    pub max_length: usize,
}

/// Sequence pairs a model takes: the vocabularies of both sides.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PairInput {
    pub source_vocab: Vocab,
    pub target_vocab: Vocab,
}

/// What a model takes: images of a shape and normalisation, texts, sequence pairs, or speech.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum ModelInput {
    Image(InputSpec),
    // Before `Text`: untagged variants are tried in order, and a speech input has a
    // `max_tokens` where a text input has a `max_length`.
    Speech(SpeechInput),
    Text(TextInput),
    Pairs(PairInput),
    // Last: its fields are its own, so it never takes another variant's input.
    TextPairs(TextPairInput),
}

impl ModelInput {
    /// Channels, height, width of image inputs; `None` for others.
    pub fn dims(&self) -> Option<[usize; 3]> {
        match self {
            ModelInput::Image(spec) => Some(spec.dims()),
            _ => None,
        }
    }

    /// What data to load for this model.
    pub fn reads(&self) -> Reads {
        match self {
            ModelInput::Image(spec) => Reads::Images(spec.shape()),
            ModelInput::Text(_) => Reads::Texts,
            ModelInput::Pairs(_) => Reads::Pairs,
            ModelInput::TextPairs(_) => Reads::TextPairs,
            ModelInput::Speech(_) => Reads::Speech,
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
                task,
            }),
            (ModelInput::Pairs(p), Dataset::Pairs(set), _) => Box::new(PairExamples {
                set,
                source: &p.source_vocab,
                target: &p.target_vocab,
            }),
            (ModelInput::TextPairs(input), Dataset::Pairs(set), Some(tokenizer)) => {
                let pairs = TokenPairs::new(set, tokenizer, input)?;
                if let Some(note) = pairs.truncation_note() {
                    eprintln!("{note}");
                }
                Box::new(pairs)
            }
            (ModelInput::Speech(input), Dataset::Speech(set), Some(tokenizer)) => {
                Box::new(set.examples(input, tokenizer)?)
            }
            _ => {
                bail_input!("the data is not of the kind the model takes (images, texts or speech)")
            }
        })
    }

    /// The image input, or an error saying what this model reads.
    pub fn image(&self) -> Result<&InputSpec> {
        match self {
            ModelInput::Image(spec) => Ok(spec),
            ModelInput::Text(_) => bail_input!("a text model: it takes texts, not images"),
            ModelInput::Pairs(_) | ModelInput::TextPairs(_) => {
                bail_input!("a sequence-to-sequence model: it takes sequences")
            }
            ModelInput::Speech(_) => bail_input!("a speech model: it takes audio, not images"),
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
    /// The batch of the examples at `indices`. Training says how to augment (images) or mask
    /// (texts) each example, and which rows of the batch this process computes; evaluation
    /// passes `None` and gets the whole batch, the same every time.
    fn batch(
        &self,
        indices: &[usize],
        training: Option<&Training>,
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
    /// Whether each example's backbone features are the same every epoch, so that a frozen
    /// backbone's can be computed once (not for masked or sequence-to-sequence examples).
    fn fixed_features(&self) -> bool {
        true
    }
    /// The task's own error rate of `model` on these examples, lower is better, where the task
    /// has one beyond the loss and accuracy (speech: the word error rate of the transcripts it
    /// writes); measured on the validation examples after every epoch.
    fn error_rate(&self, _model: &Classifier) -> Result<Option<f64>> {
        Ok(None)
    }
    /// The scores the loss and the accuracy read, from the model's outputs for a batch: the
    /// outputs themselves, or (contrastive views, [`super::views`]) their similarities.
    fn scores(&self, outputs: Tensor<2>) -> Tensor<2> {
        outputs
    }
}

/// A run's training examples and, when there are validation examples, those.
pub type RunExamples<'a> = (Box<dyn Examples + 'a>, Option<Box<dyn Examples + 'a>>);

/// How a training step makes its batch.
#[derive(Debug, Clone)]
pub struct Training {
    pub augment: Augment,
    /// The step's seed: example `p` of the batch draws its augmentation or masking from
    /// `rng(p)`, whatever process computes it.
    pub seed: u64,
    /// The rows of the batch this process computes (all of them in one process).
    pub part: Range<usize>,
}

impl Training {
    /// The random source of the example at `position` in the batch.
    pub fn rng(&self, position: usize) -> StdRng {
        StdRng::seed_from_u64(
            (self.seed ^ 0x5EED_0006)
                .wrapping_add((position as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        )
    }
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
        training: Option<&Training>,
        device: &Device,
    ) -> Result<Batch> {
        let (input, rows) = match training {
            Some(t) if t.augment != Augment::None => (
                augmented_images(self.set, indices, self.norm, t, device),
                &indices[t.part.clone()],
            ),
            Some(t) => {
                let rows = &indices[t.part.clone()];
                (images(self.set, rows, self.norm, device), rows)
            }
            None => (images(self.set, indices, self.norm, device), indices),
        };
        Ok(Batch {
            input: Input::Images(input),
            targets: labels(&self.set.labels, rows, device),
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

/// Like [`images`] for the rows `training.part` of the batch `indices`, each image augmented
/// with its own random source.
pub fn augmented_images(
    set: &ImageSet,
    indices: &[usize],
    norm: &Normalization,
    training: &Training,
    device: &Device,
) -> Tensor<4> {
    let mut scratch = vec![0u8; set.image_len()];
    let rows = training.part.clone();
    let mut values = Vec::with_capacity(rows.len() * set.image_len());
    for p in rows.clone() {
        let image = set.image(indices[p]);
        let mut rng = training.rng(p);
        training
            .augment
            .apply(image, &mut scratch, set.height, set.width, &mut rng);
        norm.extend(&mut values, &scratch);
    }
    image_tensor(values, shape(set, rows.len()), device)
}

fn shape(set: &ImageSet, batch: usize) -> [usize; 4] {
    [batch, set.channels, set.height, set.width]
}

pub(super) fn image_tensor(values: Vec<f32>, shape: [usize; 4], device: &Device) -> Tensor<4> {
    Tensor::<1>::from_data(
        TensorData::new(values, [shape.iter().product::<usize>()]),
        device,
    )
    .reshape(shape)
}

/// A next-token language-modelling batch of `part`'s rows: the model reads each text and, at
/// every real position but the last, predicts the token after it (the first, `[CLS]`, acts as
/// the start; the last, `[SEP]`, is predicted as the end).
fn next_tokens(encoded: &Encoded, part: Range<usize>, device: &Device) -> Batch {
    let rows = encoded.rows(part);
    let t = rows.shape[1];
    let (mut positions, mut targets) = (Vec::new(), Vec::new());
    for r in 0..rows.shape[0] {
        for k in 0..t.saturating_sub(1) {
            if rows.mask[r * t + k + 1] > 0.0 {
                positions.push((r * t + k) as i64);
                targets.push(rows.ids[r * t + k + 1]);
            }
        }
    }
    let (ids, types, mask) = rows.tensors(device);
    let n = positions.len();
    Batch {
        input: Input::Tokens {
            ids,
            types,
            mask,
            predict_at: Some(Tensor::from_data(TensorData::new(positions, [n]), device)),
        },
        targets: Tensor::from_data(TensorData::new(targets, [n]), device),
    }
}

/// Texts per forward pass when nothing learns.
const TEXT_INFERENCE_BATCH: usize = 32;

/// Texts and the tokenizer the model reads them with.
pub struct TextExamples<'a> {
    pub set: &'a TextSet,
    pub tokenizer: &'a TextTokenizer,
    /// What the model predicts: the text's class, its masked tokens, or each next token.
    pub task: Task,
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
        training: Option<&Training>,
        device: &Device,
    ) -> Result<Batch> {
        // The whole batch is tokenised, so that a process computing part of it pads as one
        // computing all of it would.
        let texts: Vec<&str> = indices
            .iter()
            .map(|&i| self.set.texts[i].as_str())
            .collect();
        let mut encoded = self.tokenizer.encode(&texts)?;
        let part = training.map_or(0..indices.len(), |t| t.part.clone());
        if self.task == Task::Lm {
            return Ok(next_tokens(&encoded, part, device));
        }
        if self.task != Task::Mlm {
            let (ids, types, mask) = encoded.rows(part.clone()).tensors(device);
            return Ok(Batch {
                input: Input::Tokens {
                    ids,
                    types,
                    mask,
                    predict_at: None,
                },
                targets: labels(&self.set.labels, &indices[part], device),
            });
        }
        // Training masks each text with its example's random source; evaluation masks the
        // same tokens every time, from the text's index.
        let (positions, targets) = self.tokenizer.mask(&mut encoded, |row| match training {
            Some(t) => t.rng(row),
            None => StdRng::seed_from_u64(indices.get(row).map_or(u64::MAX, |&i| i as u64)),
        });
        // This process's rows, and the masked positions in them.
        let t = encoded.shape[1];
        let (positions, targets): (Vec<i64>, Vec<i64>) = positions
            .into_iter()
            .zip(targets)
            .filter(|(p, _)| part.contains(&(*p as usize / t.max(1))))
            .map(|(p, target)| (p - (part.start * t) as i64, target))
            .unzip();
        let (ids, types, mask) = encoded.rows(part).tensors(device);
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

    fn fixed_features(&self) -> bool {
        !self.task.is_language_model()
    }
}
