//! Recordings with their transcripts, for speech recognition: what a speech model takes
//! ([`SpeechInput`]), the readers, and the batches a Whisper model trains on.
//!
//! A speech dataset is a directory of audio files (`.wav`, `.raw`/`.pcm` at 16 kHz), each with
//! its transcript in a `.txt` file of the same name, or a manifest (`.tsv`, `.csv` or `.jsonl`)
//! with an `audio` column (paths relative to the manifest) and a text column (`--text-column`).
//! The test split is `train/` + `test/` folders, a manifest's `split` column, or else every
//! recording whose path (relative to the dataset) hashes to 0 mod 5.

use std::path::{Path, PathBuf};

use anyhow::Result;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::examples::{Batch, Examples, Training};
use super::texts::{Columns, in_test_split};
use super::{Split, TextTokenizer, audio, mel};
use crate::models::whisper::WhisperConfig;
use crate::models::{Audio, Input};
use crate::{bail_input, input_error};

/// Speech a model takes: 16 kHz audio as log-mel spectrograms, and how it writes a transcript.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SpeechInput {
    /// Mel frames the encoder reads, the audio's window (Whisper: 3000, 30 s).
    pub frames: usize,
    /// Tokens a transcript starts from (Whisper tiny.en: `<|startoftranscript|>`
    /// `<|notimestamps|>`).
    pub prompt: Vec<u32>,
    /// The token that ends a transcript; the text tokens are those below it.
    pub end: u32,
    /// Tokens never written (faster-whisper's `suppress_ids`).
    pub suppress: Vec<u32>,
    /// Tokens not written first (`suppress_blank`: a space, the end).
    pub suppress_first: Vec<u32>,
    /// Tokens a transcript has at most, the end token included (CTranslate2's
    /// `max_length / 2`, 224).
    pub max_tokens: usize,
}

impl SpeechInput {
    /// Whether a Whisper of sizes `c` can run this: the mel bins pretune computes, a window
    /// it can read, a prompt and transcripts that fit its positions, tokens of its vocabulary.
    pub fn check(&self, c: &WhisperConfig) -> Result<(), String> {
        if c.num_mel_bins != mel::N_MELS {
            return Err(format!(
                "the model reads {} mel bins; pretune computes Whisper's {}",
                c.num_mel_bins,
                mel::N_MELS
            ));
        }
        if self.frames == 0 || !self.frames.is_multiple_of(2) || self.frames > c.frames() {
            return Err(format!(
                "a window of {} mel frames does not suit the model (an even number up to {})",
                self.frames,
                c.frames()
            ));
        }
        if self.prompt.is_empty()
            || self.max_tokens == 0
            || self.prompt.len() + self.max_tokens > c.max_target_positions
        {
            return Err(format!(
                "a prompt of {} tokens and transcripts of {} do not fit the decoder's {} positions",
                self.prompt.len(),
                self.max_tokens,
                c.max_target_positions
            ));
        }
        let tokens = self
            .prompt
            .iter()
            .chain(&self.suppress)
            .chain(&self.suppress_first);
        if let Some(t) = tokens
            .chain([&self.end])
            .find(|&&t| t as usize >= c.vocab_size)
        {
            return Err(format!(
                "token {t} is beyond the model's vocabulary of {}",
                c.vocab_size
            ));
        }
        Ok(())
    }
}

/// Recordings as mono 16 kHz samples, with their transcripts.
#[derive(Debug, Clone, Default)]
pub struct SpeechSet {
    /// Where each recording came from (for messages and reports).
    pub paths: Vec<PathBuf>,
    pub audio: Vec<Vec<f32>>,
    pub texts: Vec<String>,
    /// One class for every recording: the splits then draw recordings as they draw examples.
    pub labels: Vec<usize>,
    pub class_names: Vec<String>,
}

/// The one class name of a speech set.
const CLASS: &str = "speech";
/// Longest recording read for training, in seconds: 30 is Whisper's window.
const MAX_SECONDS: usize = 30;

