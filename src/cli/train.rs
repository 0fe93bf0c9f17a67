//! `pretune pretrain` and `pretune finetune`: the same run, with a fresh or a loaded backbone.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Args;

use crate::checkpoint::{self, Checkpoint, DataRecord, InputSpec, Lineage, Meta};
use crate::data::{DataSpec, Normalization, TrainingData};
use burn::module::Module;

use crate::models::{self, ArchInfo, Classifier};
use crate::train::{self, FinetuneOptions, Phase, Recipe, RunOptions};
use crate::{bail_input, training_device};

#[derive(Debug, Args)]
pub struct PretrainArgs {
    /// Architecture to train (`cnn`: the classic small CNN for 28x28 grayscale).
    #[arg(long, default_value = "cnn")]
    pub model: String,
    #[command(flatten)]
    pub data: DataSpec,
    /// Checkpoint directory to write (model.safetensors, pretune.json, metrics.jsonl).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub recipe: Recipe,
}

#[derive(Debug, Args)]
pub struct FinetuneArgs {
    /// Checkpoint directory whose backbone to start from.
    #[arg(long)]
    pub from: PathBuf,
    /// Expected architecture of the checkpoint (checked; by default whatever it holds).
    #[arg(long)]
    pub model: Option<String>,
    #[command(flatten)]
    pub data: DataSpec,
    /// Checkpoint directory to write.
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub recipe: Recipe,
    #[command(flatten)]
    pub strategy: FinetuneOptions,
    /// Run the frozen backbone on every batch instead of caching its features once.
    #[arg(long)]
    pub no_feature_cache: bool,
}

pub fn pretrain(args: PretrainArgs) -> Result<()> {
    let arch = models::arch(&args.model)?;
    args.recipe.validate()?;
    let sets = args.data.load(arch.input, args.recipe.seed)?;
    let norm = Normalization::of(&sets.train);
    let device = training_device();
    device.seed(args.recipe.seed);
    let model = Classifier::new(arch, sets.train.class_names.len(), &device);
    println!(
        "pretrain {} on {} for {} epochs",
        arch.name,
        sets.describe(),
        args.recipe.epochs
    );
    run(RunSpec {
        stage: "pretrain",
        arch,
        model,
        sets,
        norm,
        lineage: None,
        data: &args.data,
        out: &args.out,
        recipe: &args.recipe,
        strategy: None,
        phases: vec![Phase::all(args.recipe.epochs)],
        no_feature_cache: false,
    })
}

pub fn finetune(args: FinetuneArgs) -> Result<()> {
    args.recipe.validate()?;
    let parent = Checkpoint::open(&args.from)?;
    let phases = args.strategy.plan(args.recipe.epochs, parent.arch.stages)?;
    if let Some(name) = &args.model
        && name != parent.arch.name
    {
        bail_input!(
            "{}: holds a {} model, but --model {name} was asked for",
            args.from.display(),
            parent.arch.name
        );
    }
    let sets = args.data.load(parent.arch.input, args.recipe.seed)?;
    // The backbone learned on inputs normalised the parent's way; keep feeding it that way.
    let norm = parent.meta.input.normalization;
    let device = training_device();
    device.seed(args.recipe.seed);
    let num_classes = sets.train.class_names.len();
    let (model, loaded) = parent.load_backbone(num_classes, &device)?;
    println!(
        "finetune {} from {}: loaded {} backbone tensors ({} params); new head {}x{} for {} classes",
        parent.arch.name,
        args.from.display(),
        loaded.len(),
        model.backbone.num_params(),
        parent.arch.features,
        num_classes,
        num_classes,
    );
    let plan: Vec<String> = phases
        .iter()
        .map(|p| format!("{} epoch(s) {}", p.epochs, p.name))
        .collect();
    println!("training on {}: {}", sets.describe(), plan.join(", then "));
    let lineage = Lineage {
        parent: args.from.display().to_string(),
        parent_weights_sha256: parent.weights_sha256(),
    };
    run(RunSpec {
        stage: "finetune",
        arch: parent.arch,
        model,
        sets,
        norm,
        lineage: Some(lineage),
        data: &args.data,
        out: &args.out,
        recipe: &args.recipe,
        strategy: Some(args.strategy.clone()),
        phases,
        no_feature_cache: args.no_feature_cache,
    })
}

struct RunSpec<'a> {
    stage: &'static str,
    arch: &'static ArchInfo,
    model: Classifier,
    sets: TrainingData,
    norm: Normalization,
    lineage: Option<Lineage>,
    data: &'a DataSpec,
    out: &'a std::path::Path,
    recipe: &'a Recipe,
    strategy: Option<FinetuneOptions>,
    phases: Vec<Phase>,
    no_feature_cache: bool,
}

/// Train, save the checkpoint, print the summary.
fn run(spec: RunSpec) -> Result<()> {
    std::fs::create_dir_all(spec.out).map_err(|e| {
        crate::input_error!(
            "{}: cannot create the output directory: {e}",
            spec.out.display()
        )
    })?;
    let started = Instant::now();
    let val = (!spec.sets.val.is_empty()).then_some(&spec.sets.val);
    let log = spec.out.join("metrics.jsonl");
    let options = RunOptions {
        metrics_log: Some(&log),
        no_feature_cache: spec.no_feature_cache,
        ..Default::default()
    };
    let outcome = train::fit(
        spec.model,
        &spec.sets.train,
        val,
        &spec.norm,
        spec.recipe,
        &spec.phases,
        &options,
    )?;
    let [channels, height, width] = spec.arch.input;
    let mut meta = Meta {
        format_version: checkpoint::FORMAT_VERSION,
        pretune_version: env!("CARGO_PKG_VERSION").to_string(),
        stage: spec.stage.to_string(),
        architecture: spec.arch.name.to_string(),
        class_names: spec.sets.train.class_names.clone(),
        input: InputSpec {
            channels,
            height,
            width,
            normalization: spec.norm,
        },
        data: DataRecord {
            spec: spec.data.clone(),
            train_images: spec.sets.train.len(),
            val_images: spec.sets.val.len(),
        },
        recipe: spec.recipe.clone(),
        strategy: spec.strategy,
        phases: spec.phases,
        history: outcome.history,
        best_epoch: outcome.best_epoch,
        lineage: spec.lineage,
        weights_sha256: String::new(),
    };
    checkpoint::save(spec.out, &outcome.model, &mut meta)?;

    let best = &meta.history[meta.best_epoch - 1];
    let seconds = started.elapsed().as_secs_f64();
    let train_rate = meta
        .history
        .iter()
        .map(|r| r.images_per_second)
        .sum::<f64>()
        / meta.history.len() as f64;
    let pct = |x: Option<f64>| x.map_or("-".to_string(), |a| format!("{:.2}%", 100.0 * a));
    println!(
        "{}",
        super::facts_table(&[
            ("checkpoint", spec.out.display().to_string()),
            (
                "model",
                format!(
                    "{} ({} params), {} classes",
                    spec.arch.name,
                    outcome.model.num_params(),
                    meta.class_names.len()
                )
            ),
            (
                "kept epoch",
                format!("{} of {}", meta.best_epoch, meta.history.len())
            ),
            ("train accuracy", pct(Some(best.train_accuracy))),
            ("val accuracy", pct(best.val_accuracy)),
            (
                "time",
                format!("{seconds:.1} s ({train_rate:.0} train img/s)")
            ),
        ])
    );
    Ok(())
}
