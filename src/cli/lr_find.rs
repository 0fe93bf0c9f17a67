//! `pretune lr-find`: the learning-rate range test, with a chart and a suggested rate.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use burn::prelude::Device;
use pretune::data::DataSpec;
use pretune::fs::write_atomic;
use pretune::interop;
use pretune::models::Task;
use pretune::train::{self, RunKind};

use super::args::{ModelArgs, RecipeArgs, TextArgs};
use super::train::FreshPlan;
use crate::report::charts::{self, Panel, Series};

#[derive(Debug, Args)]
pub struct LrFindArgs {
    /// Start from this checkpoint's backbone (with a new head), as `finetune` would.
    #[arg(long, conflicts_with = "model")]
    pub from: Option<PathBuf>,
    /// Architecture to test from scratch, as `pretrain` would.
    #[arg(long, default_value = "cnn")]
    pub model: String,
    #[command(flatten)]
    pub layout: ModelArgs,
    #[command(flatten)]
    pub text: TextArgs,
    #[command(flatten)]
    pub data: DataSpec,
    /// Lowest learning rate tried.
    #[arg(long, default_value_t = 1e-7, value_parser = train::positive)]
    pub start_lr: f64,
    /// Highest learning rate tried.
    #[arg(long, default_value_t = 10.0, value_parser = train::positive)]
    pub end_lr: f64,
    /// Training steps (batches) over the range.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(2..))]
    pub steps: u32,
    /// Directory for lr_find.png and lr_find.json.
    #[arg(long, default_value = "runs/lr-find")]
    pub out: PathBuf,
    #[command(flatten)]
    pub recipe: RecipeArgs,
}

pub fn run(args: LrFindArgs, device: &Device) -> Result<()> {
    if args.end_lr <= args.start_lr {
        pretune::bail_input!("--end-lr must be above --start-lr");
    }
    let (model, input, tokenizer, sets, recipe) = match &args.from {
        Some(from) => {
            let p = interop::open_model(from, device)?;
            let recipe = args.recipe.resolve(if p.arch.is_text() {
                RunKind::TextFinetune
            } else {
                RunKind::Images
            });
            let sets = args.data.load(p.meta.input.shape(), recipe.seed)?;
            let classes = sets.train.class_names().len();
            let model = p.load_backbone(classes, recipe.seed, device)?.0;
            (
                model,
                p.meta.input.clone(),
                p.tokenizer.clone(),
                sets,
                recipe,
            )
        }
        None => {
            let plan = FreshPlan::new(&args.model, Task::Classify, &args.layout, &args.text)?;
            let recipe = args.recipe.resolve(if plan.arch.is_text() {
                RunKind::TextFromScratch
            } else {
                RunKind::Images
            });
            let f = plan.build(&args.data, recipe.seed, device)?;
            (f.model, f.input, f.tokenizer, f.sets, recipe)
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
        &recipe,
        args.start_lr,
        args.end_lr,
        args.steps as usize,
    )?;
    std::fs::create_dir_all(&args.out)
        .map_err(|e| pretune::input_error!("{}: cannot create: {e}", args.out.display()))?;
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