impl SpeechSet {
    /// A set of `audio` (16 kHz mono) with `texts`, named by `paths`.
    pub fn new(paths: Vec<PathBuf>, audio: Vec<Vec<f32>>, texts: Vec<String>) -> SpeechSet {
        SpeechSet {
            labels: vec![0; paths.len()],
            class_names: vec![CLASS.into()],
            paths,
            audio,
            texts,
        }
    }

    pub fn len(&self) -> usize {
        self.paths.len()
    }

    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// The recordings at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> SpeechSet {
        SpeechSet::new(
            indices.iter().map(|&i| self.paths[i].clone()).collect(),
            indices.iter().map(|&i| self.audio[i].clone()).collect(),
            indices.iter().map(|&i| self.texts[i].clone()).collect(),
        )
    }

    /// Seconds of audio in all.
    pub fn seconds(&self) -> f64 {
        self.audio.iter().map(Vec::len).sum::<usize>() as f64 / mel::SAMPLE_RATE as f64
    }

    /// These recordings as training examples for a model that takes `input` and reads with
    /// `tokenizer`: each transcript tokenised once (refused when longer than the model writes).
    pub fn examples<'a>(
        &'a self,
        input: &'a SpeechInput,
        tokenizer: &TextTokenizer,
    ) -> Result<SpeechExamples<'a>> {
        let mut tokens = Vec::with_capacity(self.len());
        for (text, path) in self.texts.iter().zip(&self.paths) {
            let mut row = input.prompt.clone();
            // Whisper writes a space before the first word (" Go forward."); so do its labels.
            let text_tokens = tokenizer.encode_plain(&format!(" {}", text.trim()))?;
            if text_tokens.len() + 1 > input.max_tokens {
                bail_input!(
                    "{}: the transcript is {} tokens long; the model writes at most {}",
                    path.display(),
                    text_tokens.len(),
                    input.max_tokens - 1
                );
            }
            row.extend(text_tokens);
            row.push(input.end);
            tokens.push(row);
        }
        Ok(SpeechExamples {
            set: self,
            input,
            tokens,
            encoded: None,
        })
    }
}

/// Recordings and their tokenised transcripts, as batches for a speech model.
pub struct SpeechExamples<'a> {
    pub set: &'a SpeechSet,
    pub input: &'a SpeechInput,
    /// Each recording's token sequence: the prompt, the transcript, the end token.
    pub tokens: Vec<Vec<u32>>,
    /// The encoder's output of each recording (`[positions, d]` flat) with its shape, when the
    /// encoder does not learn and was run once ([`SpeechExamples::with_encoded`]).
    encoded: Option<(Vec<Vec<f32>>, [usize; 2])>,
}

/// Recordings per forward pass when nothing learns: a 30 s window's encoder keeps about
/// 150 MB of activations per recording.
const SPEECH_INFERENCE_BATCH: usize = 4;

impl SpeechExamples<'_> {
    /// The same examples reading the encoder's output `encoded[i]` (`shape` = positions,
    /// width) instead of recording i's audio.
    pub fn with_encoded(self, encoded: Vec<Vec<f32>>, shape: [usize; 2]) -> Self {
        assert_eq!(encoded.len(), self.set.len(), "one output per recording");
        SpeechExamples {
            encoded: Some((encoded, shape)),
            ..self
        }
    }

    /// Log-mel spectrograms `[B, mels, frames]` of the recordings `rows`.
    pub fn mel(&self, rows: &[usize], device: &Device) -> Tensor<3> {
        let frames = self.input.frames;
        let mut values = Vec::with_capacity(rows.len() * mel::N_MELS * frames);
        for &i in rows {
            values.extend(mel::log_mel_window(&self.set.audio[i], frames));
        }
        Tensor::<1>::from_data(
            TensorData::new(values, [rows.len() * mel::N_MELS * frames]),
            device,
        )
        .reshape([rows.len(), mel::N_MELS, frames])
    }

    /// The audio of the recordings `rows` as the model reads it.
    pub fn audio(&self, rows: &[usize], device: &Device) -> Audio {
        match &self.encoded {
            Some((encoded, [t, d])) => {
                let mut values = Vec::with_capacity(rows.len() * t * d);
                for &i in rows {
                    values.extend_from_slice(&encoded[i]);
                }
                Audio::Encoded(
                    Tensor::<1>::from_data(TensorData::new(values, [rows.len() * t * d]), device)
                        .reshape([rows.len(), *t, *d]),
                )
            }
            None => Audio::Mel(self.mel(rows, device)),
        }
    }
}

