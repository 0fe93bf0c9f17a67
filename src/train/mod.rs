//! The one training loop behind `pretrain`, `finetune` and the demo.
//!
//! A run is a list of [`Phase`]s (a fine-tune strategy is data); each phase freezes some parts of
//! the model and gives the rest their learning rates. When a phase freezes the whole backbone and
//! does not augment, the backbone's features are computed once and the head trains on them.

mod lr_find;
mod recipe;
pub mod state;

pub use lr_find::{LrFinding, lr_find};
pub use recipe::{FinetuneOptions, Frozen, Optimizer, Phase, Recipe, RunKind, Schedule, Strategy};

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use burn::module::{Lora, Module, ParamGroup};
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

use crate::data::Augment;
use crate::data::batch::{self, Examples};
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
    /// Steps skipped for a non-finite loss (`--skip-nonfinite`).
    #[serde(default)]
    pub skipped_steps: usize,
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
    /// Save a resume state here after every epoch.
    pub state: Option<StateFile<'a>>,
    /// Also save it every this many steps.
    pub save_every: Option<usize>,
    /// Continue from this state.
    pub resume: Option<state::Snapshot>,
    /// Report perplexity (masked language modelling) rather than accuracy.
    pub perplexity: bool,
    /// Set (by a Ctrl-C handler) to stop after the current step, saving the state first.
    pub interrupt: Option<&'a std::sync::atomic::AtomicBool>,
}

/// Where to save the resume state, and the run description saved with it.
pub struct StateFile<'a> {
    pub path: &'a Path,
    pub run: serde_json::Value,
}

/// Where a phase's training inputs come from: examples through the backbone, or features
/// cached from a frozen backbone (then only the head runs).
#[allow(clippy::large_enum_variant)] // one value per phase
enum Inputs<'a> {
    Examples(&'a dyn Examples),
    Features {
        features: Tensor<2>,
        labels: &'a [usize],
    },
}

