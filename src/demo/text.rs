//! `pretune demo text`: the same story for language. On a few fortunes topics, a BERT-Mini
//! trained from scratch on the labelled texts is compared with one pretrained first by masked
//! language modelling on every topic's texts (no labels), and with the real all-MiniLM-L6-v2
//! fine-tuned, all on the same labelled texts and the same content-hashed test split.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use burn::nn::LinearConfig;
use serde::{Deserialize, Serialize};

use crate::data::text::{self, TextSet};
use crate::data::{Split, classes, split};
use crate::models::{self, Backbone, Classifier, ModelOptions, bert};
use crate::text::{TextExamples, TextTokenizer, load_hf_dir};
use crate::train::{self, EpochRecord, Phase, Recipe, RunKind, RunOptions};
use crate::{infer, training_device};

/// What to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TextDemoConfig {
    /// A directory of topic files (fortunes).
    pub data: PathBuf,
    /// The Hugging Face model directory to fine-tune (all-MiniLM-L6-v2).
    pub model: PathBuf,
    pub classes: String,
    /// Labelled training texts per topic.
    pub per_class: usize,
    /// Epochs of each classifier's training.
    pub epochs: usize,
    /// Epochs of masked language modelling.
    pub mlm_epochs: usize,
    /// Texts of the unlabelled corpus (all topics' training texts when `None`).
    pub corpus_limit: Option<usize>,
    pub seed: u64,
}

/// One trained classifier.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TextRun {
    pub name: String,
    pub description: String,
    pub test_accuracy: f64,
    pub seconds: f64,
    /// Training loss after each epoch.
    pub train_loss: Vec<f64>,
    pub texts_per_second: f64,
}

/// The masked-language-model pretraining.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MlmSummary {
    pub texts: usize,
    pub vocab_size: usize,
    pub seconds: f64,
    /// Perplexity on held-out corpus texts after each epoch.
    pub val_perplexity: Vec<f64>,
    pub train_perplexity: Vec<f64>,
}

/// Everything the text demo measured (`results.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TextDemoResults {
    pub pretune_version: String,
    pub config: TextDemoConfig,
    pub classes: Vec<String>,
    pub train_texts: usize,
    pub test_texts: usize,
    pub mlm: MlmSummary,
    pub runs: Vec<TextRun>,
}

/// Longest input of the models trained here, in tokens.
const MAX_LENGTH: usize = 128;
const VOCAB_SIZE: usize = 8000;
/// Corpus texts held out to measure perplexity.
const MLM_VAL_FRACTION: f64 = 0.05;

/// Hugging Face Trainer's recipe for `kind`, with the demo's epochs, batch and seed.
fn recipe(kind: RunKind, epochs: usize, seed: u64) -> Recipe {
    Recipe {
        epochs,
        seed,
        batch_size: 32,
        ..Recipe::default()
    }
    .resolved(kind)
}

