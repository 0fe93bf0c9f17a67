//! The one training loop behind `pretrain`, `finetune` and the demo.
//!
//! A run is a list of [`Phase`]s (a fine-tune strategy is data); each phase freezes some parts of
//! the model and gives the rest their learning rates. When a phase freezes the whole backbone and
//! does not augment, the backbone's features are computed once and the head trains on them.

mod lr_find;
mod recipe;

pub use lr_find::{LrFinding, lr_find};
pub use recipe::{FinetuneOptions, Frozen, Optimizer, Phase, Recipe, Schedule, Strategy};

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use burn::module::{Module, ParamGroup};
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::lr_scheduler::module_lr_scheduler::{ModuleLearningRate, ModuleLrSchedulerConfig};
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, AdamWConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::prelude::*;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::data::{Augment, ImageSet, Normalization, batch};
use crate::infer;
use crate::models::Classifier;

/// What one epoch did; one line of `metrics.jsonl` and one entry of the checkpoint's history.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EpochRecord {
    pub epoch: usize,
    /// Name of the phase the epoch belonged to (`all`, `head`).
    #[serde(default)]
    pub phase: String,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub val_loss: Option<f64>,
    pub val_accuracy: Option<f64>,
    /// Peak learning rate of the head at the end of the epoch.
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

/// Options of a run beyond the recipe.
#[derive(Default)]
pub struct RunOptions<'a> {
    /// Append one JSON line per epoch here.
    pub metrics_log: Option<&'a Path>,
    /// Never train the head on cached features (for measuring what the cache buys).
    pub no_feature_cache: bool,
    /// No progress output at all (the demo prints its own).
    pub quiet: bool,
    /// Keep the last epoch's weights even when there is a validation set (it is then only watched).
    pub keep_last: bool,
}

/// Where a phase's training inputs come from: images through the backbone, or features cached
/// from a frozen backbone (then only the head runs).
#[allow(clippy::large_enum_variant)] // one value per phase
enum Inputs<'a> {
    Images(&'a ImageSet),
    Features {
        features: Tensor<2>,
        labels: &'a [usize],
    },
}

