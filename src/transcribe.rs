//! Speech to text with a Whisper model, as faster-whisper transcribes without timestamps: the
//! log-mel spectrogram cut into 30 s windows, each window encoded once and decoded from the
//! model's prompt by greedy or beam search ([`crate::generate`]) with its suppressed tokens,
//! the windows' texts joined. The decoder keeps a key/value cache: each new token costs one
//! position.

use anyhow::Result;
use burn::module::Module;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;

use crate::data::speech::SpeechExamples;
use crate::data::{Examples, SpeechInput, SpeechSet, TextTokenizer, mel};
use crate::generate::{self, Decoder, Search};
use crate::metrics::edit::Alignment;
use crate::metrics::wer;
use crate::models::whisper::{Cache, Whisper};
use crate::models::{Audio, Backbone, Classifier};
use crate::train::{Frozen, Phase};
use crate::{bail_input, input_error};

/// What a recording became: the tokens of every window (without prompts and end tokens) and
/// the text.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    pub tokens: Vec<u32>,
    pub text: String,
}

/// A speech model ready to transcribe.
pub struct Transcriber<'a> {
    whisper: Whisper,
    /// The head's weight `[d, vocab]`: the token table and the output projection.
    table: Tensor<2>,
    pub input: &'a SpeechInput,
    tokenizer: &'a TextTokenizer,
    pub search: Search,
}

/// One decoding step of a Whisper model over a window's encoder output.
struct Step<'a> {
    whisper: &'a Whisper,
    table: &'a Tensor<2>,
}

impl Decoder for Step<'_> {
    type State = Cache;

    fn step(&self, cache: Cache, tokens: &[u32]) -> Result<(Vec<Vec<f32>>, Cache)> {
        let device = self.table.device();
        let n = tokens.len();
        let ids = TensorData::new(tokens.iter().map(|&t| t as i64).collect(), [n, 1]);
        let (hidden, cache) = self.whisper.decode(
            cache,
            Tensor::<2, Int>::from_data(ids, &device),
            self.table.clone(),
        );
        let [_, _, d] = hidden.dims();
        let logits = hidden.reshape([n, d]).matmul(self.table.clone());
        let vocab = self.table.dims()[1];
        let values: Vec<f32> = log_softmax(logits, 1)
            .into_data()
            .try_into_vec::<f32>()
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        Ok((values.chunks(vocab).map(<[f32]>::to_vec).collect(), cache))
    }

    fn select(&self, cache: Cache, rows: &[usize]) -> Cache {
        if rows.iter().enumerate().all(|(i, &r)| i == r) && rows.len() == cache.rows() {
            return cache;
        }
        let rows = TensorData::new(rows.iter().map(|&r| r as i64).collect(), [rows.len()]);
        cache.select(Tensor::from_data(rows, &self.table.device()))
    }
}

impl<'a> Transcriber<'a> {
    /// Transcribe with `model` (a speech model: refused otherwise), which reads `input` and
    /// writes with `tokenizer`, keeping `beams` hypotheses (1: greedy, as faster-whisper's
    /// `beam_size=1`).
    pub fn new(
        model: &Classifier,
        input: &'a SpeechInput,
        tokenizer: &'a TextTokenizer,
        beams: usize,
    ) -> Result<Self> {
        let model = model.valid();
        let Backbone::Whisper(whisper) = model.backbone else {
            bail_input!("not a speech model: it cannot transcribe");
        };
        Ok(Transcriber {
            whisper,
            table: model.head.table(),
            input,
            tokenizer,
            search: Search {
                beams,
                suppress: input.suppress.clone(),
                suppress_first: input.suppress_first.clone(),
                // faster-whisper's beam search (patience 1) ends when `beams` transcripts did.
                early_stopping: true,
                ..Search::greedy(input.end, input.max_tokens)
            },
        })
    }

    /// The encoder's output `[B, positions, d]` for mel windows `[B, mels, frames]`.
    pub fn encode(&self, mel: Tensor<3>) -> Tensor<3> {
        self.whisper.encode(mel)
    }

