//! `pretune demo text`: the same story for language. On a few fortunes topics, a BERT-Mini
//! trained from scratch on the labelled texts is compared with one pretrained first by masked
//! language modelling on every topic's texts (no labels), with an AWD-LSTM pretrained as a
//! next-token language model on the same texts and fine-tuned ULMFiT's way (gradual
//! unfreezing, discriminative rates), and with the real all-MiniLM-L6-v2 fine-tuned, all on
//! the same labelled texts and the same content-hashed test split.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use burn::prelude::Device;
use pretune::data::examples::TextExamples;
use pretune::data::texts::{self, TextSet};
use pretune::data::{Split, TextTokenizer, classes, split};
use pretune::infer;
use pretune::interop::hf::load_hf_dir;
use pretune::models::lstm::{self, Dropouts, LstmConfig};
use pretune::models::{self, Backbone, Classifier, ModelOptions, Task, bert};
use pretune::train::observe::Display;
use pretune::train::{self, FinetuneOptions, Keep, Plan, Recipe, RunKind, Schedule, Strategy};

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
    /// Epochs of the LSTM's next-token language modelling.
    #[serde(default)]
    pub lm_epochs: usize,
    /// Texts of the unlabelled corpus (all topics' training texts when `None`).
    pub corpus_limit: Option<usize>,
    /// First seed; seeds `seed..seed + seeds` each draw their own labelled texts.
    pub seed: u64,
    pub seeds: usize,
}

/// One trained classifier.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TextRun {
    /// `scratch`, `mlm+finetune`, `lm+ulmfit` or `minilm`.
    pub method: String,
    pub seed: u64,
    pub test_accuracy: f64,
    pub seconds: f64,
    /// Training loss after each epoch.
    pub train_loss: Vec<f64>,
    pub texts_per_second: f64,
}

/// A language model's pretraining on the corpus.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PretrainSummary {
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
    pub mlm: PretrainSummary,
    /// The LSTM's next-token language modelling.
    pub lm: Option<PretrainSummary>,
    pub runs: Vec<TextRun>,
}

/// The methods, in the order the report shows them, with what each is.
pub const METHODS: [(&str, &str); 4] = [
    ("scratch", "BERT-Mini from scratch on the labelled texts"),
    (
        "mlm+finetune",
        "BERT-Mini pretrained by masked language modelling on the corpus, then the same",
    ),
    (
        "lm+ulmfit",
        "AWD-LSTM pretrained as a next-token language model on the corpus, fine-tuned as ULMFiT",
    ),
    (
        "minilm",
        "all-MiniLM-L6-v2 (pretrained by others) fine-tuned",
    ),
];

impl TextDemoResults {
    /// The runs of one method.
    pub fn of(&self, method: &str) -> Vec<&TextRun> {
        self.runs.iter().filter(|r| r.method == method).collect()
    }
}

/// Longest input of the models trained here, in tokens.
const MAX_LENGTH: usize = 128;
/// Vocabulary learned from the labelled texts (a model from scratch).
const VOCAB_SIZE: usize = 8000;
/// Vocabulary learned from the corpus: fortunes are small (~700k tokens), and a smaller
/// vocabulary gets masked language modelling off its unigram plateau sooner (measured: held-out
/// masked-token accuracy after 440 steps 7.5% with 3,000 pieces, 5.4% with 8,000).
const MLM_VOCAB_SIZE: usize = 3000;
/// Corpus texts held out to measure perplexity.
const MLM_VAL_FRACTION: f64 = 0.05;

/// Hugging Face Trainer's recipe for `kind`, with the demo's epochs, batch and seed.
fn recipe(kind: RunKind, epochs: usize, seed: u64) -> Recipe {
    let (lr, schedule, label_smoothing) = kind.defaults();
    Recipe {
        epochs,
        seed,
        batch_size: 32,
        lr,
        schedule,
        label_smoothing,
        ..Recipe::default()
    }
}

/// Masked language modelling: more, smaller steps at a lower peak rate after a longer warm-up
/// than classification (post-LayerNorm BERT stays on the unigram plateau longer at 1e-3).
fn mlm_recipe(epochs: usize, seed: u64) -> Recipe {
    Recipe {
        batch_size: 16,
        lr: 5e-4,
        warmup_epochs: 0.5,
        ..recipe(RunKind::TextFromScratch, epochs, seed)
    }
}

