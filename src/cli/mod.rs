//! The command line: one file per subcommand, the flags they share in [`args`].

mod args;
mod convert;
mod demo;
mod embed;
mod eval;
mod lr_find;
mod predict;
mod speech;
mod summarize;
mod summary;
mod train;
mod transcribe;

use anyhow::Result;
use clap::{Parser, Subcommand};
use pretune::DeviceSpec;

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
///   pretune transcribe --model models/whisper-tiny.en speech.wav
///
/// Exit codes: 0 success, 1 failure, 2 bad input (a file, a flag or a checkpoint),
/// 130 stopped by Ctrl-C (the run can be resumed).
#[derive(Debug, Parser)]
#[command(name = "pretune", version, verbatim_doc_comment, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// CPU threads for tensor work [default: all cores].
    #[arg(long, global = true, value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads: Option<u16>,
    /// Where to compute: cpu, or with the GPU features wgpu[:N|:cpu], vulkan[:N|:cpu] (`:cpu`: a
    /// software adapter such as Mesa's lavapipe), cuda[:N]. Under MPI each rank takes its
    /// machine's GPU by local rank.
    #[arg(long, global = true, default_value_t = DeviceSpec::Cpu)]
    device: DeviceSpec,
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
    /// Turn PyTorch weights (torchvision's, or the MNIST example's `Net`) into a checkpoint.
    Import(convert::ImportArgs),
    /// Write a checkpoint as PyTorch weights (torchvision names) that load_state_dict accepts.
    Export(convert::ExportArgs),
    /// Sentence embeddings (sentence-transformers' mean pooling) from a BERT model directory.
    Embed(embed::EmbedArgs),
    /// Speech to text with a Whisper model (e.g. models/whisper-tiny.en), one line per file.
    Transcribe(transcribe::TranscribeArgs),
    /// Long text to short text with a bert2bert checkpoint, one summary per line.
    Summarize(summarize::SummarizeArgs),
}

/// Run the parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    if let Some(n) = cli.threads {
        // Flex and gemm use rayon's global pool; it must be sized before the first tensor op.
        rayon::ThreadPoolBuilder::new()
            .num_threads(n.into())
            .build_global()
            .ok();
    }
    let device = &cli.device.device()?;
    match cli.command {
        Command::Demo(args) => demo::run(args, device),
        Command::Pretrain(args) => args.run(device, train::pretrain),
        Command::Finetune(args) => args.run(device, train::finetune),
        Command::Resume(args) => train::resume(args, device),
        Command::Eval(args) => eval::run(args, device),
        Command::LrFind(args) => lr_find::run(args, device),
        Command::Predict(args) => predict::run(args, device),
        Command::Import(args) => convert::import(args, device),
        Command::Export(args) => convert::export(args, device),
        Command::Embed(args) => embed::run(args, device),
        Command::Transcribe(args) => transcribe::run(args, device),
        Command::Summarize(args) => summarize::run(args, device),
    }
}
