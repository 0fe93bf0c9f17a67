//! One optimisation step: forward, loss, backward, the gradient point, the update.

use anyhow::Result;
use burn::module::Module;
use burn::nn::loss::CrossEntropyLoss;
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use rand::rngs::StdRng;

use super::batches::index_tensor;
use crate::data::{Augment, Examples, examples};
use crate::infer;
use crate::models::Classifier;

/// Where a phase's training inputs come from: examples through the backbone, or features
/// cached from a frozen backbone (then only the head runs).
#[allow(clippy::large_enum_variant)] // one value per phase
pub enum Inputs<'a> {
    Examples(&'a dyn Examples),
    Features {
        features: Tensor<2>,
        labels: &'a [usize],
    },
}

impl Inputs<'_> {
    /// Logits and targets of the examples at `chunk`, augmented (images) or masked (texts) with
    /// `rng` when `augment` says so.
    pub fn forward(
        &self,
        model: &Classifier,
        chunk: &[usize],
        augment: Augment,
        rng: &mut StdRng,
        device: &Device,
    ) -> Result<(Tensor<2>, Tensor<1, Int>)> {
        Ok(match self {
            Inputs::Examples(examples) => {
                let b = examples.batch(chunk, Some((augment, rng)), device)?;
                (model.forward(b.input)?, b.targets)
            }
            Inputs::Features { features, labels } => (
                model.forward_head(features.clone().select(0, index_tensor(chunk, device))),
                examples::labels(labels, chunk, device),
            ),
        })
    }

    /// Mean loss (plain cross-entropy, whatever the training loss) and accuracy.
    pub fn evaluate(&self, model: &Classifier) -> Result<(f64, f64)> {
        match self {
            Inputs::Examples(examples) => infer::loss_and_accuracy(model, *examples),
            Inputs::Features { features, labels } => {
                let logits = model.valid().forward_head(features.clone().inner());
                let all: Vec<usize> = (0..labels.len()).collect();
                let targets = examples::labels(labels, &all, &logits.device());
                let (loss, hits) = infer::batch_loss_and_hits(logits, targets);
                Ok((loss, hits as f64 / labels.len().max(1) as f64))
            }
        }
    }
}

/// What one step did.
pub struct Step {
    pub model: Classifier,
    /// The batch's mean loss.
    pub loss: f64,
    /// Correct predictions in the batch.
    pub hits: usize,
    /// False when the loss was not finite: then nothing was updated.
    pub applied: bool,
}

/// One optimisation step on a batch's logits, unless the loss is not finite: then nothing is
/// updated and `applied` is false.
pub fn optimise(
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
    let grads = gradient_point(GradientsParams::from_grads(loss.backward(), &model));
    Step {
        model: optim.step(lr, model, grads),
        loss: loss_value,
        hits,
        applied: true,
    }
}

/// Where the gradients of a step pass between backward and the optimizer: the one place for
/// what acts on all of them (accumulation, an all-reduce across processes). Clipping by global
/// norm is the optimizer's own (`--grad-clip`), applied after this point.
fn gradient_point(grads: GradientsParams) -> GradientsParams {
    grads
}

/// A copy of `model` that shares nothing with it. A module's `clone` shares BatchNorm's running
/// statistics (one `Arc`), so a "best" model cloned from the training one would keep following
/// it; `valid` also folds the last statistics update in (Burn keeps it pending until the next
/// read), so what is saved is what the next step would see.
pub fn detached(model: &Classifier) -> Classifier {
    model.valid().train()
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
