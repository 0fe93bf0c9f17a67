//! What the training and evaluation commands do differently for speech models.

use std::path::Path;

use anyhow::Result;
use burn::prelude::Device;
use pretune::checkpoint::Checkpoint;
use pretune::data::{Dataset, SpeechInput, TextTokenizer, TrainingData};
use pretune::metrics::edit::Alignment;
use pretune::models::Classifier;
use pretune::models::whisper::WhisperConfig;
use pretune::train::{Phase, Strategy};
use pretune::transcribe::{self, Transcriber};
use pretune::{bail_input, data};

/// A fine-tune of a speech model of sizes `c`: a strategy that suits it, on recordings with
/// transcripts, in batches whose activations fit in memory.
pub fn check_finetune(
    strategy: Strategy,
    data: &Path,
    batch_size: usize,
    c: &WhisperConfig,
) -> Result<()> {
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
    // Burn's differentiable attention keeps about five score tensors of heads x positions x
    // positions per encoder layer for the backward pass: 1.1 GB per recording for tiny.en's
    // 30 s window, so PyTorch-sized batches of 64 would ask for 69 GB.
    let positions = c.max_source_positions as u64;
    let per_recording =
        5 * 4 * c.encoder_layers as u64 * c.encoder_attention_heads as u64 * positions * positions;
    let needed = per_recording * batch_size as u64;
    if strategy != Strategy::DecoderOnly
        && let Some(available) = available_memory()
        && needed > available * 4 / 5
    {
        let fits = (available * 4 / 5 / per_recording).max(1);
        let gb = |b: u64| b as f64 / 1e9;
        bail_input!(
            "--batch-size {batch_size}: training the encoder keeps about {:.1} GB of activations \
             per recording, {:.0} GB for the batch, but {:.0} GB of memory is available; use \
             --batch-size {fits} or less, or --strategy decoder-only",
            gb(per_recording),
            gb(needed),
            gb(available)
        );
    }
    Ok(())
}

/// The memory the system can still give (Linux's `MemAvailable`), if it says.
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The whole parent model, read `from` a directory: its head is the decoder's token table,
/// which carries on.
pub fn parent_model(parent: &Checkpoint, from: &Path, device: &Device) -> Result<Classifier> {
    let model = parent.load_model(device)?;
    println!(
        "finetune {} from {}: {} params, the decoder's {}-token vocabulary",
        parent.arch.name,
        from.display(),
        burn::module::Module::num_params(&model),
        parent.meta.head_size()
    );
    Ok(model)
}

/// The training and validation examples of a speech run ([`transcribe::run_examples`]).
pub fn examples<'a>(
    model: &Classifier,
    phases: &[Phase],
    input: &'a SpeechInput,
    tokenizer: &'a TextTokenizer,
    sets: &'a TrainingData,
) -> Result<transcribe::RunExamples<'a>> {
    let (Dataset::Speech(train), Dataset::Speech(val)) = (&sets.train, &sets.val) else {
        bail_input!("a speech model trains on recordings with transcripts");
    };
    transcribe::run_examples(model, phases, input, tokenizer, train, val)
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
    let (errors, written): (Alignment, Vec<String>) = transcriber.score(&examples)?;
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