/// Train `model` through `phases` under `recipe`, validating on `val` after every epoch and keeping
/// the weights of the best validation accuracy (the last epoch's when there is no validation set).
pub fn fit(
    mut model: Classifier,
    train: &ImageSet,
    val: Option<&ImageSet>,
    norm: &Normalization,
    recipe: &Recipe,
    phases: &[Phase],
    options: &RunOptions,
) -> Result<Outcome> {
    recipe.validate()?;
    let device = model.head.weight.device();
    let loss_fn = CrossEntropyLossConfig::new()
        .with_smoothing((recipe.label_smoothing > 0.0).then_some(recipe.label_smoothing as f32))
        .init(&device);
    let mut rng = StdRng::seed_from_u64(recipe.seed ^ 0x5EED_0003);
    let mut log = match options.metrics_log {
        Some(p) => Some(
            std::fs::File::create(p).with_context(|| format!("{}: cannot create", p.display()))?,
        ),
        None => None,
    };
    let val = val.filter(|v| !v.is_empty());
    let total_epochs: usize = phases.iter().map(|p| p.epochs).sum();
    let mut history = Vec::with_capacity(total_epochs);
    let mut best: Option<(f64, usize, Classifier)> = None;

    'phases: for phase in phases {
        model = freeze_for(model, &phase.frozen);
        let cached = phase.frozen == Frozen::Backbone
            && recipe.augment == Augment::None
            && !options.no_feature_cache;
        let (inputs, val_inputs) = if cached {
            let f = |set: &ImageSet| {
                Tensor::<2>::from_data(infer::features(&model, set, norm).into_data(), &device)
            };
            (
                Inputs::Features {
                    features: f(train),
                    labels: &train.labels,
                },
                val.map(|v| Inputs::Features {
                    features: f(v),
                    labels: &v.labels,
                }),
            )
        } else {
            (Inputs::Images(train), val.map(Inputs::Images))
        };
        let mut optim = optimizer(recipe);
        let groups = lr_groups(&model, phase);
        let steps_per_epoch = train.len().div_ceil(recipe.batch_size);
        let phase_steps = steps_per_epoch * phase.epochs;
        let mut order: Vec<usize> = (0..train.len()).collect();
        let mut step = 0;
        for _ in 0..phase.epochs {
            let epoch = history.len() + 1;
            order.shuffle(&mut rng);
            let bar = epoch_bar(epoch, total_epochs, train.len(), options.quiet);
            let started = Instant::now();
            let (mut loss_sum, mut correct, mut seen, mut lr) = (0.0f64, 0usize, 0usize, 0.0);
            for chunk in order.chunks(recipe.batch_size) {
                lr = recipe.lr
                    * phase.lr_scale
                    * recipe.lr_factor(step, steps_per_epoch, phase_steps);
                let logits = match &inputs {
                    Inputs::Images(set) => model.forward(batch::augmented_images(
                        set,
                        chunk,
                        norm,
                        recipe.augment,
                        &mut rng,
                        &device,
                    )),
                    Inputs::Features { features, .. } => {
                        model.forward_head(features.clone().select(0, index_tensor(chunk, &device)))
                    }
                };
                let y = batch::labels(train, chunk, &device);
                let (updated, loss, hits) = optimise(
                    model,
                    logits,
                    y,
                    &loss_fn,
                    &mut optim,
                    learning_rates(lr, &groups),
                );
                model = updated;
                loss_sum += loss * chunk.len() as f64;
                correct += hits;
                seen += chunk.len();
                step += 1;
                bar.inc(chunk.len() as u64);
                let rate = seen as f64 / started.elapsed().as_secs_f64().max(1e-9);
                bar.set_message(format!(
                    "loss {:.4}  acc {:.4}  {rate:.0} img/s",
                    loss_sum / seen as f64,
                    correct as f64 / seen as f64
                ));
            }
            let train_seconds = started.elapsed().as_secs_f64();
            let (val_loss, val_accuracy) = match &val_inputs {
                Some(v) => {
                    let (l, a) = evaluate(&model, v, norm, &loss_fn);
                    (Some(l), Some(a))
                }
                None => (None, None),
            };
            let record = EpochRecord {
                epoch,
                phase: phase.name.clone(),
                train_loss: loss_sum / seen.max(1) as f64,
                train_accuracy: correct as f64 / seen.max(1) as f64,
                val_loss,
                val_accuracy,
                lr,
                seconds: started.elapsed().as_secs_f64(),
                images_per_second: seen as f64 / train_seconds.max(1e-9),
            };
            if !record.train_loss.is_finite() {
                anyhow::bail!(
                    "training diverged at epoch {epoch} (loss is {}); try a lower --lr",
                    record.train_loss
                );
            }
            bar.finish_and_clear();
            if !options.quiet {
                println!("{}", epoch_line(&record, total_epochs));
            }
            if let Some(f) = log.as_mut() {
                writeln!(f, "{}", serde_json::to_string(&record)?)?;
            }
            // Best validation accuracy wins (earliest on ties); without validation, the last epoch.
            let score = if options.keep_last {
                f64::INFINITY
            } else {
                record.val_accuracy.unwrap_or(f64::INFINITY)
            };
            if best
                .as_ref()
                .is_none_or(|(s, _, _)| score > *s || score.is_infinite())
            {
                best = Some((score, epoch, model.clone()));
            }
            history.push(record);
            if let (Some(patience), Some((_, best_epoch, _))) = (recipe.patience, &best)
                && val.is_some()
                && epoch - best_epoch >= patience
            {
                if !options.quiet {
                    println!("early stop: no better validation accuracy for {patience} epochs");
                }
                break 'phases;
            }
        }
    }
    let (_, best_epoch, model) = best.expect("at least one epoch ran");
    Ok(Outcome {
        model: model.unfreeze(),
        history,
        best_epoch,
    })
}

