//! `pretune summarize`: a WordPiece encoder–decoder (bert2bert) writes a short text for each
//! long one.

use std::path::PathBuf;

use anyhow::Result;
use burn::prelude::Device;
use clap::Args;

use pretune::checkpoint::Checkpoint;
use pretune::data::{ModelInput, TextPairInput};
use pretune::generate::Search;
use pretune::{bail_input, infer, input_error};

#[derive(Debug, Args)]
pub struct SummarizeArgs {
    /// A bert2bert checkpoint directory (pretune finetune --from a BERT directory with pairs).
    #[arg(long)]
    pub model: PathBuf,
    /// Texts to summarize.
    #[arg(required_unless_present = "file", value_name = "TEXT")]
    pub texts: Vec<String>,
    /// Also summarize every non-blank line of this file.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Print JSON (one object per text: input, summary) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Hypotheses kept by beam search (1: greedy).
    #[arg(long, default_value_t = 4, value_parser = super::args::count)]
    pub beam: usize,
    #[command(flatten)]
    pub decoding: DecodeArgs,
}

/// How a summarizer generates, beyond the beam size.
#[derive(Debug, Clone, Args)]
pub struct DecodeArgs {
    /// Summarizers: a finished hypothesis scores its log-probability / length^P (above 0
    /// favours longer summaries; Hugging Face's length_penalty).
    #[arg(
        long,
        default_value_t = 1.0,
        value_name = "P",
        allow_negative_numbers = true
    )]
    pub length_penalty: f64,
    /// Summarizers: never repeat an n-gram of this size (0: off).
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub no_repeat_ngram: usize,
    /// Summarizers: tokens at least before the end may come.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub min_length: usize,
    /// Summarizers: tokens at most (the end token included) [default: the model's
    /// max_target_length].
    #[arg(long, value_name = "N", value_parser = super::args::count)]
    pub max_length: Option<usize>,
}

impl DecodeArgs {
    /// The search for a model reading `input`, with `beams` hypotheses.
    pub fn search(&self, input: &TextPairInput, beams: usize) -> Search {
        Search {
            beams,
            length_penalty: self.length_penalty,
            no_repeat_ngram: self.no_repeat_ngram,
            min_tokens: self.min_length,
            max_tokens: self.max_length.unwrap_or(input.max_target_length),
            ..infer::summary_search(input)
        }
    }
}

pub fn run(args: SummarizeArgs, device: &Device) -> Result<()> {
    let ckpt = Checkpoint::open(&args.model)?;
    let (ModelInput::TextPairs(input), Some(tokenizer)) = (&ckpt.meta.input, &ckpt.tokenizer)
    else {
        bail_input!(
            "{}: not a summarizer (a bert2bert checkpoint: pretune finetune --from \
             models/all-MiniLM-L6-v2 --data PAIRS)",
            args.model.display()
        );
    };
    let mut texts = args.texts.clone();
    if let Some(f) = &args.file {
        let content = std::fs::read_to_string(f)
            .map_err(|e| input_error!("{}: cannot read as UTF-8 text: {e}", f.display()))?;
        texts.extend(
            content
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from),
        );
    }
    if let Some(i) = texts.iter().position(|t| t.trim().is_empty()) {
        bail_input!("text {}: empty; nothing to summarize", i + 1);
    }
    if texts.is_empty() {
        bail_input!("no texts to summarize (give TEXT arguments or a --file with lines)");
    }
    let model = ckpt.load_model(device)?;
    let search = args.decoding.search(input, args.beam);
    let (summaries, cut) = infer::summarize(&model, input, tokenizer, &texts, &search)?;
    if cut > 0 {
        eprintln!(
            "note: {cut} of {} texts longer than {} tokens were truncated",
            texts.len(),
            input.max_source_length
        );
    }
    if args.json {
        let rows: Vec<serde_json::Value> = texts
            .iter()
            .zip(&summaries)
            .map(|(t, s)| serde_json::json!({"input": t, "summary": s}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        for summary in &summaries {
            println!("{summary}");
        }
    }
    Ok(())
}
