//! `pretune pretrain` and `pretune finetune`: the same run, with a fresh or a loaded backbone.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Args;

use crate::checkpoint::{self, Checkpoint, DataRecord, InputSpec, Lineage, Meta};
use crate::data::{self, ImageSet, Normalization, Split, classes, split};
use burn::module::Module;

use crate::models::{self, ArchInfo, Classifier};
use crate::train::{self, Recipe};
use crate::{bail_input, training_device};

/// Which data to train on.
#[derive(Debug, Args)]
pub struct DataArgs {
    /// Dataset directory holding IDX files (train-images-idx3-ubyte[.gz], t10k-…), e.g.
    /// /usr/share/datasets/fashion-mnist.
    #[arg(long)]
    pub data: PathBuf,
    /// Classes to train on: indices, ranges or names, e.g. `0-4`, `5,7,9`, `Sandal,Bag`, `all`.
    #[arg(long, default_value = "all")]
    pub classes: String,
    /// Train on only N images of each class (a seeded few-shot draw) [default: all of them].
    #[arg(long, value_name = "N")]
    pub per_class: Option<usize>,
    /// Fraction of the training images held out (seeded) to validate on after every epoch and to
    /// pick the best epoch; 0 keeps the last epoch instead.
    #[arg(long, default_value_t = 0.1, value_name = "F")]
    pub val_fraction: f64,
}

#[derive(Debug, Args)]
pub struct PretrainArgs {
    /// Architecture to train (`cnn`: the classic small CNN for 28x28 grayscale).
    #[arg(long, default_value = "cnn")]
    pub model: String,
    #[command(flatten)]
    pub data: DataArgs,
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
    pub data: DataArgs,
    /// Checkpoint directory to write.
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub recipe: Recipe,
}

pub fn pretrain(args: PretrainArgs) -> Result<()> {
    let arch = models::arch(&args.model)?;
    args.recipe.validate()?;
    let sets = TrainingData::load(&args.data, arch, args.recipe.seed)?;
    let norm = Normalization::of(&sets.train);
    let device = training_device();
    device.seed(args.recipe.seed);
    let model = Classifier::new(arch, sets.train.class_names.len(), &device);
    println!("pretrain {} on {} for {} epochs", arch.name, sets.describe(), args.recipe.epochs);
    run(RunSpec { stage: "pretrain", arch, model, sets, norm, lineage: None, data: &args.data, out: &args.out, recipe: &args.recipe })
}

pub fn finetune(args: FinetuneArgs) -> Result<()> {
    args.recipe.validate()?;
    let parent = Checkpoint::open(&args.from)?;
    if let Some(name) = &args.model
        && name != parent.arch.name
    {
        bail_input!("{}: holds a {} model, but --model {name} was asked for", args.from.display(), parent.arch.name);
    }
    let sets = TrainingData::load(&args.data, parent.arch, args.recipe.seed)?;
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
    println!("training on {} for {} epochs, strategy {:?}", sets.describe(), args.recipe.epochs, args.recipe.strategy);
    let lineage = Lineage { parent: args.from.display().to_string(), parent_weights_sha256: parent.weights_sha256() };
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
    })
}

/// The training and validation images of a run.
struct TrainingData {
    train: ImageSet,
    val: ImageSet,
}

