//! The vision demo's report: `results.json`, `report.md` and two charts.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use pretune::fs::write_atomic;

use super::charts::{self, Panel, Series};
use super::{REPORT_FILE, RESULTS_FILE};
use crate::demo::mean_std;
use crate::demo::vision::{DemoResults, Method, RecipeKind};

pub const ACCURACY_CHART: &str = "accuracy_vs_labels.png";
pub const CURVES_CHART: &str = "learning_curves.png";

/// Write results, report and charts into `dir`.
pub fn write(dir: &Path, results: &DemoResults) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("{}: cannot create the output directory", dir.display()))?;
    write_atomic(
        &dir.join(RESULTS_FILE),
        serde_json::to_string_pretty(results)?.as_bytes(),
    )?;
    charts::draw(&dir.join(ACCURACY_CHART), &[accuracy_panel(results)])?;
    charts::draw(&dir.join(CURVES_CHART), &curve_panels(results))?;
    write_atomic(&dir.join(REPORT_FILE), markdown(results).as_bytes())
}

fn budgets(r: &DemoResults) -> Vec<usize> {
    let mut b: Vec<usize> = r.results.iter().map(|x| x.labels_per_class).collect();
    b.sort_unstable();
    b.dedup();
    b
}

fn accuracy_panel(r: &DemoResults) -> Panel {
    Panel {
        title: format!("Test accuracy on {} new classes", r.target_classes.len()),
        x_label: "labelled images per class".into(),
        y_label: "test accuracy (mean over seeds)".into(),
        log_x: true,
        y_percent: true,
        series: Method::ALL
            .iter()
            .map(|&m| Series {
                label: m.name().into(),
                color: m as usize,
                points: budgets(r)
                    .into_iter()
                    .map(|b| (b as f64, mean_std(&r.accuracies(b, m)).0))
                    .collect(),
            })
            .collect(),
    }
}

fn curve_panels(r: &DemoResults) -> Vec<Panel> {
    budgets(r)
        .into_iter()
        .map(|b| Panel {
            title: format!("{b} labels per class"),
            x_label: "epoch".into(),
            y_label: "validation accuracy".into(),
            log_x: false,
            y_percent: true,
            series: [Method::Scratch, Method::Finetune]
                .iter()
                .map(|&m| Series {
                    label: m.name().into(),
                    color: m as usize,
                    points: r
                        .mean_curve(b, m)
                        .iter()
                        .enumerate()
                        .map(|(e, &a)| ((e + 1) as f64, a))
                        .collect(),
                })
                .collect(),
        })
        .collect()
}

/// The summary table as Markdown: one row per budget, mean ± std of each method.
pub fn table(r: &DemoResults) -> String {
    let mut t = String::from(
        "| labels/class | epochs | scratch | linear probe | fine-tune | fine-tune − scratch |\n|---:|---:|---:|---:|---:|---:|\n",
    );
    for b in budgets(r) {
        let epochs = r
            .results
            .iter()
            .find(|x| x.labels_per_class == b)
            .map_or(0, |x| x.epochs);
        let cell = |m| {
            let (mean, std) = mean_std(&r.accuracies(b, m));
            format!("{:.1}% ± {:.1}", 100.0 * mean, 100.0 * std)
        };
        let gain = mean_std(&r.accuracies(b, Method::Finetune)).0
            - mean_std(&r.accuracies(b, Method::Scratch)).0;
        let _ = writeln!(
            t,
            "| {b} | {epochs} | {} | {} | {} | {:+.1} pts |",
            cell(Method::Scratch),
            cell(Method::LinearProbe),
            cell(Method::Finetune),
            100.0 * gain
        );
    }
    t
}

/// First epoch (1-based) at which `curve` reaches `target`.
fn epoch_reaching(curve: &[f64], target: f64) -> Option<usize> {
    curve.iter().position(|&a| a >= target).map(|e| e + 1)
}

/// "How much sooner": for each budget, when fine-tuning reaches the best validation accuracy
/// that training from scratch ever reached.
pub fn speedups(r: &DemoResults) -> Vec<String> {
    budgets(r)
        .into_iter()
        .map(|b| {
            let scratch = r.mean_curve(b, Method::Scratch);
            let finetune = r.mean_curve(b, Method::Finetune);
            let best = scratch.iter().cloned().fold(0.0, f64::max);
            let at = epoch_reaching(&scratch, best).unwrap_or(scratch.len());
            match epoch_reaching(&finetune, best) {
                Some(e) if e < at => format!(
                    "{b} labels/class: fine-tuning reaches scratch's best validation accuracy ({:.1}%, at its epoch {at} of {}) after {e} epoch(s): {:.1}× sooner.",
                    100.0 * best,
                    scratch.len(),
                    at as f64 / e as f64
                ),
                Some(e) => format!(
                    "{b} labels/class: fine-tuning reaches scratch's best validation accuracy ({:.1}%) at epoch {e}, scratch at epoch {at} of {}: no sooner.",
                    100.0 * best,
                    scratch.len()
                ),
                None => format!("{b} labels/class: fine-tuning never reaches scratch's best validation accuracy ({:.1}%).", 100.0 * best),
            }
        })
        .collect()
}

