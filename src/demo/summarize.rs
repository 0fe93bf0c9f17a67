//! `pretune demo summarize`: what a pretrained encoder buys a summarizer. BERT2BERT
//! warm-started from the real all-MiniLM-L6-v2 (Rothe et al. 2020) and the same encoder–decoder
//! from random weights learn to write Debian package synopses from their long descriptions,
//! at a few training budgets; both, and the lead-10 baseline (the description's first ten
//! words), are scored by ROUGE-1/2/L F1 on a fixed subset of the test split (source packages
//! apart from the training ones).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use burn::prelude::Device;
use serde::{Deserialize, Serialize};

use pretune::data::pairs::{self, PairColumns, PairSet, TokenPairs};
use pretune::data::{Split, TextPairInput, TextTokenizer, split};
use pretune::infer;
use pretune::interop::hf;
use pretune::metrics::rouge;
use pretune::models::bert2bert;
use pretune::models::{self, Classifier, ModelOptions};
use pretune::train::{self, FinetuneOptions, Keep, Phase, Plan, Recipe, RunKind, Strategy};

/// What to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SummarizeDemoConfig {
    /// The pairs (`text`, `summary`, `split` fields).
    pub data: PathBuf,
    /// The Hugging Face BERT directory both halves start from.
    pub from: PathBuf,
    /// Training pairs per run.
    pub budgets: Vec<usize>,
    /// Epochs at each budget.
    pub epochs: Vec<usize>,
    pub seed: u64,
    /// Test pairs scored (every k-th of the test split).
    pub test_pairs: usize,
    pub lengths: TextPairInput,
    pub batch_size: usize,
    pub lr: f64,
    /// How the warm-started model learns (full or decoder-only; scratch trains whole).
    #[serde(default = "full")]
    pub warm_strategy: Strategy,
    /// Hypotheses kept when generating (1: greedy).
    pub beams: usize,
    pub quick: bool,
}

fn full() -> Strategy {
    Strategy::Full
}

/// ROUGE F1 (0–1) of a method's texts against the references.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Rouge {
    pub rouge1: f64,
    pub rouge2: f64,
    pub rouge_l: f64,
}

impl Rouge {
    fn of(references: &[String], predictions: &[String]) -> Rouge {
        let [rouge1, rouge2, rouge_l] = rouge::mean_f1(references, predictions);
        Rouge {
            rouge1,
            rouge2,
            rouge_l,
        }
    }
}

/// One trained model, scored on the test pairs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SummarizeRun {
    /// `warm-started` or `scratch`.
    pub method: String,
    pub pairs: usize,
    pub epochs: usize,
    pub rouge: Rouge,
    /// Training time (generation on the test pairs excluded).
    pub train_seconds: f64,
    pub seconds_per_epoch: f64,
    /// Training loss (per predicted token, label-smoothed) after each epoch.
    pub train_loss: Vec<f64>,
    pub pairs_per_second: f64,
}

/// A test pair next to what the baseline and the models at the largest budget write.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Example {
    pub text: String,
    pub reference: String,
    pub lead10: String,
    pub warm_started: String,
    pub scratch: String,
}

/// Everything the demo measured (`results.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SummarizeDemoResults {
    pub pretune_version: String,
    pub config: SummarizeDemoConfig,
    pub train_pairs_available: usize,
    pub test_pairs: usize,
    /// Test sources longer than the model reads (cut).
    pub truncated_test_sources: usize,
    pub parameters: usize,
    pub lead10: Rouge,
    pub runs: Vec<SummarizeRun>,
    pub examples: Vec<Example>,
    pub seconds: f64,
}

/// The methods, in the order the report shows them, with what each is.
pub const METHODS: [(&str, &str); 2] = [
    (
        "warm-started",
        "BERT2BERT: encoder and decoder start from all-MiniLM-L6-v2, cross-attention new",
    ),
    ("scratch", "the same encoder–decoder from random weights"),
];

impl SummarizeDemoResults {
    pub fn of(&self, method: &str, pairs: usize) -> Option<&SummarizeRun> {
        self.runs
            .iter()
            .find(|r| r.method == method && r.pairs == pairs)
    }
}

