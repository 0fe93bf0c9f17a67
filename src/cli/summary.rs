//! The table a training run ends with.

use std::path::Path;

use pretune::checkpoint::Meta;
use pretune::data::TrainingData;
use pretune::models::Task;

use super::args::facts_table;

/// What a finished run made, how well it does, and how long it took.
pub fn training(
    meta: &Meta,
    params: usize,
    sets: &TrainingData,
    out: &Path,
    seconds: f64,
) -> comfy_table::Table {
    let best = &meta.history[meta.best_epoch.max(1) - 1];
    let pct = |x: Option<f64>| x.map_or("-".to_string(), |a| format!("{:.2}%", 100.0 * a));
    let skipped: usize = meta.history.iter().map(|r| r.skipped_steps).sum();
    let learns = match meta.task {
        Task::Classify => format!("{} classes", meta.class_names.len()),
        Task::Mlm => format!("masked tokens of a {}-token vocabulary", meta.head_size()),
        Task::Lm => format!("next tokens of a {}-token vocabulary", meta.head_size()),
        Task::Seq2seq => format!("sequences of a {}-token vocabulary", meta.head_size()),
        Task::Transcribe => format!("transcripts of a {}-token vocabulary", meta.head_size()),
        Task::Contrastive => format!("{}-d projections of image views (SimCLR)", meta.head_size()),
    };
    let mut facts = vec![
        ("checkpoint", out.display().to_string()),
        (
            "model",
            format!("{} ({params} params), {learns}", meta.architecture),
        ),
        (
            "kept epoch",
            format!("{} of {}", meta.best_epoch, meta.history.len()),
        ),
        (
            sets.train.noun(),
            format!(
                "{} train, {} val{}",
                sets.train.len(),
                sets.val.len(),
                match sets.skipped {
                    0 => String::new(),
                    n => format!(", {n} unreadable skipped"),
                }
            ),
        ),
    ];
    match meta.task {
        Task::Classify => facts.extend([
            ("train accuracy", pct(Some(best.train_accuracy))),
            ("val accuracy", pct(best.val_accuracy)),
        ]),
        Task::Mlm | Task::Lm => facts.extend([
            ("train perplexity", format!("{:.1}", best.train_loss.exp())),
            (
                "val perplexity",
                best.val_loss
                    .map_or("-".into(), |l| format!("{:.1}", l.exp())),
            ),
            (
                if meta.task == Task::Lm {
                    "val next-token accuracy"
                } else {
                    "val masked-token accuracy"
                },
                pct(best.val_accuracy),
            ),
        ]),
        // Teacher-forced: the decoder reads the true previous token (`eval` decodes freely).
        Task::Seq2seq => facts.extend([
            ("train next-token accuracy", pct(Some(best.train_accuracy))),
            ("val next-token accuracy", pct(best.val_accuracy)),
        ]),
        Task::Transcribe => facts.extend([
            ("train token accuracy", pct(Some(best.train_accuracy))),
            ("val token accuracy", pct(best.val_accuracy)),
            ("val word error rate", pct(best.val_error_rate)),
        ]),
        // The views' accuracy: how often a view's most similar other view is its twin.
        Task::Contrastive => facts.extend([
            ("train twin accuracy", pct(Some(best.train_accuracy))),
            ("val twin accuracy", pct(best.val_accuracy)),
            (
                "val kNN accuracy",
                pct(best.val_error_rate.map(|e| 1.0 - e)),
            ),
        ]),
    }
    facts.push((
        "time",
        format!(
            "{seconds:.1} s ({:.0} train {}/s)",
            pretune::train::throughput(&meta.history),
            sets.train.noun()
        ),
    ));
    if skipped > 0 {
        facts.push(("non-finite steps skipped", skipped.to_string()));
    }
    facts_table(&facts)
}
