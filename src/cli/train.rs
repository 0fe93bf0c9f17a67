//! `pretune pretrain`, `pretune finetune` and `pretune resume`: the same run, with a fresh or a
//! loaded backbone, or continued from its resume state.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, Result};
use burn::prelude::Device;
use clap::Args;
use pretune::checkpoint::{self, Lineage, Meta, Run};
use pretune::data::TrainingData;
use pretune::data::pairs::Vocab;
use pretune::data::{
    DataSpec, ImageShape, InputSpec, ModelInput, Normalization, TextInput, TextTokenizer,
};
use pretune::data::{PairInput, Reads};
use pretune::models::bert2bert;
use pretune::models::lstm::{self, LstmConfig};
use pretune::models::seq2seq::Seq2SeqConfig;
use pretune::models::{self, ArchInfo, ArchKind, Backbone, Classifier, ModelOptions, Task, bert};
use pretune::train::observe::{Display, Interrupt, MetricsLog, ResumeSaver};
use pretune::train::{
    self, FinetuneOptions, Frozen, Interrupted, Keep, Observer, Phase, Plan, RunKind, Score,
    Strategy, state,
};
use pretune::{bail_input, input_error, interop, parallel};
use serde::{Deserialize, Serialize};

use super::args::{
    ModelArgs, PairLengthArgs, RecipeArgs, SaveArgs, TextArgs, check_out, clear_run,
};

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
    pub fn run(self, device: &Device, start: fn(A, &Device) -> Result<()>) -> Result<()> {
        match self {
            Resumable::Resume(dir) => resume(ResumeArgs { dir }, device),
            Resumable::Start(args) => start(args, device),
        }
    }
}

#[derive(Debug, Args)]
pub struct PretrainArgs {
    /// Architecture to train: cnn (the classic small CNN for 28x28 grayscale), resnet18/34/50/
    /// 101/152, vgg11/16/19 (and _bn), inception_v3, bert-mini, bert-small, lstm, g2p-gru
    /// (pairs), bert2bert (pairs; with --config-from DIR).
    #[arg(long, default_value = "cnn")]
    pub model: String,
    /// What to learn: the classes of the data; or, without labels, (text models) masked tokens
    /// as BERT learns them or next tokens as ULMFiT's AWD-LSTM does, or (image models) SimCLR's
    /// contrastive views.
    #[arg(long, value_enum, default_value_t = Task::Classify)]
    pub task: Task,
    /// --task contrastive: the NT-Xent loss's temperature (cosine similarities are divided by
    /// it; 0.2 suits small images, SimCLR used 0.1–0.5).
    #[arg(long, default_value_t = 0.2, value_parser = train::positive)]
    pub temperature: f64,
    #[command(flatten)]
    pub layout: ModelArgs,
    #[command(flatten)]
    pub text: TextArgs,
    #[command(flatten)]
    pub data: DataSpec,
    /// Checkpoint directory to write (model.safetensors, pretune.json, metrics.jsonl).
    #[arg(long)]
    pub out: PathBuf,
    /// Replace the run in --out if there is one.
    #[arg(long)]
    pub overwrite: bool,
    #[command(flatten)]
    pub recipe: RecipeArgs,
    #[command(flatten)]
    pub saving: SaveArgs,
}

#[derive(Debug, Args)]
pub struct FinetuneArgs {
    /// Checkpoint directory whose backbone to start from (or a Hugging Face BERT directory, or a
    /// Whisper directory of CTranslate2 or Hugging Face). A BERT directory with sequence pairs
    /// as --data (a TSV/CSV/JSONL with --source-column and --target-column) warm-starts a
    /// bert2bert encoder–decoder from it: both halves BERT's weights, the decoder's
    /// cross-attention new.
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
    /// Replace the run in --out if there is one (never the --from checkpoint).
    #[arg(long)]
    pub overwrite: bool,
    #[command(flatten)]
    pub recipe: RecipeArgs,
    #[command(flatten)]
    pub strategy: FinetuneOptions,
    /// Run the frozen backbone on every batch instead of caching its features once.
    #[arg(long)]
    pub no_feature_cache: bool,
    /// Fine-tune on square N×N inputs instead of the checkpoint's (a ViT's position embeddings
    /// are resampled for the new patch grid).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub image_size: Option<u16>,
    #[command(flatten)]
    pub pairs: PairLengthArgs,
    #[command(flatten)]
    pub saving: SaveArgs,
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

/// The model pretraining starts from, checked against the flags before any data is read.
pub(super) struct FreshPlan<'a> {
    pub arch: &'static ArchInfo,
    pub task: Task,
    pub options: ModelOptions,
    pub text: &'a TextArgs,
}

