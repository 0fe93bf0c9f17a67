//! What the training and evaluation commands do differently for speech models.

use std::path::Path;

use anyhow::Result;
use pretune::data::{Dataset, Examples, SpeechInput, TextTokenizer, TrainingData};
use pretune::metrics::wer::WordErrors;
use pretune::models::Classifier;
use pretune::train::{Frozen, Phase, Strategy};
use pretune::transcribe::{self, Scored, Transcriber};
use pretune::{bail_input, data};

/// A fine-tune of a speech model: a strategy that suits it, on recordings with transcripts.
pub fn check_finetune(strategy: Strategy, data: &Path) -> Result<()> {
    if matches!(
        strategy,
        Strategy::LinearProbe | Strategy::FreezeThenUnfreeze
    ) {
        let name = clap::ValueEnum::to_possible_value(&strategy).map(|v| v.get_name().to_string());
        bail_input!(
            "--strategy {}: a speech model's head is its decoder's token table, which \
             does not learn apart from the decoder; use full, decoder-only or lora",
            name.unwrap_or_default()
        );
    }
    if !data::speech::holds(data) {
        bail_input!(
            "{}: not a speech dataset (expected a directory of .wav/.raw files with .txt \
             transcripts, or a .tsv/.csv/.jsonl manifest with an audio column)",
            data.display()
        );
    }
    Ok(())
}

/// A run's training examples and, when there are validation examples, those.
type RunExamples<'a> = (Box<dyn Examples + 'a>, Option<Box<dyn Examples + 'a>>);

/// The training and validation examples of a speech run: transcripts tokenised once, the
/// validation scored by word error rate, and, when no phase lets the encoder learn
/// (`decoder-only`), the encoder's output computed once for every recording.
pub fn examples<'a>(
    model: &Classifier,
    phases: &[Phase],
    input: &'a SpeechInput,
    tokenizer: &'a TextTokenizer,
    sets: &'a TrainingData,
) -> Result<RunExamples<'a>> {
    let (Dataset::Speech(train), Dataset::Speech(val)) = (&sets.train, &sets.val) else {
        bail_input!("a speech model trains on recordings with transcripts");
    };
    let encoder_frozen = phases
        .iter()
        .all(|p| matches!(p.frozen, Frozen::Stages(_) | Frozen::Backbone));
    let prepare = |set: &'a data::SpeechSet| -> Result<data::speech::SpeechExamples<'a>> {
        let examples = set.examples(input, tokenizer)?;
        if !encoder_frozen || set.is_empty() {
            return Ok(examples);
        }
        let (encoded, shape) = transcribe::encode_all(model, &examples)?;
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

/// `pretune eval` of a speech model: the word error rate of its greedy transcripts on `set`.
pub fn eval(
    model: &Classifier,
    input: &SpeechInput,
    tokenizer: &TextTokenizer,
    set: &data::SpeechSet,
    json: bool,
    shown: &str,
) -> Result<()> {
    let examples = set.examples(input, tokenizer)?;
    let transcriber = Transcriber::new(model, input, tokenizer, 1)?;
    let (errors, written): (WordErrors, Vec<String>) = transcriber.score(&examples)?;
    if json {
        let rows: Vec<_> = set
            .paths
            .iter()
            .zip(&set.texts)
            .zip(&written)
            .map(|((p, r), h)| serde_json::json!({"file": p, "reference": r, "transcript": h.trim()}))
            .collect();
        let out = serde_json::json!({
            "recordings": set.len(),
            "reference_words": errors.reference_words(),
            "word_error_rate": errors.rate(),
            "substitutions": errors.substitutions,
            "deletions": errors.deletions,
            "insertions": errors.insertions,
            "transcripts": rows,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "{shown} ({} recordings, {} reference words): word error rate {:.2}% ({} substitutions, {} deletions, {} insertions)",
            set.len(),
            errors.reference_words(),
            100.0 * errors.rate(),
            errors.substitutions,
            errors.deletions,
            errors.insertions
        );
    }
    Ok(())
}
