//! `pretune demo`: pretrain, fine-tune with few labels, compare against scratch, write a report.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::demo::text::{self, TextDemoConfig};
use crate::demo::{self, DemoConfig, RecipeKind};
use crate::report;

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
    #[arg(long, default_value_t = 3)]
    pub seeds: usize,
    /// Training recipe for every method.
    #[arg(long, value_enum, default_value_t = RecipeKind::Default)]
    pub recipe: RecipeKind,
    /// A reduced run for CI: less pretraining, budgets 10 and 100, one seed, half the epochs.
    #[arg(long)]
    pub quick: bool,
    /// Directory for results.json, report.md and the charts.
    #[arg(long, default_value = "runs/demo")]
    pub out: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum DemoKind {
    /// The same for language: BERT-Mini from scratch, pretrained by masked language modelling,
    /// and the real MiniLM fine-tuned, on fortunes topics.
    Text(TextDemoArgs),
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
    #[arg(long, default_value_t = 100)]
    pub per_class: usize,
    /// Epochs of each classifier.
    #[arg(long, default_value_t = 2)]
    pub epochs: usize,
    /// Epochs of masked language modelling on the unlabelled corpus.
    #[arg(long, default_value_t = 4)]
    pub mlm_epochs: usize,
    /// Pretrain on only this many corpus texts [default: all topics' training texts].
    #[arg(long, value_name = "N")]
    pub corpus_limit: Option<usize>,
    /// First seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Seeds: each draws its own labelled texts and trains the three classifiers on them
    /// (masked language modelling runs once).
    #[arg(long, default_value_t = 3)]
    pub seeds: usize,
    /// A reduced run for CI: 20 texts per topic, 1 epoch each, 1,000 corpus texts, 1 seed.
    #[arg(long)]
    pub quick: bool,
    /// Directory for results.json, report.md and the charts.
    #[arg(long, default_value = "runs/demo-text")]
    pub out: PathBuf,
}

pub fn run(args: DemoArgs) -> Result<()> {
    if let Some(DemoKind::Text(args)) = args.kind {
        return run_text(args);
    }
    if args.labels.is_empty() || args.labels.contains(&0) {
        crate::bail_input!("--labels must list positive numbers, e.g. 10,100,1000");
    }
    if args.seeds == 0 {
        crate::bail_input!("--seeds must be at least 1");
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
    };
    let results = demo::run(&config)?;
    report::write(&args.out, &results)?;
    println!("\n{}", report::table(&results));
    for line in report::speedups(&results) {
        println!("{line}");
    }
    println!(
        "\nwrote {}: {}, {}, {}, {}",
        args.out.display(),
        report::REPORT_FILE,
        report::RESULTS_FILE,
        report::ACCURACY_CHART,
        report::CURVES_CHART
    );
    Ok(())
}

fn run_text(args: TextDemoArgs) -> Result<()> {
    if args.per_class == 0 || args.epochs == 0 || args.mlm_epochs == 0 || args.seeds == 0 {
        crate::bail_input!("--per-class, --epochs, --mlm-epochs and --seeds must be at least 1");
    }
    let config = TextDemoConfig {
        data: args.data,
        model: text::minilm_dir(args.model.as_deref()),
        classes: args.classes,
        per_class: if args.quick { 20 } else { args.per_class },
        epochs: if args.quick { 1 } else { args.epochs },
        mlm_epochs: if args.quick { 1 } else { args.mlm_epochs },
        corpus_limit: if args.quick {
            Some(1000)
        } else {
            args.corpus_limit
        },
        seed: args.seed,
        seeds: if args.quick { 1 } else { args.seeds },
    };
    let results = text::run(&config)?;
    report::text::write(&args.out, &results)?;
    println!("\n{}", report::text::table(&results));
    println!(
        "wrote {}: {}, {}, {}, {}",
        args.out.display(),
        report::REPORT_FILE,
        report::RESULTS_FILE,
        report::text::LOSS_CHART,
        report::text::PERPLEXITY_CHART
    );
    Ok(())
}