fn markdown(r: &DemoResults) -> String {
    let c = &r.config;
    let recipe = match c.recipe {
        RecipeKind::Default => {
            "pretune's default recipe: AdamW with weight decay 0.01 (not on biases), batch 32, a one-cycle learning-rate schedule peaking at 2e-3, label smoothing 0.1, random crops and horizontal flips below 100 labels per class (except for the linear probe, which trains on cached features); fine-tuning first trains the new head alone with the backbone frozen (a tenth of the epochs), then everything at half the rate, each backbone stage at 0.7 of the rate of the stage above it. Pretraining used pretune's command-line defaults (AdamW 1e-3, batch 64, cosine schedule, label smoothing 0.1)"
        }
        RecipeKind::Plain => {
            "the plain recipe: Adam at a constant 1e-3, batch 64, no schedule, no augmentation; fine-tuning trains every layer at one rate"
        }
    };
    let mut md = String::new();
    let _ = writeln!(md, "# pretune demo: what pretraining buys\n");
    let _ = writeln!(
        md,
        "A small CNN was **pretrained** for {} epoch(s) on {} Fashion-MNIST images of {} classes ({}); it scored {:.1}% on their test images. \
         The task is then to tell apart {} **new classes** ({}) from only a few labelled images per class. Three ways were compared, each with {} seed(s) per label budget:\n",
        r.pretrain.epochs,
        r.pretrain.images,
        r.source_classes.len(),
        r.source_classes.join(", "),
        100.0 * r.pretrain.test_accuracy,
        r.target_classes.len(),
        r.target_classes.join(", "),
        c.seeds
    );
    let _ = writeln!(
        md,
        "- **scratch** — the same network trained from random weights;"
    );
    let _ = writeln!(
        md,
        "- **linear probe** — the pretrained backbone frozen, only a new output layer trained;"
    );
    let _ = writeln!(
        md,
        "- **fine-tune** — the pretrained backbone with a new output layer, everything trained.\n"
    );
    let _ = writeln!(
        md,
        "All three used {recipe}. Every model keeps its last epoch's weights and is scored on the {} test images of the new classes.\n",
        r.test_images
    );
    let _ = writeln!(
        md,
        "## Results\n\nTest accuracy, mean ± standard deviation over seeds:\n\n{}",
        table(r)
    );
    let _ = writeln!(
        md,
        "![test accuracy against labelled images per class]({ACCURACY_CHART})\n"
    );
    let _ = writeln!(
        md,
        "## How much sooner\n\nValidation accuracy after each epoch ({} held-out labelled images of the new classes, never trained on), mean over seeds:\n",
        r.val_images
    );
    let _ = writeln!(
        md,
        "![learning curves: scratch against fine-tune]({CURVES_CHART})\n"
    );
    for line in speedups(r) {
        let _ = writeln!(md, "- {line}");
    }
    let _ = writeln!(md, "\n## What it means\n\n{}\n", conclusion(r));
    let _ = writeln!(
        md,
        "## Reproduce\n\n```\npretune demo --data {} --source {} --target {} --labels {} --seeds {} --recipe {}{}\n```\n\nSame seed, same numbers. Raw results: [`{RESULTS_FILE}`]({RESULTS_FILE}).",
        c.data.display(),
        c.source,
        c.target,
        c.labels
            .iter()
            .map(|l| l.to_string())
            .collect::<Vec<_>>()
            .join(","),
        c.seeds,
        serde_json::to_value(c.recipe)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default(),
        if c.quick { " --quick" } else { "" }
    );
    md
}

fn conclusion(r: &DemoResults) -> String {
    let mean = |b, m| mean_std(&r.accuracies(b, m)).0;
    let mut lines: Vec<String> = budgets(r)
        .into_iter()
        .map(|b| {
            let (s, f, p) = (mean(b, Method::Scratch), mean(b, Method::Finetune), mean(b, Method::LinearProbe));
            let verdict = if f > s { "beats" } else { "does not beat" };
            format!(
                "With {b} labels per class, fine-tuning {verdict} training from scratch ({:.1}% vs {:.1}%, {:+.1} points); the frozen pretrained features alone give {:.1}%.",
                100.0 * f,
                100.0 * s,
                100.0 * (f - s),
                100.0 * p
            )
        })
        .collect();
    let gains: Vec<f64> = budgets(r)
        .into_iter()
        .map(|b| mean(b, Method::Finetune) - mean(b, Method::Scratch))
        .collect();
    if gains.len() > 1 && gains.windows(2).all(|w| w[0] >= w[1]) {
        lines.push("The fewer the labels, the more pretraining is worth.".into());
    }
    if budgets(r)
        .into_iter()
        .all(|b| mean(b, Method::LinearProbe) < mean(b, Method::Finetune))
    {
        lines.push(
            "A linear probe trails fine-tuning at every budget: features learned on the source classes do not separate the new classes on their own, so letting the backbone adapt is what pays."
                .into(),
        );
    }
    lines.join(" ")
}
