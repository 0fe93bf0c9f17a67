//! Input → output sequence pairs (spelling → pronunciation, …) for sequence-to-sequence models:
//! readers, the vocabularies of both sides, and the batches a recurrent encoder–decoder trains
//! on (teacher forcing: the decoder reads the target shifted right and predicts each token).
//!
//! Files: a `.tsv`/`.csv`/`.jsonl` with `--source-column` and `--target-column` (a `split`
//! column, when present, says which rows are `test`; `train`, `val` and `dev` rows are all
//! training data, from which `--val-fraction` draws the validation pairs), or a CMU-pronouncing-dictionary file
//! (`.dict`: `word PH ON EMES`, alternates `word(2)`). Sources are read as characters, targets as
//! whitespace-separated tokens. Without a `split` column a pair is in the test split when the
//! hash of its source says so (1 in 5), so the split never depends on a seed.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::Result;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::examples::{Batch, Examples, Training, labels};
use super::{Split, TextTokenizer, cmudict};
use crate::models::{Classifier, Input};
use crate::{bail_input, input_error};

/// Sequence pairs: each source with its target.
#[derive(Debug, Clone, Default)]
pub struct PairSet {
    pub sources: Vec<String>,
    pub targets: Vec<String>,
    /// The pairs (indices) the file's split column marks for validation (`val`, `valid`,
    /// `validation` or `dev`; loaded with the training split): a run validates on them.
    pub validation: Vec<usize>,
}

impl PairSet {
    pub fn len(&self) -> usize {
        self.sources.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// The pairs at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> PairSet {
        PairSet {
            sources: indices.iter().map(|&i| self.sources[i].clone()).collect(),
            targets: indices.iter().map(|&i| self.targets[i].clone()).collect(),
            validation: Vec::new(),
        }
    }
}

/// Which columns of a TSV/CSV/JSONL pair file hold the source and the target.
#[derive(Debug, Clone, PartialEq, clap::Args, Serialize, Deserialize)]
pub struct PairColumns {
    /// Sequence pairs (TSV/CSV/JSONL): the column holding the input sequence.
    #[arg(long = "source-column", default_value = "source")]
    #[serde(default = "source_column")]
    pub source: String,
    /// Sequence pairs: the column holding the output sequence.
    #[arg(long = "target-column", default_value = "target")]
    #[serde(default = "target_column")]
    pub target: String,
}

fn source_column() -> String {
    "source".into()
}
fn target_column() -> String {
    "target".into()
}

impl Default for PairColumns {
    fn default() -> Self {
        PairColumns {
            source: source_column(),
            target: target_column(),
        }
    }
}

/// Whether `path` names a pair file (rather than a text-classification file): a `.dict`, or a
/// table with both pair columns.
pub fn is_pair_file(path: &Path, columns: &PairColumns) -> bool {
    let ext = extension(path);
    ext == "dict" || (matches!(ext.as_str(), "tsv" | "csv" | "jsonl") && header_has(path, columns))
}

/// The file's kind by its extension, looking through a `.gz`.
fn extension(path: &Path) -> String {
    let ext = |p: &Path| {
        p.extension()
            .map(|e| e.to_string_lossy().to_lowercase())
            .unwrap_or_default()
    };
    match ext(path).as_str() {
        "gz" => ext(Path::new(path.file_stem().unwrap_or_default())),
        other => other.to_string(),
    }
}

/// Whether the file's first line names both columns.
fn header_has(path: &Path, columns: &PairColumns) -> bool {
    let Ok(bytes) = read_text(path) else {
        return false;
    };
    let text = String::from_utf8_lossy(&bytes);
    let first = text.lines().next().unwrap_or("");
    [&columns.source, &columns.target]
        .iter()
        .all(|c| first.contains(c.as_str()))
}

/// Whether a pair belongs to the test split, by its source alone.
fn in_test_split(source: &str) -> bool {
    super::texts::in_test_split(source)
}