/// One optimisation step from a batch's `logits` and labels `y`: the updated model, the batch's
/// mean loss and how many predictions were right.
fn optimise(
    model: Classifier,
    logits: Tensor<2>,
    y: Tensor<1, Int>,
    loss_fn: &CrossEntropyLoss,
    optim: &mut ModuleOptimizer,
    lr: ModuleLearningRate,
) -> (Classifier, f64, usize) {
    let hits = logits
        .clone()
        .argmax(1)
        .squeeze_dim::<1>(1)
        .equal(y.clone())
        .int()
        .sum();
    let loss = loss_fn.forward(logits, y);
    let loss_value = loss.clone().into_scalar::<f32>() as f64;
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    (
        optim.step(lr, model, grads),
        loss_value,
        hits.into_scalar::<i64>() as usize,
    )
}

/// Mean loss and accuracy on validation inputs.
fn evaluate(
    model: &Classifier,
    inputs: &Inputs,
    norm: &Normalization,
    loss_fn: &CrossEntropyLoss,
) -> (f64, f64) {
    match inputs {
        Inputs::Images(set) => infer::loss_and_accuracy(model, set, norm),
        Inputs::Features { features, labels } => {
            let device = features.device();
            let logits = model.valid().forward_head(features.clone().inner());
            let plain = device.clone().without_autodiff();
            let y = Tensor::<1, Int>::from_data(
                TensorData::new(labels.iter().map(|&l| l as i64).collect(), [labels.len()]),
                &plain,
            );
            let correct = logits
                .clone()
                .argmax(1)
                .squeeze_dim::<1>(1)
                .equal(y.clone())
                .int()
                .sum()
                .into_scalar::<i64>();
            let loss = loss_fn.valid().forward(logits, y).into_scalar::<f32>();
            (loss as f64, correct as f64 / labels.len().max(1) as f64)
        }
    }
}

fn index_tensor(indices: &[usize], device: &Device) -> Tensor<1, Int> {
    Tensor::from_data(
        TensorData::new(indices.iter().map(|&i| i as i64).collect(), [indices.len()]),
        device,
    )
}

/// Freeze what `frozen` says and unfreeze the rest.
fn freeze_for(model: Classifier, frozen: &Frozen) -> Classifier {
    let mut model = model.unfreeze();
    match frozen {
        Frozen::Nothing => model,
        Frozen::Backbone => {
            model.backbone = model.backbone.freeze();
            model
        }
        Frozen::Stages(last) => {
            let group = model.backbone.stages()[..=*last]
                .iter()
                .fold(ParamGroup::from_ids(vec![]), |g, s| g.fuse(s));
            model.freeze_group(group)
        }
    }
}

/// Parameter groups and their rate relative to the head: the backbone's stages, top stage at
/// `backbone_lr_mult`, each one below at a further `layer_decay`.
fn lr_groups(model: &Classifier, phase: &Phase) -> Vec<(ParamGroup, f64)> {
    let stages = model.backbone.stages();
    let n = stages.len();
    stages
        .into_iter()
        .enumerate()
        .map(|(i, group)| {
            (
                group,
                phase.backbone_lr_mult * phase.layer_decay.powi((n - 1 - i) as i32),
            )
        })
        .filter(|(_, mult)| *mult != 1.0)
        .collect()
}

fn learning_rates(lr: f64, groups: &[(ParamGroup, f64)]) -> ModuleLearningRate {
    groups
        .iter()
        .fold(
            ModuleLrSchedulerConfig::new(lr.into()),
            |config, (group, mult)| config.with_group(group.clone(), lr * mult),
        )
        .init()
        .expect("constant learning rates are valid")
        .step()
}

