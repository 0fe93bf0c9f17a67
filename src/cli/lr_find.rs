//! `pretune lr-find`: the learning-rate range test, with a chart and a suggested rate.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::checkpoint::{Checkpoint, write_atomic};
use crate::data::DataSpec;
use crate::models::{self, ModelOptions, Task};
use crate::report::charts::{self, Panel, Series};
use crate::train::{self, Recipe};
use crate::training_device;

#[derive(Debug, Args)]
pub struct LrFindArgs {
    /// Start from this checkpoint's backbone (with a new head), as `finetune` would.
    #[arg(long, conflicts_with = "model")]
    pub from: Option<PathBuf>,
    /// Architecture to test from scratch, as `pretrain` would.
    #[arg(long, default_value = "cnn")]
    pub model: String,
    #[command(flatten)]
    pub options: ModelOptions,
    #[command(flatten)]
    pub text: super::train::TextOptions,
    #[command(flatten)]
    pub data: DataSpec,
    /// Lowest learning rate tried.
    #[arg(long, default_value_t = 1e-7)]
    pub start_lr: f64,
    /// Highest learning rate tried.
    #[arg(long, default_value_t = 10.0)]
    pub end_lr: f64,
    /// Training steps (batches) over the range.
    #[arg(long, default_value_t = 100)]
    pub steps: usize,
    /// Directory for lr_find.png and lr_find.json.
    #[arg(long, default_value = "runs/lr-find")]
    pub out: PathBuf,
    #[command(flatten)]
    pub recipe: Recipe,
}

pub fn run(args: LrFindArgs) -> Result<()> {
    args.recipe.validate()?;
    let device = training_device();
    device.seed(args.recipe.seed);
    let parent = args.from.as_deref().map(Checkpoint::open).transpose()?;
    let (model, input, tokenizer, sets) = match &parent {
        Some(p) => {
            let sets = args.data.load(p.meta.input.dims(), args.recipe.seed)?;
            let model = p.load_backbone(sets.train.class_names().len(), &device)?.0;
            (model, p.meta.input.clone(), p.tokenizer.clone(), sets)
        }
        None => {
            let arch = models::arch(&args.model)?;
            let f = super::train::fresh(
                arch,
                Task::Classify,
                &args.options,
                &args.data,
                &args.text,
                args.recipe.seed,
                &device,
            )?;
            (f.model, f.input, f.tokenizer, f.sets)
        }
    };
    println!(
        "lr-find: {} steps from {:.0e} to {:.0e} on {}",
        args.steps,
        args.start_lr,
        args.end_lr,
        sets.describe()
    );
    let found = train::lr_find(
        model,
        input
            .examples(&sets.train, tokenizer.as_ref(), Task::Classify)?
            .as_ref(),
        &args.recipe,
        args.start_lr,
        args.end_lr,
        args.steps,
    )?;
    std::fs::create_dir_all(&args.out)
        .map_err(|e| crate::input_error!("{}: cannot create: {e}", args.out.display()))?;
    let chart = args.out.join("lr_find.png");
    charts::draw(
        &chart,
        &[Panel {
            title: format!(
                "Learning-rate range test (suggested {:.1e})",
                found.suggestion
            ),
            x_label: "learning rate".into(),
            y_label: "training loss (smoothed)".into(),
            log_x: true,
            y_percent: false,
            series: vec![Series {
                label: "loss".into(),
                color: 1,
                points: found.points.clone(),
            }],
        }],
    )?;
    write_atomic(
        &args.out.join("lr_find.json"),
        serde_json::to_string_pretty(&found)?.as_bytes(),
    )?;
    println!(
        "lowest loss at lr {:.1e}; suggested --lr {:.1e}\nwrote {}",
        found.min_loss_lr,
        found.suggestion,
        chart.display()
    );
    Ok(())
}