/// Train `model` through `phases` under `recipe`, validating on `val` after every epoch and keeping
/// the weights of the best validation accuracy (the last epoch's when there is no validation set).
///
/// With `options.state`, the run saves a resume state after every epoch (and every
/// `save_every` steps); with `options.resume`, it continues from one. The data order and the
/// augmentation of every batch derive from (seed, epoch, step) alone, so a resumed run repeats
/// the uninterrupted one exactly.
pub fn fit(
    mut model: Classifier,
    train: &dyn Examples,
    val: Option<&dyn Examples>,
    recipe: &Recipe,
    phases: &[Phase],
    options: &RunOptions,
) -> Result<Outcome> {
    recipe.validate()?;
    let device = model.head.weight.device();
    let loss_fn = CrossEntropyLossConfig::new()
        .with_smoothing((recipe.label_smoothing() > 0.0).then_some(recipe.label_smoothing() as f32))
        .init(&device);
    let val = val.filter(|v| !v.is_empty());
    let total_epochs: usize = phases.iter().map(|p| p.epochs).sum();
    let (mut progress, mut best, mut optim_state) = match &options.resume {
        Some(s) => (s.progress.clone(), s.best.clone(), Some(s.optim.clone())),
        None => (state::Progress::default(), model.clone(), None),
    };
    let mut log = match options.metrics_log {
        Some(p) => {
            // On resume, the log restarts from the history so far.
            let lines: String = progress
                .history
                .iter()
                .map(|r| serde_json::to_string(r).map(|l| l + "\n"))
                .collect::<Result<_, _>>()?;
            crate::checkpoint::write_atomic(p, lines.as_bytes())?;
            Some(
                std::fs::OpenOptions::new()
                    .append(true)
                    .open(p)
                    .with_context(|| format!("{}: cannot open", p.display()))?,
            )
        }
        None => None,
    };
    let steps_per_epoch = train.len().div_ceil(recipe.batch_size);
    let lengths = train.lengths();
    let noun = train.noun();

    let mut first_phase = true;
    for (phase_index, phase) in phases.iter().enumerate().skip(progress.phase) {
        if progress.stopped {
            break;
        }
        if phase_index > progress.phase {
            progress = state::Progress {
                phase: phase_index,
                epochs_done: 0,
                ..progress.next_epoch()
            };
            optim_state = None;
        }
        // A resumed run's model already carries its phase's LoRA adapters.
        let resumed = options.resume.is_some() && first_phase;
        first_phase = false;
        model = freeze_for(model, &phase.frozen, resumed);
        if progress.best_epoch == 0 {
            // The same structure as the model (with its adapters), for resume states.
            best = model.clone();
        }
        let cached = phase.frozen == Frozen::Backbone
            && recipe.augment == Augment::None
            && !options.no_feature_cache;
        let (inputs, val_inputs) = if cached {
            let f = |examples: &dyn Examples| {
                Tensor::<2>::from_data(infer::features(&model, examples).into_data(), &device)
            };
            (
                Inputs::Features {
                    features: f(train),
                    labels: train.labels(),
                },
                val.map(|v| Inputs::Features {
                    features: f(v),
                    labels: v.labels(),
                }),
            )
        } else {
            (Inputs::Examples(train), val.map(Inputs::Examples))
        };
        let mut optim = optimizer(recipe);
        if let Some(bytes) = optim_state.take() {
            optim = optim.from_bytes(bytes).map_err(|e| {
                crate::input_error!("the resume state's optimizer does not fit: {e}")
            })?;
        }
        let groups = lr_groups(&model, phase);
        let phase_steps = steps_per_epoch * phase.epochs;
        while progress.epochs_done < phase.epochs {
            let epoch = progress.history.len() + 1;
            let batches = epoch_batches(
                train.len(),
                lengths.as_deref(),
                recipe.batch_size,
                &mut StdRng::seed_from_u64(mix(recipe.seed, epoch as u64, u64::MAX)),
            );
            let bar = epoch_bar(epoch, total_epochs, train.len(), options.quiet);
            bar.inc(progress.seen as u64);
            let started = Instant::now();
            let mut lr = 0.0;
            for (step, chunk) in batches.iter().enumerate().skip(progress.steps_done) {
                let phase_step = progress.epochs_done * steps_per_epoch + step;
                lr = recipe.lr()
                    * phase.lr_scale
                    * recipe.lr_factor(phase_step, steps_per_epoch, phase_steps);
                // Dropout draws from the device's generator: seeded per step, a resumed run
                // drops out exactly what the uninterrupted one did.
                device.seed(mix(recipe.seed, epoch as u64, step as u64) ^ 0xD80);
                let (logits, y) = match &inputs {
                    Inputs::Examples(examples) => {
                        let mut rng =
                            StdRng::seed_from_u64(mix(recipe.seed, epoch as u64, step as u64));
                        let b = examples.batch(chunk, Some((recipe.augment, &mut rng)), &device);
                        (model.forward(b.input), b.targets)
                    }
                    Inputs::Features { features, labels } => (
                        model
                            .forward_head(features.clone().select(0, index_tensor(chunk, &device))),
                        batch::labels(labels, chunk, &device),
                    ),
                };
                let predicted = y.dims()[0];
                let done = optimise(
                    model,
                    logits,
                    y,
                    &loss_fn,
                    &mut optim,
                    learning_rates(lr, &groups),
                );
                model = done.model;
                if done.applied {
                    progress.loss_sum += done.loss * predicted as f64;
                    progress.correct += done.hits;
                    progress.predicted += predicted;
                    progress.seen += chunk.len();
                } else if recipe.skip_nonfinite {
                    progress.skipped += 1;
                } else {
                    bar.finish_and_clear();
                    return Err(Diverged {
                        epoch,
                        step: step + 1,
                        loss: done.loss,
                    }
                    .into());
                }
                progress.steps_done = step + 1;
                bar.inc(chunk.len() as u64);
                let rate = progress.seen as f64 / started.elapsed().as_secs_f64().max(1e-9);
                bar.set_message(format!(
                    "loss {:.4}  acc {:.4}  {rate:.0} {noun}/s",
                    progress.loss_sum / progress.predicted as f64,
                    progress.correct as f64 / progress.predicted as f64
                ));
                let interrupted = options
                    .interrupt
                    .is_some_and(|flag| flag.load(std::sync::atomic::Ordering::SeqCst));
                let due = options
                    .save_every
                    .is_some_and(|n| (phase_step + 1).is_multiple_of(n));
                if due || interrupted {
                    save_state(options, &progress, &model, &best, &optim)?;
                }
                if interrupted {
                    bar.finish_and_clear();
                    return Err(Interrupted {
                        epoch,
                        step: step + 1,
                    }
                    .into());
                }
            }
            let train_seconds = started.elapsed().as_secs_f64();
            let (val_loss, val_accuracy) = match &val_inputs {
                Some(v) => {
                    let (l, a) = evaluate(&model, v);
                    (Some(l), Some(a))
                }
                None => (None, None),
            };
            let predicted = progress.predicted.max(1) as f64;
            let record = EpochRecord {
                epoch,
                phase: phase.name.clone(),
                train_loss: progress.loss_sum / predicted,
                train_accuracy: progress.correct as f64 / predicted,
                val_loss,
                val_accuracy,
                lr,
                seconds: started.elapsed().as_secs_f64(),
                images_per_second: progress.seen as f64 / train_seconds.max(1e-9),
                skipped_steps: progress.skipped,
            };
            bar.finish_and_clear();
            if !options.quiet {
                println!(
                    "{}",
                    epoch_line(&record, total_epochs, noun, options.perplexity)
                );
            }
            if let Some(f) = log.as_mut() {
                writeln!(f, "{}", serde_json::to_string(&record)?)?;
            }
            // Best validation accuracy wins (earliest on ties), or for masked language modelling
            // the lowest validation loss; without validation, the last epoch.
            let score = match options.perplexity {
                true => record.val_loss.map(|l| -l),
                false => record.val_accuracy,
            };
            let better = match (score, progress.best_val) {
                _ if options.keep_last => true,
                (Some(a), Some(b)) => a > b,
                _ => true,
            };
            if better {
                best = model.clone();
                progress.best_epoch = epoch;
                progress.best_val = score.filter(|_| !options.keep_last);
            }
            progress.history.push(record);
            progress = state::Progress {
                epochs_done: progress.epochs_done + 1,
                ..progress.next_epoch()
            };
            if let Some(patience) = recipe.patience
                && val.is_some()
                && epoch - progress.best_epoch >= patience
            {
                if !options.quiet {
                    println!("early stop: no better validation accuracy for {patience} epochs");
                }
                progress.stopped = true;
            }
            save_state(options, &progress, &model, &best, &optim)?;
            if progress.stopped {
                break;
            }
        }
    }
    Ok(Outcome {
        // LoRA adapters merged into the weights they adapt.
        model: best.materialize().unfreeze(),
        history: progress.history,
        best_epoch: progress.best_epoch,
    })
}