impl Examples for SpeechExamples<'_> {
    fn len(&self) -> usize {
        self.set.len()
    }

    fn labels(&self) -> &[usize] {
        &self.set.labels
    }

    /// Every token after the prompt is predicted from the ones before it (teacher forcing);
    /// rows are padded with the end token, which nothing predicts from.
    fn batch(
        &self,
        indices: &[usize],
        training: Option<&Training>,
        device: &Device,
    ) -> Result<Batch> {
        let part = training.map_or(0..indices.len(), |t| t.part.clone());
        let rows = &indices[part];
        let longest = rows
            .iter()
            .map(|&i| self.tokens[i].len())
            .max()
            .unwrap_or(1);
        let start = self.input.prompt.len().max(1) - 1;
        let (mut ids, mut positions, mut targets) = (Vec::new(), Vec::new(), Vec::new());
        for (r, &i) in rows.iter().enumerate() {
            let row = &self.tokens[i];
            ids.extend(row.iter().map(|&t| t as i64));
            ids.extend(std::iter::repeat_n(
                self.input.end as i64,
                longest - row.len(),
            ));
            for t in start..row.len() - 1 {
                positions.push((r * longest + t) as i64);
                targets.push(row[t + 1] as i64);
            }
        }
        let n = positions.len();
        Ok(Batch {
            input: Input::Speech {
                audio: self.audio(rows, device),
                tokens: Tensor::from_data(TensorData::new(ids, [rows.len(), longest]), device),
                predict_at: Tensor::from_data(TensorData::new(positions, [n]), device),
            },
            targets: Tensor::from_data(TensorData::new(targets, [n]), device),
        })
    }

    fn inference_batch(&self) -> usize {
        match self.encoded {
            Some(_) => 4 * SPEECH_INFERENCE_BATCH,
            None => SPEECH_INFERENCE_BATCH,
        }
    }

    fn lengths(&self) -> Option<Vec<usize>> {
        Some(self.tokens.iter().map(Vec::len).collect())
    }

    fn noun(&self) -> &'static str {
        "clips"
    }

    /// The features are the decoder's, which reads its tokens from the head (tied): they
    /// change whenever the head learns.
    fn fixed_features(&self) -> bool {
        false
    }
}

/// Whether `path` holds speech: a manifest with an `audio` column, or a directory of audio
/// files with transcripts (directly or under `train/`).
pub fn holds(path: &Path) -> bool {
    if path.is_dir() {
        let dir = match path.join("train") {
            train if train.is_dir() => train,
            _ => path.to_path_buf(),
        };
        return audio_files(&dir).is_ok_and(|files| !files.is_empty());
    }
    manifest_kind(path).is_some() && read_manifest(path).is_ok()
}

