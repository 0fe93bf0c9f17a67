//! `pretune demo speech`: what pretraining buys for speech. Spoken playing-card names (the
//! grammar of pocketsphinx's `cards` test set) and digit strings are synthesised with many
//! espeak-ng voices; the real Whisper tiny.en is fine-tuned on them (decoder only), and the
//! same architecture is trained from random weights on the same clips. All three are scored
//! by word error rate on voices of another synthesiser (flite), never trained on, and on the
//! five real `cards` recordings.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::Result;
use burn::prelude::Device;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use pretune::data::{SpeechInput, SpeechSet, audio, split};
use pretune::interop::whisper;
use pretune::metrics::edit::Alignment;
use pretune::models::{self, Classifier, ModelOptions};
use pretune::train::observe::Display;
use pretune::train::{self, Frozen, Keep, Phase, Plan, Recipe, RunKind, Score};
use pretune::transcribe::{self, Transcriber};
use pretune::{bail_input, input_error};

/// What to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpeechDemoConfig {
    /// The pretrained Whisper directory (CTranslate2 or Hugging Face).
    pub model: PathBuf,
    /// pocketsphinx-testdata's directory: its `cards/` recordings are the real test set.
    pub recordings: PathBuf,
    /// Synthesised training clips (a share of them validates).
    pub train_clips: usize,
    /// Synthesised test clips, spread over the flite voices.
    pub test_clips: usize,
    pub epochs: usize,
    /// Epochs of the model trained from random weights.
    pub scratch_epochs: usize,
    pub seed: u64,
}

/// How one model did on one test set.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TestScore {
    pub word_error_rate: f64,
    pub errors: Alignment,
    /// What the model wrote for each clip.
    pub transcripts: Vec<String>,
}

/// One model: where it came from and how it did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpeechRun {
    /// `pretrained`, `fine-tuned` or `scratch`.
    pub method: String,
    pub synthetic: TestScore,
    pub real: TestScore,
    /// Training seconds (0 for the pretrained model).
    pub seconds: f64,
    pub train_loss: Vec<f64>,
    /// Word error rate on the validation clips after each epoch.
    pub val_word_error_rate: Vec<f64>,
}

/// Everything the speech demo measured (`results.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpeechDemoResults {
    pub pretune_version: String,
    pub config: SpeechDemoConfig,
    pub train_clips: usize,
    pub val_clips: usize,
    pub train_seconds_of_audio: f64,
    pub espeak_voices: usize,
    pub flite_voices: Vec<String>,
    pub synthetic_references: Vec<String>,
    pub real_files: Vec<String>,
    pub real_references: Vec<String>,
    pub runs: Vec<SpeechRun>,
    pub seconds: f64,
}

/// The methods, in the order the report shows them, with what each is.
pub const METHODS: [(&str, &str); 3] = [
    ("pretrained", "Whisper tiny.en as released"),
    (
        "fine-tuned",
        "Whisper tiny.en, decoder fine-tuned on the espeak-ng clips",
    ),
    (
        "scratch",
        "the same architecture from random weights, trained on the same clips",
    ),
];

const RANKS: [&str; 13] = [
    "ace", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "jack", "queen",
    "king",
];
const SUITS: [&str; 4] = ["clubs", "hearts", "diamonds", "spades"];
const DIGITS: [&str; 10] = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
];
/// espeak-ng's English accents and voice variants: 8 x 10 voices.
const ACCENTS: [&str; 8] = [
    "en-us",
    "en-gb",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-029",
    "en-us-nyc",
];
const VARIANTS: [&str; 10] = [
    "m1", "m3", "m5", "m7", "f1", "f2", "f4", "klatt", "croak", "Annie",
];
/// flite's voices (none of them espeak-ng's): the held-out speakers.
const FLITE_VOICES: [&str; 5] = ["kal", "kal16", "awb", "rms", "slt"];
/// Share of the training clips that validates.
const VAL_FRACTION: f64 = 0.1;
/// The scratch model hears 3 s windows (every clip is shorter), not 30 s: training through
/// the encoder then costs a tenth, which makes it affordable on 2 cores.
const SCRATCH_FRAMES: usize = 300;
/// Tokens a transcript may have here (the longest reference has about 20): a model that never
/// ends its sentences (from random weights) stops there instead of at 224.
const MAX_TOKENS: usize = 40;