/// Save the resume state, when the run keeps one.
fn save_state(
    options: &RunOptions,
    progress: &state::Progress,
    model: &Classifier,
    best: &Classifier,
    optim: &ModuleOptimizer,
) -> Result<()> {
    let Some(st) = &options.state else {
        return Ok(());
    };
    let optim = optim
        .into_bytes()
        .map_err(|e| anyhow::anyhow!("serialising the optimizer state: {e}"))?;
    state::save(st.path, &st.run, progress, model, best, &optim)
}

/// A run stopped by the user (Ctrl-C) after saving its resume state.
#[derive(Debug, thiserror::Error)]
#[error("interrupted at epoch {epoch}, step {step}; the resume state is saved")]
pub struct Interrupted {
    pub epoch: usize,
    pub step: usize,
}

/// Mini-batches of one epoch: a shuffled order, cut into batches. With example `lengths`,
/// examples are grouped by length within windows of 50 batches and the batches shuffled (Hugging
/// Face's `group_by_length`): batches pad little, and still differ from epoch to epoch.
fn epoch_batches(
    n: usize,
    lengths: Option<&[usize]>,
    batch_size: usize,
    rng: &mut StdRng,
) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(rng);
    let Some(lengths) = lengths else {
        return order.chunks(batch_size).map(<[usize]>::to_vec).collect();
    };
    let mut batches: Vec<Vec<usize>> = Vec::with_capacity(n.div_ceil(batch_size));
    for window in order.chunks_mut(batch_size * 50) {
        window.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
        batches.extend(window.chunks(batch_size).map(<[usize]>::to_vec));
    }
    batches.shuffle(rng);
    batches
}