pub fn run(config: &TextDemoConfig) -> Result<TextDemoResults> {
    let device = training_device();
    let columns = text::Columns::default();
    let all_train = text::load(&config.data, Split::Train, &columns)?;
    let all_test = text::load(&config.data, Split::Test, &columns)?;
    let chosen = classes::parse_classes(&config.classes, &all_train.class_names)?;
    let labelled = all_train.restrict_to(&chosen);
    let every: Vec<usize> = (0..labelled.len()).collect();
    let train = labelled.subset(&split::per_class(
        &labelled.labels,
        &every,
        config.per_class,
        config.seed,
    ));
    let test = all_test.restrict_to(&chosen);
    // The unlabelled corpus: every topic's training texts (never a test text).
    let corpus = match config.corpus_limit {
        // Every k-th text, so that each topic keeps its share.
        Some(n) => {
            let every: Vec<usize> = (0..all_train.len())
                .step_by(all_train.len().div_ceil(n.max(1)))
                .collect();
            all_train.subset(&every)
        }
        None => all_train.clone(),
    };
    println!(
        "{} topics ({}): {} labelled training texts, {} test texts; corpus of {} unlabelled texts",
        chosen.len(),
        train.class_names.join(", "),
        train.len(),
        test.len(),
        corpus.len()
    );
    let bert_mini = models::arch("bert-mini")?;
    let mut runs = Vec::new();

    // 1. From scratch: a vocabulary and a model learned from the labelled texts alone.
    let started = Instant::now();
    let tokenizer = TextTokenizer::train_wordpiece(&train.texts, VOCAB_SIZE, MAX_LENGTH)?;
    device.seed(config.seed);
    let model = Classifier::new(bert_mini, &mini_options(&tokenizer), chosen.len(), &device);
    runs.push(classify(
        "scratch",
        "BERT-Mini from scratch on the labelled texts",
        model,
        &train,
        &test,
        &tokenizer,
        recipe(RunKind::TextFromScratch, config.epochs, config.seed),
        started,
    )?);

    // 2. Masked language modelling on the corpus, then the same classifier training.
    let started = Instant::now();
    let tokenizer = TextTokenizer::train_wordpiece(&corpus.texts, VOCAB_SIZE, MAX_LENGTH)?;
    let (corpus_train, corpus_val) =
        split::holdout(corpus.len(), MLM_VAL_FRACTION, config.seed ^ 0x3);
    let (corpus_train, corpus_val) = (corpus.subset(&corpus_train), corpus.subset(&corpus_val));
    println!(
        "masked language modelling: BERT-Mini on {} texts ({}-token vocabulary), {} epoch(s)...",
        corpus_train.len(),
        tokenizer.vocab_size(),
        config.mlm_epochs
    );
    let options = mini_options(&tokenizer);
    device.seed(config.seed);
    let mlm_model = Classifier::new(bert_mini, &options, tokenizer.vocab_size(), &device);
    let masked = |set| TextExamples {
        set,
        tokenizer: &tokenizer,
        masked: true,
    };
    let outcome = train::fit(
        mlm_model,
        &masked(&corpus_train),
        Some(&masked(&corpus_val)),
        &recipe(RunKind::TextFromScratch, config.mlm_epochs, config.seed),
        &[Phase::all(config.mlm_epochs)],
        &RunOptions {
            perplexity: true,
            keep_last: true,
            ..Default::default()
        },
    )?;
    let mlm = MlmSummary {
        texts: corpus_train.len(),
        vocab_size: tokenizer.vocab_size(),
        seconds: started.elapsed().as_secs_f64(),
        val_perplexity: outcome
            .history
            .iter()
            .filter_map(|h| h.val_loss.map(f64::exp))
            .collect(),
        train_perplexity: outcome.history.iter().map(|h| h.train_loss.exp()).collect(),
    };
    let started = Instant::now();
    let width = bert_mini.features_for(&options);
    let model = with_new_head(outcome.model.backbone, width, chosen.len(), config.seed);
    let mut run = classify(
        "mlm+finetune",
        "BERT-Mini pretrained by masked language modelling on the corpus, then fine-tuned",
        model,
        &train,
        &test,
        &tokenizer,
        recipe(RunKind::TextFromScratch, config.epochs, config.seed),
        started,
    )?;
    run.seconds += mlm.seconds;
    runs.push(run);

    // 3. The real pretrained MiniLM, fine-tuned the Hugging Face way.
    let started = Instant::now();
    let hf = load_hf_dir(&config.model, &device)?;
    let width = hf.config.hidden_size;
    let model = with_new_head(Backbone::Bert(hf.model), width, chosen.len(), config.seed);
    runs.push(classify(
        "minilm",
        "all-MiniLM-L6-v2 (pretrained on 1B sentence pairs) fine-tuned",
        model,
        &train,
        &test,
        &hf.tokenizer,
        recipe(RunKind::TextFinetune, config.epochs, config.seed),
        started,
    )?);

    Ok(TextDemoResults {
        pretune_version: env!("CARGO_PKG_VERSION").to_string(),
        config: config.clone(),
        classes: train.class_names.clone(),
        train_texts: train.len(),
        test_texts: test.len(),
        mlm,
        runs,
    })
}

/// Train `model` to classify `train` and score it on `test`, printing one line.
#[allow(clippy::too_many_arguments)]
fn classify(
    name: &str,
    description: &str,
    model: Classifier,
    train: &TextSet,
    test: &TextSet,
    tokenizer: &TextTokenizer,
    recipe: Recipe,
    started: Instant,
) -> Result<TextRun> {
    let examples = |set| TextExamples {
        set,
        tokenizer,
        masked: false,
    };
    println!("{name}: {description}, {} epoch(s)...", recipe.epochs);
    let outcome = train::fit(
        model,
        &examples(train),
        None,
        &recipe,
        &[Phase::all(recipe.epochs)],
        &RunOptions::default(),
    )?;
    let test_accuracy = infer::loss_and_accuracy(&outcome.model, &examples(test)).1;
    let history: &[EpochRecord] = &outcome.history;
    let run = TextRun {
        name: name.into(),
        description: description.into(),
        test_accuracy,
        seconds: started.elapsed().as_secs_f64(),
        train_loss: history.iter().map(|h| h.train_loss).collect(),
        texts_per_second: history.iter().map(|h| h.images_per_second).sum::<f64>()
            / history.len().max(1) as f64,
    };
    println!("{name}: {:.2}% test accuracy\n", 100.0 * test_accuracy);
    Ok(run)
}

/// BERT-Mini sized for `tokenizer`'s vocabulary.
fn mini_options(tokenizer: &TextTokenizer) -> ModelOptions {
    ModelOptions {
        bert: bert::preset("bert-mini", tokenizer.vocab_size()),
        ..Default::default()
    }
}

/// `backbone` with a new (seeded) classification head.
fn with_new_head(backbone: Backbone, width: usize, classes: usize, seed: u64) -> Classifier {
    let device = training_device();
    device.seed(seed);
    Classifier {
        backbone,
        head: LinearConfig::new(width, classes).init(&device),
    }
}

/// Where the README's `scripts/minilm.sh` unpacks all-MiniLM-L6-v2.
pub const MINILM_DIR: &str = "models/all-MiniLM-L6-v2";

/// The MiniLM directory: `given`, or the README's place.
pub fn minilm_dir(given: Option<&Path>) -> PathBuf {
    given.map_or_else(|| PathBuf::from(MINILM_DIR), Path::to_path_buf)
}
