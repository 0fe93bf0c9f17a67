//! The text demo's report: `results.json`, `report.md` and two charts.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};

use pretune::fs::write_atomic;

use super::charts::{self, Panel, Series, per_epoch};
use super::{REPORT_FILE, RESULTS_FILE};
use crate::demo::mean_std;
use crate::demo::topics::{METHODS, PretrainSummary, TextDemoResults};

pub const PERPLEXITY_CHART: &str = "lm_perplexity.png";
pub const LOSS_CHART: &str = "training_loss.png";

/// Write results, report and charts into `dir`.
pub fn write(dir: &Path, r: &TextDemoResults) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("{}: cannot create the output directory", dir.display()))?;
    write_atomic(
        &dir.join(RESULTS_FILE),
        serde_json::to_string_pretty(r)?.as_bytes(),
    )?;
    let perplexities = |title: &str, summary: &PretrainSummary| Panel {
        title: title.into(),
        x_label: "epoch".into(),
        y_label: "perplexity".into(),
        log_x: false,
        y_percent: false,
        series: vec![
            Series {
                label: "train".into(),
                color: 0,
                points: per_epoch(&summary.train_perplexity),
            },
            Series {
                label: "held-out".into(),
                color: 1,
                points: per_epoch(&summary.val_perplexity),
            },
        ],
    };
    let mut panels = vec![perplexities("BERT-Mini: masked language modelling", &r.mlm)];
    if let Some(lm) = &r.lm {
        panels.push(perplexities("AWD-LSTM: next-token language modelling", lm));
    }
    charts::draw(&dir.join(PERPLEXITY_CHART), &panels)?;
    charts::draw(
        &dir.join(LOSS_CHART),
        &[Panel {
            title: format!("Learning {} topics", r.classes.len()),
            x_label: "epoch".into(),
            y_label: "training loss (mean over seeds)".into(),
            log_x: false,
            y_percent: false,
            series: METHODS
                .iter()
                .enumerate()
                .filter(|(_, (method, _))| !r.of(method).is_empty())
                .map(|(i, (method, _))| {
                    let runs = r.of(method);
                    let epochs = runs.iter().map(|x| x.train_loss.len()).min().unwrap_or(0);
                    let mean: Vec<f64> = (0..epochs)
                        .map(|e| {
                            mean_std(&runs.iter().map(|x| x.train_loss[e]).collect::<Vec<_>>()).0
                        })
                        .collect();
                    Series {
                        label: method.to_string(),
                        color: i,
                        points: per_epoch(&mean),
                    }
                })
                .collect(),
        }],
    )?;
    write_atomic(&dir.join(REPORT_FILE), markdown(r).as_bytes())
}

/// Mean and standard deviation over seeds of one method's test accuracy.
fn accuracy(r: &TextDemoResults, method: &str) -> (f64, f64) {
    mean_std(
        &r.of(method)
            .iter()
            .map(|x| x.test_accuracy)
            .collect::<Vec<_>>(),
    )
}

/// The results as a Markdown table: one row per method, mean ± std over seeds.
pub fn table(r: &TextDemoResults) -> String {
    let mut t = String::from(
        "| model | how | test accuracy | − scratch | time per run | train texts/s |\n|---|---|---:|---:|---:|---:|\n",
    );
    let scratch = accuracy(r, "scratch").0;
    for (method, how) in METHODS {
        let runs = r.of(method);
        if runs.is_empty() {
            continue;
        }
        let n = runs.len().max(1) as f64;
        let (mean, std) = accuracy(r, method);
        let _ = writeln!(
            t,
            "| {method} | {how} | {:.2}% ± {:.1} | {:+.1} pts | {:.0} s | {:.1} |",
            100.0 * mean,
            100.0 * std,
            100.0 * (mean - scratch),
            runs.iter().map(|x| x.seconds).sum::<f64>() / n,
            runs.iter().map(|x| x.texts_per_second).sum::<f64>() / n,
        );
    }
    t
}