impl FreshPlan<'_> {
    pub fn new<'a>(
        model: &str,
        task: Task,
        layout: &ModelArgs,
        text: &'a TextArgs,
    ) -> Result<FreshPlan<'a>> {
        let arch = models::arch(model)?;
        let is_lstm = arch.name == lstm::ARCH;
        if task == Task::Mlm && (!arch.is_text() || is_lstm) {
            bail_input!(
                "--task mlm: masked language modelling needs a BERT model (bert-mini, bert-small), not {}",
                arch.name
            );
        }
        if arch.is_speech() {
            bail_input!(
                "--model {}: speech models are fine-tuned from a pretrained one (pretune \
                 finetune --from models/whisper-tiny.en), not pretrained here",
                arch.name
            );
        }
        if task == Task::Contrastive && !matches!(arch.kind, ArchKind::Image(_)) {
            bail_input!(
                "--task contrastive: contrastive learning compares views of images; {} is not an \
                 image model",
                arch.name
            );
        }
        if task == Task::Lm && !is_lstm {
            bail_input!(
                "--task lm: next-token language modelling needs a recurrent text model (lstm), not {}",
                arch.name
            );
        }
        if (arch.name == bert2bert::ARCH) != text.config_from.is_some() {
            bail_input!(
                "--config-from DIR goes with --model bert2bert (a Hugging Face BERT directory \
                 whose config.json and tokenizer.json the encoder–decoder takes), and only with it"
            );
        }
        if arch.is_text() && !is_lstm && bert::preset(arch.name, 0).is_none() {
            bail_input!(
                "--model {}: a model of a given config; train bert-mini or bert-small from \
                 scratch, or finetune --from a Hugging Face model directory",
                arch.name
            );
        }
        let options = layout.options();
        if matches!(arch.kind, ArchKind::Image(_)) {
            arch.check(&options)?;
        }
        // An encoder–decoder learns sequences whatever --task says.
        let task = if arch.is_seq2seq() {
            Task::Seq2seq
        } else {
            task
        };
        Ok(FreshPlan {
            arch,
            task,
            options,
            text,
        })
    }

    /// Load the data and build the model.
    pub fn build(
        self,
        data: &DataSpec,
        seed: u64,
        device: &burn::prelude::Device,
    ) -> Result<Fresh> {
        let mut options = self.options;
        let (sets, input, tokenizer) = match self.arch.kind {
            ArchKind::Speech => bail_input!(
                "{}: speech models are fine-tuned, not pretrained",
                self.arch.name
            ),
            ArchKind::Text => {
                let sets = data.load(Reads::Texts, seed)?;
                let texts = sets.train.texts().expect("text data was asked for");
                let max_length = self.text.max_length.into();
                let tokenizer = TextTokenizer::train_wordpiece(
                    &texts.texts,
                    self.text.vocab_size as usize,
                    max_length,
                )?;
                let vocab = tokenizer.vocab_size();
                if self.arch.name == lstm::ARCH {
                    let lm = LstmConfig::preset(vocab);
                    options.lstm = Some(if self.task == Task::Lm {
                        lm
                    } else {
                        lm.classifier()
                    });
                } else {
                    options.bert = bert::preset(self.arch.name, vocab);
                }
                let input = ModelInput::Text(TextInput { max_length });
                (sets, input, Some(tokenizer))
            }
            ArchKind::Pairs if self.arch.name == bert2bert::ARCH => {
                let dir = self.text.config_from.as_deref().expect("checked by new");
                let config = interop::hf::read_config(dir)?;
                let tokenizer = interop::hf::read_tokenizer(dir, &config)?;
                let input = self.text.pairs.input();
                input.check(config.max_position_embeddings)?;
                options.bert = Some(config);
                let sets = data.load(Reads::TextPairs, seed)?;
                (sets, ModelInput::TextPairs(input), Some(tokenizer))
            }
            ArchKind::Pairs => {
                let sets = data.load(Reads::Pairs, seed)?;
                let pairs = sets.train.pairs().expect("pairs were asked for");
                // Sources are read as characters, targets as tokens: vocabularies from the
                // training pairs.
                let input = PairInput {
                    source_vocab: Vocab::learn(pairs.sources.iter(), true),
                    target_vocab: Vocab::learn(pairs.targets.iter(), false),
                };
                options.seq2seq = Some(Seq2SeqConfig {
                    attention: options.seq2seq.is_some_and(|c| c.attention),
                    ..Seq2SeqConfig::g2p(input.source_vocab.len(), input.target_vocab.len())
                });
                (sets, ModelInput::Pairs(input), None)
            }
            ArchKind::Image(image) => {
                let [channels, height, width] =
                    self.arch.input_for(&options).expect("an image model");
                let interpolation = image.interpolation;
                let shape = ImageShape {
                    dims: [channels, height, width],
                    interpolation,
                };
                let sets = data.load(Reads::Images(shape), seed)?;
                let normalization =
                    Normalization::of(sets.train.images().expect("image data was asked for"));
                let input = ModelInput::Image(InputSpec {
                    channels,
                    height,
                    width,
                    normalization,
                    interpolation,
                });
                (sets, input, None)
            }
        };
        let outputs = match (&tokenizer, &input) {
            (Some(t), _) if self.task.is_language_model() => t.vocab_size(),
            (_, ModelInput::TextPairs(_)) => options.vocab_size(),
            (_, ModelInput::Pairs(p)) => p.target_vocab.len(),
            // Labels, if any, are not learned.
            _ if self.task == Task::Contrastive => models::PROJECTION_DIM,
            _ => classes(&sets, data)?,
        };
        let model = Classifier::new(self.arch, &options, outputs, seed, device);
        Ok(Fresh {
            model,
            options,
            input,
            tokenizer,
            sets,
        })
    }
}