/// Load the `split` half of a pair file for a recurrent model (sources of at most
/// [`MAX_SOURCE`] characters, targets of at most [`MAX_TARGET`] tokens).
pub fn load(path: &Path, split: Split, columns: &PairColumns) -> Result<PairSet> {
    load_pairs(path, split, columns, true)
}

/// Load the `split` half of a pair file for a WordPiece model, which truncates what is too long
/// for it when it tokenizes ([`TokenPairs`]).
pub fn load_long(path: &Path, split: Split, columns: &PairColumns) -> Result<PairSet> {
    load_pairs(path, split, columns, false)
}

fn load_pairs(path: &Path, split: Split, columns: &PairColumns, bounded: bool) -> Result<PairSet> {
    let shown = path.display();
    let rows: Vec<(String, String, Option<String>)> = match extension(path).as_str() {
        "dict" => cmudict::read_cmudict(path)
            .map_err(|e| input_error!("{e}"))?
            .into_iter()
            .map(|e| (e.word, e.phonemes.join(" "), None))
            .collect(),
        "tsv" | "csv" => table(path, columns, bounded)?,
        "jsonl" => jsonl(path, columns, bounded)?,
        _ => bail_input!(
            "{shown}: not a pair file (expected .tsv, .csv or .jsonl with the columns {:?} and \
             {:?}, or a CMUdict .dict)",
            columns.source,
            columns.target
        ),
    };
    let mut set = PairSet::default();
    for (row, (source, target, row_split)) in rows.into_iter().enumerate() {
        let (test, validation) = match row_split.as_deref() {
            Some("test") => (true, false),
            Some("train") => (false, false),
            Some("val" | "valid" | "validation" | "dev") => (false, true),
            Some(other) => bail_input!(
                "{shown}: pair {}: split {other:?}; expected train, val or test",
                row + 1
            ),
            None => (in_test_split(&source), false),
        };
        if test == (split == Split::Test) {
            if validation {
                set.validation.push(set.sources.len());
            }
            set.sources.push(source);
            set.targets.push(target);
        }
    }
    if set.is_empty() {
        bail_input!("{shown}: no pairs in its {split:?} split");
    }
    Ok(set)
}

/// Rows of a TSV/CSV file: (source, target, split column if any).
fn table(
    path: &Path,
    columns: &PairColumns,
    bounded: bool,
) -> Result<Vec<(String, String, Option<String>)>> {
    let shown = path.display();
    let delimiter = if extension(path) == "tsv" {
        b'\t'
    } else {
        b','
    };
    let bytes = read_text(path)?;
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .quoting(delimiter == b',')
        .from_reader(&bytes[..]);
    let headers = reader
        .headers()
        .map_err(|e| input_error!("{shown}: no header row: {e}"))?
        .clone();
    let column = |name: &str, flag: &str| {
        headers.iter().position(|h| h == name).ok_or_else(|| {
            input_error!(
                "{shown}: no column {name:?} ({flag}); the columns are {}",
                headers.iter().collect::<Vec<_>>().join(", ")
            )
        })
    };
    let (s, t) = (
        column(&columns.source, "--source-column")?,
        column(&columns.target, "--target-column")?,
    );
    let split = headers.iter().position(|h| h == "split");
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| input_error!("{shown}: row {}: {e}", i + 2))?;
        let field = |k: usize| record.get(k).map(str::trim).unwrap_or("");
        rows.push(checked(
            &shown.to_string(),
            &format!("row {}", i + 2),
            field(s),
            field(t),
            split.map(|k| field(k).to_string()),
            bounded,
        )?);
    }
    Ok(rows)
}