/// The description's first ten words: the lead baseline.
pub fn lead(text: &str, words: usize) -> String {
    text.split_whitespace()
        .take(words)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Test pairs shown in the report.
const EXAMPLES: usize = 10;

pub fn run(config: &SummarizeDemoConfig, device: &Device) -> Result<SummarizeDemoResults> {
    let started = Instant::now();
    let columns = PairColumns {
        source: "text".into(),
        target: "summary".into(),
    };
    let train_all = pairs::load_long(&config.data, Split::Train, &columns)?;
    let test_all = pairs::load_long(&config.data, Split::Test, &columns)?;
    let step = test_all.len().div_ceil(config.test_pairs.max(1));
    let every: Vec<usize> = (0..test_all.len()).step_by(step.max(1)).collect();
    let test = test_all.subset(&every);
    let largest = config.budgets.iter().copied().max().unwrap_or(0);
    if largest > train_all.len() {
        pretune::bail_input!(
            "{}: {} training pairs, fewer than the budget of {largest}",
            config.data.display(),
            train_all.len()
        );
    }
    let lead10: Vec<String> = test.sources.iter().map(|t| lead(t, 10)).collect();
    let lead_score = Rouge::of(&test.targets, &lead10);
    println!(
        "{} training pairs; scoring on {} test pairs; lead-10: ROUGE-1/2/L {:.2} / {:.2} / {:.2}",
        train_all.len(),
        test.len(),
        100.0 * lead_score.rouge1,
        100.0 * lead_score.rouge2,
        100.0 * lead_score.rouge_l
    );

    let pretrained = hf::load_hf_dir(&config.from, device)?;
    let tokenizer = &pretrained.tokenizer;
    let input = &config.lengths;
    let arch = models::arch(bert2bert::ARCH)?;
    let options = ModelOptions {
        bert: Some(pretrained.config.clone()),
        ..Default::default()
    };
    let vocab = pretrained.config.vocab_size;
    let truncated = TokenPairs::new(&test, tokenizer, input)?.truncated.0;

    let mut runs = Vec::new();
    let mut examples = Vec::new();
    let mut parameters = 0;
    let all: Vec<usize> = (0..train_all.len()).collect();
    for (&budget, &epochs) in config.budgets.iter().zip(&config.epochs) {
        let chosen = split::per_class(&vec![0; all.len()], &all, budget, config.seed);
        let train = train_all.subset(&chosen);
        let mut written = Vec::new();
        for (method, _) in METHODS {
            let model = if method == "warm-started" {
                let bert = &pretrained.config;
                Classifier::warm_started_bert2bert(&pretrained.model, bert, config.seed, device)?.0
            } else {
                Classifier::new(arch, &options, vocab, config.seed, device)
            };
            parameters = burn::module::Module::num_params(&model);
            let strategy = match method {
                "warm-started" => config.warm_strategy,
                _ => Strategy::Full,
            };
            let phases = FinetuneOptions {
                strategy,
                ..Default::default()
            }
            .plan(epochs, arch.stages)?;
            let (run, texts) =
                train_and_score(method, model, phases, config, tokenizer, &train, &test)?;
            runs.push(run);
            written.push(texts);
        }
        if budget == largest {
            examples = (0..test.len().min(EXAMPLES))
                .map(|i| Example {
                    text: test.sources[i].clone(),
                    reference: test.targets[i].clone(),
                    lead10: lead10[i].clone(),
                    warm_started: written[0][i].clone(),
                    scratch: written[1][i].clone(),
                })
                .collect();
        }
    }
    Ok(SummarizeDemoResults {
        pretune_version: env!("CARGO_PKG_VERSION").to_string(),
        config: config.clone(),
        train_pairs_available: train_all.len(),
        test_pairs: test.len(),
        truncated_test_sources: truncated,
        parameters,
        lead10: lead_score,
        runs,
        examples,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Train `model` on `train` with the summarization recipe and score what it writes for
/// `test`, printing one line. Returns the run and the texts written.
fn train_and_score(
    method: &str,
    model: Classifier,
    phases: Vec<Phase>,
    config: &SummarizeDemoConfig,
    tokenizer: &TextTokenizer,
    train: &PairSet,
    test: &PairSet,
) -> Result<(SummarizeRun, Vec<String>)> {
    let epochs = phases.iter().map(|p| p.epochs).sum();
    let (_, schedule, label_smoothing) = RunKind::TextSequences.defaults();
    let recipe = Recipe {
        epochs,
        seed: config.seed,
        batch_size: config.batch_size,
        lr: config.lr,
        schedule,
        label_smoothing,
        ..Recipe::default()
    };
    let examples = TokenPairs::new(train, tokenizer, &config.lengths)?;
    let started = Instant::now();
    let outcome = train::fit(
        model,
        &examples,
        None,
        &Plan::new(recipe, phases).keep(Keep::Last),
        &mut [],
        None,
    )?;
    let train_seconds = started.elapsed().as_secs_f64();
    let search = pretune::generate::Search {
        beams: config.beams,
        ..infer::summary_search(&config.lengths)
    };
    let (texts, _) = infer::summarize(
        &outcome.model,
        &config.lengths,
        tokenizer,
        &test.sources,
        &search,
    )?;
    let run = SummarizeRun {
        method: method.into(),
        pairs: train.len(),
        epochs,
        rouge: Rouge::of(&test.targets, &texts),
        train_seconds,
        seconds_per_epoch: train_seconds / epochs.max(1) as f64,
        train_loss: outcome.history.iter().map(|h| h.train_loss).collect(),
        pairs_per_second: train::throughput(&outcome.history),
    };
    println!(
        "{:>6} pairs  {method:<12} {epochs} epoch(s)  ROUGE-1/2/L {:>5.2} / {:>5.2} / {:>5.2}  {:>4.0} s training ({:.1} pairs/s)",
        run.pairs,
        100.0 * run.rouge.rouge1,
        100.0 * run.rouge.rouge2,
        100.0 * run.rouge.rouge_l,
        run.train_seconds,
        run.pairs_per_second
    );
    Ok((run, texts))
}

/// The Debian descriptions in the repository (`scripts/make_debian_descriptions.sh`).
pub const DATA: &str = "data/debian-descriptions.jsonl.gz";
/// Where `scripts/minilm.sh` unpacks all-MiniLM-L6-v2.
pub const MINILM: &str = "models/all-MiniLM-L6-v2";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lead_takes_the_first_words() {
        assert_eq!(lead("a  b c\nd", 3), "a b c");
        assert_eq!(lead("one", 10), "one");
    }
}
