//! The learning-rate range test (Smith 2015, fastai's `lr_find`): train briefly while the rate
//! grows exponentially, watch the loss, suggest a rate a little below where it is lowest.

use anyhow::Result;
use burn::nn::loss::CrossEntropyLossConfig;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::Serialize;

use super::{Recipe, optimise, optimizer};
use crate::data::batch::Examples;
use crate::models::Classifier;

/// What the range test saw.
#[derive(Debug, Clone, Serialize)]
pub struct LrFinding {
    /// (learning rate, smoothed loss) after each step.
    pub points: Vec<(f64, f64)>,
    /// The rate at the lowest smoothed loss.
    pub min_loss_lr: f64,
    /// A tenth of `min_loss_lr`: fastai's rule of thumb for a safe, fast rate.
    pub suggestion: f64,
}

/// Run `steps` training steps with the rate going from `start` to `end` geometrically; stop early
/// once the loss explodes (4× its lowest value).
pub fn lr_find(
    mut model: Classifier,
    train: &dyn Examples,
    recipe: &Recipe,
    start: f64,
    end: f64,
    steps: usize,
) -> Result<LrFinding> {
    if !(start > 0.0 && end > start && steps >= 2) {
        crate::bail_input!("lr-find needs 0 < --start-lr < --end-lr and at least 2 --steps");
    }
    let device = model.head.weight.device();
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let mut optim = optimizer(recipe);
    let mut rng = StdRng::seed_from_u64(recipe.seed ^ 0x5EED_0004);
    let mut order: Vec<usize> = Vec::new();
    let (mut points, mut avg, mut best) = (Vec::with_capacity(steps), 0.0, f64::INFINITY);
    for i in 0..steps {
        if order.len() < recipe.batch_size {
            let mut epoch: Vec<usize> = (0..train.len()).collect();
            epoch.shuffle(&mut rng);
            order.extend(epoch);
        }
        let chunk: Vec<usize> = order.drain(..recipe.batch_size.min(order.len())).collect();
        let lr = start * (end / start).powf(i as f64 / (steps - 1) as f64);
        let batch = train.batch(&chunk, None, &device);
        let logits = model.forward(batch.input);
        let done = optimise(
            model,
            logits,
            batch.targets,
            &loss_fn,
            &mut optim,
            lr.into(),
        );
        model = done.model;
        let loss = done.loss;
        // Exponential moving average, debiased, as fastai does.
        avg = 0.98 * avg + 0.02 * loss;
        let smoothed = avg / (1.0 - 0.98f64.powi(i as i32 + 1));
        if !smoothed.is_finite() || smoothed > 4.0 * best {
            break;
        }
        best = best.min(smoothed);
        points.push((lr, smoothed));
    }
    let min_loss_lr = points
        .iter()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map_or(start, |p| p.0);
    Ok(LrFinding {
        points,
        min_loss_lr,
        suggestion: min_loss_lr / 10.0,
    })
}
