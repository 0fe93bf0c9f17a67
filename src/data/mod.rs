//! Data: readers for each format, class selection, splits, and the examples a model trains on.
//!
//! Readers ([`idx`], [`cifar`], [`folder`], [`csv`] for images, [`texts`] for texts) produce a
//! [`Dataset`]; [`DataSpec::load`] keeps the chosen classes and draws the training and
//! validation examples; [`examples`] turns them into batches the way a model takes them.

pub mod audio;
pub mod augment;
pub mod cifar;
pub mod classes;
pub mod cmudict;
pub mod csv;
pub mod examples;
pub mod folder;
pub mod idx;
pub mod images;
pub mod mel;
pub mod pairs;
pub mod speech;
pub mod split;
pub mod texts;
pub mod tokenizer;
pub mod views;

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::{Deserialize, Serialize};

pub use augment::Augment;
pub use examples::{
    Batch, Examples, ImageShape, InputSpec, ModelInput, PairInput, RunExamples, TextInput, Training,
};
pub use images::{ImageSet, Normalization};
pub use pairs::TextPairInput;
pub use speech::{SpeechInput, SpeechSet};
pub use tokenizer::TextTokenizer;

/// The longest text a text model new to the world reads, in tokens (`--max-length`).
pub const MAX_TEXT_TOKENS: usize = 512;

use crate::bail_input;

/// Which half of a dataset: the training files or the held-out test files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// `train-*` files.
    Train,
    /// `t10k-*` files.
    Test,
}

/// Which data to train on. Every range is checked when the command line is parsed.
#[derive(Debug, Clone, clap::Args, Serialize, Deserialize)]
pub struct DataSpec {
    /// Dataset: a directory of IDX files (train-images-idx3-ubyte[.gz], t10k-…, e.g.
    /// /usr/share/datasets/fashion-mnist), an image folder (one sub-folder of PNG/JPEG files per
    /// class, optionally under train/ and test/), CIFAR-10 binary batches, a CSV image file
    /// (e.g. scikit-learn's digits.csv.gz, every 5th row its test split), or texts (a directory
    /// of topic files, a .txt corpus, a .csv/.tsv/.jsonl file), or speech (.wav/.raw files
    /// with .txt transcripts, or a manifest with an `audio` column). Images are resized to the
    /// model's input and converted to its channels.
    #[arg(long)]
    pub data: PathBuf,
    /// `--data` made absolute when the run started: what `pretune resume` reads, from any
    /// directory.
    #[arg(skip)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_absolute: Option<PathBuf>,
    /// Classes to train on: indices, ranges or names, e.g. `0-4`, `5,7,9`, `Sandal,Bag`, `all`.
    #[arg(long, default_value = "all", value_parser = not_blank)]
    pub classes: String,
    /// Train on only N labelled examples of each class (a seeded few-shot draw); validation
    /// then comes out of these labels too (--val-fraction of them), or from --val-per-class
    /// more [default: all of them].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub per_class: Option<u32>,
    /// Validate on N further labelled examples of each class, drawn apart from the training
    /// ones (instead of --val-fraction).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    #[serde(default)]
    pub val_per_class: Option<u32>,
    /// Fraction of the training examples held out (seeded, per class with --per-class) to
    /// validate on after every epoch and to pick the best epoch; 0 keeps the last epoch instead.
    /// A pair file whose split column marks val rows validates on those.
    #[arg(long, default_value_t = 0.1, value_name = "F", value_parser = fraction)]
    pub val_fraction: f64,
    /// Skip image files that cannot be decoded (counted in the summary) instead of stopping.
    #[arg(long)]
    #[serde(default)]
    pub skip_bad_images: bool,
    #[command(flatten)]
    #[serde(flatten)]
    pub columns: texts::Columns,
    #[command(flatten)]
    #[serde(flatten)]
    pub pair_columns: pairs::PairColumns,
}

/// What a model reads, which decides how its data is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reads {
    /// Images of this many channels, rows and columns, scaled so.
    Images(ImageShape),
    Texts,
    /// Sequence pairs.
    Pairs,
    /// Sequence pairs for a WordPiece model (long texts allowed: the model truncates them).
    TextPairs,
    /// Recordings with transcripts.
    Speech,
}

/// Text with something in it, for `--classes`.
fn not_blank(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        return Err("empty: give indices, ranges or names (e.g. 0-4), or `all`".into());
    }
    Ok(s.to_string())
}

/// A number in [0, 1), for `--val-fraction`.
fn fraction(s: &str) -> Result<f64, String> {
    let f: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if !(0.0..1.0).contains(&f) {
        return Err(format!("{f} is not in [0, 1)"));
    }
    Ok(f)
}

/// Examples as loaded: labelled images or texts, sequence pairs, or recordings with
/// transcripts.
#[derive(Debug, Clone)]
pub enum Dataset {
    Images(ImageSet),
    Texts(texts::TextSet),
    Pairs(pairs::PairSet),
    Speech(SpeechSet),
}

