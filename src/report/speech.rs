//! The speech demo's report: `results.json`, `report.md` and a chart of the training runs.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};

use pretune::fs::write_atomic;

use super::charts::{self, Panel, Series, per_epoch};
use super::{REPORT_FILE, RESULTS_FILE};
use crate::demo::speech::{METHODS, SpeechDemoResults, SpeechRun};

pub const TRAINING_CHART: &str = "training.png";

/// Write results, report and chart into `dir`.
pub fn write(dir: &Path, r: &SpeechDemoResults) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("{}: cannot create the output directory", dir.display()))?;
    write_atomic(
        &dir.join(RESULTS_FILE),
        serde_json::to_string_pretty(r)?.as_bytes(),
    )?;
    let trained: Vec<(usize, &SpeechRun)> = r
        .runs
        .iter()
        .enumerate()
        .filter(|(_, run)| !run.train_loss.is_empty())
        .collect();
    let panel =
        |title: &str, y_label: &str, y_percent: bool, values: fn(&SpeechRun) -> &[f64]| Panel {
            title: title.into(),
            x_label: "epoch".into(),
            y_label: y_label.into(),
            log_x: false,
            y_percent,
            series: trained
                .iter()
                .map(|(i, run)| Series {
                    label: run.method.clone(),
                    color: *i,
                    points: per_epoch(values(run)),
                })
                .collect(),
        };
    charts::draw(
        &dir.join(TRAINING_CHART),
        &[
            panel("Training", "training loss", false, |run| &run.train_loss),
            panel(
                "Validation (espeak-ng voices)",
                "word error rate",
                true,
                |run| &run.val_word_error_rate,
            ),
        ],
    )?;
    write_atomic(&dir.join(REPORT_FILE), markdown(r).as_bytes())
}

fn run<'a>(r: &'a SpeechDemoResults, method: &str) -> Option<&'a SpeechRun> {
    r.runs.iter().find(|x| x.method == method)
}

/// The results as a Markdown table: one row per model.
pub fn table(r: &SpeechDemoResults) -> String {
    let mut t = format!(
        "| model | what | WER, flite voices ({} clips) | WER, real cards recordings ({}) | training time |\n|---|---|---:|---:|---:|\n",
        r.synthetic_references.len(),
        r.real_references.len()
    );
    for (method, what) in METHODS {
        if let Some(x) = run(r, method) {
            let _ = writeln!(
                t,
                "| {method} | {what} | {:.1}% | {:.1}% | {} |",
                100.0 * x.synthetic.word_error_rate,
                100.0 * x.real.word_error_rate,
                if x.seconds > 0.0 {
                    format!("{:.0} s", x.seconds)
                } else {
                    "-".into()
                }
            );
        }
    }
    t
}

fn markdown(r: &SpeechDemoResults) -> String {
    let c = &r.config;
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# pretune demo speech: what pretraining buys for speech\n"
    );
    let _ = writeln!(
        md,
        "The task: write down spoken playing-card names (the grammar of pocketsphinx's `cards` test set: a card, two or three cards, \
         a rank and a card, two ranks) and digit strings. Training data: {} clips ({:.0} s of audio) synthesised by espeak-ng with a \
         random voice of {} (8 accents x 10 variants), rate and pitch each, and {} more for validation. Test data, never trained on: \
         {} clips of flite's voices ({}), another synthesiser, and the five real recordings of `cards`. Word error rate as NIST \
         sclite counts it, both sides normalised (lower case, numbers spelled out, punctuation removed).\n",
        r.train_clips,
        r.train_seconds_of_audio,
        r.espeak_voices,
        r.val_clips,
        r.synthetic_references.len(),
        r.flite_voices.join(", ")
    );
    let _ = writeln!(md, "## Results\n\n{}", table(r));
    let _ = writeln!(
        md,
        "- **pretrained**: the real Whisper tiny.en ({}), greedy decoding as faster-whisper's, at most 40 tokens per clip.\n\
         - **fine-tuned**: its decoder (and token table) trained {} epoch(s) on the espeak-ng clips, encoder frozen (its output \
         computed once per clip), AdamW at 1e-4, batch 8, warm-up then linear decay; the epoch with the best validation WER kept.\n\
         - **scratch**: the same layers and tokenizer from random weights, every weight trained {} epoch(s) on the same clips \
         (AdamW at 5e-4 after half an epoch of warm-up), with a 3 s window instead of 30 s (every clip is shorter; training \
         through the encoder then costs a tenth); the best validation epoch kept.\n",
        c.model.display(),
        c.epochs,
        c.scratch_epochs
    );
    let _ = writeln!(
        md,
        "![training loss and validation WER per epoch]({TRAINING_CHART})\n"
    );
    let _ = writeln!(md, "## The real recordings\n");
    let _ = write!(md, "| file | reference |");
    for (method, _) in METHODS {
        let _ = write!(md, " {method} |");
    }
    let _ = writeln!(md, "\n|---|---|---|---|---|");
    for (i, (file, reference)) in r.real_files.iter().zip(&r.real_references).enumerate() {
        let name = Path::new(file)
            .file_name()
            .map_or(file.clone(), |n| n.to_string_lossy().into_owned());
        let _ = write!(md, "| {name} | {reference} |");
        for (method, _) in METHODS {
            let text = run(r, method)
                .and_then(|x| x.real.transcripts.get(i))
                .map_or("", String::as_str);
            let _ = write!(md, " {text} |");
        }
        let _ = writeln!(md);
    }
    let (pre, tuned, scratch) = (
        run(r, "pretrained"),
        run(r, "fine-tuned"),
        run(r, "scratch"),
    );
    if let (Some(pre), Some(tuned), Some(scratch)) = (pre, tuned, scratch) {
        let _ = writeln!(
            md,
            "\n## What it means\n\nA few minutes of synthetic speech move the pretrained model from {:.1}% to {:.1}% word errors on voices \
             of a synthesiser it was not tuned on, and from {:.1}% to {:.1}% on real recordings of the same vocabulary. The same \
             architecture learning from these clips alone reaches {:.1}% and {:.1}%: what the fine-tuned model knows of speech \
             came from pretraining, not from this data.\n",
            100.0 * pre.synthetic.word_error_rate,
            100.0 * tuned.synthetic.word_error_rate,
            100.0 * pre.real.word_error_rate,
            100.0 * tuned.real.word_error_rate,
            100.0 * scratch.synthetic.word_error_rate,
            100.0 * scratch.real.word_error_rate,
        );
    }
    let _ = writeln!(
        md,
        "## Reproduce\n\n```\npretune demo speech --model {} --recordings {} --train-clips {} --test-clips {} --epochs {} --scratch-epochs {} --seed {}\n```\n\n\
         The whole run took {:.0} s. Raw results: [`{RESULTS_FILE}`]({RESULTS_FILE}).",
        c.model.display(),
        c.recordings.display(),
        c.train_clips,
        c.test_clips,
        c.epochs,
        c.scratch_epochs,
        c.seed,
        r.seconds
    );
    md
}