pub fn run(config: &TextDemoConfig, device: &Device) -> Result<TextDemoResults> {
    let columns = texts::Columns::default();
    let all_train = texts::load(&config.data, Split::Train, &columns)?;
    let all_test = texts::load(&config.data, Split::Test, &columns)?;
    let chosen = classes::parse_classes(&config.classes, &all_train.class_names)?;
    let labelled = all_train.restrict_to(&chosen);
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
        "{} topics ({}): {} labelled training texts per topic, {} test texts; corpus of {} unlabelled texts",
        chosen.len(),
        labelled.class_names.join(", "),
        config.per_class,
        test.len(),
        corpus.len()
    );
    let bert_mini = models::arch("bert-mini")?;

    // Language models of the corpus, once each: the starting points of "mlm+finetune" and
    // "lm+ulmfit". Both read it with one vocabulary learned from it.
    let lm_tokenizer = TextTokenizer::train_wordpiece(&corpus.texts, MLM_VOCAB_SIZE, MAX_LENGTH)?;
    let (corpus_train, corpus_val) =
        split::holdout(corpus.len(), MLM_VAL_FRACTION, config.seed ^ 0x3);
    let (corpus_train, corpus_val) = (corpus.subset(&corpus_train), corpus.subset(&corpus_val));
    let vocab = lm_tokenizer.vocab_size();
    let corpus = Corpus {
        train: &corpus_train,
        val: &corpus_val,
        tokenizer: &lm_tokenizer,
    };
    let options = mini_options(&lm_tokenizer);
    let mlm_model = Classifier::new(bert_mini, &options, vocab, config.seed, device);
    let (pretrained, mlm) = corpus.pretrain(
        "BERT-Mini",
        mlm_model,
        Task::Mlm,
        mlm_recipe(config.mlm_epochs, config.seed),
    )?;
    let lm = if config.lm_epochs > 0 {
        let lstm = models::arch(lstm::ARCH)?;
        let options = ModelOptions {
            lstm: Some(LstmConfig::preset(vocab)),
            ..Default::default()
        };
        let model = Classifier::new(lstm, &options, vocab, config.seed, device);
        let (encoder, summary) = corpus.pretrain(
            "AWD-LSTM",
            model,
            Task::Lm,
            lm_recipe(config.lm_epochs, config.seed),
        )?;
        let Backbone::Lstm(encoder) = encoder else {
            unreachable!("an lstm has an AWD-LSTM backbone")
        };
        Some((encoder.with_dropouts(Dropouts::CLASSIFIER), summary))
    } else {
        None
    };
    let minilm = load_hf_dir(&config.model, device)?;

    // Each seed draws its own labelled texts; the three models learn the same ones.
    let mut runs = Vec::new();
    let every: Vec<usize> = (0..labelled.len()).collect();
    for seed in config.seed..config.seed + config.seeds as u64 {
        let train = labelled.subset(&split::per_class(
            &labelled.labels,
            &every,
            config.per_class,
            seed,
        ));
        let classify = |method, model, tokenizer, kind| {
            classify(
                method,
                seed,
                model,
                &train,
                &test,
                tokenizer,
                Plan::all(recipe(kind, config.epochs, seed)),
            )
        };
        // From scratch: a vocabulary and a model learned from the labelled texts alone.
        let started = Instant::now();
        let tokenizer = TextTokenizer::train_wordpiece(&train.texts, VOCAB_SIZE, MAX_LENGTH)?;
        let options = mini_options(&tokenizer);
        let model = Classifier::new(bert_mini, &options, chosen.len(), seed, device);
        let mut run = classify("scratch", model, &tokenizer, RunKind::TextFromScratch)?;
        run.seconds = started.elapsed().as_secs_f64();
        runs.push(run);
        // The masked language model's encoder, trained the same way.
        let width = bert_mini.features_for(&options);
        let model =
            Classifier::with_new_head(pretrained.clone(), width, chosen.len(), seed, device);
        runs.push(classify(
            "mlm+finetune",
            model,
            &lm_tokenizer,
            RunKind::TextFromScratch,
        )?);
        // The LSTM language model's encoder, fine-tuned as ULMFiT: gradual unfreezing with
        // discriminative rates.
        if let Some((encoder, _)) = &lm {
            let width = 3 * encoder.width();
            let model = Classifier::with_new_head(
                Backbone::Lstm(encoder.clone()),
                width,
                chosen.len(),
                seed,
                device,
            );
            runs.push(self::classify(
                "lm+ulmfit",
                seed,
                model,
                &train,
                &test,
                &lm_tokenizer,
                ulmfit_plan(seed)?,
            )?);
        }
        // The real pretrained MiniLM, fine-tuned the Hugging Face way.
        let width = minilm.config.hidden_size;
        let model = Classifier::with_new_head(
            Backbone::Bert(minilm.model.clone()),
            width,
            chosen.len(),
            seed,
            device,
        );
        runs.push(classify(
            "minilm",
            model,
            &minilm.tokenizer,
            RunKind::TextFinetune,
        )?);
    }
    Ok(TextDemoResults {
        pretune_version: env!("CARGO_PKG_VERSION").to_string(),
        config: config.clone(),
        classes: labelled.class_names.clone(),
        train_texts: config.per_class * chosen.len(),
        test_texts: test.len(),
        mlm,
        lm: lm.map(|(_, summary)| summary),
        runs,
    })
}