/// Rows of a JSONL file.
fn jsonl(
    path: &Path,
    columns: &PairColumns,
    bounded: bool,
) -> Result<Vec<(String, String, Option<String>)>> {
    let shown = path.display().to_string();
    let text = String::from_utf8(read_text(path)?)
        .map_err(|e| input_error!("{shown}: not UTF-8 text: {e}"))?;
    let mut rows = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let value: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| input_error!("{shown}:{}: not a JSON object: {e}", i + 1))?;
        for (name, flag) in [
            (&columns.source, "--source-column"),
            (&columns.target, "--target-column"),
        ] {
            if value.get(name.as_str()).is_none_or(|v| !v.is_string()) {
                bail_input!(
                    "{shown}:{}: no text field {name:?} ({flag}); expected a JSON object with \
                     the fields {:?} and {:?}",
                    i + 1,
                    columns.source,
                    columns.target
                );
            }
        }
        let field = |k: &str| value[k].as_str().map(str::trim).unwrap_or("").to_string();
        let split = value["split"].as_str().map(String::from);
        rows.push(checked(
            &shown,
            &(i + 1).to_string(),
            &field(&columns.source),
            &field(&columns.target),
            split,
            bounded,
        )?);
    }
    Ok(rows)
}

/// Read a (possibly gzipped) text file whole.
fn read_text(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let raw =
        std::fs::read(path).map_err(|e| input_error!("{}: cannot read: {e}", path.display()))?;
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return Ok(raw);
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&raw[..])
        .read_to_end(&mut out)
        .map_err(|e| input_error!("{}: not a readable gzip file: {e}", path.display()))?;
    Ok(out)
}

/// A row with both sides present and (`bounded`) of a sensible length.
fn checked(
    file: &str,
    at: &str,
    source: &str,
    target: &str,
    split: Option<String>,
    bounded: bool,
) -> Result<(String, String, Option<String>)> {
    for (side, text) in [("source", source), ("target", target)] {
        if text.is_empty() {
            bail_input!("{file}:{at}: the {side} is empty");
        }
    }
    if bounded && source.chars().count() > MAX_SOURCE
        || target.split_whitespace().count() > MAX_TARGET
    {
        bail_input!(
            "{file}:{at}: longer than {MAX_SOURCE} characters in or {MAX_TARGET} tokens out"
        );
    }
    Ok((source.to_string(), target.to_string(), split))
}

/// The longest pair a recurrent model is trained on; longer rows are an error, not truncated
/// silently (a pronunciation cut short is a wrong label).
pub const MAX_SOURCE: usize = 256;
pub const MAX_TARGET: usize = 256;
/// The most tokens generation writes (a safety bound: the end token stops it long before).
pub const MAX_GENERATED: usize = 2 * MAX_TARGET;

/// The tokens of one side of the pairs, by index. Special tokens first: `<pad>` 0 and `<unk>`
/// 1, then for targets `<s>` 2 and `</s>` 3; sources end with `</s>` (index `eos`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vocab {
    pub tokens: Vec<String>,
    /// Sources are characters; targets are whitespace-separated tokens.
    pub chars: bool,
    /// `<s>`: what the decoder reads first (targets only).
    pub bos: Option<u32>,
    /// `</s>`: appended to sources; the decoder's stop token.
    pub eos: u32,
}

const PAD: u32 = 0;
const UNK: u32 = 1;

