//! `pretune demo g2p`: the seed's claim for a recurrent network. g2p_en's real pretrained GRU
//! encoder–decoder (American pronunciations, ARPAbet) is fine-tuned to British pronunciations
//! (espeak-ng's en-gb IPA, a new output vocabulary) from 100, 1,000 and 10,000 words, and
//! compared with the same network trained from scratch on the same words, by phoneme error
//! rate on held-out words.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use burn::prelude::Device;
use serde::{Deserialize, Serialize};

use pretune::checkpoint::Checkpoint;
use pretune::data::pairs::{self, PairColumns, PairExamples, PairSet, Vocab};
use pretune::data::{PairInput, Split, split};
use pretune::generate::Search;
use pretune::infer;
use pretune::interop::g2p;
use pretune::metrics::edit::ErrorRate;
use pretune::models::seq2seq::Seq2SeqConfig;
use pretune::models::{self, Classifier, ModelOptions};
use pretune::train::{self, Keep, Plan, Recipe, RunKind};

/// What to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct G2pDemoConfig {
    /// The pronunciation table (`word`, `gb`, `us`, `split` columns).
    pub data: PathBuf,
    /// g2p_en's `checkpoint20.npz` (with `vocab.json` beside it).
    pub weights: PathBuf,
    /// Training words per run.
    pub budgets: Vec<usize>,
    /// First seed; seeds `seed..seed + seeds` each draw their own words.
    pub seed: u64,
    pub seeds: usize,
    /// Score on only this many test words (every k-th) [all].
    pub test_limit: Option<usize>,
    /// Epochs are scaled down for a quick run.
    pub quick: bool,
    /// Where the imported American model is written.
    pub out: PathBuf,
}

/// One trained model, scored on the test words.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct G2pRun {
    /// `finetuned` or `scratch`.
    pub method: String,
    pub words: usize,
    pub seed: u64,
    pub epochs: usize,
    pub phoneme_error_rate: f64,
    pub word_accuracy: f64,
    pub seconds: f64,
    /// Training loss (per predicted phoneme) after each epoch.
    pub train_loss: Vec<f64>,
    pub words_per_second: f64,
}

/// A test word as the models at the largest budget pronounce it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Example {
    pub word: String,
    pub reference: String,
    pub finetuned: String,
    pub scratch: String,
}

/// Everything the demo measured (`results.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct G2pDemoResults {
    pub pretune_version: String,
    pub config: G2pDemoConfig,
    /// Training words available, and test words scored.
    pub train_words: usize,
    pub test_words: usize,
    /// British phonemes (IPA tokens, stress marks included) and the special tokens.
    pub output_vocab: usize,
    /// The imported g2p_en model on its own task, the same test words in American English
    /// (stress stripped: the table's CMUdict pronunciations have none).
    pub american_phoneme_error_rate: f64,
    pub american_word_accuracy: f64,
    pub runs: Vec<G2pRun>,
    pub examples: Vec<Example>,
}

/// The methods, in the order the report shows them, with what each is.
pub const METHODS: [(&str, &str); 2] = [
    (
        "finetuned",
        "g2p_en's pretrained GRU, new output vocabulary, fine-tuned",
    ),
    ("scratch", "the same network from random weights"),
];

impl G2pDemoResults {
    /// The runs of `method` at `words` training words.
    pub fn of(&self, method: &str, words: usize) -> Vec<&G2pRun> {
        self.runs
            .iter()
            .filter(|r| r.method == method && r.words == words)
            .collect()
    }
}

/// Epochs for a budget: about `examples` pairs seen in all (more passes over fewer words),
/// within `range`.
fn epochs_for(words: usize, quick: bool) -> usize {
    let (examples, lo, hi) = if quick {
        (5_000, 3, 20)
    } else {
        (20_000, 5, 40)
    };
    (examples / words.max(1)).clamp(lo, hi)
}

/// Test words shown in the report.
const EXAMPLES: usize = 10;

