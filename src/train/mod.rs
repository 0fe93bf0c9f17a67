//! The one training loop behind `pretrain` and `finetune`.

mod recipe;

pub use recipe::{Optimizer, Recipe, Schedule, Strategy};

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::data::{ImageSet, Normalization, batch};
use crate::infer;
use crate::models::Classifier;

/// What one epoch did; one line of `metrics.jsonl` and one entry of the checkpoint's history.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EpochRecord {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub val_loss: Option<f64>,
    pub val_accuracy: Option<f64>,
    /// Learning rate at the end of the epoch.
    pub lr: f64,
    pub seconds: f64,
    /// Training throughput (validation excluded).
    pub images_per_second: f64,
}

/// The trained model and how it got there.
pub struct Outcome {
    pub model: Classifier,
    pub history: Vec<EpochRecord>,
    /// Epoch whose weights `model` holds.
    pub best_epoch: usize,
}

/// Train `model` on `train` under `recipe`, validating on `val` after every epoch and keeping the
/// weights of the best validation accuracy (the last epoch's when there is no validation set).
/// Each epoch is appended to `metrics_log` (a JSON-lines file) when given.
pub fn fit(
    mut model: Classifier,
    train: &ImageSet,
    val: Option<&ImageSet>,
    norm: &Normalization,
    recipe: &Recipe,
    metrics_log: Option<&Path>,
) -> Result<Outcome> {
    recipe.validate()?;
    let device = model.head.weight.device();
    if recipe.strategy == Strategy::LinearProbe {
        model.backbone = model.backbone.freeze();
    }
    let mut optim = optimizer(recipe);
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let mut rng = StdRng::seed_from_u64(recipe.seed ^ 0x5EED_0003);
    let mut order: Vec<usize> = (0..train.len()).collect();
    let steps_per_epoch = train.len().div_ceil(recipe.batch_size);
    let total_steps = steps_per_epoch * recipe.epochs;
    let mut log = match metrics_log {
        Some(p) => Some(std::fs::File::create(p).with_context(|| format!("{}: cannot create", p.display()))?),
        None => None,
    };

    let mut history = Vec::with_capacity(recipe.epochs);
    let mut best: Option<(f64, usize, Classifier)> = None;
    let mut step = 0;
    for epoch in 1..=recipe.epochs {
        order.shuffle(&mut rng);
        let bar = epoch_bar(epoch, recipe.epochs, train.len());
        let started = Instant::now();
        let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
        let mut lr = recipe.lr;
        for chunk in order.chunks(recipe.batch_size) {
            lr = recipe.lr_at(step, steps_per_epoch, total_steps);
            let x = batch::images(train, chunk, norm, &device);
            let y = batch::labels(train, chunk, &device);
            let logits = model.forward(x);
            let hits = logits.clone().argmax(1).squeeze_dim::<1>(1).equal(y.clone()).int().sum();
            let loss = loss_fn.forward(logits, y);
            loss_sum += loss.clone().into_scalar::<f32>() as f64 * chunk.len() as f64;
            correct += hits.into_scalar::<i64>() as usize;
            seen += chunk.len();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(lr, model, grads);
            step += 1;
            bar.inc(chunk.len() as u64);
            let rate = seen as f64 / started.elapsed().as_secs_f64().max(1e-9);
            bar.set_message(format!("loss {:.4}  acc {:.4}  {rate:.0} img/s", loss_sum / seen as f64, correct as f64 / seen as f64));
        }
        let train_seconds = started.elapsed().as_secs_f64();
        let (val_loss, val_accuracy) = match val {
            Some(v) if !v.is_empty() => {
                let (l, a) = infer::loss_and_accuracy(&model, v, norm);
                (Some(l), Some(a))
            }
            _ => (None, None),
        };
        let record = EpochRecord {
            epoch,
            train_loss: loss_sum / seen.max(1) as f64,
            train_accuracy: correct as f64 / seen.max(1) as f64,
            val_loss,
            val_accuracy,
            lr,
            seconds: started.elapsed().as_secs_f64(),
            images_per_second: seen as f64 / train_seconds.max(1e-9),
        };
        if !record.train_loss.is_finite() {
            anyhow::bail!("training diverged at epoch {epoch} (loss is {}); try a lower --lr", record.train_loss);
        }
        finish_bar(&bar, &record, recipe.epochs);
        if let Some(f) = log.as_mut() {
            writeln!(f, "{}", serde_json::to_string(&record)?)?;
        }
        // Keep the best weights by validation accuracy; ties go to the later epoch only when
        // there is no validation set (then "best" is simply the last).
        let score = record.val_accuracy.unwrap_or(f64::INFINITY);
        if best.as_ref().is_none_or(|(s, _, _)| score > *s || score.is_infinite()) {
            best = Some((score, epoch, model.clone()));
        }
        history.push(record);
    }
    let (_, best_epoch, model) = best.expect("at least one epoch ran");
    Ok(Outcome { model, history, best_epoch })
}

fn optimizer(recipe: &Recipe) -> ModuleOptimizer {
    match recipe.optimizer {
        Optimizer::Sgd => SgdConfig::new()
            .with_momentum((recipe.momentum > 0.0).then(|| MomentumConfig { momentum: recipe.momentum, dampening: 0.0, nesterov: false }))
            .with_weight_decay((recipe.weight_decay > 0.0).then(|| WeightDecayConfig::new(recipe.weight_decay as f32)))
            .init(),
        Optimizer::Adamw => AdamWConfig::new().with_weight_decay(recipe.weight_decay as f32).init(),
    }
}

/// A progress bar for one epoch on a terminal; hidden (we print a plain line instead) otherwise.
fn epoch_bar(epoch: usize, epochs: usize, images: usize) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(images as u64), ProgressDrawTarget::hidden());
    if std::io::stdout().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::stdout());
        bar.set_style(
            ProgressStyle::with_template("epoch {prefix} [{bar:30.cyan/blue}] {pos}/{len} {msg} ({eta})")
                .expect("valid template")
                .progress_chars("=> "),
        );
    }
    bar.set_prefix(format!("{epoch:>width$}/{epochs}", width = epochs.to_string().len()));
    bar
}

fn finish_bar(bar: &ProgressBar, r: &EpochRecord, epochs: usize) {
    let val = match (r.val_loss, r.val_accuracy) {
        (Some(l), Some(a)) => format!("  val_loss {l:.4}  val_acc {a:.4}"),
        _ => String::new(),
    };
    let line = format!(
        "epoch {:>w$}/{epochs}  loss {:.4}  acc {:.4}{val}  lr {:.2e}  {:.0} img/s  {:.1}s",
        r.epoch,
        r.train_loss,
        r.train_accuracy,
        r.lr,
        r.images_per_second,
        r.seconds,
        w = epochs.to_string().len()
    );
    if bar.is_hidden() {
        println!("{line}");
    } else {
        bar.finish_and_clear();
        println!("{line}");
    }
}
