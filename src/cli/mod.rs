//! The command line: one file per subcommand.

mod convert;
mod demo;
mod embed;
mod eval;
mod lr_find;
mod predict;
mod train;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Pretrain a network once, fine-tune it for your task with few labels.
///
/// A typical session, on Fashion-MNIST (apt-get install dataset-fashion-mnist):
///
///   pretune demo                     # the whole story: pretrain, fine-tune, compare, report
///   D=/usr/share/datasets/fashion-mnist
///   pretune pretrain --data $D --classes 0-4 --out runs/source
///   pretune finetune --from runs/source --data $D --classes 5-9 --per-class 100 --out runs/target
///   pretune eval     --model runs/target --data $D
///   pretune predict  --model runs/target shoe.png
///   pretune import   --arch resnet18 --weights resnet18.pth --out runs/resnet18
///
/// Exit codes: 0 success, 1 failure, 2 bad input (a file, a flag or a checkpoint).
#[derive(Debug, Parser)]
#[command(name = "pretune", version, verbatim_doc_comment, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// CPU threads for tensor work [default: all cores].
    #[arg(long, global = true)]
    threads: Option<usize>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The proof: pretrain, learn new classes from few labels three ways, write a report with
    /// charts (`demo text`: the same for language).
    Demo(demo::DemoArgs),
    /// Train a model from scratch on a dataset (the source task).
    Pretrain(train::Resumable<train::PretrainArgs>),
    /// Start from a checkpoint's backbone, put on a new head for new classes, and train.
    Finetune(train::Resumable<train::FinetuneArgs>),
    /// Continue an interrupted pretrain or finetune run from its output directory.
    Resume(train::ResumeArgs),
    /// Score a checkpoint on a labelled split: accuracy, per-class metrics, confusion matrix.
    Eval(eval::EvalArgs),
    /// Learning-rate range test: a chart of loss against rate, and a suggested --lr.
    LrFind(lr_find::LrFindArgs),
    /// Classify image files (PNG/JPEG) or texts with a checkpoint.
    Predict(predict::PredictArgs),
    /// Turn PyTorch weights (torchvision's, or the seed's Net) into a pretune checkpoint.
    Import(convert::ImportArgs),
    /// Write a checkpoint as PyTorch weights (torchvision names) that load_state_dict accepts.
    Export(convert::ExportArgs),
    /// Sentence embeddings (sentence-transformers' mean pooling) from a BERT model directory.
    Embed(embed::EmbedArgs),
}

/// Run the parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    if let Some(n) = cli.threads {
        if n == 0 {
            crate::bail_input!("--threads must be at least 1");
        }
        // Flex and gemm use rayon's global pool; it must be sized before the first tensor op.
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .ok();
    }
    match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Pretrain(args) => args.run(train::pretrain),
        Command::Finetune(args) => args.run(train::finetune),
        Command::Eval(args) => eval::run(args),
        Command::Resume(args) => train::resume(args),
        Command::LrFind(args) => lr_find::run(args),
        Command::Predict(args) => predict::run(args),
        Command::Import(args) => convert::import(args),
        Command::Export(args) => convert::export(args),
        Command::Embed(args) => embed::run(args),
    }
}

/// A two-column table of facts, for the end of a command.
fn facts_table(rows: &[(&str, String)]) -> comfy_table::Table {
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    for (k, v) in rows {
        table.add_row(vec![k.to_string(), v.clone()]);
    }
    table
}
