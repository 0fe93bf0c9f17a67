//! Text: Hugging Face BERT model directories, their tokenizer, and sentence embeddings.

use std::path::{Path, PathBuf};

use anyhow::Result;
use burn::module::Module;
use burn::prelude::*;
use burn::store::{ModuleSnapshot, PyTorchToBurnAdapter, bridge};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{RngExt, SeedableRng};
use tokenizers::models::TrainerWrapper;
use tokenizers::models::wordpiece::{WordPiece, WordPieceTrainer};
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::checkpoint::torch;
use crate::data::Augment;
use crate::data::batch::{self, Batch, Examples};
use crate::data::text::TextSet;
use crate::models::Input;
use crate::models::bert::{self, Bert, BertConfig};
use crate::{bail_input, input_error};

/// A tokenizer that pads each batch to its longest text and truncates to the model's length.
#[derive(Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
    pub max_length: usize,
}

/// Token ids, token types and attention mask of a batch, each `[B, T]` row-major.
pub struct Encoded {
    pub ids: Vec<i64>,
    pub types: Vec<i64>,
    pub mask: Vec<f32>,
    /// Whether each token is special ([CLS], [SEP], padding): never masked for MLM.
    pub special: Vec<bool>,
    pub shape: [usize; 2],
}

/// Special tokens of the vocabularies pretune trains, in id order.
const SPECIAL: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

impl TextTokenizer {
    /// Read `tokenizer.json`, replacing whatever padding and truncation it has baked in.
    pub fn from_file(path: &Path, max_length: usize) -> Result<Self> {
        let inner = Tokenizer::from_file(path)
            .map_err(|e| input_error!("{}: not a readable tokenizer.json: {e}", path.display()))?;
        Self::new(inner, max_length).map_err(|e| input_error!("{}: {e}", path.display()))
    }

    /// A tokenizer from `tokenizer.json` text.
    pub fn from_json(json: &str, max_length: usize) -> Result<Self> {
        let inner: Tokenizer = json
            .parse()
            .map_err(|e| anyhow::anyhow!("a damaged tokenizer: {e}"))?;
        Self::new(inner, max_length)
    }

    /// A BERT-style uncased WordPiece tokenizer whose vocabulary (about `vocab_size` pieces,
    /// special tokens first) is learned from `texts`.
    pub fn train_wordpiece(texts: &[String], vocab_size: usize, max_length: usize) -> Result<Self> {
        let mut inner = Tokenizer::new(WordPiece::default());
        inner
            .with_normalizer(Some(BertNormalizer::default()))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        inner.with_pre_tokenizer(Some(BertPreTokenizer));
        let mut trainer = TrainerWrapper::WordPieceTrainer(
            WordPieceTrainer::builder()
                .vocab_size(vocab_size)
                .min_frequency(2)
                .show_progress(false)
                .special_tokens(SPECIAL.iter().map(|t| AddedToken::from(*t, true)).collect())
                .build(),
        );
        inner
            .train(&mut trainer, texts.iter())
            .map_err(|e| anyhow::anyhow!("training the vocabulary: {e}"))?;
        let id = |t: &str| {
            inner
                .token_to_id(t)
                .expect("special tokens are in the vocabulary")
        };
        let template = TemplateProcessing::builder()
            .try_single("[CLS] $A [SEP]")
            .and_then(|b| b.try_pair("[CLS] $A [SEP] $B:1 [SEP]:1"))
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .special_tokens(vec![("[CLS]", id("[CLS]")), ("[SEP]", id("[SEP]"))])
            .build()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        inner.with_post_processor(Some(template));
        Self::new(inner, max_length)
    }

    /// The vocabulary's size.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The tokenizer as `tokenizer.json` text.
    pub fn to_json(&self) -> Result<String> {
        self.inner
            .to_string(true)
            .map_err(|e| anyhow::anyhow!("serialising the tokenizer: {e}"))
    }

