//! Running a trained model over images: logits, probabilities, predictions.

use burn::prelude::*;
use burn::tensor::activation::softmax;

use crate::data::{ImageSet, Normalization, batch};
use crate::models::Classifier;

/// Images per forward pass when nothing learns (no activations kept for backward): 500 of
/// 28×28, fewer of larger images, so activations stay within a few hundred MB.
pub fn inference_batch(set: &ImageSet) -> usize {
    (500 * 28 * 28 / set.image_len().max(1)).clamp(8, 500)
}

/// Class probabilities of every image in `set`: `set.len()` rows of `num_classes` values.
pub fn probabilities(model: &Classifier, set: &ImageSet, norm: &Normalization) -> Vec<Vec<f32>> {
    let model = model.valid();
    let device = model.head.weight.device();
    let mut rows = Vec::with_capacity(set.len());
    let all: Vec<usize> = (0..set.len()).collect();
    for chunk in all.chunks(inference_batch(set)) {
        rows.extend(softmax_rows(
            model.forward(batch::images(set, chunk, norm, &device)),
        ));
    }
    rows
}

/// Softmax of each row of `logits`, as plain vectors.
pub fn softmax_rows(logits: Tensor<2>) -> Vec<Vec<f32>> {
    let [_, c] = logits.dims();
    let p: Vec<f32> = softmax(logits, 1)
        .into_data()
        .try_into_vec::<f32>()
        .expect("f32 probabilities");
    p.chunks(c.max(1)).map(<[f32]>::to_vec).collect()
}

/// Backbone features of every image in `set`, `[len, features]`, computed without autodiff.
pub fn features(model: &Classifier, set: &ImageSet, norm: &Normalization) -> Tensor<2> {
    let model = model.valid();
    let device = model.head.weight.device();
    let all: Vec<usize> = (0..set.len()).collect();
    let chunks: Vec<Tensor<2>> = all
        .chunks(inference_batch(set))
        .map(|chunk| model.forward_features(batch::images(set, chunk, norm, &device)))
        .collect();
    Tensor::cat(chunks, 0)
}

/// Index of the largest value.
pub fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
            if v > best.1 { (i, v) } else { best }
        })
        .0
}

/// Mean cross-entropy and accuracy of `model` on `set`.
pub fn loss_and_accuracy(model: &Classifier, set: &ImageSet, norm: &Normalization) -> (f64, f64) {
    score(&probabilities(model, set, norm), &set.labels)
}

/// Mean cross-entropy and accuracy of class probabilities against `labels`.
pub fn score(probs: &[Vec<f32>], labels: &[usize]) -> (f64, f64) {
    let n = labels.len().max(1) as f64;
    let loss = probs
        .iter()
        .zip(labels)
        .map(|(p, &l)| -(p[l].max(1e-12) as f64).ln())
        .sum::<f64>()
        / n;
    let correct = probs
        .iter()
        .zip(labels)
        .filter(|(p, l)| argmax(p) == **l)
        .count();
    (loss, correct as f64 / n)
}
