//! The summarization demo's report: `results.json`, `report.md` and two charts.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};

use pretune::fs::write_atomic;

use super::charts::{self, Panel, Series};
use super::{REPORT_FILE, RESULTS_FILE};
use crate::demo::summarize::{METHODS, SummarizeDemoResults};
use pretune::train::Strategy;

pub const ROUGE_CHART: &str = "rouge_l.png";
pub const LOSS_CHART: &str = "training_loss.png";

/// Write results, report and charts into `dir`.
pub fn write(dir: &Path, r: &SummarizeDemoResults) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("{}: cannot create the output directory", dir.display()))?;
    write_atomic(
        &dir.join(RESULTS_FILE),
        serde_json::to_string_pretty(r)?.as_bytes(),
    )?;
    let budgets = &r.config.budgets;
    let mut series: Vec<Series> = METHODS
        .iter()
        .enumerate()
        .map(|(i, (method, _))| Series {
            label: method.to_string(),
            color: i,
            points: budgets
                .iter()
                .filter_map(|&n| Some((n as f64, r.of(method, n)?.rouge.rouge_l)))
                .collect(),
        })
        .collect();
    series.push(Series {
        label: "lead-10".into(),
        color: 2,
        points: budgets
            .iter()
            .map(|&n| (n as f64, r.lead10.rouge_l))
            .collect(),
    });
    charts::draw(
        &dir.join(ROUGE_CHART),
        &[Panel {
            title: "Debian descriptions → synopses".into(),
            x_label: "training pairs".into(),
            y_label: "ROUGE-L F1 on the test pairs".into(),
            log_x: true,
            y_percent: true,
            series,
        }],
    )?;
    // One panel per budget: the loss after each of its epochs.
    let panels: Vec<Panel> = budgets
        .iter()
        .map(|&n| Panel {
            title: format!("Training on {n} pairs"),
            x_label: "epoch".into(),
            y_label: "training loss per token (label-smoothed)".into(),
            log_x: false,
            y_percent: false,
            series: METHODS
                .iter()
                .enumerate()
                .filter_map(|(i, (method, _))| {
                    let run = r.of(method, n)?;
                    Some(Series {
                        label: method.to_string(),
                        color: i,
                        points: charts::per_epoch(&run.train_loss),
                    })
                })
                .collect(),
        })
        .collect();
    charts::draw(&dir.join(LOSS_CHART), &panels)?;
    write_atomic(&dir.join(REPORT_FILE), markdown(r).as_bytes())
}

/// The results as a Markdown table: lead-10, then one row per budget and method.
pub fn table(r: &SummarizeDemoResults) -> String {
    let pct = |x: f64| format!("{:.2}", 100.0 * x);
    let mut t = String::from(
        "| pairs | method | epochs | ROUGE-1 | ROUGE-2 | ROUGE-L | ROUGE-L − lead-10 | s / epoch |\n|---:|---|---:|---:|---:|---:|---:|---:|\n",
    );
    let l = &r.lead10;
    let _ = writeln!(
        t,
        "| — | lead-10 | — | {} | {} | {} | — | — |",
        pct(l.rouge1),
        pct(l.rouge2),
        pct(l.rouge_l)
    );
    for &pairs in &r.config.budgets {
        for (method, _) in METHODS {
            let Some(run) = r.of(method, pairs) else {
                continue;
            };
            let _ = writeln!(
                t,
                "| {pairs} | {method} | {} | {} | {} | {} | {:+.2} | {:.0} |",
                run.epochs,
                pct(run.rouge.rouge1),
                pct(run.rouge.rouge2),
                pct(run.rouge.rouge_l),
                100.0 * (run.rouge.rouge_l - l.rouge_l),
                run.seconds_per_epoch
            );
        }
    }
    t
}