impl Vocab {
    /// The vocabulary of `texts`: every character (`chars`) or token seen, sorted, after the
    /// special tokens.
    pub fn learn<'a>(texts: impl Iterator<Item = &'a String>, chars: bool) -> Vocab {
        let mut seen = BTreeSet::new();
        for text in texts {
            if chars {
                seen.extend(text.chars().map(String::from));
            } else {
                seen.extend(text.split_whitespace().map(String::from));
            }
        }
        let special: &[&str] = if chars {
            &["<pad>", "<unk>", "</s>"]
        } else {
            &["<pad>", "<unk>", "<s>", "</s>"]
        };
        let tokens: Vec<String> = special
            .iter()
            .map(|s| s.to_string())
            .chain(seen.into_iter().filter(|t| !special.contains(&t.as_str())))
            .collect();
        Vocab {
            tokens,
            chars,
            bos: (!chars).then_some(2),
            eos: if chars { 2 } else { 3 },
        }
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The ids of `text` (unknown pieces as `<unk>`); sources get `</s>` appended. A character
    /// the vocabulary lacks but whose lower case it has is read lower-cased (`Tomato` as
    /// `tomato` for a model that learnt lower-case spellings).
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let find = |piece: &str| {
            self.tokens
                .iter()
                .position(|t| t == piece)
                .map(|i| i as u32)
        };
        let id = |piece: &str| find(piece).unwrap_or(UNK);
        let mut ids: Vec<u32> = if self.chars {
            text.chars()
                .map(|c| {
                    let lower: String = c.to_lowercase().collect();
                    find(c.encode_utf8(&mut [0; 4]))
                        .or_else(|| find(&lower))
                        .unwrap_or(UNK)
                })
                .collect()
        } else {
            text.split_whitespace().map(id).collect()
        };
        if self.chars {
            ids.push(self.eos);
        }
        ids
    }

    /// The text of `ids` (targets: tokens joined by spaces).
    pub fn decode(&self, ids: &[u32]) -> String {
        let pieces = ids
            .iter()
            .map(|&i| self.tokens.get(i as usize).map_or("<unk>", String::as_str));
        if self.chars {
            pieces.collect()
        } else {
            pieces.collect::<Vec<_>>().join(" ")
        }
    }

    /// Check the special tokens a model relies on are in range.
    pub fn check(&self, side: &str) -> Result<()> {
        let n = self.len() as u32;
        if n < 3 || self.eos >= n || self.bos.is_some_and(|b| b >= n) {
            bail_input!("the {side} vocabulary ({n} tokens) lacks its special tokens");
        }
        Ok(())
    }
}

/// Pairs as a sequence-to-sequence model takes them.
pub struct PairExamples<'a> {
    pub set: &'a PairSet,
    pub source: &'a Vocab,
    pub target: &'a Vocab,
}

impl PairExamples<'_> {
    /// Each pair's target ids followed by `</s>`: what the decoder predicts.
    fn target_ids(&self, i: usize) -> Vec<u32> {
        let mut ids = self.target.encode(&self.set.targets[i]);
        ids.push(self.target.eos);
        ids
    }
}

impl Examples for PairExamples<'_> {
    fn len(&self) -> usize {
        self.set.len()
    }

    /// Pairs have no class; the loop's feature cache never applies to them.
    fn labels(&self) -> &[usize] {
        &[]
    }

    fn batch(
        &self,
        indices: &[usize],
        training: Option<&Training>,
        device: &Device,
    ) -> Result<Batch> {
        let sources: Vec<Vec<u32>> = indices
            .iter()
            .map(|&i| self.source.encode(&self.set.sources[i]))
            .collect();
        let targets: Vec<Vec<u32>> = indices.iter().map(|&i| self.target_ids(i)).collect();
        let bos = self.target.bos.unwrap_or(PAD);
        Ok(layout(&sources, &targets, bos, training, device))
    }

    fn inference_batch(&self) -> usize {
        256
    }

    fn lengths(&self) -> Option<Vec<usize>> {
        Some(self.set.sources.iter().map(|s| s.chars().count()).collect())
    }

    fn noun(&self) -> &'static str {
        "pairs"
    }

    /// The decoder reads the targets: there are no per-example features to cache.
    fn fixed_features(&self) -> bool {
        false
    }
}

