//! The learning-rate range test (Smith 2015, fastai's `lr_find`): the training loop with a rate
//! that grows exponentially, and an observer that watches the loss and stops when it explodes.
//! A rate a little below where the loss is lowest is suggested.

use anyhow::Result;
use serde::Serialize;

use super::{Control, Keep, Observer, Plan, Recipe, RunView, Schedule, fit};
use crate::data::Examples;
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

/// Run `steps` training steps of `recipe` with the rate going from `start` to `end`
/// geometrically; stop early once the loss explodes (4× its lowest value).
pub fn lr_find(
    model: Classifier,
    train: &dyn Examples,
    recipe: &Recipe,
    start: f64,
    end: f64,
    steps: usize,
) -> Result<LrFinding> {
    if !(start > 0.0 && end > start && steps >= 2) {
        crate::bail_input!("lr-find needs 0 < --start-lr < --end-lr and at least 2 --steps");
    }
    let steps_per_epoch = train.len().div_ceil(recipe.batch_size).max(1);
    let recipe = Recipe {
        lr: start,
        schedule: Schedule::Exponential {
            ratio: end / start,
            steps,
        },
        epochs: steps.div_ceil(steps_per_epoch),
        patience: None,
        // A loss that explodes is what the test looks for: the observer stops, not an error.
        skip_nonfinite: true,
        ..recipe.clone()
    };
    let mut finder = RangeTest {
        steps,
        points: Vec::with_capacity(steps),
        average: 0.0,
        lowest: f64::INFINITY,
    };
    fit(
        model,
        train,
        None,
        &Plan::all(recipe).keep(Keep::Last),
        &mut [&mut finder],
        None,
    )?;
    let min_loss_lr = finder
        .points
        .iter()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map_or(start, |p| p.0);
    Ok(LrFinding {
        points: finder.points,
        min_loss_lr,
        suggestion: min_loss_lr / 10.0,
    })
}

/// Records the smoothed loss against the rate; stops after `steps` or when the loss explodes.
struct RangeTest {
    steps: usize,
    points: Vec<(f64, f64)>,
    average: f64,
    lowest: f64,
}

impl Observer for RangeTest {
    fn step(&mut self, run: &RunView) -> Result<Control> {
        let i = self.points.len();
        // Exponential moving average, debiased, as fastai does.
        self.average = 0.98 * self.average + 0.02 * run.loss;
        let smoothed = self.average / (1.0 - 0.98f64.powi(i as i32 + 1));
        if !smoothed.is_finite() || smoothed > 4.0 * self.lowest {
            return Ok(Control::Stop);
        }
        self.lowest = self.lowest.min(smoothed);
        self.points.push((run.lr, smoothed));
        Ok(if self.points.len() >= self.steps {
            Control::Stop
        } else {
            Control::Continue
        })
    }
}