impl TrainingData {
    /// Load the training split, keep the chosen classes, hold out validation, draw the few-shot subset.
    fn load(args: &DataArgs, arch: &ArchInfo, seed: u64) -> Result<TrainingData> {
        if !(0.0..1.0).contains(&args.val_fraction) {
            bail_input!("--val-fraction must be in [0, 1), got {}", args.val_fraction);
        }
        if args.per_class == Some(0) {
            bail_input!("--per-class must be at least 1");
        }
        let all = data::load_idx_dir(&args.data, Split::Train)?;
        let [_, h, w] = arch.input;
        if (all.height, all.width) != (h, w) {
            bail_input!(
                "{}: images are {}x{}, but the {} architecture takes {h}x{w}",
                args.data.display(),
                all.height,
                all.width,
                arch.name
            );
        }
        let chosen = classes::parse_classes(&args.classes, &all.class_names)?;
        let set = all.restrict_to(&chosen);
        let (train_idx, val_idx) = split::holdout(set.len(), args.val_fraction, seed);
        let train_idx = match args.per_class {
            Some(n) => split::per_class(&set.labels, &train_idx, n, seed),
            None => train_idx,
        };
        let train = set.subset(&train_idx);
        if let Some(c) = train.class_counts().iter().position(|&n| n == 0) {
            bail_input!("{}: no training images of class {} left after the validation split", args.data.display(), train.class_names[c]);
        }
        Ok(TrainingData { train, val: set.subset(&val_idx) })
    }

    fn describe(&self) -> String {
        format!(
            "{} classes ({}), {} train / {} val images",
            self.train.class_names.len(),
            self.train.class_names.join(", "),
            self.train.len(),
            self.val.len()
        )
    }
}

struct RunSpec<'a> {
    stage: &'static str,
    arch: &'static ArchInfo,
    model: Classifier,
    sets: TrainingData,
    norm: Normalization,
    lineage: Option<Lineage>,
    data: &'a DataArgs,
    out: &'a std::path::Path,
    recipe: &'a Recipe,
}

/// Train, save the checkpoint, print the summary.
fn run(spec: RunSpec) -> Result<()> {
    std::fs::create_dir_all(spec.out).map_err(|e| crate::input_error!("{}: cannot create the output directory: {e}", spec.out.display()))?;
    let started = Instant::now();
    let val = (!spec.sets.val.is_empty()).then_some(&spec.sets.val);
    let outcome = train::fit(spec.model, &spec.sets.train, val, &spec.norm, spec.recipe, Some(&spec.out.join("metrics.jsonl")))?;
    let [channels, height, width] = spec.arch.input;
    let mut meta = Meta {
        format_version: checkpoint::FORMAT_VERSION,
        pretune_version: env!("CARGO_PKG_VERSION").to_string(),
        stage: spec.stage.to_string(),
        architecture: spec.arch.name.to_string(),
        class_names: spec.sets.train.class_names.clone(),
        input: InputSpec { channels, height, width, normalization: spec.norm },
        data: DataRecord {
            path: spec.data.data.display().to_string(),
            classes: spec.data.classes.clone(),
            per_class: spec.data.per_class,
            val_fraction: spec.data.val_fraction,
            train_images: spec.sets.train.len(),
            val_images: spec.sets.val.len(),
        },
        recipe: spec.recipe.clone(),
        history: outcome.history,
        best_epoch: outcome.best_epoch,
        lineage: spec.lineage,
        weights_sha256: String::new(),
    };
    checkpoint::save(spec.out, &outcome.model, &mut meta)?;

    let best = &meta.history[meta.best_epoch - 1];
    let seconds = started.elapsed().as_secs_f64();
    let train_rate = meta.history.iter().map(|r| r.images_per_second).sum::<f64>() / meta.history.len() as f64;
    let pct = |x: Option<f64>| x.map_or("-".to_string(), |a| format!("{:.2}%", 100.0 * a));
    println!(
        "{}",
        super::facts_table(&[
            ("checkpoint", spec.out.display().to_string()),
            ("model", format!("{} ({} params), {} classes", spec.arch.name, outcome.model.num_params(), meta.class_names.len())),
            ("kept epoch", format!("{} of {}", meta.best_epoch, meta.history.len())),
            ("train accuracy", pct(Some(best.train_accuracy))),
            ("val accuracy", pct(best.val_accuracy)),
            ("time", format!("{seconds:.1} s ({train_rate:.0} train img/s)")),
        ])
    );
    Ok(())
}
