//! One optimisation step: forward, loss, backward, the gradient point, the update.

use anyhow::Result;
use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::loss::CrossEntropyLoss;
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;

use super::batches::index_tensor;
use crate::data::{Examples, Training, examples};
use crate::models::Classifier;
use crate::{infer, parallel};

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
    /// Logits and targets of this process's rows (`training.part`) of the batch `chunk`,
    /// augmented (images) or masked (texts) as `training` says; `None` when it has no rows.
    pub fn forward(
        &self,
        model: &Classifier,
        chunk: &[usize],
        training: &Training,
        device: &Device,
    ) -> Result<Option<(Tensor<2>, Tensor<1, Int>)>> {
        if training.part.is_empty() {
            return Ok(None);
        }
        Ok(Some(match self {
            Inputs::Examples(examples) => {
                let b = examples.batch(chunk, Some(training), device)?;
                (examples.scores(model.forward(b.input)?), b.targets)
            }
            Inputs::Features { features, labels } => {
                let rows = &chunk[training.part.clone()];
                (
                    model.forward_head(features.clone().select(0, index_tensor(rows, device))),
                    examples::labels(labels, rows, device),
                )
            }
        }))
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

/// What one step did, over the whole batch (all processes).
pub struct Step {
    pub model: Classifier,
    /// The batch's mean loss.
    pub loss: f64,
    /// Correct predictions in the batch.
    pub hits: usize,
    /// Predictions made: one per example, or per masked token.
    pub predicted: usize,
    /// False when the loss was not finite: then nothing was updated.
    pub applied: bool,
}

/// One optimisation step on this process's part of a batch (`out`: its logits and targets),
/// unless the batch's loss is not finite: then nothing is updated and `applied` is false.
///
/// Split across N processes, each part's mean loss is weighted by its share of the batch's
/// predictions, so that the gradients summed at the gradient point are those of the whole
/// batch's mean loss, as one process would compute them.
pub fn optimise(
    model: Classifier,
    out: Option<(Tensor<2>, Tensor<1, Int>)>,
    loss_fn: &CrossEntropyLoss,
    optim: &mut ModuleOptimizer,
    lr: ModuleLearningRate,
) -> Result<Step> {
    let out = out.filter(|(_, y)| y.dims()[0] > 0);
    let (loss, hits, predicted) = match out {
        Some((logits, y)) => {
            let (hits, m) = (infer::hits(&logits, &y), y.dims()[0]);
            (Some(loss_fn.forward(logits, y)), hits, m)
        }
        None => (None, 0, 0),
    };
    let local = loss
        .as_ref()
        .map_or(0.0, |l| l.clone().into_scalar::<f32>() as f64);
    let mut sums = [local * predicted as f64, hits as f64, predicted as f64];
    parallel::sum_f64(&mut sums);
    let split = parallel::place().size > 1;
    let total = sums[2].max(1.0);
    let step = |model, applied| Step {
        model,
        loss: if split { sums[0] / total } else { local },
        hits: sums[1] as usize,
        predicted: sums[2] as usize,
        applied,
    };
    if !(if split { sums[0] / total } else { local }).is_finite() {
        return Ok(step(model, false));
    }
    let grads = match loss {
        Some(loss) if split => {
            GradientsParams::from_grads((loss * (predicted as f64 / total)).backward(), &model)
        }
        Some(loss) => GradientsParams::from_grads(loss.backward(), &model),
        None => GradientsParams::new(),
    };
    let grads = gradient_point(grads, &model);
    Ok(step(optim.step(lr, model, grads), true))
}

/// Where the gradients of a step pass between backward and the optimizer: the one place for
/// what acts on all of them. Across processes, they are summed here (an MPI all-reduce of one
/// flat buffer). Clipping by global norm is the optimizer's own (`--grad-clip`), after this.
fn gradient_point(grads: GradientsParams, model: &Classifier) -> GradientsParams {
    if parallel::place().size == 1 {
        return grads;
    }
    let mut flat = Flatten {
        grads,
        buffer: Vec::new(),
        present: Vec::new(),
    };
    model.visit(&mut flat);
    // Which parameters have a gradient is summed too: one a process lacks (no rows this step)
    // still gets the others'; one that none has stays without (as for one process).
    let mut buffer = flat.buffer;
    let count = flat.present.len();
    buffer.extend(flat.present.iter().map(|&p| f32::from(u8::from(p))));
    parallel::sum_f32(&mut buffer);
    let present = buffer.split_off(buffer.len() - count);
    let mut back = Unflatten {
        grads: flat.grads,
        buffer,
        at: 0,
        present: present.into_iter().map(|p| p > 0.0).collect(),
        index: 0,
    };
    model.visit(&mut back);
    back.grads
}

/// Takes every trainable parameter's gradient (zeros where there is none) into one buffer, in
/// the model's own order, the same in every process.
struct Flatten {
    grads: GradientsParams,
    buffer: Vec<f32>,
    present: Vec<bool>,
}

impl ModuleVisitor for Flatten {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if !param.is_require_grad() {
            return;
        }
        match self.grads.remove::<D>(param.id) {
            Some(g) => {
                self.buffer.extend(g.into_data().iter::<f32>());
                self.present.push(true);
            }
            None => {
                let n = param.shape().num_elements();
                self.buffer.extend(std::iter::repeat_n(0.0, n));
                self.present.push(false);
            }
        }
    }
}

/// Puts the summed buffer back as gradients.
struct Unflatten {
    grads: GradientsParams,
    buffer: Vec<f32>,
    at: usize,
    present: Vec<bool>,
    index: usize,
}

impl ModuleVisitor for Unflatten {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if !param.is_require_grad() {
            return;
        }
        let shape = param.shape();
        let n = shape.num_elements();
        let values = self.buffer[self.at..self.at + n].to_vec();
        self.at += n;
        if self.present[self.index] {
            let device = param.val().device().without_autodiff();
            let g = Tensor::<1>::from_data(TensorData::new(values, [n]), &device).reshape(shape);
            self.grads.register::<D>(param.id, g);
        }
        self.index += 1;
    }
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