/// The batch of `sources` and `targets` (ids, the targets ending with their end token), padded
/// to the longest of each: the decoder reads `bos` t1 … tn and predicts t1 … tn (teacher
/// forcing). A process computing part of a batch (`training.part`) pads to the whole batch's
/// lengths.
fn layout(
    sources: &[Vec<u32>],
    targets: &[Vec<u32>],
    bos: u32,
    training: Option<&Training>,
    device: &Device,
) -> Batch {
    let rows = training.map_or(0..sources.len(), |t| t.part.clone());
    let (s, t) = (
        sources.iter().map(Vec::len).max().unwrap_or(1),
        targets.iter().map(Vec::len).max().unwrap_or(1),
    );
    let (mut src, mut src_mask, mut tgt_in, mut tgt_mask) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut predict_at, mut out) = (Vec::new(), Vec::new());
    for (r, row) in rows.clone().enumerate() {
        let (source, target) = (&sources[row], &targets[row]);
        for k in 0..s {
            src.push(source.get(k).map_or(PAD as i64, |&v| v as i64));
            src_mask.push(if k < source.len() { 1.0f32 } else { 0.0 });
        }
        for k in 0..t {
            let read = if k == 0 {
                bos as i64
            } else {
                target.get(k - 1).map_or(PAD as i64, |&v| v as i64)
            };
            tgt_in.push(read);
            tgt_mask.push(if k < target.len() { 1.0f32 } else { 0.0 });
            if k < target.len() {
                predict_at.push((r * t + k) as i64);
                out.push(target[k] as usize);
            }
        }
    }
    let b = rows.len();
    let ints = |v: Vec<i64>, cols: usize| {
        Tensor::<2, Int>::from_data(TensorData::new(v, [b, cols]), device)
    };
    let floats =
        |v: Vec<f32>, cols: usize| Tensor::<2>::from_data(TensorData::new(v, [b, cols]), device);
    let n = predict_at.len();
    let all: Vec<usize> = (0..n).collect();
    Batch {
        input: Input::Pairs {
            source: ints(src, s),
            source_mask: floats(src_mask, s),
            target_in: ints(tgt_in, t),
            target_mask: floats(tgt_mask, t),
            predict_at: Tensor::from_data(TensorData::new(predict_at, [n]), device),
        },
        targets: labels(&out, &all, device),
    }
}

/// Pairs a WordPiece encoder–decoder (`bert2bert`) reads: both sides through one tokenizer,
/// each at most this many tokens (special tokens included).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TextPairInput {
    pub max_source_length: usize,
    pub max_target_length: usize,
}

/// The longest source or target a WordPiece pair model may be set to read.
pub const MAX_PAIR_TOKENS: usize = 512;

impl TextPairInput {
    /// Check the lengths against the model's `positions`.
    pub fn check(&self, positions: usize) -> Result<()> {
        for (what, n) in [
            ("max_source_length", self.max_source_length),
            ("max_target_length", self.max_target_length),
        ] {
            if !(3..=positions.min(MAX_PAIR_TOKENS)).contains(&n) {
                bail_input!(
                    "{what} {n} is not between 3 and {}",
                    positions.min(MAX_PAIR_TOKENS)
                );
            }
        }
        Ok(())
    }
}

/// The ids of `[CLS]` (what the decoder reads first) and `[SEP]` (what ends a sequence).
pub fn bert_specials(tokenizer: &TextTokenizer) -> Result<(u32, u32)> {
    match (tokenizer.token_id("[CLS]"), tokenizer.token_id("[SEP]")) {
        (Some(cls), Some(sep)) => Ok((cls, sep)),
        _ => bail_input!(
            "the tokenizer has no [CLS] or no [SEP] token (a BERT WordPiece tokenizer has both)"
        ),
    }
}

/// The source ids a WordPiece pair model reads for `text`: `[CLS]` pieces `[SEP]`, at most
/// `max` of them (the pieces cut). Also says whether it was cut.
pub fn source_ids(tokenizer: &TextTokenizer, text: &str, max: usize) -> Result<(Vec<u32>, bool)> {
    let (cls, sep) = bert_specials(tokenizer)?;
    let pieces = tokenizer.encode_plain(text)?;
    let cut = pieces.len() + 2 > max;
    let mut ids = Vec::with_capacity(max.min(pieces.len() + 2));
    ids.push(cls);
    ids.extend(pieces.into_iter().take(max.saturating_sub(2)));
    ids.push(sep);
    Ok((ids, cut))
}

