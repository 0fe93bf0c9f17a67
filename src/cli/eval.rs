//! `pretune eval`: how well a checkpoint does on a labelled split.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use comfy_table::{Cell, CellAlignment, Table, presets};

use burn::prelude::Device;
use pretune::checkpoint::Checkpoint;
use pretune::data::pairs::PairSet;
use pretune::data::{self, DataSpec, Dataset, ModelInput, PairInput, Split};
use pretune::data::{TextPairInput, TextTokenizer};
use pretune::generate::Search;
use pretune::metrics::Report;
use pretune::metrics::edit::ErrorRate;
use pretune::metrics::rouge;
use pretune::models::Task;
use pretune::{bail_input, infer};

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Checkpoint directory to evaluate.
    #[arg(long)]
    pub model: PathBuf,
    /// Dataset (IDX directory, CIFAR-10 batches, image folder or CSV file); only the
    /// checkpoint's classes are scored.
    #[arg(long)]
    pub data: PathBuf,
    /// Which files to score: the held-out test set (t10k-*) or the training set.
    #[arg(long, value_enum, default_value_t = Split::Test)]
    pub split: Split,
    /// Print one JSON object (accuracy, per_class, confusion) instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Skip image files that cannot be decoded (counted) instead of stopping.
    #[arg(long)]
    pub skip_bad_images: bool,
    #[command(flatten)]
    pub columns: data::texts::Columns,
    #[command(flatten)]
    pub pair_columns: data::pairs::PairColumns,
    /// Sequence-to-sequence models: hypotheses kept by beam search (1: greedy) [default: 1;
    /// summarizers 4].
    #[arg(long, value_parser = super::args::count)]
    pub beam: Option<usize>,
    #[command(flatten)]
    pub decoding: super::summarize::DecodeArgs,
}

pub fn run(args: EvalArgs, device: &Device) -> Result<()> {
    // A Whisper directory of another tool scores as it is (a BERT one needs its head trained).
    let ckpt = if pretune::interop::whisper::is_whisper_dir(&args.model) {
        pretune::interop::whisper::open(&args.model, device)?
    } else {
        Checkpoint::open(&args.model)?
    };
    let model = ckpt.load_model(device)?;
    let spec = DataSpec {
        skip_bad_images: args.skip_bad_images,
        columns: args.columns.clone(),
        pair_columns: args.pair_columns.clone(),
        ..DataSpec::new(&args.data)
    };
    let (all, skipped) = spec.load_split(args.split, ckpt.meta.input.reads())?;
    if skipped > 0 {
        eprintln!("skipped {skipped} unreadable image(s)");
    }
    if let (Dataset::Pairs(pairs), ModelInput::Pairs(input)) = (&all, &ckpt.meta.input) {
        return sequences(&model, input, pairs, &args);
    }
    if let (Dataset::Pairs(pairs), ModelInput::TextPairs(input), Some(tokenizer)) =
        (&all, &ckpt.meta.input, &ckpt.tokenizer)
    {
        return summaries(&model, input, tokenizer, pairs, &args);
    }
    if let (ModelInput::Speech(input), Some(tokenizer), Dataset::Speech(set)) =
        (&ckpt.meta.input, &ckpt.tokenizer, &all)
    {
        let shown = format!(
            "{} on {} ({:?} split)",
            args.model.display(),
            args.data.display(),
            args.split
        );
        return super::speech::eval(&model, input, tokenizer, set, args.json, &shown);
    }
    let task = ckpt.meta.task;
    if task.is_language_model() {
        // A language model is scored on its own task, over every text.
        let examples = ckpt
            .meta
            .input
            .examples(&all, ckpt.tokenizer.as_ref(), task)?;
        let (loss, accuracy) = infer::loss_and_accuracy(&model, examples.as_ref())?;
        let texts = all.len();
        let tokens = task.predicted_tokens();
        if args.json {
            let mut report =
                serde_json::json!({"texts": texts, "loss": loss, "perplexity": loss.exp()});
            report[format!("{}_accuracy", tokens.replace('-', "_"))] = accuracy.into();
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            println!(
                "{} on {} ({:?} split, {texts} texts): {tokens} loss {loss:.4}, perplexity {:.2}, {tokens} accuracy {:.2}%",
                args.model.display(),
                args.data.display(),
                args.split,
                loss.exp(),
                100.0 * accuracy
            );
        }
        return Ok(());
    }
    // The checkpoint's classes, found by name in the dataset, in the checkpoint's order.
    let mut chosen = Vec::new();
    for name in &ckpt.meta.class_names {
        match all.class_names().iter().position(|n| n == name) {
            Some(i) => chosen.push(i),
            None => bail_input!(
                "{}: has no class {name:?} of the model {} (the dataset's classes: {})",
                args.data.display(),
                args.model.display(),
                all.class_names().join(", ")
            ),
        }
    }
    let set = all.restrict_to(&chosen);
    let examples = ckpt
        .meta
        .input
        .examples(&set, ckpt.tokenizer.as_ref(), Task::Classify)?;
    let probs = infer::probabilities(&model, examples.as_ref())?;
    let predicted: Vec<usize> = probs.iter().map(|p| infer::argmax(p)).collect();
    let report = Report::new(set.labels(), &predicted, set.class_names());
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report, &args);
    }
    Ok(())
}