    fn new(mut inner: Tokenizer, max_length: usize) -> Result<Self> {
        let pad_token = inner
            .get_padding()
            .map(|p| p.pad_token.clone())
            .unwrap_or_else(|| "[PAD]".into());
        let pad_id = inner.token_to_id(&pad_token).unwrap_or(0);
        inner.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            pad_id,
            pad_token,
            ..Default::default()
        }));
        inner
            .with_truncation(Some(TruncationParams {
                max_length,
                ..Default::default()
            }))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(TextTokenizer { inner, max_length })
    }

    pub fn encode(&self, texts: &[&str]) -> Result<Encoded> {
        let encodings = self
            .inner
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| anyhow::anyhow!("tokenizing: {e}"))?;
        let t = encodings.first().map_or(0, |e| e.len());
        let mut out = Encoded {
            ids: Vec::with_capacity(texts.len() * t),
            types: Vec::with_capacity(texts.len() * t),
            mask: Vec::with_capacity(texts.len() * t),
            special: Vec::with_capacity(texts.len() * t),
            shape: [texts.len(), t],
        };
        for e in &encodings {
            out.ids.extend(e.get_ids().iter().map(|&i| i as i64));
            out.types.extend(e.get_type_ids().iter().map(|&i| i as i64));
            out.mask
                .extend(e.get_attention_mask().iter().map(|&m| m as f32));
            out.special
                .extend(e.get_special_tokens_mask().iter().map(|&s| s == 1));
        }
        Ok(out)
    }

    /// BERT's masking for masked language modelling: 15% of the real tokens are chosen (at
    /// least one per batch); of those 80% become `[MASK]`, 10% a random token, 10% stay.
    /// Returns the chosen positions (flat, row-major) and their original ids.
    pub fn mask(&self, encoded: &mut Encoded, rng: &mut StdRng) -> (Vec<i64>, Vec<i64>) {
        let mask_id = self.inner.token_to_id("[MASK]").unwrap_or(0) as i64;
        let vocab = self.vocab_size() as i64;
        let candidates: Vec<usize> = (0..encoded.ids.len())
            .filter(|&i| !encoded.special[i] && encoded.mask[i] > 0.0)
            .collect();
        let mut chosen: Vec<usize> = candidates
            .iter()
            .copied()
            .filter(|_| rng.random_bool(MASK_SHARE))
            .collect();
        if chosen.is_empty()
            && let Some(&i) = candidates.choose(rng)
        {
            chosen.push(i);
        }
        let targets = chosen.iter().map(|&i| encoded.ids[i]).collect();
        for &i in &chosen {
            let roll: f64 = rng.random();
            if roll < 0.8 {
                encoded.ids[i] = mask_id;
            } else if roll < 0.9 {
                encoded.ids[i] = rng.random_range(0..vocab);
            }
        }
        (chosen.into_iter().map(|i| i as i64).collect(), targets)
    }
}

impl Encoded {
    /// The batch as tensors: ids, token types, mask.
    pub fn tensors(&self, device: &Device) -> (Tensor<2, Int>, Tensor<2, Int>, Tensor<2>) {
        let int = |v: &Vec<i64>| {
            Tensor::<2, Int>::from_data(TensorData::new(v.clone(), self.shape), device)
        };
        (
            int(&self.ids),
            int(&self.types),
            Tensor::<2>::from_data(TensorData::new(self.mask.clone(), self.shape), device),
        )
    }
}

/// Texts and the tokenizer the model reads them with.
pub struct TextExamples<'a> {
    pub set: &'a TextSet,
    pub tokenizer: &'a TextTokenizer,
    /// Masked language modelling: the model predicts masked tokens instead of the text's class.
    pub masked: bool,
}

/// Share of tokens masked language modelling predicts (BERT's 15%).
const MASK_SHARE: f64 = 0.15;

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
    ) -> Batch {
        let texts: Vec<&str> = indices
            .iter()
            .map(|&i| self.set.texts[i].as_str())
            .collect();
        let mut encoded = self
            .tokenizer
            .encode(&texts)
            .expect("texts that were read as UTF-8 tokenise");
        if !self.masked {
            let (ids, types, mask) = encoded.tensors(device);
            return Batch {
                input: Input::Tokens {
                    ids,
                    types,
                    mask,
                    predict_at: None,
                },
                targets: batch::labels(&self.set.labels, indices, device),
            };
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

    fn inference_batch(&self) -> usize {
        EMBED_BATCH
    }

    fn lengths(&self) -> Option<Vec<usize>> {
        Some(self.set.texts.iter().map(String::len).collect())
    }

    fn noun(&self) -> &'static str {
        "texts"
    }
}

/// A Hugging Face BERT model directory, loaded.
pub struct HfModel {
    pub dir: PathBuf,
    /// The weights file read.
    pub weights: PathBuf,
    pub config: BertConfig,
    pub model: Bert,
    pub tokenizer: TextTokenizer,
    /// Checkpoint tensors the model has no place for (e.g. a masked-LM head).
    pub unused: Vec<String>,
}

