//! Running a trained model over examples: logits, probabilities, features, embeddings.
//! Nothing here keeps activations for a backward pass (`model.valid()`).

use anyhow::Result;
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::prelude::*;
use burn::tensor::activation::softmax;

use crate::data::{Examples, PairInput, TextPairInput, TextTokenizer, pairs};
use crate::generate::{self, Search};
use crate::models::bert::{self, Bert};
use crate::models::bert2bert;
use crate::models::seq2seq::Generator;
use crate::models::{Backbone, Classifier};

/// Class probabilities of every example: `examples.len()` rows of `num_classes` values.
pub fn probabilities(model: &Classifier, examples: &dyn Examples) -> Result<Vec<Vec<f32>>> {
    let model = model.valid();
    let device = model.device();
    let order = inference_order(examples);
    let mut rows = vec![Vec::new(); examples.len()];
    for chunk in order.chunks(examples.inference_batch()) {
        let probs = softmax_rows(model.forward(examples.batch(chunk, None, &device)?.input)?);
        for (&i, row) in chunk.iter().zip(probs) {
            rows[i] = row;
        }
    }
    Ok(rows)
}

/// The order inference visits examples in: by size when sizes differ (texts), so that each
/// batch pads little; results are put back in the examples' order.
fn inference_order(examples: &dyn Examples) -> Vec<usize> {
    let mut order: Vec<usize> = (0..examples.len()).collect();
    if let Some(lengths) = examples.lengths() {
        order.sort_by_key(|&i| lengths[i]);
    }
    order
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
pub fn features(model: &Classifier, examples: &dyn Examples) -> Result<Tensor<2>> {
    let model = model.valid();
    let device = model.device();
    let order = inference_order(examples);
    let chunks = order
        .chunks(examples.inference_batch())
        .map(|chunk| model.forward_features(examples.batch(chunk, None, &device)?.input))
        .collect::<Result<Vec<Tensor<2>>>>()?;
    // Row k holds example order[k]; put example i at row i.
    let mut inverse = vec![0i64; order.len()];
    for (k, &i) in order.iter().enumerate() {
        inverse[i] = k as i64;
    }
    let n = inverse.len();
    Ok(Tensor::cat(chunks, 0).select(0, Tensor::from_data(TensorData::new(inverse, [n]), &device)))
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

/// Mean cross-entropy and accuracy of `model` on `examples`' targets: their classes, or for
/// masked language modelling their masked tokens.
pub fn loss_and_accuracy(model: &Classifier, examples: &dyn Examples) -> Result<(f64, f64)> {
    let model = model.valid();
    let device = model.device();
    let (mut loss, mut hits, mut n) = (0.0, 0, 0);
    let order = inference_order(examples);
    for chunk in order.chunks(examples.inference_batch()) {
        let batch = examples.batch(chunk, None, &device)?;
        let logits = examples.scores(model.forward(batch.input)?);
        let m = batch.targets.dims()[0];
        let (l, h) = batch_loss_and_hits(logits, batch.targets);
        loss += l * m as f64;
        hits += h;
        n += m;
    }
    Ok((loss / n.max(1) as f64, hits as f64 / n.max(1) as f64))
}

/// How many rows of `logits` have their largest value at the target.
pub fn hits(logits: &Tensor<2>, targets: &Tensor<1, Int>) -> usize {
    logits
        .clone()
        .argmax(1)
        .squeeze_dim::<1>(1)
        .equal(targets.clone())
        .int()
        .sum()
        .into_scalar::<i64>() as usize
}

/// Mean cross-entropy of `logits` against `targets` and how many predictions are right.
pub fn batch_loss_and_hits(logits: Tensor<2>, targets: Tensor<1, Int>) -> (f64, usize) {
    let hits = hits(&logits, &targets);
    let loss = CrossEntropyLossConfig::new()
        .init(&logits.device())
        .forward(logits, targets)
        .into_scalar::<f32>() as f64;
    (loss, hits)
}

/// Texts per forward pass when embedding.
const EMBED_BATCH: usize = 32;

/// sentence-transformers' embeddings of `texts`: mean of the last hidden states over each
/// text's tokens, L2-normalised.
pub fn embed(model: &Bert, tokenizer: &TextTokenizer, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
    let model = model.valid();
    let device = model.devices()[0].clone();
    // Similar lengths together, so little of each batch is padding; results come back in order.
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.sort_by_key(|&i| texts[i].len());
    let mut out = vec![Vec::new(); texts.len()];
    for chunk in order.chunks(EMBED_BATCH) {
        let batch: Vec<&str> = chunk.iter().map(|&i| texts[i]).collect();
        let encoded = tokenizer.encode(&batch)?;
        let (ids, types, mask) = encoded.tensors(&device);
        let pooled = bert::mean_pool_normalized(model.forward(ids, types, mask.clone()), mask);
        let [_, h] = pooled.dims();
        let values: Vec<f32> = pooled
            .into_data()
            .try_into_vec::<f32>()
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        for (&i, row) in chunk.iter().zip(values.chunks(h)) {
            out[i] = row.to_vec();
        }
    }
    Ok(out)
}

/// The output sequence a sequence-to-sequence model generates for each of `sources` (its
/// target tokens, joined by spaces), searching as `search` says (its end token is the target
/// vocabulary's own).
pub fn transduce(
    model: &Classifier,
    input: &PairInput,
    sources: &[String],
    search: &Search,
) -> Result<Vec<String>> {
    let model = model.valid();
    let Backbone::Seq2Seq(m) = &model.backbone else {
        crate::bail_input!("not a sequence-to-sequence model");
    };
    let device = model.device();
    let (source, target) = (&input.source_vocab, &input.target_vocab);
    let search = Search {
        end: target.eos,
        ..search.clone()
    };
    let start = target.bos.unwrap_or(0);
    sources
        .iter()
        .map(|text| {
            let ids: Vec<i64> = source.encode(text).into_iter().map(i64::from).collect();
            let n = ids.len();
            let ids =
                Tensor::<1, Int>::from_data(TensorData::new(ids, [n]), &device).reshape([1, n]);
            let encoded = m.encode(ids, Tensor::ones([1, n], &device));
            let decoder = Generator {
                model: m,
                classifier: &model,
            };
            let tokens = generate::generate(&decoder, encoded, &[start], &search)?;
            Ok(target.decode(&tokens))
        })
        .collect()
}

/// How a summarizer searches unless told otherwise: beam search over 4 hypotheses, no
/// repeated trigram (Hugging Face's BERT2BERT examples), at most the model's target length.
pub fn summary_search(input: &TextPairInput) -> Search {
    Search {
        beams: 4,
        no_repeat_ngram: 3,
        min_tokens: 1,
        ..Search::greedy(0, input.max_target_length)
    }
}

/// The text a WordPiece encoder–decoder (`bert2bert`) generates for each of `sources`, each
/// cut to the model's source length; returns the texts and how many sources were cut.
/// `search`'s end token is the tokenizer's `[SEP]`; `[PAD]`, `[CLS]` and `[UNK]` are never
/// generated.
pub fn summarize(
    model: &Classifier,
    input: &TextPairInput,
    tokenizer: &TextTokenizer,
    sources: &[String],
    search: &Search,
) -> Result<(Vec<String>, usize)> {
    let mut cut = 0;
    let mut ids = Vec::with_capacity(sources.len());
    for text in sources {
        let (source, truncated) = pairs::source_ids(tokenizer, text, input.max_source_length)?;
        cut += truncated as usize;
        ids.push(source);
    }
    Ok((summarize_ids(model, tokenizer, &ids, search)?, cut))
}

/// [`summarize`] for sources already tokenized (`[CLS] … [SEP]`).
pub fn summarize_ids(
    model: &Classifier,
    tokenizer: &TextTokenizer,
    sources: &[Vec<u32>],
    search: &Search,
) -> Result<Vec<String>> {
    let model = model.valid();
    let Backbone::Bert2Bert(m) = &model.backbone else {
        crate::bail_input!("not a WordPiece encoder–decoder (bert2bert)");
    };
    let device = model.device();
    let (cls, sep) = pairs::bert_specials(tokenizer)?;
    let suppress: Vec<u32> = ["[PAD]", "[CLS]", "[UNK]"]
        .iter()
        .filter_map(|t| tokenizer.token_id(t))
        .collect();
    let search = Search {
        end: sep,
        suppress,
        ..search.clone()
    };
    let decoder = bert2bert::Generator {
        model: m,
        classifier: &model,
    };
    sources
        .iter()
        .map(|ids| {
            let n = ids.len();
            let ids = TensorData::new(ids.iter().map(|&i| i64::from(i)).collect(), [1, n]);
            let state = m.start(
                Tensor::<2, Int>::from_data(ids, &device),
                Tensor::ones([1, n], &device),
            );
            let tokens = generate::generate(&decoder, state, &[cls], &search)?;
            tokenizer.decode(&tokens)
        })
        .collect()
}