impl Dataset {
    pub fn len(&self) -> usize {
        match self {
            Dataset::Pairs(s) => s.len(),
            _ => self.labels().len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Each example's class (none for pairs).
    pub fn labels(&self) -> &[usize] {
        match self {
            Dataset::Images(s) => &s.labels,
            Dataset::Texts(s) => &s.labels,
            Dataset::Pairs(_) => &[],
            Dataset::Speech(s) => &s.labels,
        }
    }

    /// The classes (none for pairs).
    pub fn class_names(&self) -> &[String] {
        match self {
            Dataset::Images(s) => &s.class_names,
            Dataset::Texts(s) => &s.class_names,
            Dataset::Pairs(_) => &[],
            Dataset::Speech(s) => &s.class_names,
        }
    }

    /// The examples at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        match self {
            Dataset::Images(s) => Dataset::Images(s.subset(indices)),
            Dataset::Texts(s) => Dataset::Texts(s.subset(indices)),
            Dataset::Pairs(s) => Dataset::Pairs(s.subset(indices)),
            Dataset::Speech(s) => Dataset::Speech(s.subset(indices)),
        }
    }

    /// Keep only the examples of `classes` and relabel them 0..classes.len() in that order
    /// (pairs have no classes: all stay).
    pub fn restrict_to(&self, classes: &[usize]) -> Dataset {
        match self {
            Dataset::Images(s) => Dataset::Images(s.restrict_to(classes)),
            Dataset::Texts(s) => Dataset::Texts(s.restrict_to(classes)),
            Dataset::Pairs(s) => Dataset::Pairs(s.clone()),
            // One class: every recording.
            Dataset::Speech(s) => Dataset::Speech(s.clone()),
        }
    }

    /// Number of examples of each class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.class_names().len()];
        for &l in self.labels() {
            counts[l] += 1;
        }
        counts
    }

    /// The images, for what only images have (normalisation statistics).
    pub fn images(&self) -> Option<&ImageSet> {
        match self {
            Dataset::Images(s) => Some(s),
            _ => None,
        }
    }

    /// The texts, for what only texts have (a vocabulary learned from them).
    pub fn texts(&self) -> Option<&texts::TextSet> {
        match self {
            Dataset::Texts(s) => Some(s),
            _ => None,
        }
    }

    /// The pairs, for what only pairs have (vocabularies learned from them).
    pub fn pairs(&self) -> Option<&pairs::PairSet> {
        match self {
            Dataset::Pairs(s) => Some(s),
            _ => None,
        }
    }

    /// What the examples are, for messages: `images`, `texts` or `pairs`.
    pub fn noun(&self) -> &'static str {
        match self {
            Dataset::Images(_) => "images",
            Dataset::Texts(_) => "texts",
            Dataset::Pairs(_) => "pairs",
            Dataset::Speech(_) => "recordings",
        }
    }
}

/// Where a run's validation examples came from (recorded in `pretune.json`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "from")]
pub enum Validation {
    /// A seeded fraction of all the training examples of the chosen classes.
    HeldOut { fraction: f64 },
    /// A seeded fraction of the labelled few-shot examples of each class (`--per-class`).
    LabelledBudget { fraction: f64 },
    /// Further labelled examples of each class, drawn apart from the training ones.
    PerClass { examples: usize },
    /// The pairs a pair file's split column marks for validation.
    FileSplit,
}

/// The training and validation examples of a run.
pub struct TrainingData {
    pub train: Dataset,
    pub val: Dataset,
    /// Unreadable images skipped (`--skip-bad-images`).
    pub skipped: usize,
    pub validation: Validation,
}

impl DataSpec {
    /// Every class of the data at `path`, with the command line's defaults otherwise.
    pub fn new(path: impl Into<PathBuf>) -> DataSpec {
        DataSpec {
            data: path.into(),
            data_absolute: None,
            classes: "all".into(),
            per_class: None,
            val_per_class: None,
            val_fraction: 0.1,
            skip_bad_images: false,
            columns: texts::Columns::default(),
            pair_columns: pairs::PairColumns::default(),
        }
    }

    /// The same spec with the data's absolute path recorded beside the path as typed.
    pub fn with_absolute_path(self) -> DataSpec {
        DataSpec {
            data_absolute: Some(crate::fs::canonical(&self.data)),
            ..self
        }
    }

    /// The data's path: absolute when the run recorded it, else as typed.
    pub fn path(&self) -> &Path {
        self.data_absolute.as_deref().unwrap_or(&self.data)
    }

    /// Load the `split` half of the data as the model reads it. Returns the examples and how
    /// many unreadable images were skipped.
    pub fn load_split(&self, split: Split, reads: Reads) -> Result<(Dataset, usize)> {
        load_dataset(self.path(), split, reads, self)
    }

