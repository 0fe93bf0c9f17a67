//! How a text model reads: a tokenizer that pads each batch to its longest text and truncates
//! to the model's length, a WordPiece vocabulary learned from texts, and BERT's masking for
//! masked language modelling.

use std::path::Path;

use anyhow::Result;
use burn::prelude::*;
use rand::RngExt;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use tokenizers::models::TrainerWrapper;
use tokenizers::models::wordpiece::{WordPiece, WordPieceTrainer};
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::{bail_input, input_error};

/// A tokenizer that pads each batch to its longest text and truncates to the model's length.
#[derive(Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
    pub max_length: usize,
    /// Rows of the embedding table the ids index (`fit_to`): an id past it is an error, not a
    /// panic deep in the model.
    rows: usize,
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

/// Characters kept per token of `max_length` before tokenising: WordPiece gives a word of more
/// than 100 characters one `[UNK]`, so no real text needs more of its start than this.
const MAX_CHARS_PER_TOKEN: usize = 128;

/// The first `max` characters of `text` (on a character boundary).
fn truncate_chars(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

/// Share of tokens masked language modelling predicts (BERT's 15%).
const MASK_SHARE: f64 = 0.15;

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

    /// The id of a token of the vocabulary (such as `<|endoftext|>`).
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The vocabulary's size.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The tokenizer for a model whose embedding table has `rows` rows: every id in its
    /// vocabulary must have one (an edited `tokenizer.json` or a mismatched model would index
    /// past it), and `encode` refuses any other id it would produce.
    pub fn fit_to(mut self, rows: usize, shown: &Path) -> Result<Self> {
        let largest = self.inner.get_vocab(true).into_values().max().unwrap_or(0) as usize;
        let padding = self.inner.get_padding().map_or(0, |p| p.pad_id as usize);
        if largest.max(padding) >= rows {
            bail_input!(
                "{}: the tokenizer produces token ids up to {} but the model's vocabulary has \
                 {rows} entries: the tokenizer does not belong to these weights",
                shown.display(),
                largest.max(padding)
            );
        }
        self.rows = rows;
        Ok(self)
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
        Ok(TextTokenizer {
            inner,
            max_length,
            rows: usize::MAX,
        })
    }

    /// Token ids, types, mask and special-token flags of `texts`, padded to the longest.
    pub fn encode(&self, texts: &[&str]) -> Result<Encoded> {
        // Truncation happens after tokenising, so a 50 MB line would be tokenised whole
        // (gigabytes of offsets) to keep `max_length` tokens: cut it first, far beyond what
        // `max_length` tokens can cover.
        let cut = self.max_length.saturating_mul(MAX_CHARS_PER_TOKEN);
        let cut: Vec<&str> = texts.iter().map(|t| truncate_chars(t, cut)).collect();
        let encodings = self
            .inner
            .encode_batch(cut, true)
            .map_err(|e| input_error!("tokenizing: {e}"))?;
        let t = encodings.first().map_or(0, |e| e.len());
        let mut out = Encoded {
            ids: Vec::with_capacity(texts.len() * t),
            types: Vec::with_capacity(texts.len() * t),
            mask: Vec::with_capacity(texts.len() * t),
            special: Vec::with_capacity(texts.len() * t),
            shape: [texts.len(), t],
        };
        for e in &encodings {
            if let Some(&id) = e.get_ids().iter().find(|&&i| i as usize >= self.rows) {
                bail_input!(
                    "the tokenizer produced token id {id}, beyond the model's vocabulary of {} \
                     entries",
                    self.rows
                );
            }
            out.ids.extend(e.get_ids().iter().map(|&i| i as i64));
            out.types.extend(e.get_type_ids().iter().map(|&i| i as i64));
            out.mask
                .extend(e.get_attention_mask().iter().map(|&m| m as f32));
            out.special
                .extend(e.get_special_tokens_mask().iter().map(|&s| s == 1));
        }
        Ok(out)
    }

    /// The ids of `text` alone: no special tokens, no padding, no truncation (a transcript a
    /// speech model is taught to write).
    pub fn encode_plain(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self
            .inner
            .encode_fast(text, false)
            .map_err(|e| input_error!("tokenizing: {e}"))?;
        let ids = encoding.get_ids().to_vec();
        if let Some(&id) = ids.iter().find(|&&i| i as usize >= self.rows) {
            bail_input!(
                "the tokenizer produced token id {id}, beyond the model's vocabulary of {} entries",
                self.rows
            );
        }
        Ok(ids)
    }

    /// The text of `ids`, special tokens left out (ids the vocabulary lacks, too).
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner
            .decode(ids, true)
            .map_err(|e| anyhow::anyhow!("decoding tokens: {e}"))
    }

    /// BERT's masking for masked language modelling: 15% of the real tokens are chosen (at
    /// least one per batch); of those 80% become `[MASK]`, 10% a random token, 10% stay. Each
    /// row draws from its own random source (`rng(row)`), so a text is masked alike whatever
    /// batch or process it is in. Returns the chosen positions (flat, row-major) and their
    /// original ids.
    pub fn mask(
        &self,
        encoded: &mut Encoded,
        rng: impl Fn(usize) -> StdRng,
    ) -> (Vec<i64>, Vec<i64>) {
        let mask_id = self.inner.token_to_id("[MASK]").unwrap_or(0) as i64;
        let vocab = self.vocab_size() as i64;
        let [rows, t] = encoded.shape;
        let real: Vec<usize> = (0..encoded.ids.len())
            .filter(|&i| !encoded.special[i] && encoded.mask[i] > 0.0)
            .collect();
        // The chosen token's original id; 80% become [MASK], 10% a random token, 10% stay.
        let replace = |i: usize, rng: &mut StdRng, encoded: &mut Encoded| {
            let original = encoded.ids[i];
            let roll: f64 = rng.random();
            if roll < 0.8 {
                encoded.ids[i] = mask_id;
            } else if roll < 0.9 {
                encoded.ids[i] = rng.random_range(0..vocab);
            }
            (i as i64, original)
        };
        let mut chosen: Vec<(i64, i64)> = Vec::new();
        for row in 0..rows {
            let mut rng = rng(row);
            for &i in real.iter().filter(|&&i| i / t.max(1) == row) {
                if rng.random_bool(MASK_SHARE) {
                    chosen.push(replace(i, &mut rng, encoded));
                }
            }
        }
        if chosen.is_empty() {
            let mut rng = rng(usize::MAX);
            if let Some(&i) = real.choose(&mut rng) {
                chosen.push(replace(i, &mut rng, encoded));
            }
        }
        chosen.into_iter().unzip()
    }
}

impl Encoded {
    /// Rows `rows` of the batch (the part a process computes), padded as the whole batch is.
    pub fn rows(&self, rows: std::ops::Range<usize>) -> Encoded {
        let t = self.shape[1];
        let span = rows.start * t..rows.end * t;
        Encoded {
            ids: self.ids[span.clone()].to_vec(),
            types: self.types[span.clone()].to_vec(),
            mask: self.mask[span.clone()].to_vec(),
            special: self.special[span].to_vec(),
            shape: [rows.len(), t],
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn masking_follows_bert() {
        let texts: Vec<String> = (0..1000)
            .map(|i| format!("word{} and another word{} in a sentence", i % 37, i % 11))
            .collect();
        let tokenizer = TextTokenizer::train_wordpiece(&texts, 200, 64).unwrap();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let original = tokenizer.encode(&refs).unwrap();
        let mut masked = tokenizer.encode(&refs).unwrap();
        let (positions, targets) =
            tokenizer.mask(&mut masked, |row| StdRng::seed_from_u64(3 + row as u64));
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