pub fn run(config: &G2pDemoConfig, device: &Device) -> Result<G2pDemoResults> {
    let columns = |target: &str| PairColumns {
        source: "word".into(),
        target: target.into(),
    };
    let train_all = pairs::load(&config.data, Split::Train, &columns("gb"))?;
    let mut test = pairs::load(&config.data, Split::Test, &columns("gb"))?;
    let mut test_us = pairs::load(&config.data, Split::Test, &columns("us"))?;
    if let Some(n) = config.test_limit {
        let every: Vec<usize> = (0..test.len())
            .step_by(test.len().div_ceil(n.max(1)))
            .collect();
        test = test.subset(&every);
        test_us = test_us.subset(&every);
    }
    let largest = config.budgets.iter().copied().max().unwrap_or(0);
    if largest > train_all.len() {
        pretune::bail_input!(
            "{}: {} training words, fewer than the budget of {largest}",
            config.data.display(),
            train_all.len()
        );
    }

    // The pretrained model, imported as a user would (`pretune import --arch g2p-gru`).
    let vocab = config.weights.with_file_name("vocab.json");
    let imported = g2p::import(&config.weights, &vocab, device)?;
    let us_dir = config.out.join("g2p-en-us");
    imported.save(&us_dir)?;
    let parent = Checkpoint::open(&us_dir)?;
    let search = Search::greedy(0, pairs::MAX_GENERATED);
    let american = infer::transduce(&imported.model, &imported.input, &test_us.sources, &search)?;
    let unstressed: Vec<String> = american
        .iter()
        .map(|p| {
            p.split_whitespace()
                .map(|t| t.trim_end_matches(|c: char| c.is_ascii_digit()))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let american_score = ErrorRate::of_token_texts(test_us.targets.iter().zip(&unstressed));
    println!(
        "g2p_en (American, imported): {:.2}% phoneme error rate, {:.2}% words exactly right on {} test words",
        100.0 * american_score.rate(),
        100.0 * american_score.accuracy(),
        test_us.len()
    );

    // Both methods read spellings with g2p_en's characters and write the British phonemes of
    // the whole training table (the output alphabet is known; which words are is the budget).
    let input = PairInput {
        source_vocab: imported.input.source_vocab.clone(),
        target_vocab: Vocab::learn(train_all.targets.iter(), false),
    };
    let outputs = input.target_vocab.len();
    println!(
        "British English: {} training words, {} test words, {outputs}-token output vocabulary",
        train_all.len(),
        test.len()
    );
    let arch = models::arch(g2p::ARCH)?;
    let options = ModelOptions {
        seq2seq: Some(Seq2SeqConfig::g2p(input.source_vocab.len(), outputs)),
        ..Default::default()
    };

    let mut runs = Vec::new();
    let mut examples = Vec::new();
    let every: Vec<usize> = (0..train_all.len()).collect();
    for &words in &config.budgets {
        let epochs = epochs_for(words, config.quick);
        for seed in config.seed..config.seed + config.seeds as u64 {
            // A seeded draw of `words` words (one class: every word).
            let chosen = split::per_class(&vec![0; every.len()], &every, words, seed);
            let train = train_all.subset(&chosen);
            let (tuned, _) = parent.load_backbone(outputs, seed, device)?;
            let scratch = Classifier::new(arch, &options, outputs, seed, device);
            let mut said = Vec::new();
            for (method, model) in [("finetuned", tuned), ("scratch", scratch)] {
                let (run, spoken) =
                    train_and_score(method, model, &input, &train, &test, epochs, seed)?;
                runs.push(run);
                said.push(spoken);
            }
            if words == largest && seed == config.seed {
                examples = (0..test.len().min(EXAMPLES))
                    .map(|i| Example {
                        word: test.sources[i].clone(),
                        reference: test.targets[i].clone(),
                        finetuned: said[0][i].clone(),
                        scratch: said[1][i].clone(),
                    })
                    .collect();
            }
        }
    }
    Ok(G2pDemoResults {
        pretune_version: env!("CARGO_PKG_VERSION").to_string(),
        config: config.clone(),
        train_words: train_all.len(),
        test_words: test.len(),
        output_vocab: outputs,
        american_phoneme_error_rate: american_score.rate(),
        american_word_accuracy: american_score.accuracy(),
        runs,
        examples,
    })
}

/// Train `model` on `train` and score what it says for `test`, printing one line. Returns the
/// run and the model's outputs for the test words.
fn train_and_score(
    method: &str,
    model: Classifier,
    input: &PairInput,
    train: &PairSet,
    test: &PairSet,
    epochs: usize,
    seed: u64,
) -> Result<(G2pRun, Vec<String>)> {
    let started = Instant::now();
    let (lr, schedule, label_smoothing) = RunKind::Sequences.defaults();
    let recipe = Recipe {
        epochs,
        seed,
        batch_size: 32,
        lr,
        schedule,
        label_smoothing,
        ..Recipe::default()
    };
    let examples = PairExamples {
        set: train,
        source: &input.source_vocab,
        target: &input.target_vocab,
    };
    let outcome = train::fit(
        model,
        &examples,
        None,
        &Plan::all(recipe).keep(Keep::Last),
        &mut [],
        None,
    )?;
    let search = Search::greedy(0, pairs::MAX_GENERATED);
    let spoken = infer::transduce(&outcome.model, input, &test.sources, &search)?;
    let score = ErrorRate::of_token_texts(test.targets.iter().zip(&spoken));
    let run = G2pRun {
        method: method.into(),
        words: train.len(),
        seed,
        epochs,
        phoneme_error_rate: score.rate(),
        word_accuracy: score.accuracy(),
        seconds: started.elapsed().as_secs_f64(),
        train_loss: outcome.history.iter().map(|h| h.train_loss).collect(),
        words_per_second: train::throughput(&outcome.history),
    };
    println!(
        "{:>6} words  seed {seed}  {method:<9} {epochs:>2} epochs  {:>6.2}% phoneme error rate  {:>6.2}% words right  {:>4.0} s",
        run.words,
        100.0 * run.phoneme_error_rate,
        100.0 * run.word_accuracy,
        run.seconds
    );
    Ok((run, spoken))
}

/// Where the README's `scripts/g2p.sh` unpacks g2p_en.
pub const G2P_WEIGHTS: &str = "models/g2p-en/checkpoint20.npz";
/// The British pronunciation table in the repository (`scripts/make_g2p_gb.py`).
pub const G2P_DATA: &str = "data/g2p-en-gb.tsv.gz";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fewer_words_get_more_epochs_within_bounds() {
        assert_eq!(epochs_for(100, false), 40);
        assert_eq!(epochs_for(1000, false), 20);
        assert_eq!(epochs_for(10_000, false), 5);
        assert_eq!(epochs_for(100, true), 20);
        assert_eq!(epochs_for(1000, true), 5);
    }
}