/// Load `config.json`, `model.safetensors` (or `pytorch_model.bin`) and `tokenizer.json` from
/// a Hugging Face BertModel directory. The maximum length is `sentence_bert_config.json`'s
/// `max_seq_length` when present (sentence-transformers models), else the position table's size.
pub fn load_hf_dir(dir: &Path, device: &Device) -> Result<HfModel> {
    let config_path = dir.join("config.json");
    let text = std::fs::read_to_string(&config_path).map_err(|e| {
        input_error!(
            "{}: cannot read ({e}); expected a Hugging Face model directory with config.json, \
             model.safetensors and tokenizer.json",
            config_path.display()
        )
    })?;
    let config: BertConfig = serde_json::from_str(&text)
        .map_err(|e| input_error!("{}: not a BERT config: {e}", config_path.display()))?;
    config
        .check()
        .map_err(|e| input_error!("{}: {e}", config_path.display()))?;
    let weights = ["model.safetensors", "pytorch_model.bin"]
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            input_error!(
                "{}: no model.safetensors or pytorch_model.bin",
                dir.display()
            )
        })?;
    let tensors = torch::read_tensors(&weights)?;
    let mut model = Bert::new(&config, device);
    let pack: Vec<_> = tensors
        .into_iter()
        .filter_map(|(k, data)| {
            bert::from_hf_name(&k).map(|name| bridge::from_data(data, name, None))
        })
        .collect();
    let result = model.apply(pack, None, Some(Box::new(PyTorchToBurnAdapter)), true);
    if let Some(err) = result.errors.first() {
        bail_input!("{}: {err:?}", weights.display());
    }
    let weights = weights.clone();
    if !result.missing.is_empty() {
        let names: Vec<String> = result
            .missing
            .iter()
            .map(|(p, _)| bert::to_hf_name(p))
            .collect();
        bail_input!(
            "{}: missing {} tensor(s) of a BERT model: {}",
            weights.display(),
            names.len(),
            names.join(", ")
        );
    }
    let max_length = std::fs::read_to_string(dir.join("sentence_bert_config.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["max_seq_length"].as_u64())
        .map_or(config.max_position_embeddings, |n| n as usize)
        .min(config.max_position_embeddings);
    let tokenizer = TextTokenizer::from_file(&dir.join("tokenizer.json"), max_length)?;
    Ok(HfModel {
        dir: dir.to_path_buf(),
        weights,
        config,
        model,
        tokenizer,
        unused: result.unused.iter().map(|p| bert::to_hf_name(p)).collect(),
    })
}

/// Texts per forward pass when embedding.
const EMBED_BATCH: usize = 32;

/// sentence-transformers' embeddings of `texts`: mean of the last hidden states over each
/// text's tokens, L2-normalised.
pub fn embed(model: &Bert, tokenizer: &TextTokenizer, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
    let model = model.valid();
    let device = Device::flex();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking_follows_bert() {
        let texts: Vec<String> = (0..1000)
            .map(|i| format!("word{} and another word{} in a sentence", i % 37, i % 11))
            .collect();
        let tokenizer = TextTokenizer::train_wordpiece(&texts, 200, 64).unwrap();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let original = tokenizer.encode(&refs).unwrap();
        let mut masked = tokenizer.encode(&refs).unwrap();
        let (positions, targets) = tokenizer.mask(&mut masked, &mut StdRng::seed_from_u64(3));
        let real = original
            .special
            .iter()
            .zip(&original.mask)
            .filter(|(s, m)| !**s && **m > 0.0)
            .count();
        let share = positions.len() as f64 / real as f64;
        assert!((0.12..0.18).contains(&share), "{share}");
        let mask_id = tokenizer.inner.token_to_id("[MASK]").unwrap() as i64;
        let (mut as_mask, mut kept) = (0, 0);
        for (&p, &t) in positions.iter().zip(&targets) {
            let p = p as usize;
            assert!(
                !original.special[p] && original.mask[p] > 0.0,
                "only real tokens"
            );
            assert_eq!(t, original.ids[p], "targets are the original tokens");
            as_mask += (masked.ids[p] == mask_id) as usize;
            kept += (masked.ids[p] == original.ids[p]) as usize;
        }
        let n = positions.len() as f64;
        assert!(
            (0.75..0.85).contains(&(as_mask as f64 / n)),
            "{as_mask} of {n}"
        );
        assert!((0.05..0.16).contains(&(kept as f64 / n)), "{kept} of {n}");
        // Nothing else changes.
        let untouched = (0..original.ids.len())
            .filter(|i| !positions.contains(&(*i as i64)))
            .all(|i| masked.ids[i] == original.ids[i]);
        assert!(untouched);
    }
}