/// A phrase of the `cards` grammar (a card, two or three cards, a rank and a card, two ranks)
/// or a string of 3 to 6 digits.
fn utterance(rng: &mut StdRng) -> String {
    let rank = |rng: &mut StdRng| RANKS[rng.random_range(0..RANKS.len())].to_string();
    let card = |rng: &mut StdRng| {
        let of = if rng.random_bool(0.85) { " of " } else { " " };
        format!(
            "{}{of}{}",
            rank(rng),
            SUITS[rng.random_range(0..SUITS.len())]
        )
    };
    match rng.random_range(0..10) {
        0..=3 => card(rng),
        4 => format!("{} {}", card(rng), card(rng)),
        5 => format!("{} {} {}", card(rng), card(rng), card(rng)),
        6 => format!("{} {}", rank(rng), card(rng)),
        7 => format!("{} {}", rank(rng), rank(rng)),
        _ => {
            let n = rng.random_range(3..=6);
            (0..n)
                .map(|_| DIGITS[rng.random_range(0..10)])
                .collect::<Vec<_>>()
                .join(" ")
        }
    }
}

/// Run a synthesiser, naming it when it is missing.
fn synthesise(program: &str, args: &[&str], package: &str) -> Result<()> {
    let status = Command::new(program)
        .args(args)
        .status()
        .map_err(|e| input_error!("{program}: cannot run ({e}): apt-get install {package}"))?;
    if !status.success() {
        bail_input!("{program} {}: failed ({status})", args.join(" "));
    }
    Ok(())
}

/// `n` clips: espeak-ng with a random voice, rate and pitch for each, or flite's voices in turn.
fn clips(dir: &Path, n: usize, flite: bool, rng: &mut StdRng) -> Result<SpeechSet> {
    std::fs::create_dir_all(dir)?;
    let (mut paths, mut samples, mut texts) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        let text = utterance(rng);
        let wav = dir.join(format!("{i:04}.wav"));
        let shown = wav.to_string_lossy().into_owned();
        // Commas give digit strings the pauses of someone reading them out.
        let spoken = if DIGITS.iter().any(|d| text.starts_with(d)) {
            text.replace(' ', ", ")
        } else {
            text.clone()
        };
        if flite {
            let voice = FLITE_VOICES[i % FLITE_VOICES.len()];
            synthesise(
                "flite",
                &["-voice", voice, "-t", &spoken, "-o", &shown],
                "flite",
            )?;
        } else {
            let voice = format!(
                "{}+{}",
                ACCENTS[rng.random_range(0..ACCENTS.len())],
                VARIANTS[rng.random_range(0..VARIANTS.len())]
            );
            let speed = rng.random_range(130..=190).to_string();
            let pitch = rng.random_range(30..=70).to_string();
            let args = [
                "-v", &voice, "-s", &speed, "-p", &pitch, "-w", &shown, &spoken,
            ];
            synthesise("espeak-ng", &args, "espeak-ng")?;
        }
        samples.push(audio::load(&wav, None)?);
        paths.push(wav);
        texts.push(text);
    }
    Ok(SpeechSet::new(paths, samples, texts))
}

/// The five real recordings of pocketsphinx's `cards` test set, with their references.
fn real_cards(recordings: &Path) -> Result<SpeechSet> {
    let dir = recordings.join("cards");
    let listing = dir.join("cards.transcription");
    let text = std::fs::read_to_string(&listing).map_err(|e| {
        input_error!(
            "{}: cannot read ({e}): apt-get install pocketsphinx-testdata",
            listing.display()
        )
    })?;
    let (mut paths, mut samples, mut texts) = (Vec::new(), Vec::new(), Vec::new());
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (words, id) = line
            .rsplit_once(" (")
            .ok_or_else(|| input_error!("{}: {line:?} has no (id)", listing.display()))?;
        let words: Vec<&str> = words
            .split_whitespace()
            .filter(|w| *w != "<s>" && *w != "</s>")
            .collect();
        let path = dir.join(format!("{}.wav", id.trim_end_matches(')')));
        samples.push(audio::load(&path, None)?);
        paths.push(path);
        texts.push(words.join(" "));
    }
    Ok(SpeechSet::new(paths, samples, texts))
}

