//! The one training loop behind `pretrain`, `finetune`, `lr-find` and the demos.
//!
//! A run is a [`Plan`]: a [`Recipe`] and a list of [`Phase`]s (a fine-tune strategy is data);
//! each phase freezes some parts of the model and gives the rest their learning rates. When a
//! phase freezes the whole backbone and does not augment, the backbone's features are computed
//! once and the head trains on them. Whatever watches the run is an [`Observer`].
//!
//! - [`batches`]: epoch order and per-step seeds; [`step`]: one optimisation step and the
//!   gradient point; [`optim`]: optimizer, parameter groups, freezing, LoRA;
//! - [`observe`]: the observers the CLI and the demos supply; [`state`]: resume state;
//!   [`lr_find`]: the range test, as a schedule and an observer on this loop.

mod batches;
mod lr_find;
pub mod observe;
mod optim;
mod recipe;
pub mod state;
mod step;

pub use lr_find::{LrFinding, lr_find};
pub use observe::{Control, Interrupted, Observer, RunView};
pub use optim::{FusedAdamW, lora};
pub use recipe::{
    FinetuneOptions, Frozen, Optimizer, Phase, Recipe, RunKind, Schedule, Strategy, positive,
};
pub use step::Diverged;

use std::time::Instant;

use anyhow::Result;
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::data::{Augment, Examples, Training};
use crate::models::Classifier;
use crate::{infer, kernels, parallel};
use batches::{epoch_batches, mix};
use step::{Inputs, detached};

/// What one epoch did; one line of `metrics.jsonl` and one entry of the checkpoint's history.
/// (Its field order is part of the resume state's binary layout: add fields at the end only.)
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
    /// Training throughput, images or texts per second (validation excluded).
    #[serde(alias = "images_per_second")]
    pub examples_per_second: f64,
    /// Steps skipped for a non-finite loss (`--skip-nonfinite`).
    #[serde(default)]
    pub skipped_steps: usize,
    /// The task's own error rate on the validation examples, where it has one (speech: the
    /// word error rate; see [`Examples::error_rate`]).
    #[serde(default)]
    pub val_error_rate: Option<f64>,
}

/// Examples trained on per second over a whole run. Every epoch sees the same examples, so
/// that is the harmonic mean of the epochs' rates (an arithmetic mean lets one fast epoch on
/// cached features speak for the slow ones).
pub fn throughput(history: &[EpochRecord]) -> f64 {
    let rates: Vec<f64> = history
        .iter()
        .map(|r| r.examples_per_second)
        .filter(|r| *r > 0.0)
        .collect();
    rates.len() as f64 / rates.iter().map(|r| 1.0 / r).sum::<f64>().max(1e-12)
}

/// The trained model and how it got there.
pub struct Outcome {
    pub model: Classifier,
    pub history: Vec<EpochRecord>,
    /// Epoch whose weights `model` holds.
    pub best_epoch: usize,
}

/// Which epoch's weights a run keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// The best validation score (the earliest on ties); the last epoch without validation.
    Best(Score),
    /// The last epoch's, whatever validation says (it is then only watched).
    Last,
}

/// What "best" means on the validation examples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Score {
    /// Highest accuracy (classification).
    Accuracy,
    /// Lowest loss (masked language modelling).
    Loss,
    /// Lowest task error rate (speech: word error rate).
    ErrorRate,
}

/// A run to train: the recipe, its phases, and how its weights are kept.
#[derive(Debug, Clone)]
pub struct Plan {
    pub recipe: Recipe,
    pub phases: Vec<Phase>,
    pub keep: Keep,
    /// Train the head on features computed once when a phase freezes the whole backbone and
    /// does not augment (off only to measure what the cache buys).
    pub feature_cache: bool,
}

impl Plan {
    /// `recipe` through `phases`, keeping the best validation accuracy.
    pub fn new(recipe: Recipe, phases: Vec<Phase>) -> Plan {
        Plan {
            recipe,
            phases,
            keep: Keep::Best(Score::Accuracy),
            feature_cache: true,
        }
    }

    /// Everything learns for the recipe's epochs: pretraining, or training from scratch.
    pub fn all(recipe: Recipe) -> Plan {
        let epochs = recipe.epochs;
        Plan::new(recipe, vec![Phase::all(epochs)])
    }

    pub fn keep(self, keep: Keep) -> Plan {
        Plan { keep, ..self }
    }
}