/// Contrastive pretraining's defaults where the command line left them: batches of 256,
/// SimCLR's views, no label smoothing (the targets are the views' twins, not classes).
fn contrastive_recipe(recipe: &mut train::Recipe, args: &super::args::RecipeArgs) -> Result<()> {
    pretune::data::views::check_single_process()?;
    recipe.batch_size = args.batch_size.unwrap_or(256);
    recipe.augment = args.augment.unwrap_or(pretune::data::Augment::Simclr);
    recipe.label_smoothing = args.label_smoothing.unwrap_or(0.0);
    if recipe.augment == pretune::data::Augment::None {
        bail_input!(
            "--task contrastive --augment none: the two views of an image would be the same; \
             use simclr (the default) or resized-crop-flip"
        );
    }
    if recipe.batch_size < 2 {
        bail_input!(
            "--task contrastive: a batch needs at least 2 images, each the others' negative"
        );
    }
    Ok(())
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

pub fn pretrain(args: PretrainArgs, device: &Device) -> Result<()> {
    let mut plan = FreshPlan::new(&args.model, args.task, &args.layout, &args.text)?;
    if parallel::is_root() {
        check_out(&args.out, args.overwrite, None)?;
    }
    let mut recipe = args.recipe.resolve(match plan.arch.kind {
        _ if plan.arch.name == bert2bert::ARCH => RunKind::TextSequences,
        ArchKind::Text | ArchKind::Speech => RunKind::TextFromScratch,
        ArchKind::Pairs => RunKind::Sequences,
        ArchKind::Image(_) => RunKind::Images,
    });
    if plan.task == Task::Contrastive {
        contrastive_recipe(&mut recipe, &args.recipe)?;
        plan.options.contrastive = Some(models::Contrastive {
            temperature: args.temperature,
        });
    }
    let (arch, task) = (plan.arch, plan.task);
    let data = args.data.with_absolute_path();
    let f = plan.build(&data, recipe.seed, device)?;
    let on = match task {
        Task::Classify | Task::Transcribe => f.sets.describe(),
        // The texts' topics do not matter to a language model.
        Task::Mlm | Task::Lm => format!(
            "{} train / {} val texts by {} ({}-token vocabulary)",
            f.sets.train.len(),
            f.sets.val.len(),
            task.objective(),
            f.model.outputs()
        ),
        Task::Seq2seq => format!(
            "{} train / {} val pairs ({}-token output vocabulary)",
            f.sets.train.len(),
            f.sets.val.len(),
            f.model.outputs()
        ),
        Task::Contrastive => format!(
            "{} train / {} val images by {}, labels ignored (batches of {}, {} views)",
            f.sets.train.len(),
            f.sets.val.len(),
            task.objective(),
            recipe.batch_size,
            serde_json::to_value(recipe.augment)?
                .as_str()
                .unwrap_or("augmented"),
        ),
    };
    println!(
        "pretrain {} on {on} for {} epochs",
        arch.name, recipe.epochs
    );
    let meta = Meta::for_run(Run {
        stage: "pretrain",
        task,
        arch,
        model_options: f.options,
        input: f.input,
        data: &data,
        sets: &f.sets,
        recipe: &recipe,
        strategy: None,
        phases: vec![Phase::all(recipe.epochs)],
        lineage: None,
    });
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

pub fn finetune(args: FinetuneArgs, device: &Device) -> Result<()> {
    if parallel::is_root() {
        check_out(&args.out, args.overwrite, Some(&args.from))?;
    }
    let parent = interop::open_model(&args.from, device)?;
    let (text, speech) = (parent.arch.is_text(), parent.arch.is_speech());
    // A BERT encoder given pairs becomes both halves of an encoder–decoder (BERT2BERT).
    let warm_from = (parent.arch.is_text()
        && pretune::data::pairs::is_pair_file(&args.data.data, &args.data.pair_columns))
    .then(|| parent.meta.model_options.bert.clone())
    .flatten();
    let warm_start = warm_from.is_some();
    // The architecture trained: the parent's, or the encoder–decoder it warm-starts.
    let arch = if warm_start {
        models::arch(bert2bert::ARCH)?
    } else {
        parent.arch
    };
    // Speech takes Hugging Face Trainer's text recipe too (linear decay, no smoothing).
    let recipe = args.recipe.resolve(match args.strategy.strategy {
        _ if arch.name == bert2bert::ARCH => RunKind::TextSequences,
        Strategy::Lora if text || speech => RunKind::TextLora,
        _ if text || speech => RunKind::TextFinetune,
        _ if parent.arch.is_seq2seq() => RunKind::Sequences,
        _ => RunKind::Images,
    });
    let phases = args.strategy.plan(recipe.epochs, arch.stages)?;
    if args.strategy.strategy == Strategy::Lora && !(text || speech) {
        bail_input!(
            "--strategy lora adapts a text or speech model's attention; {} is an image model \
             (try linear-probe or freeze-then-unfreeze)",
            parent.arch.name
        );
    }
    if let Some(c) = &parent.meta.model_options.whisper {
        super::speech::check_finetune(
            args.strategy.strategy,
            &args.data.data,
            recipe.batch_size,
            c,
        )?;
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
    // The backbone learned on inputs prepared the parent's way; keep feeding it that way, at
    // another size if asked.
    let mut parent_input = parent.meta.input.clone();
    let image_size = args.image_size.map(usize::from);
    if let Some(size) = image_size {
        match &mut parent_input {
            ModelInput::Image(spec) => (spec.height, spec.width) = (size, size),
            _ => bail_input!("--image-size: {} does not read images", parent.arch.name),
        }
        parent.arch.check(&ModelOptions {
            image_size,
            ..parent.meta.model_options.clone()
        })?;
    }
    let data = args.data.with_absolute_path();
    let reads = if warm_start {
        Reads::TextPairs
    } else {
        parent_input.reads()
    };
    let sets = data.load(reads, recipe.seed)?;
    // A sequence model whose output vocabulary covers the new targets goes on as it is (its
    // decoder embedding and head included); otherwise the outputs are new.
    let same_outputs = match (&parent.meta.input, sets.train.pairs()) {
        (ModelInput::Pairs(p), Some(pairs)) => {
            let learned = Vocab::learn(pairs.targets.iter(), false);
            learned
                .tokens
                .iter()
                .all(|t| p.target_vocab.tokens.contains(t))
                .then_some(p)
        }
        _ => None,
    };
    let (input, num_classes, task) = match &parent_input {
        _ if let Some(config) = &warm_from => {
            let input = args.pairs.input();
            input.check(config.max_position_embeddings)?;
            (
                ModelInput::TextPairs(input),
                config.vocab_size,
                Task::Seq2seq,
            )
        }
        // An encoder–decoder goes on with its tokenizer and lengths.
        ModelInput::TextPairs(_) => (parent_input.clone(), parent.meta.head_size(), Task::Seq2seq),
        ModelInput::Pairs(p) => {
            let target_vocab = match same_outputs {
                Some(p) => p.target_vocab.clone(),
                None => Vocab::learn(sets.train.pairs().expect("pairs").targets.iter(), false),
            };
            let n = target_vocab.len();
            let input = PairInput {
                source_vocab: p.source_vocab.clone(),
                target_vocab,
            };
            (ModelInput::Pairs(input), n, Task::Seq2seq)
        }
        // A speech model goes on transcribing with its own vocabulary.
        ModelInput::Speech(_) => (
            parent.meta.input.clone(),
            parent.meta.head_size(),
            Task::Transcribe,
        ),
        other => (other.clone(), classes(&sets, &data)?, Task::Classify),
    };
    let model_options = if warm_start {
        ModelOptions {
            bert: parent.meta.model_options.bert.clone(),
            ..Default::default()
        }
    } else {
        ModelOptions {
            image_size: image_size.or(parent.meta.model_options.image_size),
            ..parent.backbone_options_for(num_classes)
        }
    };
    let model = if let Some(config) = &warm_from {
        let Backbone::Bert(pretrained) = parent.load_model(device)?.backbone else {
            bail_input!("{}: not a BERT encoder", args.from.display())
        };
        let (model, (encoder, decoder)) =
            Classifier::warm_started_bert2bert(&pretrained, config, recipe.seed, device)?;
        println!(
            "finetune bert2bert warm-started from {}: {encoder} tensors into the encoder, \
             {decoder} into the decoder, its cross-attention new; {} params",
            args.from.display(),
            burn::module::Module::num_params(&model),
        );
        model
    } else if speech {
        super::speech::parent_model(&parent, &args.from, device)?
    } else if matches!(parent.meta.input, ModelInput::TextPairs(_)) || same_outputs.is_some() {
        println!(
            "finetune {} from {}: the whole model, its {num_classes}-token output vocabulary covering the new targets",
            parent.arch.name,
            args.from.display(),
        );
        parent.load_model(device)?
    } else {
        let (model, loaded) = parent.load_backbone(num_classes, recipe.seed, device)?;
        let model = match image_size {
            Some(size) => model.resized(size),
            None => model,
        };
        let what = match task {
            Task::Seq2seq => "output vocabulary (decoder embedding and head)",
            _ => "head",
        };
        println!(
            "finetune {} from {}: loaded {} backbone tensors ({} params); new {what} {}x{num_classes}",
            parent.arch.name,
            args.from.display(),
            loaded.len(),
            burn::module::Module::num_params(&model.backbone),
            parent
                .arch
                .features_for(&parent.backbone_options_for(num_classes)),
        );
        model
    };
    let steps: Vec<String> = phases
        .iter()
        .map(|p| format!("{} epoch(s) {}", p.epochs, p.name))
        .collect();
    println!("training on {}: {}", sets.describe(), steps.join(", then "));
    let lineage = Lineage {
        parent: args.from.display().to_string(),
        parent_absolute: Some(pretune::fs::canonical(&args.from)),
        parent_weights_sha256: parent.sha256.clone(),
    };
    let meta = Meta::for_run(Run {
        stage: "finetune",
        task,
        arch,
        model_options,
        input,
        data: &data,
        sets: &sets,
        recipe: &recipe,
        strategy: Some(args.strategy.clone()),
        phases,
        lineage: Some(lineage),
    });
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

/// A fresh model of the run's architecture, the shape its resume state was saved in.
fn model_for(meta: &Meta, device: &burn::prelude::Device) -> Result<Classifier> {
    let arch = models::arch(&meta.architecture)?;
    arch.check(&meta.model_options)?;
    // Its weights come from the state: the seed does not matter.
    let model = Classifier::new(arch, &meta.model_options, meta.head_size(), 0, device);
    // A LoRA run saves its model with adapters: give the fresh one the same.
    let lora = meta.phases.iter().find_map(|p| match p.frozen {
        Frozen::Lora { rank, alpha } => Some((rank, alpha)),
        _ => None,
    });
    Ok(match lora {
        Some((rank, alpha)) => train::lora(model, rank, alpha),
        None => model,
    })
}

pub fn resume(args: ResumeArgs, device: &Device) -> Result<()> {
    let path = args.dir.join(STATE_FILE);
    // Rank 0 reads the state and sends it to the others (they may be on other machines).
    let bytes = if parallel::is_root() {
        if !path.is_file() {
            bail_input!(
                "{}: no {STATE_FILE} here: nothing to resume (a finished run removes it)",
                args.dir.display()
            );
        }
        std::fs::read(&path).map_err(|e| input_error!("{}: cannot read: {e}", path.display()))?
    } else {
        Vec::new()
    };
    let bytes = parallel::broadcast(bytes);
    let snapshot = state::parse(&bytes, &path, |run: &RunDescription| {
        model_for(&run.meta, device)
    })?;
    let run = snapshot.run;
    let (Some(data), Some(recipe)) = (&run.meta.data, &run.meta.recipe) else {
        bail_input!(
            "{}: damaged run description: no data or recipe",
            path.display()
        );
    };
    // The absolute path recorded at the start: resuming works from any directory.
    let sets = data.spec.load(run.meta.input.reads(), recipe.seed)?;
    if sets.train.class_names() != run.meta.class_names || sets.train.len() != data.train_examples {
        bail_input!(
            "{}: the data changed since the run started (classes or example count differ)",
            data.spec.path().display()
        );
    }
    let p = &snapshot.resume.progress;
    println!(
        "resuming {} in {} at epoch {}, step {}",
        run.meta.stage,
        args.dir.display(),
        p.history.len() + 1,
        p.steps_done
    );
    execute(run, snapshot.model, sets, &args.dir, Some(snapshot.resume))
}

/// A contrastive run's examples: its training images' views, and its validation images' with
/// the k-nearest-neighbour monitor.
fn views<'a>(
    meta: &Meta,
    recipe: &train::Recipe,
    norm: &'a Normalization,
    sets: &'a TrainingData,
) -> Result<pretune::data::RunExamples<'a>> {
    use pretune::data::views::Views;
    let temperature = meta
        .model_options
        .contrastive
        .context("a contrastive model has its temperature")?
        .temperature;
    let train = sets.train.images().context("image data")?;
    let val = sets.val.images().filter(|v| !v.is_empty()).map(|v| {
        Box::new(Views::new(v, norm, recipe.augment, temperature).validation(train))
            as Box<dyn pretune::data::Examples>
    });
    Ok((
        Box::new(Views::new(train, norm, recipe.augment, temperature)),
        val,
    ))
}

/// Train (saving resume state as it goes), save the checkpoint, print the summary.
fn execute(
    run: RunDescription,
    model: Classifier,
    sets: TrainingData,
    out: &Path,
    resume: Option<state::Resume>,
) -> Result<()> {
    // Rank 0 alone writes: the checkpoint, metrics.jsonl, the resume state.
    let root = parallel::is_root();
    if root {
        std::fs::create_dir_all(out).map_err(|e| {
            input_error!("{}: cannot create the output directory: {e}", out.display())
        })?;
        if resume.is_none() {
            clear_run(out)?;
        }
    }
    // Ctrl-C stops after the current step, saves the resume state and says how to continue.
    static INTERRUPT: AtomicBool = AtomicBool::new(false);
    let _ = ctrlc::set_handler(|| INTERRUPT.store(true, Ordering::SeqCst));

    let started = Instant::now();
    let tokenizer = match (&run.tokenizer, &run.meta.input) {
        (Some(json), ModelInput::Text(t)) => Some(TextTokenizer::from_json(json, t.max_length)?),
        (Some(json), ModelInput::TextPairs(t)) => {
            Some(TextTokenizer::from_json(json, t.max_source_length)?.fit_to(
                run.meta.model_options.vocab_size(),
                Path::new("the run's tokenizer"),
            )?)
        }
        (Some(json), ModelInput::Speech(s)) => Some(
            TextTokenizer::from_json(json, s.prompt.len() + s.max_tokens)?.fit_to(
                run.meta.model_options.vocab_size(),
                Path::new("the resume state's tokenizer"),
            )?,
        ),
        _ => None,
    };
    let lm = run.meta.task.is_language_model();
    let history = resume.as_ref().map_or(&[][..], |r| &r.progress.history[..]);
    let mut display = Display::new(lm);
    let mut log = if root {
        Some(MetricsLog::create(&out.join("metrics.jsonl"), history)?)
    } else {
        None
    };
    let mut saver = ResumeSaver {
        path: out.join(STATE_FILE),
        run: serde_json::to_value(&run)?,
        every: run.saving.save_every,
    };
    let mut interrupt = Interrupt(&INTERRUPT);
    let mut observers: Vec<&mut dyn Observer> = vec![&mut interrupt];
    if let Some(log) = log.as_mut() {
        observers.extend([&mut display as &mut dyn Observer, log, &mut saver]);
    }
    let mut meta = run.meta;
    let recipe = meta.recipe.clone().context("a training run has a recipe")?;
    let plan = Plan {
        phases: meta.phases.clone(),
        keep: match meta.task {
            // A summarizer's epochs are told apart by ROUGE-L (its `error_rate`).
            Task::Seq2seq if matches!(meta.input, ModelInput::TextPairs(_)) => {
                Keep::Best(Score::ErrorRate)
            }
            Task::Classify | Task::Seq2seq => Keep::Best(Score::Accuracy),
            Task::Mlm | Task::Lm => Keep::Best(Score::Loss),
            Task::Transcribe => Keep::Best(Score::ErrorRate),
            // SimCLR keeps its last weights; the kNN accuracy is only watched.
            Task::Contrastive => Keep::Last,
        },
        feature_cache: !run.no_feature_cache,
        recipe,
    };
    let (train_examples, val_examples) = match (&meta.input, &tokenizer) {
        (ModelInput::Speech(input), Some(tokenizer)) => {
            super::speech::examples(&model, &meta.phases, input, tokenizer, &sets)?
        }
        (ModelInput::Image(spec), _) if meta.task == Task::Contrastive => {
            pretune::data::views::check_single_process()?;
            views(&meta, &plan.recipe, &spec.normalization, &sets)?
        }
        _ => {
            let train = meta
                .input
                .examples(&sets.train, tokenizer.as_ref(), meta.task)?;
            let val = if sets.val.is_empty() {
                None
            } else {
                Some(
                    meta.input
                        .examples(&sets.val, tokenizer.as_ref(), meta.task)?,
                )
            };
            (train, val)
        }
    };
    let outcome = train::fit(
        model,
        train_examples.as_ref(),
        val_examples.as_deref(),
        &plan,
        &mut observers,
        resume,
    )
    .map_err(|e| {
        if e.is::<Interrupted>() {
            e.context(format!("continue with: pretune resume {}", out.display()))
        } else {
            e
        }
    })?;
    meta.history = outcome.history;
    meta.best_epoch = outcome.best_epoch;
    drop((train_examples, val_examples));
    if !root {
        return Ok(());
    }
    checkpoint::save(out, &outcome.model, &mut meta, tokenizer.as_ref())?;
    let _ = std::fs::remove_file(&saver.path);
    let params = burn::module::Module::num_params(&outcome.model);
    println!(
        "{}",
        super::summary::training(&meta, params, &sets, out, started.elapsed().as_secs_f64())
    );
    Ok(())
}
