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

/// The methods that ran, in the table's order.
fn present(r: &DemoResults) -> Vec<Method> {
    Method::ALL
        .into_iter()
        .filter(|m| r.results.iter().any(|x| x.method == *m))
        .collect()
}

fn accuracy_panel(r: &DemoResults) -> Panel {
    Panel {
        title: format!("Test accuracy on {} new classes", r.target_classes.len()),
        x_label: "labelled images per class".into(),
        y_label: "test accuracy (mean over seeds)".into(),
        log_x: true,
        y_percent: true,
        series: present(r)
            .into_iter()
            .map(|m| Series {
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
            series: present(r)
                .into_iter()
                .filter(|m| !m.is_probe())
                .map(|m| Series {
                    label: m.name().into(),
                    color: m as usize,
                    points: charts::per_epoch(&r.mean_curve(b, m)),
                })
                .collect(),
        })
        .collect()
}

/// The summary table as Markdown: one row per budget, mean ± std of each method that ran, and
/// the best of them against scratch.
pub fn table(r: &DemoResults) -> String {
    let methods = present(r);
    let mut t = String::from("| labels/class | epochs |");
    for m in &methods {
        let _ = write!(t, " {} |", m.name());
    }
    t.push_str(" best − scratch |\n|---:|---:|");
    t.push_str(&"---:|".repeat(methods.len() + 1));
    t.push('\n');
    for b in budgets(r) {
        // The small CNN's epochs (EfficientNet's fine-tuning has its own, in the report).
        let epochs = r
            .results
            .iter()
            .find(|x| x.labels_per_class == b && x.method != Method::ImagenetFinetune)
            .map_or(0, |x| x.epochs);
        let _ = write!(t, "| {b} | {epochs} |");
        for &m in &methods {
            let (mean, std) = mean_std(&r.accuracies(b, m));
            let _ = write!(t, " {:.1}% ± {:.1} |", 100.0 * mean, 100.0 * std);
        }
        let best = methods
            .iter()
            .filter(|&&m| m != Method::Scratch)
            .map(|&m| (m, mean_std(&r.accuracies(b, m)).0))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        match (best, methods.contains(&Method::Scratch)) {
            (Some((m, acc)), true) => {
                let scratch = mean_std(&r.accuracies(b, Method::Scratch)).0;
                let _ = writeln!(t, " {} {:+.1} pts |", m.name(), 100.0 * (acc - scratch));
            }
            _ => t.push_str(" - |\n"),
        }
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
    let methods = present(r);
    if !(methods.contains(&Method::Scratch) && methods.contains(&Method::Finetune)) {
        return Vec::new();
    }
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
         The task is then to tell apart {} **new classes** ({}) from only a few labelled images per class. {} ways were compared, each with {} seed(s) per label budget:\n",
        r.pretrain.epochs,
        r.pretrain.images,
        r.source_classes.len(),
        r.source_classes.join(", "),
        100.0 * r.pretrain.test_accuracy,
        r.target_classes.len(),
        r.target_classes.join(", "),
        present(r).len(),
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
        "- **fine-tune** — the pretrained backbone with a new output layer, everything trained;"
    );
    let _ = writeln!(md, "{}", other_pretrainings(r));
    let _ = writeln!(
        md,
        "All used {recipe}. Every model keeps its last epoch's weights and is scored on the {} test images of the new classes.\n",
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

/// The bullets of the self-supervised and ImageNet rows, with what their pretraining was.
fn other_pretrainings(r: &DemoResults) -> String {
    let mut md = String::new();
    if let Some(s) = &r.simclr {
        let knn: Vec<String> = s
            .knn_accuracy
            .iter()
            .map(|a| format!("{:.1}%", 100.0 * a))
            .collect();
        let _ = writeln!(
            md,
            "- **simclr-probe**, **simclr-finetune** — the same small CNN pretrained *without labels* by SimCLR on {} Fashion-MNIST training images of all ten classes (labels ignored; {} epoch(s), batches of {}, NT-Xent at temperature {}, random resized crops of 20–100%, flips, brightness and contrast jitter; {:.0} s{}), then probed or fine-tuned as above. The k-nearest-neighbour (kNN, k = 20) accuracy of its features on 2,000 test images of all ten classes, after each epoch: {};",
            s.images,
            s.epochs,
            s.batch_size,
            s.temperature,
            s.seconds,
            if s.cached {
                ", made by an earlier run and read from its cache"
            } else {
                ", once: later runs read it from the cache"
            },
            knn.join(", ")
        );
    }
    if let Some(i) = &r.imagenet {
        let epochs: Vec<String> = budgets(r)
            .into_iter()
            .filter_map(|b| {
                r.results
                    .iter()
                    .find(|x| x.labels_per_class == b && x.method == Method::ImagenetFinetune)
                    .map(|x| format!("{} at {b}", x.epochs))
            })
            .collect();
        let _ = writeln!(
            md,
            "- **imagenet-probe**, **imagenet-finetune** — EfficientNet-Lite0 with its ImageNet weights ({}), reading the images resized to {}×{} and repeated to three channels; the probe trains the new output layer on features computed once for every image ({:.0} s); fine-tuning takes a fifth of the CNN's epochs ({} labels per class), as the network costs far more per image: the new head alone for half of them, then everything with the backbone at a tenth of the head's rate (in a single epoch: every stage at once, each at half the rate of the stage above it).",
            i.weights.display(),
            i.image_size,
            i.image_size,
            i.feature_seconds,
            epochs.join(", ")
        );
    }
    md
}

fn conclusion(r: &DemoResults) -> String {
    let methods = present(r);
    let has = |m| methods.contains(&m);
    if !(has(Method::Scratch) && has(Method::Finetune) && has(Method::LinearProbe)) {
        return pretrainings_compared(r);
    }
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
    lines.push(pretrainings_compared(r));
    lines.join(" ")
}

/// Which pretraining pays where: at each budget, each pretraining's better row against scratch.
fn pretrainings_compared(r: &DemoResults) -> String {
    let methods = present(r);
    let mean = |b, m| mean_std(&r.accuracies(b, m)).0;
    let families = [
        (
            "the supervised source-class pretraining",
            [Method::LinearProbe, Method::Finetune],
        ),
        (
            "SimCLR without labels",
            [Method::SimclrProbe, Method::SimclrFinetune],
        ),
        (
            "ImageNet (EfficientNet-Lite0)",
            [Method::ImagenetProbe, Method::ImagenetFinetune],
        ),
    ];
    if !methods.contains(&Method::Scratch) {
        return String::new();
    }
    let mut lines = Vec::new();
    for b in budgets(r) {
        let scratch = mean(b, Method::Scratch);
        let parts: Vec<String> = families
            .iter()
            .filter_map(|(name, rows)| {
                let (m, acc) = rows
                    .iter()
                    .filter(|m| methods.contains(m))
                    .map(|&m| (m, mean(b, m)))
                    .max_by(|a, b| a.1.total_cmp(&b.1))?;
                Some(format!(
                    "{name} {:.1}% ({}, {:+.1} points)",
                    100.0 * acc,
                    m.name(),
                    100.0 * (acc - scratch)
                ))
            })
            .collect();
        if !parts.is_empty() {
            lines.push(format!(
                "At {b} labels per class, against {:.1}% from scratch: {}.",
                100.0 * scratch,
                parts.join("; ")
            ));
        }
    }
    lines.join(" ")
}