fn print_report(r: &Report, args: &EvalArgs) {
    println!(
        "{} on {} ({:?} split, {} examples): accuracy {:.2}%, macro F1 {:.4}\n",
        args.model.display(),
        args.data.display(),
        args.split,
        r.examples,
        100.0 * r.accuracy,
        r.macro_f1
    );
    let mut per_class = Table::new();
    per_class
        .load_preset(presets::UTF8_FULL_CONDENSED)
        .set_header(vec!["class", "precision", "recall", "f1", "support"]);
    for m in &r.per_class {
        per_class.add_row(vec![
            Cell::new(&m.class),
            num(format!("{:.4}", m.precision)),
            num(format!("{:.4}", m.recall)),
            num(format!("{:.4}", m.f1)),
            num(m.support.to_string()),
        ]);
    }
    println!("{per_class}\n\nconfusion matrix (rows: true class, columns: predicted)");
    let mut confusion = Table::new();
    let mut header = vec![Cell::new("")];
    header
        .extend((0..r.class_names.len()).map(|i| Cell::new(i).set_alignment(CellAlignment::Right)));
    confusion
        .load_preset(presets::UTF8_FULL_CONDENSED)
        .set_header(header);
    for (i, row) in r.confusion.iter().enumerate() {
        let mut cells = vec![Cell::new(format!("{i} {}", r.class_names[i]))];
        cells.extend(row.iter().map(|c| num(c.to_string())));
        confusion.add_row(cells);
    }
    println!("{confusion}");
}

fn num(s: String) -> Cell {
    Cell::new(s).set_alignment(CellAlignment::Right)
}

/// A sequence-to-sequence model scored on what it generates: the token error rate (edit
/// distance over the reference length) and the share of sequences exactly right.
fn sequences(
    model: &pretune::Classifier,
    input: &PairInput,
    pairs: &PairSet,
    args: &EvalArgs,
) -> Result<()> {
    let search = Search {
        beams: args.beam.unwrap_or(1),
        ..Search::greedy(0, pretune::data::pairs::MAX_GENERATED)
    };
    let outputs = infer::transduce(model, input, &pairs.sources, &search)?;
    let errors = ErrorRate::of_token_texts(pairs.targets.iter().zip(&outputs));
    if args.json {
        let report = serde_json::json!({
            "pairs": pairs.len(),
            "token_error_rate": errors.rate(),
            "sequence_accuracy": errors.accuracy(),
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} on {} ({:?} split, {} pairs): token error rate {:.2}%, sequences exactly right {:.2}%",
            args.model.display(),
            args.data.display(),
            args.split,
            pairs.len(),
            100.0 * errors.rate(),
            100.0 * errors.accuracy()
        );
    }
    Ok(())
}

/// A summarizer scored on what it generates: ROUGE-1/2/L F1 against the references, as
/// rouge-score computes them (lower-cased, without stemming), averaged over the pairs.
fn summaries(
    model: &pretune::Classifier,
    input: &TextPairInput,
    tokenizer: &TextTokenizer,
    pairs: &PairSet,
    args: &EvalArgs,
) -> Result<()> {
    let search = args.decoding.search(input, args.beam.unwrap_or(4));
    let (outputs, cut) = infer::summarize(model, input, tokenizer, &pairs.sources, &search)?;
    let scores = rouge::mean_f1(&pairs.targets, &outputs);
    if args.json {
        let report = serde_json::json!({
            "pairs": pairs.len(),
            "rouge1": scores[0],
            "rouge2": scores[1],
            "rougeL": scores[2],
            "truncated_sources": cut,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} on {} ({:?} split, {} pairs): ROUGE-1 {:.2}, ROUGE-2 {:.2}, ROUGE-L {:.2} (F1, \
             lower-cased, no stemming; {cut} sources truncated to {} tokens)",
            args.model.display(),
            args.data.display(),
            args.split,
            pairs.len(),
            100.0 * scores[0],
            100.0 * scores[1],
            100.0 * scores[2],
            input.max_source_length
        );
    }
    Ok(())
}
