//! Flags several subcommands share, parsed once: every range is checked by clap's value parsers
//! and every default resolved, so what reaches the library is a concrete value it can trust —
//! and a wrong flag is exit 2 before any data is read.

use std::path::Path;

use anyhow::Result;
use clap::Args;
use pretune::data::Augment;
use pretune::models::ModelOptions;
use pretune::models::seq2seq::Seq2SeqConfig;
use pretune::train::{Optimizer, Recipe, RunKind, Schedule, positive};
use pretune::{bail_input, input_error};
use serde::{Deserialize, Serialize};

/// The training recipe as the command line gives it: what is unset is chosen by the kind of
/// run (`RecipeArgs::resolve`).
#[derive(Debug, Clone, Args)]
pub struct RecipeArgs {
    /// Passes over the training data (all phases together).
    #[arg(long, default_value_t = 3, value_parser = count)]
    pub epochs: usize,
    /// Examples (images or texts) per optimisation step. The global batch: with several
    /// processes (MPI) it is split across them, unlike timm's or Hugging Face's per-device size
    /// [default: 64; 256 for contrastive pretraining, whose images are each other's negatives].
    #[arg(long, value_parser = count)]
    pub batch_size: Option<usize>,
    /// Peak learning rate (of the head, when parts of the model learn at other rates)
    /// [default: 1e-3; fine-tuning a text model 5e-5 as Hugging Face's Trainer, 5e-4 with LoRA].
    #[arg(long, value_parser = positive)]
    pub lr: Option<f64>,
    #[arg(long, value_enum, default_value_t = Optimizer::Adamw)]
    pub optimizer: Optimizer,
    /// Momentum (sgd only), in [0, 1).
    #[arg(long, default_value_t = 0.9, value_parser = below_one)]
    pub momentum: f64,
    /// Weight decay (decoupled for adamw, L2 for sgd); never applied to biases.
    #[arg(long, default_value_t = 0.01, value_parser = non_negative)]
    pub weight_decay: f64,
    /// [default: cosine; linear for text models, as Hugging Face's Trainer]
    #[arg(long, value_enum)]
    pub schedule: Option<Schedule>,
    /// Epochs of linear learning-rate warm-up at the start of each phase (constant, cosine and
    /// linear schedules; fractions allowed).
    #[arg(long, default_value_t = 0.1, value_parser = non_negative)]
    pub warmup_epochs: f64,
    /// Label smoothing of the cross-entropy loss, in [0, 1) [default: 0.1 as in timm's training
    /// recipes; 0 for text models, as Hugging Face's Trainer].
    #[arg(long, value_parser = below_one)]
    pub label_smoothing: Option<f64>,
    /// Clip the gradient's global L2 norm to this value.
    #[arg(long, value_name = "NORM", value_parser = positive)]
    pub grad_clip: Option<f64>,
    /// Random augmentation of training images [default: none; simclr for contrastive
    /// pretraining].
    #[arg(long, value_enum)]
    pub augment: Option<Augment>,
    /// Stop when validation has not improved for this many epochs.
    #[arg(long, value_name = "EPOCHS", value_parser = count)]
    pub patience: Option<usize>,
    /// Seed for weight init, data split, order and augmentation: same seed + same data ⇒ same model.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Skip (and count) optimisation steps whose loss is NaN or infinite instead of stopping.
    #[arg(long)]
    pub skip_nonfinite: bool,
}

impl RecipeArgs {
    /// The concrete recipe, with what the command line left unset chosen for `kind`: the
    /// timm-like image recipe, or Hugging Face Trainer's for text (AdamW, linear decay after
    /// warm-up, no label smoothing, 5e-5 when fine-tuning).
    pub fn resolve(&self, kind: RunKind) -> Recipe {
        let (lr, schedule, label_smoothing) = kind.defaults();
        Recipe {
            epochs: self.epochs,
            batch_size: self.batch_size.unwrap_or(64),
            lr: self.lr.unwrap_or(lr),
            optimizer: self.optimizer,
            momentum: self.momentum,
            weight_decay: self.weight_decay,
            schedule: self.schedule.unwrap_or(schedule),
            warmup_epochs: self.warmup_epochs,
            label_smoothing: self.label_smoothing.unwrap_or(label_smoothing),
            grad_clip: self.grad_clip,
            augment: self.augment.unwrap_or(Augment::None),
            patience: self.patience,
            seed: self.seed,
            skip_nonfinite: self.skip_nonfinite,
        }
    }
}

/// A whole number of at least 1, for counts such as `--epochs`.
pub fn count(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{s:?} is not a whole number of at least 1")),
    }
}

/// A finite number of at least 0.
fn non_negative(s: &str) -> Result<f64, String> {
    let x: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if !(x.is_finite() && x >= 0.0) {
        return Err(format!("{x} is not a number of at least 0"));
    }
    Ok(x)
}

/// A number in [0, 1).
fn below_one(s: &str) -> Result<f64, String> {
    let x = non_negative(s)?;
    if x >= 1.0 {
        return Err(format!("{x} is not in [0, 1)"));
    }
    Ok(x)
}

/// Layout flags of image models.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// For 28x28 and 32x32 images: inputs are resized to 32x32 and ResNets get CIFAR's stem
    /// (3x3 first conv at stride 1, no max-pool).
    #[arg(long)]
    pub small_input: bool,
    /// Sequence-to-sequence models: the decoder attends over the encoder's outputs (Luong's
    /// dot attention).
    #[arg(long)]
    pub attention: bool,
    /// Square inputs of N×N pixels instead of the architecture's own (224 for most): images
    /// are resized to it, and a ViT's position embeddings are resampled for its patch grid.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub image_size: Option<u16>,
}