/// The recipe's optimizer; biases are never weight-decayed.
fn optimizer(recipe: &Recipe) -> ModuleOptimizer {
    let wd = recipe.weight_decay;
    let biases = ParamGroup::from_predicate("bias");
    let clip = recipe
        .grad_clip
        .map(|c| GradientClippingConfig::Norm(c as f32));
    let optim = match recipe.optimizer {
        Optimizer::Sgd => {
            let sgd = |wd: f64| {
                SgdConfig::new()
                    .with_momentum((recipe.momentum > 0.0).then_some(MomentumConfig {
                        momentum: recipe.momentum,
                        dampening: 0.0,
                        nesterov: false,
                    }))
                    .with_weight_decay((wd > 0.0).then(|| WeightDecayConfig::new(wd as f32)))
            };
            sgd(wd)
                .init()
                .with_group(biases, sgd(0.0).build(), clip.as_ref().map(|c| c.init()))
        }
        Optimizer::Adam => AdamConfig::new().init(),
        Optimizer::Adamw => {
            let adamw = |wd: f64| AdamWConfig::new().with_weight_decay(wd as f32);
            adamw(wd)
                .init()
                .with_group(biases, adamw(0.0).build(), clip.as_ref().map(|c| c.init()))
        }
    };
    match clip {
        Some(c) => optim.with_grad_clipping(c.init()),
        None => optim,
    }
}

/// A progress bar for one epoch on a terminal; hidden otherwise (a plain line follows each epoch).
fn epoch_bar(epoch: usize, epochs: usize, images: usize, quiet: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(images as u64), ProgressDrawTarget::hidden());
    if !quiet && std::io::stdout().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::stdout());
        bar.set_style(
            ProgressStyle::with_template(
                "epoch {prefix} [{bar:30.cyan/blue}] {pos}/{len} {msg} ({eta})",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
    }
    bar.set_prefix(format!(
        "{epoch:>width$}/{epochs}",
        width = epochs.to_string().len()
    ));
    bar
}

fn epoch_line(r: &EpochRecord, epochs: usize) -> String {
    let val = match (r.val_loss, r.val_accuracy) {
        (Some(l), Some(a)) => format!("  val_loss {l:.4}  val_acc {a:.4}"),
        _ => String::new(),
    };
    format!(
        "epoch {:>w$}/{epochs} {:<4}  loss {:.4}  acc {:.4}{val}  lr {:.2e}  {:.0} img/s  {:.1}s",
        r.epoch,
        r.phase,
        r.train_loss,
        r.train_accuracy,
        r.lr,
        r.images_per_second,
        r.seconds,
        w = epochs.to_string().len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models;
    use burn::tensor::Distribution;

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_into_vec::<f32>().unwrap()
    }

    #[test]
    fn weight_decay_skips_biases() {
        let device = crate::training_device();
        let model = Classifier::new(models::arch("cnn").unwrap(), 3, &device);
        let x = Tensor::<4>::random([4, 1, 28, 28], Distribution::Normal(0.0, 1.0), &device);
        let y = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 1, 2, 0], [4]), &device);
        let loss = CrossEntropyLossConfig::new()
            .init(&device)
            .forward(model.forward(x), y);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let g_w = values(grads.get::<2>(model.head.weight.id).unwrap());
        let g_b = values(
            grads
                .get::<1>(model.head.bias.as_ref().unwrap().id)
                .unwrap(),
        );
        let (w0, b0) = (
            values(model.head.weight.val()),
            values(model.head.bias.as_ref().unwrap().val()),
        );

        // Plain SGD, rate 1, decay 0.5: w' = w - (g + 0.5 w) but b' = b - g.
        let recipe = Recipe {
            optimizer: Optimizer::Sgd,
            momentum: 0.0,
            weight_decay: 0.5,
            ..Recipe::default()
        };
        let model = optimizer(&recipe).step(1.0, model, grads);
        let (w1, b1) = (
            values(model.head.weight.val()),
            values(model.head.bias.as_ref().unwrap().val()),
        );
        for i in 0..w0.len() {
            assert!(
                (w1[i] - (w0[i] - g_w[i] - 0.5 * w0[i])).abs() < 1e-5,
                "weight {i} not decayed"
            );
        }
        for i in 0..b0.len() {
            assert!((b1[i] - (b0[i] - g_b[i])).abs() < 1e-6, "bias {i} decayed");
        }
    }
}
