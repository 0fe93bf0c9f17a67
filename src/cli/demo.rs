//! `pretune demo`: pretrain, fine-tune with few labels, compare against scratch, write a report.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::demo::{self, DemoConfig, RecipeKind};
use crate::report;

#[derive(Debug, Args)]
pub struct DemoArgs {
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

pub fn run(args: DemoArgs) -> Result<()> {
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
