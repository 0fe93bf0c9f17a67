//! `pretune pretrain`, `pretune finetune` and `pretune resume`: the same run, with a fresh or a
//! loaded backbone, or continued from its resume state.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::Result;
use burn::module::Module;
use clap::Args;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{
    self, Checkpoint, DataRecord, InputSpec, Lineage, Meta, ModelInput, TextInput,
};
use crate::data::{DataSpec, Dataset, Normalization, TrainingData};
use crate::models::{self, ArchInfo, Classifier, ModelOptions, Task, bert};
use crate::text::TextTokenizer;
use crate::train::{
    self, FinetuneOptions, Frozen, Phase, Recipe, RunKind, RunOptions, StateFile, Strategy, state,
};
use crate::{bail_input, input_error, training_device};

/// The resume state's file name inside the output directory; removed when the run completes.
pub const STATE_FILE: &str = "resume.state";

/// A new run's flags, or `--resume DIR` alone to continue an interrupted one (as
/// `pretune resume DIR` does): `pretune pretrain|finetune --resume DIR`.
#[derive(Debug)]
pub enum Resumable<A> {
    Resume(PathBuf),
    Start(A),
}

const RESUME: &str = "resume";

impl<A: Args> Args for Resumable<A> {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        A::augment_args(cmd).arg(
            clap::Arg::new(RESUME)
                .long(RESUME)
                .value_name("DIR")
                .value_parser(clap::value_parser!(PathBuf))
                // Alone on the line: the other flags are stored in DIR.
                .exclusive(true)
                .help("Continue the interrupted run in DIR with the data and recipe stored there")
                .display_order(0),
        )
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

impl<A: clap::FromArgMatches> clap::FromArgMatches for Resumable<A> {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        match matches.get_one::<PathBuf>(RESUME) {
            Some(dir) => Ok(Resumable::Resume(dir.clone())),
            None => A::from_arg_matches(matches).map(Resumable::Start),
        }
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl<A> Resumable<A> {
    /// Continue the run, or start it with `start`.
    pub fn run(self, start: fn(A) -> Result<()>) -> Result<()> {
        match self {
            Resumable::Resume(dir) => resume(ResumeArgs { dir }),
            Resumable::Start(args) => start(args),
        }
    }
}

#[derive(Debug, Args)]
pub struct PretrainArgs {
    /// Architecture to train: cnn (the classic small CNN for 28x28 grayscale), resnet18/34/50/
    /// 101/152, vgg11/16/19 (and _bn), inception_v3.
    #[arg(long, default_value = "cnn")]
    pub model: String,
    /// What to learn: the classes of the data, or (text models) to fill in masked tokens, BERT's
    /// self-supervised pretraining, which needs no labels.
    #[arg(long, value_enum, default_value_t = Task::Classify)]
    pub task: Task,
    #[command(flatten)]
    pub options: ModelOptions,
    #[command(flatten)]
    pub text: TextOptions,
    #[command(flatten)]
    pub data: DataSpec,
    /// Checkpoint directory to write (model.safetensors, pretune.json, metrics.jsonl).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub recipe: Recipe,
    #[command(flatten)]
    pub saving: SaveArgs,
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
    #[command(flatten)]
    pub saving: SaveArgs,
}

/// How often the resume state is saved (always after every epoch).
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
pub struct SaveArgs {
    /// Also save the resume state every N optimisation steps.
    #[arg(long, value_name = "N")]
    pub save_every: Option<usize>,
}

#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The output directory of the interrupted run (it holds resume.state).
    pub dir: PathBuf,
}

/// What a run is, saved with its resume state: the checkpoint metadata to be, and run options.
#[derive(Serialize, Deserialize)]
struct RunDescription {
    meta: Meta,
    no_feature_cache: bool,
    saving: SaveArgs,
    /// Text runs: the tokenizer (`tokenizer.json` text) the model reads with.
    #[serde(default)]
    tokenizer: Option<String>,
}

/// How a text model new to the world reads: its vocabulary and length.
#[derive(Debug, Clone, Args)]
pub struct TextOptions {
    /// Text models from scratch: size of the WordPiece vocabulary learned from the training texts.
    #[arg(long, default_value_t = 8000)]
    pub vocab_size: usize,
    /// Text models from scratch: longest input in tokens (longer texts are truncated).
    #[arg(long, default_value_t = 128)]
    pub max_length: usize,
}

/// A freshly initialised model of `arch` for a run on `data`, with what it reads: images of the
/// architecture's shape normalised with the training data's statistics, or texts through a
/// WordPiece vocabulary learned from the training texts.
pub(super) struct Fresh {
    pub model: Classifier,
    pub options: ModelOptions,
    pub input: ModelInput,
    pub tokenizer: Option<TextTokenizer>,
    pub sets: TrainingData,
}

pub(super) fn fresh(
    arch: &'static ArchInfo,
    task: Task,
    options: &ModelOptions,
    data: &DataSpec,
    text: &TextOptions,
    seed: u64,
    device: &burn::prelude::Device,
) -> Result<Fresh> {
    let mut options = options.clone();
    if task == Task::Mlm && !arch.text {
        bail_input!(
            "--task mlm: masked language modelling needs a text model (bert-mini, bert-small), not {}",
            arch.name
        );
    }
    let (sets, input, tokenizer) = if arch.text {
        if !(2..=512).contains(&text.max_length) || text.vocab_size < 100 {
            bail_input!("--max-length must be 2 to 512 and --vocab-size at least 100");
        }
        let sets = data.load(None, seed)?;
        let Dataset::Texts(train) = &sets.train else {
            unreachable!("text data was asked for")
        };
        let tokenizer =
            TextTokenizer::train_wordpiece(&train.texts, text.vocab_size, text.max_length)?;
        options.bert = Some(bert::preset(arch.name, tokenizer.vocab_size()).ok_or_else(|| {
            input_error!(
                "--model {}: a model of a given config; train bert-mini or bert-small from scratch, \
                 or finetune --from a Hugging Face model directory",
                arch.name
            )
        })?);
        let input = ModelInput::Text(TextInput {
            max_length: text.max_length,
        });
        (sets, input, Some(tokenizer))
    } else {
        arch.check(&options)?;
        let [channels, height, width] = arch.input_for(&options);
        let sets = data.load(Some([channels, height, width]), seed)?;
        let normalization =
            Normalization::of(sets.train.images().expect("image data was asked for"));
        let input = ModelInput::Image(InputSpec {
            channels,
            height,
            width,
            normalization,
        });
        (sets, input, None)
    };
    let outputs = match &tokenizer {
        Some(t) if task == Task::Mlm => t.vocab_size(),
        _ => classes(&sets, data)?,
    };
    device.seed(seed);
    let model = Classifier::new(arch, &options, outputs, device);
    Ok(Fresh {
        model,
        options,
        input,
        tokenizer,
        sets,
    })
}

/// The number of classes of the training data, which a classifier needs at least 2 of.
fn classes(sets: &TrainingData, data: &DataSpec) -> Result<usize> {
    let n = sets.train.class_names().len();
    if n < 2 {
        bail_input!(
            "{}: {n} class chosen, a classifier needs at least 2 (see --classes)",
            data.data.display()
        );
    }
    Ok(n)
}

pub fn pretrain(mut args: PretrainArgs) -> Result<()> {
    let arch = models::arch(&args.model)?;
    args.recipe = args.recipe.resolved(match arch.text {
        true => RunKind::TextFromScratch,
        false => RunKind::Images,
    });
    args.recipe.validate()?;
    let device = training_device();
    let f = fresh(
        arch,
        args.task,
        &args.options,
        &args.data,
        &args.text,
        args.recipe.seed,
        &device,
    )?;
    let on = match args.task {
        Task::Classify => f.sets.describe(),
        // The texts' topics do not matter to a masked language model.
        Task::Mlm => format!(
            "{} train / {} val texts by masked language modelling ({}-token vocabulary)",
            f.sets.train.len(),
            f.sets.val.len(),
            f.model.head.weight.dims()[1]
        ),
    };
    println!(
        "pretrain {} on {on} for {} epochs",
        arch.name, args.recipe.epochs
    );
    let meta = pending_meta(
        "pretrain",
        args.task,
        arch,
        f.options,
        f.input,
        &f.sets,
        &args.data,
        &args.recipe,
        None,
        vec![Phase::all(args.recipe.epochs)],
        None,
    );
    let run = RunDescription {
        meta,
        no_feature_cache: false,
        saving: args.saving,
        tokenizer: f
            .tokenizer
            .as_ref()
            .map(TextTokenizer::to_json)
            .transpose()?,
    };
    execute(run, f.model, f.sets, &args.out, None)
}

pub fn finetune(mut args: FinetuneArgs) -> Result<()> {
    let parent = Checkpoint::open(&args.from)?;
    args.recipe = args.recipe.resolved(match parent.arch.text {
        true if args.strategy.strategy == Strategy::Lora => RunKind::TextLora,
        true => RunKind::TextFinetune,
        false => RunKind::Images,
    });
    args.recipe.validate()?;
    let phases = args.strategy.plan(args.recipe.epochs, parent.arch.stages)?;
    if args.strategy.strategy == Strategy::Lora && !parent.arch.text {
        bail_input!(
            "--strategy lora adapts a text model's attention; {} is an image model (try \
             linear-probe or freeze-then-unfreeze)",
            parent.arch.name
        );
    }
    if let Some(name) = &args.model
        && name != parent.arch.name
    {
        bail_input!(
            "{}: holds a {} model, but --model {name} was asked for",
            args.from.display(),
            parent.arch.name
        );
    }
    // The backbone learned on inputs prepared the parent's way; keep feeding it that way.
    let input = parent.meta.input.clone();
    let sets = args.data.load(input.dims(), args.recipe.seed)?;
    let device = training_device();
    device.seed(args.recipe.seed);
    let num_classes = classes(&sets, &args.data)?;
    let (model, loaded) = parent.load_backbone(num_classes, &device)?;
    println!(
        "finetune {} from {}: loaded {} backbone tensors ({} params); new head {}x{num_classes} for {num_classes} classes",
        parent.arch.name,
        args.from.display(),
        loaded.len(),
        model.backbone.num_params(),
        parent.arch.features_for(&parent.meta.model_options),
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
    let meta = pending_meta(
        "finetune",
        Task::Classify,
        parent.arch,
        parent.backbone_options(),
        input,
        &sets,
        &args.data,
        &args.recipe,
        Some(args.strategy.clone()),
        phases,
        Some(lineage),
    );
    let run = RunDescription {
        meta,
        no_feature_cache: args.no_feature_cache,
        saving: args.saving,
        tokenizer: parent
            .tokenizer
            .as_ref()
            .map(TextTokenizer::to_json)
            .transpose()?,
    };
    execute(run, model, sets, &args.out, None)
}

pub fn resume(args: ResumeArgs) -> Result<()> {
    let path = args.dir.join(STATE_FILE);
    if !path.is_file() {
        bail_input!(
            "{}: no {STATE_FILE} here: nothing to resume (a finished run removes it)",
            args.dir.display()
        );
    }
    let device = training_device();
    let fresh = |run: &serde_json::Value| -> Result<Classifier> {
        let meta: Meta = serde_json::from_value(run["meta"].clone())
            .map_err(|e| input_error!("damaged run description: {e}"))?;
        let arch = models::arch(&meta.architecture)?;
        arch.check(&meta.model_options)?;
        let model = Classifier::new(arch, &meta.model_options, meta.head_size(), &device);
        // A LoRA run saves its model with adapters: give the fresh one the same.
        Ok(
            match meta.phases.iter().find_map(|p| match p.frozen {
                Frozen::Lora { rank, alpha } => Some((rank, alpha)),
                _ => None,
            }) {
                Some((rank, alpha)) => train::lora(model, rank, alpha),
                None => model,
            },
        )
    };
    let snapshot = state::load(&path, fresh)?;
    let run: RunDescription = serde_json::from_value(snapshot.run.clone())
        .map_err(|e| input_error!("{}: damaged run description: {e}", path.display()))?;
    let (Some(data), Some(recipe)) = (&run.meta.data, &run.meta.recipe) else {
        bail_input!(
            "{}: damaged run description: no data or recipe",
            path.display()
        );
    };
    let sets = data.spec.load(run.meta.input.dims(), recipe.seed)?;
    if sets.train.class_names() != run.meta.class_names || sets.train.len() != data.train_images {
        bail_input!(
            "{}: the data changed since the run started (classes or image count differ)",
            data.spec.data.display()
        );
    }
    let p = &snapshot.progress;
    println!(
        "resuming {} in {} at epoch {}, step {}",
        run.meta.stage,
        args.dir.display(),
        p.history.len() + 1,
        p.steps_done
    );
    let model = snapshot.model.clone();
    execute(run, model, sets, &args.dir, Some(snapshot))
}

#[allow(clippy::too_many_arguments)]
fn pending_meta(
    stage: &str,
    task: Task,
    arch: &ArchInfo,
    model_options: ModelOptions,
    input: ModelInput,
    sets: &TrainingData,
    data: &DataSpec,
    recipe: &Recipe,
    strategy: Option<FinetuneOptions>,
    phases: Vec<Phase>,
    lineage: Option<Lineage>,
) -> Meta {
    Meta {
        format_version: checkpoint::FORMAT_VERSION,
        pretune_version: env!("CARGO_PKG_VERSION").to_string(),
        stage: stage.to_string(),
        architecture: arch.name.to_string(),
        task,
        model_options,
        class_names: sets.train.class_names().to_vec(),
        input,
        data: Some(DataRecord {
            spec: data.clone(),
            train_images: sets.train.len(),
            val_images: sets.val.len(),
            skipped_images: sets.skipped,
        }),
        recipe: Some(recipe.clone()),
        strategy,
        phases,
        history: vec![],
        best_epoch: 0,
        lineage,
        weights_sha256: String::new(),
    }
}

/// Train (saving resume state as it goes), save the checkpoint, print the summary.
fn execute(
    run: RunDescription,
    model: Classifier,
    sets: TrainingData,
    out: &Path,
    resume: Option<state::Snapshot>,
) -> Result<()> {
    if run.saving.save_every == Some(0) {
        bail_input!("--save-every must be at least 1");
    }
    std::fs::create_dir_all(out)
        .map_err(|e| input_error!("{}: cannot create the output directory: {e}", out.display()))?;
    // Ctrl-C stops after the current step, saves the resume state and says how to continue.
    static INTERRUPT: AtomicBool = AtomicBool::new(false);
    let _ = ctrlc::set_handler(|| INTERRUPT.store(true, Ordering::SeqCst));

    let started = Instant::now();
    let tokenizer = match (&run.tokenizer, &run.meta.input) {
        (Some(json), ModelInput::Text(t)) => Some(TextTokenizer::from_json(json, t.max_length)?),
        _ => None,
    };
    let log = out.join("metrics.jsonl");
    let state_path = out.join(STATE_FILE);
    let options = RunOptions {
        metrics_log: Some(&log),
        no_feature_cache: run.no_feature_cache,
        state: Some(StateFile {
            path: &state_path,
            run: serde_json::to_value(&run)?,
        }),
        save_every: run.saving.save_every,
        resume,
        interrupt: Some(&INTERRUPT),
        perplexity: run.meta.task == Task::Mlm,
        ..Default::default()
    };
    let mut meta = run.meta;
    let recipe = meta.recipe.clone().expect("a training run has a recipe");
    let train_examples = meta
        .input
        .examples(&sets.train, tokenizer.as_ref(), meta.task)?;
    let unit = train_examples.noun();
    let val_examples = match sets.val.is_empty() {
        true => None,
        false => Some(
            meta.input
                .examples(&sets.val, tokenizer.as_ref(), meta.task)?,
        ),
    };
    let outcome = match train::fit(
        model,
        train_examples.as_ref(),
        val_examples.as_deref(),
        &recipe,
        &meta.phases,
        &options,
    ) {
        Err(e) if e.is::<train::Interrupted>() => {
            eprintln!("{e}\ncontinue with: pretune resume {}", out.display());
            std::process::exit(130);
        }
        other => other?,
    };
    meta.history = outcome.history;
    meta.best_epoch = outcome.best_epoch;
    drop((train_examples, val_examples));
    checkpoint::save(out, &outcome.model, &mut meta, tokenizer.as_ref())?;
    let _ = std::fs::remove_file(&state_path);

    let best = &meta.history[meta.best_epoch - 1];
    let seconds = started.elapsed().as_secs_f64();
    let train_rate = meta
        .history
        .iter()
        .map(|r| r.images_per_second)
        .sum::<f64>()
        / meta.history.len() as f64;
    let pct = |x: Option<f64>| x.map_or("-".to_string(), |a| format!("{:.2}%", 100.0 * a));
    let skipped: usize = meta.history.iter().map(|r| r.skipped_steps).sum();
    let noun = match sets.train {
        Dataset::Images(_) => "images",
        Dataset::Texts(_) => "texts",
    };
    let learns = match meta.task {
        Task::Classify => format!("{} classes", meta.class_names.len()),
        Task::Mlm => format!("masked tokens of a {}-token vocabulary", meta.head_size()),
    };
    let mut facts = vec![
        ("checkpoint", out.display().to_string()),
        (
            "model",
            format!(
                "{} ({} params), {learns}",
                meta.architecture,
                outcome.model.num_params(),
            ),
        ),
        (
            "kept epoch",
            format!("{} of {}", meta.best_epoch, meta.history.len()),
        ),
        (
            noun,
            format!(
                "{} train, {} val{}",
                sets.train.len(),
                sets.val.len(),
                match sets.skipped {
                    0 => String::new(),
                    n => format!(", {n} unreadable skipped"),
                }
            ),
        ),
    ];
    match meta.task {
        Task::Classify => facts.extend([
            ("train accuracy", pct(Some(best.train_accuracy))),
            ("val accuracy", pct(best.val_accuracy)),
        ]),
        Task::Mlm => facts.extend([
            ("train perplexity", format!("{:.1}", best.train_loss.exp())),
            (
                "val perplexity",
                best.val_loss
                    .map_or("-".into(), |l| format!("{:.1}", l.exp())),
            ),
            ("val masked-token accuracy", pct(best.val_accuracy)),
        ]),
    }
    facts.push((
        "time",
        format!("{seconds:.1} s ({train_rate:.0} train {unit}/s)"),
    ));
    if skipped > 0 {
        facts.push(("non-finite steps skipped", skipped.to_string()));
    }
    println!("{}", super::facts_table(&facts));
    Ok(())
}