    /// The tokens the model writes for one window's encoder output (`[1, positions, d]`).
    pub fn decode(&self, encoded: Tensor<3>) -> Result<Vec<u32>> {
        let step = Step {
            whisper: &self.whisper,
            table: &self.table,
        };
        generate::generate(
            &step,
            self.whisper.start(encoded),
            &self.input.prompt,
            &self.search,
        )
    }

    /// The text of a window's tokens: those below the end token (timestamps and other
    /// special tokens dropped), decoded.
    pub fn text(&self, tokens: &[u32]) -> Result<String> {
        let text: Vec<u32> = tokens
            .iter()
            .copied()
            .filter(|&t| t < self.input.end)
            .collect();
        self.tokenizer.decode(&text)
    }

    /// Transcribe 16 kHz mono `samples`: every window of the model's length, decoded on its
    /// own; a window whose text is blank adds nothing.
    pub fn transcribe(&self, samples: &[f32]) -> Result<Transcript> {
        let frames = self.input.frames;
        let device = self.table.device();
        let mut out = Transcript {
            tokens: Vec::new(),
            text: String::new(),
        };
        for window in mel::log_mel_windows(samples, frames) {
            let mel =
                Tensor::<1>::from_data(TensorData::new(window, [mel::N_MELS * frames]), &device)
                    .reshape([1, mel::N_MELS, frames]);
            let tokens = self.decode(self.encode(mel))?;
            let text = self.text(&tokens)?;
            if !text.trim().is_empty() {
                out.text.push_str(&text);
            }
            out.tokens.extend(tokens);
        }
        Ok(out)
    }

    /// The transcripts of `examples`' recordings (the first window of each, as the model
    /// trains on them), encoded a few at a time or read from their cached encoder output.
    pub fn transcribe_examples(&self, examples: &SpeechExamples) -> Result<Vec<String>> {
        let device = self.table.device();
        let order: Vec<usize> = (0..examples.set.len()).collect();
        let mut texts = Vec::with_capacity(order.len());
        for chunk in order.chunks(examples.inference_batch().max(1)) {
            let encoded = match examples.audio(chunk, &device) {
                Audio::Mel(mel) => self.encode(mel),
                Audio::Encoded(encoded) => encoded,
            };
            for row in 0..chunk.len() {
                let one = encoded.clone().narrow(0, row, 1);
                texts.push(self.text(&self.decode(one)?)?);
            }
        }
        Ok(texts)
    }

    /// Word errors of the model on `examples` against their transcripts, both normalised
    /// ([`wer::normalize`]), with what it wrote for each.
    pub fn score(&self, examples: &SpeechExamples) -> Result<(Alignment, Vec<String>)> {
        let written = self.transcribe_examples(examples)?;
        let errors = written
            .iter()
            .zip(&examples.set.texts)
            .map(|(h, r)| wer::word_errors(&wer::normalize(r), &wer::normalize(h), true))
            .sum();
        Ok((errors, written))
    }
}

/// The encoder's output for every recording of `examples` (`[positions, d]` each, flat), for
/// [`SpeechExamples::with_encoded`] when the encoder does not learn.
pub fn encode_all(
    model: &Classifier,
    examples: &SpeechExamples,
) -> Result<(Vec<Vec<f32>>, [usize; 2])> {
    let model = model.valid();
    let Backbone::Whisper(whisper) = &model.backbone else {
        bail_input!("not a speech model");
    };
    let device = model.device();
    let order: Vec<usize> = (0..examples.set.len()).collect();
    let (mut out, mut shape) = (Vec::with_capacity(order.len()), [0, 0]);
    for chunk in order.chunks(SPEECH_ENCODE_BATCH) {
        let encoded = whisper.encode(examples.mel(chunk, &device));
        let [b, t, d] = encoded.dims();
        shape = [t, d];
        let values: Vec<f32> = encoded
            .into_data()
            .try_into_vec::<f32>()
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        out.extend(values.chunks(t * d).take(b).map(<[f32]>::to_vec));
    }
    Ok((out, shape))
}

