//! The g2p demo's report: `results.json`, `report.md` and two charts.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};

use pretune::fs::write_atomic;

use super::charts::{self, Panel, Series};
use super::{REPORT_FILE, RESULTS_FILE};
use crate::demo::g2p::{G2pDemoResults, METHODS};
use crate::demo::mean_std;

pub const ERROR_CHART: &str = "phoneme_error_rate.png";
pub const LOSS_CHART: &str = "training_loss.png";

/// Write results, report and charts into `dir`.
pub fn write(dir: &Path, r: &G2pDemoResults) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("{}: cannot create the output directory", dir.display()))?;
    write_atomic(
        &dir.join(RESULTS_FILE),
        serde_json::to_string_pretty(r)?.as_bytes(),
    )?;
    let budgets = &r.config.budgets;
    charts::draw(
        &dir.join(ERROR_CHART),
        &[Panel {
            title: "American → British pronunciations".into(),
            x_label: "training words".into(),
            y_label: "phoneme error rate on held-out words".into(),
            log_x: true,
            y_percent: true,
            series: METHODS
                .iter()
                .enumerate()
                .map(|(i, (method, _))| Series {
                    label: method.to_string(),
                    color: i,
                    points: budgets
                        .iter()
                        .map(|&w| (w as f64, error_rate(r, method, w).0))
                        .collect(),
                })
                .collect(),
        }],
    )?;
    let largest = budgets.iter().copied().max().unwrap_or(0);
    charts::draw(
        &dir.join(LOSS_CHART),
        &[Panel {
            title: format!("Training on {largest} words"),
            x_label: "epoch".into(),
            y_label: "training loss per phoneme (first seed)".into(),
            log_x: false,
            y_percent: false,
            series: METHODS
                .iter()
                .enumerate()
                .filter_map(|(i, (method, _))| {
                    let run = r.of(method, largest).into_iter().next()?;
                    Some(Series {
                        label: method.to_string(),
                        color: i,
                        points: charts::per_epoch(&run.train_loss),
                    })
                })
                .collect(),
        }],
    )?;
    write_atomic(&dir.join(REPORT_FILE), markdown(r).as_bytes())
}

/// Mean and standard deviation over seeds of a method's phoneme error rate at `words`.
fn error_rate(r: &G2pDemoResults, method: &str, words: usize) -> (f64, f64) {
    mean_std(
        &r.of(method, words)
            .iter()
            .map(|x| x.phoneme_error_rate)
            .collect::<Vec<_>>(),
    )
}

/// The results as a Markdown table: one row per budget and method, mean ± std over seeds.
pub fn table(r: &G2pDemoResults) -> String {
    let mut t = String::from(
        "| words | method | epochs | phoneme error rate | − scratch | words right | time per run |\n|---:|---|---:|---:|---:|---:|---:|\n",
    );
    for &words in &r.config.budgets {
        let scratch = error_rate(r, "scratch", words).0;
        for (method, _) in METHODS {
            let runs = r.of(method, words);
            let n = runs.len().max(1) as f64;
            let (mean, std) = error_rate(r, method, words);
            let spread = if runs.len() > 1 {
                format!(" ± {:.1}", 100.0 * std)
            } else {
                String::new()
            };
            let gain = if method == "scratch" {
                "—".to_string()
            } else {
                format!("{:+.1} pts", 100.0 * (mean - scratch))
            };
            let _ = writeln!(
                t,
                "| {words} | {method} | {} | {:.2}%{spread} | {gain} | {:.1}% | {:.0} s |",
                runs.first().map_or(0, |x| x.epochs),
                100.0 * mean,
                100.0 * runs.iter().map(|x| x.word_accuracy).sum::<f64>() / n,
                runs.iter().map(|x| x.seconds).sum::<f64>() / n,
            );
        }
    }
    t
}

fn markdown(r: &G2pDemoResults) -> String {
    let c = &r.config;
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# pretune demo g2p: what pretraining buys a recurrent network\n"
    );
    let _ = writeln!(
        md,
        "The task: pronounce English words the British way — spelling in, espeak-ng's en-gb phonemes (IPA, stress marks attached) out — \
         learnt from {} training words, scored on {} held-out words by phoneme error rate (edit distance over the reference's length) \
         and the share of words exactly right. The table of {} training words and its word-level split are pinned in `{}`.\n",
        c.budgets
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        r.test_words,
        r.train_words,
        c.data.display()
    );
    let _ = writeln!(
        md,
        "- **finetuned**: g2p_en's real pretrained GRU encoder–decoder ({}), trained on American pronunciations (CMUdict, ARPAbet). \
         The encoder and the decoder's GRU are kept; the output vocabulary is new ({} British tokens): the decoder's embedding and the output layer start afresh.\n\
         - **scratch**: the same network (256-wide embeddings and GRUs) from random weights.\n\n\
         Both train on the same words with the same recipe: AdamW at 1e-3, cosine decay, batch 32, teacher forcing, more epochs for fewer words \
         (about {} pairs seen in all); greedy decoding. Each of {} seed(s) draws its own words.\n",
        c.weights.display(),
        r.output_vocab,
        if c.quick { "5,000" } else { "20,000" },
        c.seeds
    );
    let _ = writeln!(md, "## Results\n\n{}", table(r));
    let _ = writeln!(md, "![phoneme error rate per budget]({ERROR_CHART})\n");
    let _ = writeln!(md, "![training loss per epoch]({LOSS_CHART})\n");
    let _ = writeln!(
        md,
        "For scale: the imported American model, on the same test words in American English (stress stripped, as the table's CMUdict \
         pronunciations have none), has a phoneme error rate of {:.2}% and gets {:.1}% of the words exactly right — the words are mostly \
         CMUdict's, which it was trained on.\n",
        100.0 * r.american_phoneme_error_rate,
        100.0 * r.american_word_accuracy
    );
    if !r.examples.is_empty() {
        let largest = c.budgets.iter().copied().max().unwrap_or(0);
        let _ = writeln!(
            md,
            "## Examples\n\nHeld-out words, as the models trained on {largest} words say them:\n\n| word | espeak-ng en-gb | finetuned | scratch |\n|---|---|---|---|"
        );
        for e in &r.examples {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                e.word, e.reference, e.finetuned, e.scratch
            );
        }
        md.push('\n');
    }
    let budgets: Vec<String> = c.budgets.iter().map(usize::to_string).collect();
    let _ = writeln!(
        md,
        "## Reproduce\n\n```\npretune demo g2p --data {} --weights {} --words {} --seed {} --seeds {}{}{}\n```\n\nRaw results: [`{RESULTS_FILE}`]({RESULTS_FILE}).",
        c.data.display(),
        c.weights.display(),
        budgets.join(","),
        c.seed,
        c.seeds,
        c.test_limit
            .map_or(String::new(), |n| format!(" --test-limit {n}")),
        if c.quick { " --quick" } else { "" }
    );
    md
}
