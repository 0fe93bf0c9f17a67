//! `pretune eval`: how well a checkpoint does on a labelled split.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use comfy_table::{Cell, CellAlignment, Table, presets};

use burn::prelude::Device;
use pretune::checkpoint::Checkpoint;
use pretune::data::{self, Split};
use pretune::metrics::Report;
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
}

pub fn run(args: EvalArgs, device: &Device) -> Result<()> {
    let ckpt = Checkpoint::open(&args.model)?;
    let model = ckpt.load_model(device)?;
    let (all, skipped) = data::load_dataset(
        &args.data,
        args.split,
        ckpt.meta.input.shape(),
        args.skip_bad_images,
        &args.columns,
    )?;
    if skipped > 0 {
        eprintln!("skipped {skipped} unreadable image(s)");
    }
    if ckpt.meta.task == Task::Mlm {
        // A masked language model is scored on its own task, over every text.
        let examples = ckpt
            .meta
            .input
            .examples(&all, ckpt.tokenizer.as_ref(), Task::Mlm)?;
        let (loss, accuracy) = infer::loss_and_accuracy(&model, examples.as_ref())?;
        let texts = all.len();
        if args.json {
            let perplexity = loss.exp();
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &serde_json::json!({"texts": texts, "loss": loss, "perplexity": perplexity, "masked_token_accuracy": accuracy})
                )?
            );
        } else {
            println!(
                "{} on {} ({:?} split, {texts} texts): masked-token loss {loss:.4}, perplexity {:.2}, masked-token accuracy {:.2}%",
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