/// Load the `split` half of a speech dataset (see the module's documentation).
pub fn load(path: &Path, split: Split, columns: &Columns) -> Result<SpeechSet> {
    let shown = path.display();
    let entries = if path.is_dir() {
        read_folder(path, split)?
    } else if manifest_kind(path).is_some() {
        let rows = read_manifest(path)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut entries = Vec::new();
        for row in rows {
            let text = row.text(&columns.text).ok_or_else(|| {
                input_error!(
                    "{shown}:{}: no text column {:?} (--text-column)",
                    row.at,
                    columns.text
                )
            })?;
            let in_test = match row.split.as_deref() {
                Some("test" | "val") => true,
                Some(_) => false,
                None => in_test_split(&row.audio),
            };
            if in_test == (split == Split::Test) {
                entries.push((dir.join(&row.audio), text));
            }
        }
        entries
    } else {
        bail_input!(
            "{shown}: not a speech dataset (expected a directory of .wav/.raw files with .txt \
             transcripts, or a .tsv, .csv or .jsonl manifest with an audio column)"
        );
    };
    if entries.is_empty() {
        bail_input!("{shown}: no recordings in its {split:?} split");
    }
    let mut set = SpeechSet::default();
    for (audio_path, text) in entries {
        if text.trim().is_empty() {
            bail_input!("{}: the transcript is empty", audio_path.display());
        }
        let samples = audio::load(&audio_path, None)?;
        if samples.len() > MAX_SECONDS * mel::SAMPLE_RATE {
            bail_input!(
                "{}: is {:.1} s long; recordings to train on must fit in {MAX_SECONDS} s",
                audio_path.display(),
                samples.len() as f64 / mel::SAMPLE_RATE as f64
            );
        }
        set.paths.push(audio_path);
        set.audio.push(samples);
        set.texts.push(text.trim().to_string());
    }
    Ok(SpeechSet::new(set.paths, set.audio, set.texts))
}

/// Audio files (`.wav`, `.raw`, `.pcm`) directly in `dir`, sorted.
fn audio_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| input_error!("{}: cannot list: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                    matches!(e.to_ascii_lowercase().as_str(), "wav" | "raw" | "pcm")
                })
        })
        .collect();
    files.sort();
    Ok(files)
}

/// The recordings of `split` in a folder, with their transcripts (`name.txt` beside
/// `name.wav`).
fn read_folder(root: &Path, split: Split) -> Result<Vec<(PathBuf, String)>> {
    let (dir, hashed) = match (root.join("train").is_dir(), split) {
        (true, Split::Train) => (root.join("train"), false),
        (true, Split::Test) => (root.join("test"), false),
        (false, _) => (root.to_path_buf(), true),
    };
    if !dir.is_dir() {
        bail_input!(
            "{}: has train/ but no test/ folder to evaluate on",
            root.display()
        );
    }
    let mut out = Vec::new();
    for file in audio_files(&dir)? {
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
        if hashed && in_test_split(&name.unwrap_or_default()) != (split == Split::Test) {
            continue;
        }
        let transcript = file.with_extension("txt");
        let text = std::fs::read_to_string(&transcript).map_err(|e| {
            input_error!(
                "{}: no transcript ({}: {e})",
                file.display(),
                transcript.display()
            )
        })?;
        out.push((file, text));
    }
    Ok(out)
}

/// A manifest's format, by its extension.
fn manifest_kind(path: &Path) -> Option<u8> {
    match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
        "tsv" => Some(b'\t'),
        "csv" => Some(b','),
        "jsonl" | "json" => Some(b'j'),
        _ => None,
    }
}

/// One row of a manifest: the audio's path, every field, and where it is (for messages).
struct Row {
    audio: String,
    fields: Vec<(String, String)>,
    split: Option<String>,
    at: String,
}

impl Row {
    fn text(&self, column: &str) -> Option<String> {
        self.fields
            .iter()
            .find(|(k, _)| k == column)
            .map(|(_, v)| v.clone())
    }
}

/// The column naming each recording's audio file.
const AUDIO_COLUMN: &str = "audio";