/// Pairs tokenized once: sources `[CLS] … [SEP]`, targets `… [SEP]`, cut to the input's
/// lengths (counted: [`TokenPairs::truncated`]).
pub struct TokenPairs<'a> {
    set: &'a PairSet,
    tokenizer: &'a TextTokenizer,
    input: &'a TextPairInput,
    sources: Vec<Vec<u32>>,
    targets: Vec<Vec<u32>>,
    bos: u32,
    /// Sources and targets that were longer than the model reads, cut.
    pub truncated: (usize, usize),
}

/// Validation pairs whose generated texts are scored after every epoch (the first ones):
/// generating is slow next to a forward pass.
pub const SCORED_PAIRS: usize = 200;

impl<'a> TokenPairs<'a> {
    pub fn new(
        set: &'a PairSet,
        tokenizer: &'a TextTokenizer,
        input: &'a TextPairInput,
    ) -> Result<Self> {
        let (cls, sep) = bert_specials(tokenizer)?;
        let mut pairs = TokenPairs {
            set,
            tokenizer,
            input,
            sources: Vec::with_capacity(set.len()),
            targets: Vec::with_capacity(set.len()),
            bos: cls,
            truncated: (0, 0),
        };
        for (source, target) in set.sources.iter().zip(&set.targets) {
            let (ids, cut) = source_ids(tokenizer, source, input.max_source_length)?;
            pairs.sources.push(ids);
            pairs.truncated.0 += cut as usize;
            let mut ids = tokenizer.encode_plain(target)?;
            let keep = input.max_target_length - 1;
            pairs.truncated.1 += (ids.len() > keep) as usize;
            ids.truncate(keep);
            ids.push(sep);
            pairs.targets.push(ids);
        }
        Ok(pairs)
    }

    /// One line for people when anything was cut.
    pub fn truncation_note(&self) -> Option<String> {
        let input = self.input;
        let (s, t) = self.truncated;
        let n = self.sources.len();
        (s + t > 0).then(|| {
            format!(
                "note: {s} of {n} sources longer than {} tokens and {t} targets longer than {} \
                 were truncated",
                input.max_source_length, input.max_target_length
            )
        })
    }
}

impl Examples for TokenPairs<'_> {
    fn len(&self) -> usize {
        self.sources.len()
    }

    fn labels(&self) -> &[usize] {
        &[]
    }

    fn batch(
        &self,
        indices: &[usize],
        training: Option<&Training>,
        device: &Device,
    ) -> Result<Batch> {
        let pick = |side: &[Vec<u32>]| indices.iter().map(|&i| side[i].clone()).collect::<Vec<_>>();
        let (sources, targets) = (pick(&self.sources), pick(&self.targets));
        Ok(layout(&sources, &targets, self.bos, training, device))
    }

    fn inference_batch(&self) -> usize {
        64
    }

    fn lengths(&self) -> Option<Vec<usize>> {
        Some(self.sources.iter().map(Vec::len).collect())
    }

    fn noun(&self) -> &'static str {
        "pairs"
    }

    fn fixed_features(&self) -> bool {
        false
    }

    /// 1 − ROUGE-L F1 of the texts `model` writes (greedy) for the first [`SCORED_PAIRS`].
    fn error_rate(&self, model: &Classifier) -> Result<Option<f64>> {
        let n = self.len().min(SCORED_PAIRS);
        let search = crate::generate::Search {
            beams: 1,
            ..crate::infer::summary_search(self.input)
        };
        let outputs =
            crate::infer::summarize_ids(model, self.tokenizer, &self.sources[..n], &search)?;
        let [_, _, rouge_l] = crate::metrics::rouge::mean_f1(&self.set.targets[..n], &outputs);
        Ok(Some(1.0 - rouge_l))
    }
}