/// A seed for one (run seed, epoch, step): independent streams without carrying RNG state.
fn mix(seed: u64, epoch: u64, step: u64) -> u64 {
    // splitmix64 over the three values.
    let mut z = seed ^ 0x5EED_0003;
    for v in [epoch, step] {
        z = z.wrapping_add(v).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
    }
    z
}

/// One optimisation step on a batch's logits, unless the loss is not finite: then nothing is
/// updated and `applied` is false. Returns the model, the batch's mean loss and its correct
/// predictions.
fn optimise(
    model: Classifier,
    logits: Tensor<2>,
    y: Tensor<1, Int>,
    loss_fn: &CrossEntropyLoss,
    optim: &mut ModuleOptimizer,
    lr: ModuleLearningRate,
) -> Step {
    let hits = infer::hits(&logits, &y);
    let loss = loss_fn.forward(logits, y);
    let loss_value = loss.clone().into_scalar::<f32>() as f64;
    if !loss_value.is_finite() {
        return Step {
            model,
            loss: loss_value,
            hits,
            applied: false,
        };
    }
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    Step {
        model: optim.step(lr, model, grads),
        loss: loss_value,
        hits,
        applied: true,
    }
}

struct Step {
    model: Classifier,
    loss: f64,
    hits: usize,
    applied: bool,
}

/// A loss that is no longer a number stopped the run.
#[derive(Debug, thiserror::Error)]
#[error(
    "training diverged at epoch {epoch}, step {step}: the loss is {loss}. Nothing saved before \
     this step was touched; try a lower --lr or --grad-clip, or --skip-nonfinite to skip such \
     steps"
)]
pub struct Diverged {
    pub epoch: usize,
    pub step: usize,
    pub loss: f64,
}

/// Mean loss (plain cross-entropy, whatever the training loss) and accuracy on validation inputs.
fn evaluate(model: &Classifier, inputs: &Inputs) -> (f64, f64) {
    match inputs {
        Inputs::Examples(examples) => infer::loss_and_accuracy(model, *examples),
        Inputs::Features { features, labels } => {
            let logits = model.valid().forward_head(features.clone().inner());
            let all: Vec<usize> = (0..labels.len()).collect();
            let targets = batch::labels(labels, &all, &logits.device());
            let (loss, hits) = infer::batch_loss_and_hits(logits, targets);
            (loss, hits as f64 / labels.len().max(1) as f64)
        }
    }
}

fn index_tensor(indices: &[usize], device: &Device) -> Tensor<1, Int> {
    Tensor::from_data(
        TensorData::new(indices.iter().map(|&i| i as i64).collect(), [indices.len()]),
        device,
    )
}