pub use crate::data::RunExamples;

/// The training and validation examples of a speech run through `phases`: transcripts
/// tokenised once, the validation scored by word error rate, and, when no phase lets the
/// encoder learn (`decoder-only`), the encoder's output computed once for every recording.
pub fn run_examples<'a>(
    model: &Classifier,
    phases: &[Phase],
    input: &'a SpeechInput,
    tokenizer: &'a TextTokenizer,
    train: &'a SpeechSet,
    val: &'a SpeechSet,
) -> Result<RunExamples<'a>> {
    let encoder_frozen = phases
        .iter()
        .all(|p| matches!(p.frozen, Frozen::Stages(_) | Frozen::Backbone));
    let prepare = |set: &'a SpeechSet| -> Result<SpeechExamples<'a>> {
        let examples = set.examples(input, tokenizer)?;
        if !encoder_frozen || set.is_empty() {
            return Ok(examples);
        }
        let (encoded, shape) = encode_all(model, &examples)?;
        Ok(examples.with_encoded(encoded, shape))
    };
    if encoder_frozen {
        println!(
            "encoding {} recordings once (the encoder does not learn)",
            train.len() + val.len()
        );
    }
    let train = Box::new(prepare(train)?);
    let val = (!val.is_empty())
        .then(|| {
            Ok::<_, anyhow::Error>(Box::new(Scored {
                examples: prepare(val)?,
                tokenizer,
            }) as Box<dyn Examples>)
        })
        .transpose()?;
    Ok((train, val))
}

/// Recordings encoded per forward pass when caching the encoder's output.
const SPEECH_ENCODE_BATCH: usize = 4;

/// Speech examples whose validation score is the word error rate of the model's greedy
/// transcripts ([`Examples::error_rate`]).
pub struct Scored<'a> {
    pub examples: SpeechExamples<'a>,
    pub tokenizer: &'a TextTokenizer,
}

impl Examples for Scored<'_> {
    fn len(&self) -> usize {
        self.examples.len()
    }

    fn labels(&self) -> &[usize] {
        self.examples.labels()
    }

    fn batch(
        &self,
        indices: &[usize],
        training: Option<&crate::data::Training>,
        device: &Device,
    ) -> Result<crate::data::Batch> {
        self.examples.batch(indices, training, device)
    }

    fn inference_batch(&self) -> usize {
        self.examples.inference_batch()
    }

    fn lengths(&self) -> Option<Vec<usize>> {
        self.examples.lengths()
    }

    fn noun(&self) -> &'static str {
        self.examples.noun()
    }

    fn fixed_features(&self) -> bool {
        self.examples.fixed_features()
    }

    fn error_rate(&self, model: &Classifier) -> Result<Option<f64>> {
        word_error_rate(model, &self.examples, self.tokenizer).map(Some)
    }
}

/// The transcripts' word error rate of `model` on `examples`, greedy: the validation metric of
/// a speech model's training run.
pub fn word_error_rate(
    model: &Classifier,
    examples: &SpeechExamples,
    tokenizer: &TextTokenizer,
) -> Result<f64> {
    let transcriber = Transcriber::new(model, examples.input, tokenizer, 1)?;
    Ok(transcriber.score(examples)?.0.rate())
}

/// The speech input and tokenizer of a checkpoint's metadata, or an error naming it.
pub fn speech_parts<'a>(
    input: &'a crate::data::ModelInput,
    tokenizer: Option<&'a TextTokenizer>,
    shown: &str,
) -> Result<(&'a SpeechInput, &'a TextTokenizer)> {
    match (input, tokenizer) {
        (crate::data::ModelInput::Speech(s), Some(t)) => Ok((s, t)),
        _ => Err(input_error!(
            "{shown}: not a speech model: it cannot transcribe"
        )),
    }
}