    /// Load the training split, keep the chosen classes, and draw the training and validation
    /// examples (see [`split::draw`]).
    pub fn load(&self, reads: Reads, seed: u64) -> Result<TrainingData> {
        let (all, skipped) = self.load_split(Split::Train, reads)?;
        if matches!(all, Dataset::Pairs(_))
            && (self.per_class.is_some() || self.val_per_class.is_some())
        {
            bail_input!(
                "--per-class and --val-per-class count examples of classes; pairs have none"
            );
        }
        // A pair file that names its validation pairs (as the Debian descriptions do, by source
        // package, so that near-duplicates never straddle the splits) validates on those.
        if let Dataset::Pairs(pairs) = &all
            && !pairs.validation.is_empty()
        {
            let val = pairs.validation.clone();
            let train: Vec<usize> = (0..all.len())
                .filter(|i| val.binary_search(i).is_err())
                .collect();
            if train.is_empty() {
                bail_input!("{}: every pair is in its val split", self.data.display());
            }
            return Ok(TrainingData {
                train: all.subset(&train),
                val: all.subset(&val),
                skipped,
                validation: Validation::FileSplit,
            });
        }
        let chosen = classes::parse_classes(&self.classes, all.class_names())?;
        let set = all.restrict_to(&chosen);
        let (train_idx, val_idx, validation) = split::draw(
            set.len(),
            set.labels(),
            self.per_class.map(|n| n as usize),
            self.val_per_class.map(|n| n as usize),
            self.val_fraction,
            seed,
        );
        let train = set.subset(&train_idx);
        if let Some(c) = train.class_counts().iter().position(|&n| n == 0) {
            bail_input!(
                "{}: no training examples of class {} left after the validation split",
                self.data.display(),
                train.class_names()[c]
            );
        }
        Ok(TrainingData {
            train,
            val: set.subset(&val_idx),
            skipped,
            validation,
        })
    }
}

impl TrainingData {
    /// One line for the user: classes and example counts.
    pub fn describe(&self) -> String {
        if let (Dataset::Speech(train), Dataset::Speech(val)) = (&self.train, &self.val) {
            return format!(
                "{} train / {} val recordings ({:.0} s / {:.0} s of audio)",
                train.len(),
                val.len(),
                train.seconds(),
                val.seconds()
            );
        }
        let skipped = match self.skipped {
            0 => String::new(),
            n => format!(" ({n} unreadable images skipped)"),
        };
        format!(
            "{} classes ({}), {} train / {} val {}{skipped}",
            self.train.class_names().len(),
            crate::error::listed(self.train.class_names(), 20),
            self.train.len(),
            self.val.len(),
            self.train.noun()
        )
    }
}

/// Load the `split` half of a dataset as `input` (channels, height, width) images: an IDX
/// directory (MNIST layout), a CIFAR-10 binary directory, an image folder (one sub-folder per
/// class) or a CSV image file such as scikit-learn's `digits.csv.gz`. Returns the images and the
/// number of unreadable images skipped (only with `skip_bad_images`; otherwise they are errors).
pub fn load(
    path: &Path,
    split: Split,
    input: impl Into<ImageShape>,
    skip_bad_images: bool,
) -> Result<(ImageSet, usize)> {
    let input = input.into();
    let [channels, height, width] = input.dims;
    let (set, skipped) = if path.is_dir() {
        if idx::idx_dir_holds(path, split) {
            (idx::load_idx_dir(path, split)?, 0)
        } else if let Some(dir) = cifar::find(path) {
            (cifar::read(&dir, split)?, 0)
        } else {
            folder::read(path, split, input, skip_bad_images)?
        }
    } else if path.is_file() {
        (csv::read_csv_images(path, split)?, 0)
    } else {
        bail_input!(
            "{}: no such dataset (expected a directory of IDX files, CIFAR-10 batches or class \
             sub-folders of images, or a CSV image file)",
            path.display()
        );
    };
    let set = set.with_channels(channels);
    Ok((set.resized(height, width, input.interpolation), skipped))
}

/// Load the `split` half of a dataset as a model that `reads` so takes it, the file's columns
/// and options from `spec`. Returns the examples and how many unreadable images were skipped.
pub fn load_dataset(
    path: &Path,
    split: Split,
    reads: Reads,
    spec: &DataSpec,
) -> Result<(Dataset, usize)> {
    Ok(match reads {
        Reads::Images(shape) => {
            let (set, skipped) = load(path, split, shape, spec.skip_bad_images)?;
            (Dataset::Images(set), skipped)
        }
        Reads::Texts if speech::holds(path) => {
            bail_input!("{}: holds recordings, not texts", path.display())
        }
        Reads::Texts => (Dataset::Texts(texts::load(path, split, &spec.columns)?), 0),
        Reads::Pairs => (
            Dataset::Pairs(pairs::load(path, split, &spec.pair_columns)?),
            0,
        ),
        Reads::TextPairs => (
            Dataset::Pairs(pairs::load_long(path, split, &spec.pair_columns)?),
            0,
        ),
        Reads::Speech => (
            Dataset::Speech(speech::load(path, split, &spec.columns)?),
            0,
        ),
    })
}