/// Train `model` to classify `train` and score it on `test`, printing one line.
fn classify(
    method: &str,
    seed: u64,
    model: Classifier,
    train: &TextSet,
    test: &TextSet,
    tokenizer: &TextTokenizer,
    plan: Plan,
) -> Result<TextRun> {
    let started = Instant::now();
    let examples = |set| TextExamples {
        set,
        tokenizer,
        task: Task::Classify,
    };
    let outcome = train::fit(model, &examples(train), None, &plan, &mut [], None)?;
    let test_accuracy = infer::loss_and_accuracy(&outcome.model, &examples(test))?.1;
    let run = TextRun {
        method: method.into(),
        seed,
        test_accuracy,
        seconds: started.elapsed().as_secs_f64(),
        train_loss: outcome.history.iter().map(|h| h.train_loss).collect(),
        texts_per_second: train::throughput(&outcome.history),
    };
    println!(
        "seed {seed}  {method:<13} {:>6.2}% test accuracy  {:>5.0} s",
        100.0 * test_accuracy,
        run.seconds
    );
    Ok(run)
}

/// The unlabelled corpus language models learn.
struct Corpus<'a> {
    train: &'a TextSet,
    val: &'a TextSet,
    tokenizer: &'a TextTokenizer,
}

impl Corpus<'_> {
    /// Train `model` as a language model (`task`) of the corpus; return its backbone and
    /// perplexities.
    fn pretrain(
        &self,
        name: &str,
        model: Classifier,
        task: Task,
        recipe: Recipe,
    ) -> Result<(Backbone, PretrainSummary)> {
        let started = Instant::now();
        println!(
            "{}: {name} on {} texts ({}-token vocabulary), {} epoch(s)...",
            task.objective(),
            self.train.len(),
            self.tokenizer.vocab_size(),
            recipe.epochs
        );
        let examples = |set| TextExamples {
            set,
            tokenizer: self.tokenizer,
            task,
        };
        let outcome = train::fit(
            model,
            &examples(self.train),
            Some(&examples(self.val)),
            &Plan::all(recipe).keep(Keep::Last),
            &mut [&mut Display::new(true)],
            None,
        )?;
        let summary = PretrainSummary {
            texts: self.train.len(),
            vocab_size: self.tokenizer.vocab_size(),
            seconds: started.elapsed().as_secs_f64(),
            val_perplexity: outcome
                .history
                .iter()
                .filter_map(|h| h.val_loss.map(f64::exp))
                .collect(),
            train_perplexity: outcome.history.iter().map(|h| h.train_loss.exp()).collect(),
        };
        Ok((outcome.model.backbone, summary))
    }
}

/// Next-token language modelling of an AWD-LSTM: AdamW at 3e-3 with a one-cycle schedule and
/// gradients clipped at 0.25 (fastai's language-model recipe).
fn lm_recipe(epochs: usize, seed: u64) -> Recipe {
    Recipe {
        lr: 3e-3,
        schedule: Schedule::Onecycle,
        grad_clip: Some(0.25),
        ..recipe(RunKind::TextFromScratch, epochs, seed)
    }
}

/// ULMFiT's classifier fine-tuning: the head for an epoch, then one LSTM more each epoch from
/// the top, then two epochs of everything, each stage at 1/2.6 of the rate of the one above;
/// 2e-2 at the head.
fn ulmfit_plan(seed: u64) -> Result<Plan> {
    let options = FinetuneOptions {
        strategy: Strategy::GradualUnfreeze,
        layer_decay: 1.0 / 2.6,
        ..FinetuneOptions::default()
    };
    let epochs = lstm::STAGES.len() + 2;
    Ok(Plan {
        phases: options.plan(epochs, lstm::STAGES)?,
        ..Plan::all(Recipe {
            lr: 2e-2,
            schedule: Schedule::Onecycle,
            grad_clip: Some(0.25),
            ..recipe(RunKind::TextFromScratch, epochs, seed)
        })
    })
}

/// BERT-Mini sized for `tokenizer`'s vocabulary.
fn mini_options(tokenizer: &TextTokenizer) -> ModelOptions {
    ModelOptions {
        bert: bert::preset("bert-mini", tokenizer.vocab_size()),
        ..Default::default()
    }
}

/// Where the README's `scripts/minilm.sh` unpacks all-MiniLM-L6-v2.
pub const MINILM_DIR: &str = "models/all-MiniLM-L6-v2";

/// The MiniLM directory: `given`, or the README's place.
pub fn minilm_dir(given: Option<&Path>) -> PathBuf {
    given.map_or_else(|| PathBuf::from(MINILM_DIR), Path::to_path_buf)
}