/// A model's word errors on `set`, greedy, at most [`MAX_TOKENS`] tokens per clip; the
/// encoder's output of each clip given (`encoded`) or computed.
fn score(
    model: &Classifier,
    input: &SpeechInput,
    tokenizer: &pretune::data::TextTokenizer,
    set: &SpeechSet,
    encoded: Option<&(Vec<Vec<f32>>, [usize; 2])>,
) -> Result<TestScore> {
    let mut examples = set.examples(input, tokenizer)?;
    if let Some((values, shape)) = encoded {
        examples = examples.with_encoded(values.clone(), *shape);
    }
    let (errors, transcripts) = Transcriber::new(model, input, tokenizer, 1)?.score(&examples)?;
    Ok(TestScore {
        word_error_rate: errors.rate(),
        errors,
        transcripts: transcripts.iter().map(|t| t.trim().to_string()).collect(),
    })
}

/// Train `model` through `phases` on `train`, validating on `val` by word error rate.
fn fit(
    model: Classifier,
    input: &SpeechInput,
    tokenizer: &pretune::data::TextTokenizer,
    (train, val): (&SpeechSet, &SpeechSet),
    phases: Vec<Phase>,
    recipe: Recipe,
) -> Result<(Classifier, Vec<f64>, Vec<f64>, f64)> {
    let started = Instant::now();
    let (train_examples, val_examples) =
        transcribe::run_examples(&model, &phases, input, tokenizer, train, val)?;
    let plan = Plan::new(recipe, phases).keep(Keep::Best(Score::ErrorRate));
    let outcome = train::fit(
        model,
        train_examples.as_ref(),
        val_examples.as_deref(),
        &plan,
        &mut [&mut Display::new(false)],
        None,
    )?;
    let loss = outcome.history.iter().map(|h| h.train_loss).collect();
    let wer = outcome
        .history
        .iter()
        .filter_map(|h| h.val_error_rate)
        .collect();
    Ok((outcome.model, loss, wer, started.elapsed().as_secs_f64()))
}

/// Hugging Face Trainer's recipe with the demo's epochs, batch and rate.
fn recipe(epochs: usize, lr: f64, seed: u64) -> Recipe {
    let (_, schedule, label_smoothing) = RunKind::TextFinetune.defaults();
    Recipe {
        epochs,
        batch_size: 8,
        lr,
        schedule,
        label_smoothing,
        seed,
        ..Recipe::default()
    }
}