/// Freeze what `frozen` says and unfreeze the rest. A LoRA phase attaches its adapters unless
/// the model already has them (`has_adapters`: a resumed run).
fn freeze_for(model: Classifier, frozen: &Frozen, has_adapters: bool) -> Classifier {
    if let Frozen::Lora { rank, alpha } = frozen {
        let head = ParamGroup::ids_from_module(model.head.clone());
        let model = match has_adapters {
            true => model,
            false => lora(model, *rank, *alpha),
        };
        // Everything but the adapters and the head is frozen.
        return model.unfreeze_group(head);
    }
    let mut model = model.unfreeze();
    match frozen {
        Frozen::Nothing => model,
        Frozen::Backbone => {
            model.backbone = model.backbone.freeze();
            model
        }
        Frozen::Lora { .. } => unreachable!("handled above"),
        Frozen::Stages(last) => {
            let group = model.backbone.stages()[..=*last]
                .iter()
                .fold(ParamGroup::from_ids(vec![]), |g, s| g.fuse(s));
            model.freeze_group(group)
        }
    }
}

/// `model` with LoRA adapters of `rank` on its attention query and value weights, and every
/// other parameter frozen.
pub fn lora(model: Classifier, rank: usize, alpha: f64) -> Classifier {
    let targets = ParamGroup::from_regex(r"\.(query|value)\.weight$").expect("a valid pattern");
    model.apply_lora(Lora::new(rank, alpha).set_param_group(targets))
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

fn epoch_line(r: &EpochRecord, epochs: usize, noun: &str, perplexity: bool) -> String {
    let val = match (r.val_loss, r.val_accuracy) {
        (Some(l), _) if perplexity => format!("  val_loss {l:.4}  val_ppl {:.1}", l.exp()),
        (Some(l), Some(a)) => format!("  val_loss {l:.4}  val_acc {a:.4}"),
        _ => String::new(),
    };
    let train = match perplexity {
        true => format!("ppl {:.1}", r.train_loss.exp()),
        false => format!("acc {:.4}", r.train_accuracy),
    };
    let skipped = match r.skipped_steps {
        0 => String::new(),
        n => format!("  ({n} non-finite steps skipped)"),
    };
    format!(
        "epoch {:>w$}/{epochs} {:<4}  loss {:.4}  {train}{val}  lr {:.2e}  {:.0} {noun}/s  {:.1}s{skipped}",
        r.epoch,
        r.phase,
        r.train_loss,
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
    fn length_grouped_batches_cover_every_example_once_and_pad_less() {
        let lengths: Vec<usize> = (0..1000).map(|i| (i * 7919) % 300 + 1).collect();
        let padded = |batches: &[Vec<usize>]| -> usize {
            batches
                .iter()
                .map(|b| b.len() * b.iter().map(|&i| lengths[i]).max().unwrap())
                .sum()
        };
        let rng = || StdRng::seed_from_u64(7);
        let grouped = epoch_batches(1000, Some(&lengths), 32, &mut rng());
        let plain = epoch_batches(1000, None, 32, &mut rng());
        let mut seen: Vec<usize> = grouped.iter().flatten().copied().collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..1000).collect::<Vec<_>>());
        assert!(grouped.iter().all(|b| b.len() <= 32));
        // Grouped batches pad almost nothing; random ones pad near the longest in each batch.
        let real: usize = lengths.iter().sum();
        assert!(padded(&grouped) < real * 11 / 10, "{}", padded(&grouped));
        assert!(padded(&plain) > real * 3 / 2, "{}", padded(&plain));
        // Different epochs see different batches.
        assert_ne!(
            grouped,
            epoch_batches(1000, Some(&lengths), 32, &mut StdRng::seed_from_u64(8))
        );
    }

    #[test]
    fn weight_decay_skips_biases() {
        let device = crate::training_device();
        let model = Classifier::new(
            models::arch("cnn").unwrap(),
            &Default::default(),
            3,
            &device,
        );
        let x = Tensor::<4>::random([4, 1, 28, 28], Distribution::Normal(0.0, 1.0), &device);
        let y = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 1, 2, 0], [4]), &device);
        let loss = CrossEntropyLossConfig::new()
            .init(&device)
            .forward(model.forward(models::Input::Images(x)), y);
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