fn markdown(r: &TextDemoResults) -> String {
    let c = &r.config;
    let perplexity = |v: &[f64]| {
        v.iter()
            .map(|p| format!("{p:.1}"))
            .collect::<Vec<_>>()
            .join(" → ")
    };
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# pretune demo text: what pretraining buys for language\n"
    );
    let _ = writeln!(
        md,
        "The task: tell apart {} fortunes topics ({}) from {} labelled texts per topic ({} in all), scored on {} test texts \
         (the content-hashed 1-in-5 split, never trained on, not even as unlabelled text). The BERT classifiers train {} epoch(s) \
         with AdamW, batch 32, warm-up then linear decay (Hugging Face Trainer's recipe), and keep their last epoch. \
         Each of {} seed(s) draws its own labelled texts, which every model learns; the table gives mean ± standard deviation over seeds.\n",
        r.classes.len(),
        r.classes.join(", "),
        c.per_class,
        r.train_texts,
        r.test_texts,
        c.epochs,
        c.seeds
    );
    let _ = writeln!(md, "## Results\n\n{}", table(r));
    let _ = writeln!(
        md,
        "- **scratch**: BERT-Mini (4 layers, 256 wide) with a WordPiece vocabulary learned from the labelled texts, lr 1e-3.\n\
         - **mlm+finetune**: the same BERT-Mini first pretrained by masked language modelling (15% of tokens; 80% [MASK], 10% random, 10% kept) \
         for {} epoch(s) (batch 16, peak rate 5e-4 after half an epoch of warm-up) on {} unlabelled texts of every fortunes topic ({}-token vocabulary learned from them), then trained like scratch.\n\
         - **minilm**: the real all-MiniLM-L6-v2 ({}) with a new head, lr 5e-5.\n",
        c.mlm_epochs,
        r.mlm.texts,
        r.mlm.vocab_size,
        c.model.display()
    );
    if r.lm.is_some() {
        let _ = writeln!(
            md,
            "- **lm+ulmfit**: an AWD-LSTM (embedding 128, LSTMs 256, 256, 128; embedding, input, weight, hidden and output dropouts; \
             output layer tied to the embedding) pretrained as a next-token language model for {} epoch(s) on the same corpus and vocabulary \
             (AdamW at 3e-3, one-cycle, gradients clipped at 0.25), then fine-tuned ULMFiT's way: concat pooling and a batch-normalised head, the head alone for an epoch, \
             then one LSTM more each epoch from the top, then everything for two epochs (gradual unfreezing, 6 epochs in all), each stage at 1/2.6 of the rate above it, 2e-2 at the head.\n",
            c.lm_epochs
        );
    }
    let _ = writeln!(md, "![training loss per epoch]({LOSS_CHART})\n");
    let _ = writeln!(
        md,
        "## Language modelling\n\nBERT-Mini's masked-token perplexity on held-out corpus texts after each epoch: {} (training: {}), in {:.0} s.",
        perplexity(&r.mlm.val_perplexity),
        perplexity(&r.mlm.train_perplexity),
        r.mlm.seconds
    );
    if let Some(lm) = &r.lm {
        let _ = writeln!(
            md,
            "The AWD-LSTM's next-token perplexity: {} (training: {}), in {:.0} s.",
            perplexity(&lm.val_perplexity),
            perplexity(&lm.train_perplexity),
            lm.seconds
        );
    }
    let _ = writeln!(
        md,
        "Each ran once, for all seeds.\n\n![perplexity per epoch]({PERPLEXITY_CHART})\n"
    );
    let (scratch, mlm, minilm) = (
        accuracy(r, "scratch").0,
        accuracy(r, "mlm+finetune").0,
        accuracy(r, "minilm").0,
    );
    let _ = writeln!(
        md,
        "## What it means\n\nPretraining on unlabelled text of our own moves BERT-Mini from {:.1}% to {:.1}% ({:+.1} points); \
         a model pretrained by others on a billion sentence pairs, fine-tuned for {} epoch(s), reaches {:.1}% ({:+.1} points over scratch).\n",
        100.0 * scratch,
        100.0 * mlm,
        100.0 * (mlm - scratch),
        c.epochs,
        100.0 * minilm,
        100.0 * (minilm - scratch)
    );
    if r.lm.is_some() {
        let ulmfit = accuracy(r, "lm+ulmfit").0;
        let _ = writeln!(
            md,
            "The recurrent network pretrained the same way, on the same text, reaches {:.1}% ({:+.1} points over scratch).\n",
            100.0 * ulmfit,
            100.0 * (ulmfit - scratch)
        );
    }
    let _ = writeln!(
        md,
        "## Reproduce\n\n```\npretune demo text --data {} --model {} --classes {} --per-class {} --epochs {} --mlm-epochs {} --lm-epochs {}{} --seed {} --seeds {}\n```\n\nRaw results: [`{RESULTS_FILE}`]({RESULTS_FILE}).",
        c.data.display(),
        c.model.display(),
        c.classes,
        c.per_class,
        c.epochs,
        c.mlm_epochs,
        c.lm_epochs,
        c.corpus_limit
            .map_or(String::new(), |n| format!(" --corpus-limit {n}")),
        c.seed,
        c.seeds
    );
    md
}