fn markdown(r: &SummarizeDemoResults) -> String {
    let c = &r.config;
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# pretune demo summarize: what a pretrained encoder buys a summarizer\n"
    );
    let budgets: Vec<String> = c.budgets.iter().map(usize::to_string).collect();
    let _ = writeln!(
        md,
        "The task: write a Debian package's one-line synopsis from its long description (`{}`: {} training pairs available, split \
         by source package). The models learn from {} pairs and are scored on {} pairs of the test split (every k-th) by ROUGE-1/2/L \
         F1 as Google's rouge-score computes them (lower-cased, no stemming). Sources are read up to {} tokens ({} of the {} test \
         sources were cut), targets up to {}.\n",
        c.data.display(),
        r.train_pairs_available,
        budgets.join(" and "),
        r.test_pairs,
        c.lengths.max_source_length,
        r.truncated_test_sources,
        r.test_pairs,
        c.lengths.max_target_length
    );
    let _ = writeln!(
        md,
        "- **warm-started**: BERT2BERT (Rothe, Narayan & Severyn 2020): the encoder and the decoder are both {} (6 layers, 384 wide); \
         the decoder's self-attention is causal, each of its layers has a new cross-attention block, and its output layer is its \
         word embedding table. {} parameters. {}\n\
         - **scratch**: the same encoder–decoder, the same WordPiece tokenizer, from random weights; everything learns.\n\
         - **lead-10**: the description's first ten words.\n\n\
         Both models train with the same recipe: AdamW at {:e} with linear decay, batch {}, teacher forcing, label smoothing 0.1, \
         batches grouped by length; {} decoding (no repeated trigram).\n",
        c.from.display(),
        r.parameters,
        match c.warm_strategy {
            Strategy::DecoderOnly =>
                "Its pretrained encoder is kept as it is (`decoder-only`): the decoder, its new cross-attention and the output layer learn.",
            _ => "Everything learns.",
        },
        c.lr,
        c.batch_size,
        if c.beams > 1 {
            format!("beam search over {} hypotheses", c.beams)
        } else {
            "greedy".to_string()
        }
    );
    let _ = writeln!(md, "## Results\n\n{}", table(r));
    let _ = writeln!(md, "![ROUGE-L per budget]({ROUGE_CHART})\n");
    let _ = writeln!(md, "![training loss per epoch]({LOSS_CHART})\n");
    let _ = writeln!(md, "Whole run: {:.0} s.\n", r.seconds);
    if !r.examples.is_empty() {
        let largest = c.budgets.iter().copied().max().unwrap_or(0);
        let _ = writeln!(
            md,
            "## Examples\n\nTest descriptions (first 120 characters), their real synopses, and what the models trained on {largest} pairs write:\n\n\
             | description | real synopsis | lead-10 | warm-started | scratch |\n|---|---|---|---|---|"
        );
        let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
        for e in &r.examples {
            let text: String = e.text.chars().take(120).collect();
            let _ = writeln!(
                md,
                "| {}… | {} | {} | {} | {} |",
                cell(&text),
                cell(&e.reference),
                cell(&e.lead10),
                cell(&e.warm_started),
                cell(&e.scratch)
            );
        }
        md.push('\n');
    }
    let epochs: Vec<String> = c.epochs.iter().map(usize::to_string).collect();
    let _ = writeln!(
        md,
        "## Reproduce\n\n```\npretune demo summarize --data {} --from {} --pairs {} --epochs {} \
         --warm-strategy {} --lr {:e} --batch-size {} --max-source-length {} \
         --max-target-length {} --beam {} --seed {} --test-pairs {}{}\n```\n\n\
         Raw results: [`{RESULTS_FILE}`]({RESULTS_FILE}).",
        c.data.display(),
        c.from.display(),
        budgets.join(","),
        epochs.join(","),
        clap::ValueEnum::to_possible_value(&c.warm_strategy)
            .map_or_else(String::new, |v| v.get_name().to_string()),
        c.lr,
        c.batch_size,
        c.lengths.max_source_length,
        c.lengths.max_target_length,
        c.beams,
        c.seed,
        c.test_pairs,
        if c.quick { " --quick" } else { "" }
    );
    md
}