/// The rows of a manifest; an error unless it has an audio column.
fn read_manifest(path: &Path) -> Result<Vec<Row>> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| input_error!("{shown}: cannot read as UTF-8 text: {e}"))?;
    let mut records: Vec<(Vec<(String, String)>, String)> = Vec::new();
    match manifest_kind(path) {
        Some(b'j') => {
            for (i, line) in text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                let value: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line)
                    .map_err(|e| input_error!("{shown}:{}: not a JSON object: {e}", i + 1))?;
                let fields = value
                    .into_iter()
                    .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_string())))
                    .collect();
                records.push((fields, (i + 1).to_string()));
            }
        }
        Some(delimiter) => {
            let mut reader = csv::ReaderBuilder::new()
                .delimiter(delimiter)
                .from_reader(text.as_bytes());
            let headers = reader
                .headers()
                .map_err(|e| input_error!("{shown}: no header row: {e}"))?
                .clone();
            for (i, record) in reader.records().enumerate() {
                let record = record.map_err(|e| input_error!("{shown}: row {}: {e}", i + 2))?;
                let fields = headers
                    .iter()
                    .zip(record.iter())
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                records.push((fields, format!("row {}", i + 2)));
            }
        }
        None => bail_input!("{shown}: not a .tsv, .csv or .jsonl manifest"),
    }
    records
        .into_iter()
        .map(|(fields, at)| {
            let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            let audio = get(AUDIO_COLUMN)
                .filter(|a| !a.trim().is_empty())
                .ok_or_else(|| {
                    input_error!("{shown}:{at}: no {AUDIO_COLUMN:?} field naming the recording")
                })?;
            Ok(Row {
                audio,
                split: get("split"),
                fields,
                at,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(seconds: f32) -> Vec<u8> {
        let n = (seconds * 16_000.0) as usize;
        (0..n)
            .flat_map(|i| (((i as f32 * 0.05).sin() * 8000.0) as i16).to_le_bytes())
            .collect()
    }

    #[test]
    fn folders_and_manifests_read_alike() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for name in ["a", "b", "c", "d", "e", "f", "g", "h"] {
            std::fs::write(d.join(format!("{name}.raw")), tone(0.5)).unwrap();
            std::fs::write(d.join(format!("{name}.txt")), format!(" say {name}\n")).unwrap();
        }
        assert!(holds(d));
        let columns = Columns::default();
        let train = load(d, Split::Train, &columns).unwrap();
        let test = load(d, Split::Test, &columns).unwrap();
        assert_eq!(train.len() + test.len(), 8);
        assert!(train.texts.iter().all(|t| t.starts_with("say ")));
        assert_eq!(train.audio[0].len(), 8000);

        let manifest = d.join("m.tsv");
        std::fs::write(
            &manifest,
            "audio\ttext\tsplit\na.raw\tsay a\ttrain\nb.raw\tsay b\ttest\n",
        )
        .unwrap();
        assert!(holds(&manifest));
        let train = load(&manifest, Split::Train, &columns).unwrap();
        assert_eq!((train.len(), train.texts[0].as_str()), (1, "say a"));
        let jsonl = d.join("m.jsonl");
        std::fs::write(&jsonl, "{\"audio\": \"c.raw\", \"text\": \"say c\"}\n").unwrap();
        let all =
            load(&jsonl, Split::Train, &columns).or_else(|_| load(&jsonl, Split::Test, &columns));
        assert_eq!(all.unwrap().texts, ["say c"]);

        // A text dataset is not speech; a missing transcript or audio file is named.
        let texts = d.join("t.tsv");
        std::fs::write(&texts, "text\tlabel\nhello\t1\n").unwrap();
        assert!(!holds(&texts));
        std::fs::remove_file(d.join("a.txt")).unwrap();
        let err = format!("{:#}", load(d, Split::Train, &columns).unwrap_err());
        let err = if err.contains("a.raw") {
            err
        } else {
            format!("{:#}", load(d, Split::Test, &columns).unwrap_err())
        };
        assert!(err.contains("a.raw: no transcript"), "{err}");
        std::fs::write(&manifest, "audio\ttext\nmissing.wav\thello\n").unwrap();
        let err = format!(
            "{:#}",
            load(&manifest, Split::Train, &columns)
                .err()
                .or(load(&manifest, Split::Test, &columns).err())
                .unwrap()
        );
        assert!(err.contains("missing.wav"), "{err}");
    }
}
