//! Running a trained model over examples: logits, probabilities, predictions.

use burn::prelude::*;
use burn::tensor::activation::softmax;

use crate::data::batch::Examples;
use crate::models::Classifier;

/// Class probabilities of every example: `examples.len()` rows of `num_classes` values.
pub fn probabilities(model: &Classifier, examples: &dyn Examples) -> Vec<Vec<f32>> {
    let model = model.valid();
    let device = model.head.weight.device();
    let mut rows = Vec::with_capacity(examples.len());
    let all: Vec<usize> = (0..examples.len()).collect();
    for chunk in all.chunks(examples.inference_batch()) {
        rows.extend(softmax_rows(
            model.forward(examples.inputs(chunk, None, &device)),
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

/// Backbone features of every example, `[len, features]`, computed without autodiff.
pub fn features(model: &Classifier, examples: &dyn Examples) -> Tensor<2> {
    let model = model.valid();
    let device = model.head.weight.device();
    let all: Vec<usize> = (0..examples.len()).collect();
    let chunks: Vec<Tensor<2>> = all
        .chunks(examples.inference_batch())
        .map(|chunk| model.forward_features(examples.inputs(chunk, None, &device)))
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

/// Mean cross-entropy and accuracy of `model` on `examples`.
pub fn loss_and_accuracy(model: &Classifier, examples: &dyn Examples) -> (f64, f64) {
    score(&probabilities(model, examples), examples.labels())
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