/// Train `model` through `plan`, validating on `val` after every epoch and keeping the weights
/// `plan.keep` says. With `resume`, the run continues from a saved state: the data order, the
/// augmentation and the dropout of every step derive from (seed, epoch, step) alone, so a resumed
/// run repeats the uninterrupted one exactly.
pub fn fit(
    mut model: Classifier,
    train: &dyn Examples,
    val: Option<&dyn Examples>,
    plan: &Plan,
    observers: &mut [&mut dyn Observer],
    resume: Option<state::Resume>,
) -> Result<Outcome> {
    let recipe = &plan.recipe;
    let device = model.device();
    let loss_fn = CrossEntropyLossConfig::new()
        .with_smoothing((recipe.label_smoothing > 0.0).then_some(recipe.label_smoothing as f32))
        .init(&device);
    let val = val.filter(|v| !v.is_empty());
    let epochs: usize = plan.phases.iter().map(|p| p.epochs).sum();
    let resumed = resume.is_some();
    if !resumed {
        // Every process starts from rank 0's weights.
        model = broadcast_weights(model)?;
    }
    let (mut progress, mut best, mut optim_state) = match resume {
        Some(r) => (r.progress, r.best, Some(r.optim)),
        // A clone, not `detached`: parameters initialise lazily, on the first forward pass
        // (after the step's seeding), and reading them here would change every run's weights.
        // Until an epoch ends this placeholder only gives resume states the model's structure.
        None => (state::Progress::default(), model.clone(), None),
    };
    let steps_per_epoch = train.len().div_ceil(recipe.batch_size);
    let lengths = train.lengths();

    let mut first_phase = true;
    for (phase_index, phase) in plan.phases.iter().enumerate().skip(progress.phase) {
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
        model = optim::freeze_for(model, &phase.frozen, resumed && first_phase);
        first_phase = false;
        if progress.best.epoch == 0 {
            // The same structure as the model (with its adapters), for resume states.
            best = model.clone();
        }
        let cached = phase.frozen == Frozen::Backbone
            && recipe.augment == Augment::None
            && plan.feature_cache
            && train.fixed_features();
        let (inputs, val_inputs) = if cached {
            let cache = |examples: &dyn Examples| -> Result<Tensor<2>> {
                let features = infer::features(&model, examples)?;
                Ok(Tensor::<2>::from_data(features.into_data(), &device))
            };
            (
                Inputs::Features {
                    features: cache(train)?,
                    labels: train.labels(),
                },
                val.map(|v| {
                    Ok::<_, anyhow::Error>(Inputs::Features {
                        features: cache(v)?,
                        labels: v.labels(),
                    })
                })
                .transpose()?,
            )
        } else {
            (Inputs::Examples(train), val.map(Inputs::Examples))
        };
        let mut optim = optim::optimizer(recipe);
        if let Some(bytes) = optim_state.take() {
            optim = optim.from_bytes(bytes).map_err(|e| {
                crate::input_error!("the resume state's optimizer does not fit: {e}")
            })?;
        }
        let groups = optim::lr_groups(&model, phase);
        let phase_steps = steps_per_epoch * phase.epochs;
        while progress.epochs_done < phase.epochs {
            let epoch = progress.history.len() + 1;
            let batches = epoch_batches(
                train.len(),
                lengths.as_deref(),
                recipe.batch_size,
                &mut StdRng::seed_from_u64(mix(recipe.seed, epoch as u64, u64::MAX)),
            );
            for o in observers.iter_mut() {
                o.epoch_start(epoch, epochs, train.len(), progress.seen);
            }
            let started = Instant::now();
            let mut lr = 0.0;
            for (step, chunk) in batches.iter().enumerate().skip(progress.steps_done) {
                let phase_step = progress.epochs_done * steps_per_epoch + step;
                lr = recipe.lr
                    * phase.lr_scale
                    * recipe.lr_factor(phase_step, steps_per_epoch, phase_steps);
                // Dropout draws from the device's generator: seeded per step, a resumed run
                // drops out exactly what the uninterrupted one did.
                device.seed(mix(recipe.seed, epoch as u64, step as u64) ^ 0xD80);
                // This process's rows of the batch (all of them, unless split across ranks).
                let training = Training {
                    augment: recipe.augment,
                    seed: mix(recipe.seed, epoch as u64, step as u64),
                    part: parallel::share(chunk.len()),
                };
                kernels::set_batch_offset(training.part.start);
                let out = inputs.forward(&model, chunk, &training, &device)?;
                let done = step::optimise(
                    model,
                    out,
                    &loss_fn,
                    &mut optim,
                    optim::learning_rates(lr, &groups),
                )?;
                model = done.model;
                if done.applied {
                    progress.loss_sum += done.loss * done.predicted as f64;
                    progress.correct += done.hits;
                    progress.predicted += done.predicted;
                    progress.seen += chunk.len();
                } else if recipe.skip_nonfinite {
                    progress.skipped += 1;
                } else {
                    return Err(Diverged {
                        epoch,
                        step: step + 1,
                        loss: done.loss,
                    }
                    .into());
                }
                progress.steps_done = step + 1;
                let view = RunView {
                    progress: &progress,
                    model: &model,
                    best: &best,
                    optimizer: &optim,
                    epoch,
                    epochs,
                    phase_step: phase_step + 1,
                    lr,
                    loss: done.loss,
                    examples: train.len(),
                    noun: train.noun(),
                    started,
                };
                let mut control = Control::Continue;
                for o in observers.iter_mut() {
                    control = control.max(o.step(&view)?);
                }
                match agree(control) {
                    Control::Continue => {}
                    Control::Stop => {
                        progress.stopped = true;
                        break;
                    }
                    Control::Interrupt => {
                        for o in observers.iter_mut() {
                            o.interrupted(&view)?;
                        }
                        return Err(Interrupted {
                            epoch,
                            step: step + 1,
                        }
                        .into());
                    }
                }
            }
            if progress.stopped {
                break;
            }
            let train_seconds = started.elapsed().as_secs_f64();
            let (val_loss, val_accuracy) = match &val_inputs {
                Some(v) => {
                    let (l, a) = v.evaluate(&model)?;
                    (Some(l), Some(a))
                }
                None => (None, None),
            };
            let val_error_rate = match val {
                Some(v) => v.error_rate(&model)?,
                None => None,
            };
            if !parallel::all_agree(weights_hash(&model)) {
                anyhow::bail!(
                    "the processes' weights differ after epoch {epoch}: the job stops (is the \
                     data the same on every machine?)"
                );
            }
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
                examples_per_second: progress.seen as f64 / train_seconds.max(1e-9),
                skipped_steps: progress.skipped,
                val_error_rate,
            };
            if progress.best.improves(plan.keep, epoch, &record) {
                best = detached(&model);
            }
            progress.history.push(record.clone());
            progress = state::Progress {
                epochs_done: progress.epochs_done + 1,
                ..progress.next_epoch()
            };
            if let Some(patience) = recipe.patience
                && val.is_some()
                && epoch - progress.best.epoch >= patience
            {
                progress.stopped = true;
            }
            let view = RunView {
                progress: &progress,
                model: &model,
                best: &best,
                optimizer: &optim,
                epoch,
                epochs,
                phase_step: (progress.epochs_done) * steps_per_epoch,
                lr,
                loss: record.train_loss,
                examples: train.len(),
                noun: train.noun(),
                started,
            };
            for o in observers.iter_mut() {
                o.epoch_end(&view, &record)?;
            }
            if progress.stopped {
                break;
            }
        }
    }
    Ok(Outcome {
        // LoRA adapters merged into the weights they adapt.
        model: best.materialize().unfreeze(),
        history: progress.history,
        best_epoch: progress.best.epoch,
    })
}