pub fn run(config: &SpeechDemoConfig, device: &Device) -> Result<SpeechDemoResults> {
    let started = Instant::now();
    let real = real_cards(&config.recordings)?;
    let pretrained = whisper::load(&config.model, device)?;
    let input = SpeechInput {
        max_tokens: MAX_TOKENS,
        ..pretrained.input.clone()
    };
    let tokenizer = &pretrained.tokenizer;
    let tmp = tempfile::tempdir()?;
    let mut rng = StdRng::seed_from_u64(config.seed);
    println!(
        "synthesising {} training clips (espeak-ng, {} voices) and {} test clips (flite: {})...",
        config.train_clips,
        ACCENTS.len() * VARIANTS.len(),
        config.test_clips,
        FLITE_VOICES.join(", ")
    );
    let all = clips(
        &tmp.path().join("espeak"),
        config.train_clips,
        false,
        &mut rng,
    )?;
    let synthetic = clips(&tmp.path().join("flite"), config.test_clips, true, &mut rng)?;
    let (train_idx, val_idx) = split::holdout(all.len(), VAL_FRACTION, config.seed);
    let (train, val) = (all.subset(&train_idx), all.subset(&val_idx));
    println!(
        "{} training clips ({:.0} s of audio), {} validation, {} synthetic and {} real test clips",
        train.len(),
        train.seconds(),
        val.len(),
        synthetic.len(),
        real.len()
    );

    // The pretrained model, and the fine-tuned one: its encoder never changes, so each test
    // clip is encoded once for both.
    let encode = |set: &SpeechSet| -> Result<(Vec<Vec<f32>>, [usize; 2])> {
        transcribe::encode_all(&pretrained.model, &set.examples(&input, tokenizer)?)
    };
    let (synthetic_encoded, real_encoded) = (encode(&synthetic)?, encode(&real)?);
    let evaluate =
        |model: &Classifier, input: &SpeechInput, cached: bool| -> Result<(TestScore, TestScore)> {
            Ok((
                score(
                    model,
                    input,
                    tokenizer,
                    &synthetic,
                    cached.then_some(&synthetic_encoded),
                )?,
                score(
                    model,
                    input,
                    tokenizer,
                    &real,
                    cached.then_some(&real_encoded),
                )?,
            ))
        };
    let mut runs = Vec::new();
    let (s, r) = evaluate(&pretrained.model, &input, true)?;
    report_line("pretrained", &s, &r);
    runs.push(SpeechRun {
        method: "pretrained".into(),
        synthetic: s,
        real: r,
        seconds: 0.0,
        train_loss: vec![],
        val_word_error_rate: vec![],
    });

    let decoder_only = vec![Phase {
        name: "decoder".into(),
        frozen: Frozen::Stages(0),
        ..Phase::all(config.epochs)
    }];
    let (tuned, loss, wer, seconds) = fit(
        pretrained.model.clone(),
        &input,
        tokenizer,
        (&train, &val),
        decoder_only,
        recipe(config.epochs, 1e-4, config.seed),
    )?;
    let (s, r) = evaluate(&tuned, &input, true)?;
    report_line("fine-tuned", &s, &r);
    runs.push(SpeechRun {
        method: "fine-tuned".into(),
        synthetic: s,
        real: r,
        seconds,
        train_loss: loss,
        val_word_error_rate: wer,
    });
    drop(tuned);

    // From random weights: the same layers and tokenizer, a 3 s window.
    let mut sizes = pretrained.config.clone();
    sizes.max_source_positions = SCRATCH_FRAMES / 2;
    let scratch_input = SpeechInput {
        frames: SCRATCH_FRAMES,
        ..input.clone()
    };
    let options = ModelOptions {
        whisper: Some(sizes.clone()),
        ..Default::default()
    };
    let model = Classifier::new(
        models::arch("whisper")?,
        &options,
        sizes.vocab_size,
        config.seed,
        device,
    );
    let (scratch, loss, wer, seconds) = fit(
        model,
        &scratch_input,
        tokenizer,
        (&train, &val),
        vec![Phase::all(config.scratch_epochs)],
        Recipe {
            warmup_epochs: 0.5,
            ..recipe(config.scratch_epochs, 5e-4, config.seed)
        },
    )?;
    let (s, r) = evaluate(&scratch, &scratch_input, false)?;
    report_line("scratch", &s, &r);
    runs.push(SpeechRun {
        method: "scratch".into(),
        synthetic: s,
        real: r,
        seconds,
        train_loss: loss,
        val_word_error_rate: wer,
    });
    Ok(SpeechDemoResults {
        pretune_version: env!("CARGO_PKG_VERSION").to_string(),
        config: config.clone(),
        train_clips: train.len(),
        val_clips: val.len(),
        train_seconds_of_audio: train.seconds(),
        espeak_voices: ACCENTS.len() * VARIANTS.len(),
        flite_voices: FLITE_VOICES.iter().map(|v| v.to_string()).collect(),
        synthetic_references: synthetic.texts.clone(),
        real_files: real.paths.iter().map(|p| p.display().to_string()).collect(),
        real_references: real.texts.clone(),
        runs,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn report_line(method: &str, synthetic: &TestScore, real: &TestScore) {
    println!(
        "{method:<11} word error rate: flite voices {:.1}%, real cards {:.1}% ({})",
        100.0 * synthetic.word_error_rate,
        100.0 * real.word_error_rate,
        real.transcripts.join(" | ")
    );
}

/// Where the README's `scripts/whisper.sh` unpacks Whisper tiny.en.
pub const WHISPER_DIR: &str = "models/whisper-tiny.en";