impl ModelArgs {
    pub fn options(&self) -> ModelOptions {
        ModelOptions {
            small_input: self.small_input,
            // The sizes come from the data; this only carries the flag until then.
            seq2seq: self.attention.then(|| Seq2SeqConfig {
                attention: true,
                ..Seq2SeqConfig::g2p(3, 4)
            }),
            image_size: self.image_size.map(usize::from),
            ..Default::default()
        }
    }
}

/// How a text model new to the world reads: its vocabulary and length.
#[derive(Debug, Clone, Args)]
pub struct TextArgs {
    /// Text models from scratch: size of the WordPiece vocabulary learned from the training
    /// texts (100 to 262144).
    #[arg(long, default_value_t = 8000, value_parser = clap::value_parser!(u32).range(100..=262_144))]
    pub vocab_size: u32,
    /// Text models from scratch: longest input in tokens (longer texts are truncated; 2 to 512).
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u16).range(2..=pretune::data::MAX_TEXT_TOKENS as i64))]
    pub max_length: u16,
    /// bert2bert from scratch: the Hugging Face BERT directory whose config.json (sizes) and
    /// tokenizer.json it takes (its weights are not read), e.g. models/all-MiniLM-L6-v2.
    #[arg(long, value_name = "DIR")]
    pub config_from: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub pairs: PairLengthArgs,
}

/// How much of each side of a pair a WordPiece encoder–decoder (bert2bert) reads.
#[derive(Debug, Clone, Copy, Args)]
pub struct PairLengthArgs {
    /// bert2bert: longest source in tokens, [CLS] and [SEP] included (longer ones are
    /// truncated, and counted; 3 to 512).
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u16).range(3..=512))]
    pub max_source_length: u16,
    /// bert2bert: longest target in tokens, [SEP] included (3 to 512).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(3..=512))]
    pub max_target_length: u16,
}

impl PairLengthArgs {
    pub fn input(&self) -> pretune::data::TextPairInput {
        pretune::data::TextPairInput {
            max_source_length: self.max_source_length.into(),
            max_target_length: self.max_target_length.into(),
        }
    }
}

/// How often the resume state is saved (always after every epoch).
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
pub struct SaveArgs {
    /// Also save the resume state every N optimisation steps.
    #[arg(long, value_name = "N", value_parser = count)]
    pub save_every: Option<usize>,
}

/// Check, before anything is loaded, that a run may write into `out`: never the directory it
/// starts `from`, and only into an empty or new directory unless `overwrite` says so.
pub fn check_out(out: &Path, overwrite: bool, from: Option<&Path>) -> Result<()> {
    let shown = out.display();
    if let Some(from) = from
        && pretune::fs::canonical(out) == pretune::fs::canonical(from)
    {
        bail_input!("--out {shown} is the checkpoint being fine-tuned: choose another directory");
    }
    if out.exists() && !out.is_dir() {
        bail_input!("--out {shown}: exists and is not a directory");
    }
    if !out.is_dir() || overwrite {
        return Ok(());
    }
    let mut names: Vec<String> = std::fs::read_dir(out)
        .map_err(|e| input_error!("--out {shown}: cannot list: {e}"))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    if names.is_empty() {
        return Ok(());
    }
    if names.iter().any(|n| n == super::train::STATE_FILE) {
        bail_input!(
            "--out {shown} holds an unfinished run: `pretune resume {shown}` continues it \
             (--overwrite starts over)"
        );
    }
    bail_input!(
        "--out {shown} already holds {} file(s) ({}): choose a new directory, or --overwrite",
        names.len(),
        pretune::error::listed(&names, 5)
    )
}

/// With `--overwrite`, the resume state of the run that was in `out` before, removed as the new
/// run starts: `pretune resume` must never continue the old run with the new one's files. The
/// old checkpoint stays until the new one replaces it, file by file, atomically.
pub fn clear_run(out: &Path) -> Result<()> {
    let state = out.join(super::train::STATE_FILE);
    match std::fs::remove_file(&state) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(input_error!("{}: cannot remove: {e}", state.display()))
        }
        _ => Ok(()),
    }
}

/// A two-column table of facts, for the end of a command.
pub fn facts_table(rows: &[(&str, String)]) -> comfy_table::Table {
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    for (k, v) in rows {
        table.add_row(vec![k.to_string(), v.clone()]);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        recipe: RecipeArgs,
    }

    #[test]
    fn the_command_lines_defaults_are_the_librarys() {
        let r = Cli::parse_from(["x"]).recipe.resolve(RunKind::Images);
        assert_eq!(r, Recipe::default());
        let t = Cli::parse_from(["x"]).recipe.resolve(RunKind::TextFinetune);
        assert_eq!(
            (t.lr, t.schedule, t.label_smoothing),
            (5e-5, Schedule::Linear, 0.0)
        );
        let given = Cli::parse_from(["x", "--lr", "0.1", "--label-smoothing", "0.2"]);
        let g = given.recipe.resolve(RunKind::TextFinetune);
        assert_eq!((g.lr, g.label_smoothing), (0.1, 0.2));
    }

    #[test]
    fn ranges_are_checked_when_parsing() {
        for bad in [
            &["--epochs", "0"][..],
            &["--batch-size", "0"],
            &["--lr", "0"],
            &["--lr", "nan"],
            &["--momentum", "1"],
            &["--weight-decay", "-1"],
            &["--warmup-epochs", "inf"],
            &["--label-smoothing", "1"],
            &["--grad-clip", "0"],
            &["--patience", "0"],
        ] {
            let mut argv = vec!["x"];
            argv.extend_from_slice(bad);
            assert!(Cli::try_parse_from(&argv).is_err(), "{bad:?} accepted");
        }
    }
}