/// What all processes do after a step: the strongest of their observers' wishes (an
/// interrupt on one machine stops every rank at the same step).
fn agree(control: Control) -> Control {
    let mut wishes = [
        f64::from(u8::from(control == Control::Stop)),
        f64::from(u8::from(control == Control::Interrupt)),
    ];
    parallel::sum_f64(&mut wishes);
    if wishes[1] > 0.0 {
        Control::Interrupt
    } else if wishes[0] > 0.0 {
        Control::Stop
    } else {
        Control::Continue
    }
}

/// A hash of every weight, to check that all processes hold the same model (0 alone).
fn weights_hash(model: &Classifier) -> u64 {
    use std::hash::Hasher;
    if parallel::place().size == 1 {
        return 0;
    }
    struct Hash(std::hash::DefaultHasher);
    impl burn::module::ModuleVisitor for Hash {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            for v in param.val().into_data().iter::<f32>() {
                self.0.write_u32(v.to_bits());
            }
        }
    }
    let mut hash = Hash(std::hash::DefaultHasher::new());
    model.visit(&mut hash);
    hash.0.finish()
}

/// `model` with rank 0's weights, in every process.
fn broadcast_weights(model: Classifier) -> Result<Classifier> {
    use burn::store::ModuleRecord;
    if parallel::place().size == 1 {
        return Ok(model);
    }
    let bytes = if parallel::is_root() {
        model
            .clone()
            .into_record()
            .into_bytes()
            .map_err(|e| anyhow::anyhow!("serialising the weights: {e}"))?
            .to_vec()
    } else {
        Vec::new()
    };
    let bytes = parallel::broadcast(bytes);
    let record = ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
        .map_err(|e| anyhow::anyhow!("rank 0's weights: {e}"))?;
    model
        .try_load_record(record)
        .map_err(|e| anyhow::anyhow!("rank 0's weights do not fit: {e}"))
}
