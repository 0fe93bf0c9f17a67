//! The training recipe: every knob of a run, parsed from the command line and saved in the
//! checkpoint so a run can be read back and repeated.

use serde::{Deserialize, Serialize};

/// Which optimizer updates the weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    /// SGD with momentum (`--momentum`) and L2 weight decay.
    Sgd,
    /// Adam with decoupled weight decay.
    Adamw,
}

/// How the learning rate moves over the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// `--lr` throughout (after the warm-up).
    Constant,
    /// Cosine decay from `--lr` to 0 (after the warm-up).
    Cosine,
}

/// Which parameters learn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Every parameter learns.
    Full,
    /// The backbone is frozen; only the new head learns.
    LinearProbe,
}

/// Hyper-parameters shared by `pretrain` and `finetune`.
#[derive(Debug, Clone, clap::Args, Serialize, Deserialize)]
pub struct Recipe {
    /// Passes over the training data.
    #[arg(long, default_value_t = 3)]
    pub epochs: usize,
    /// Images per optimisation step.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    #[arg(long, value_enum, default_value_t = Optimizer::Adamw)]
    pub optimizer: Optimizer,
    /// Momentum (sgd only).
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f64,
    /// Weight decay (decoupled for adamw, L2 for sgd).
    #[arg(long, default_value_t = 0.01)]
    pub weight_decay: f64,
    #[arg(long, value_enum, default_value_t = Schedule::Cosine)]
    pub schedule: Schedule,
    /// Epochs of linear learning-rate warm-up at the start (fractions allowed).
    #[arg(long, default_value_t = 0.1)]
    pub warmup_epochs: f64,
    #[arg(long, value_enum, default_value_t = Strategy::Full)]
    pub strategy: Strategy,
    /// Seed for weight init, data split and order: same seed + same data ⇒ same model.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl Recipe {
    /// Check the values a user can get wrong; messages name the flag.
    pub fn validate(&self) -> anyhow::Result<()> {
        use crate::bail_input;
        if self.epochs == 0 {
            bail_input!("--epochs must be at least 1");
        }
        if self.batch_size == 0 {
            bail_input!("--batch-size must be at least 1");
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            bail_input!("--lr must be a positive number, got {}", self.lr);
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            bail_input!("--weight-decay must be 0 or more, got {}", self.weight_decay);
        }
        if !(0.0..1.0).contains(&self.momentum) {
            bail_input!("--momentum must be in [0, 1), got {}", self.momentum);
        }
        if !(self.warmup_epochs.is_finite() && self.warmup_epochs >= 0.0) {
            bail_input!("--warmup-epochs must be 0 or more, got {}", self.warmup_epochs);
        }
        Ok(())
    }

    /// Learning rate at optimisation step `step` of `total` (0-based).
    pub fn lr_at(&self, step: usize, steps_per_epoch: usize, total: usize) -> f64 {
        let warmup = (self.warmup_epochs * steps_per_epoch as f64).round() as usize;
        if step < warmup {
            return self.lr * (step + 1) as f64 / warmup as f64;
        }
        match self.schedule {
            Schedule::Constant => self.lr,
            Schedule::Cosine => {
                let span = total.saturating_sub(warmup).max(1) as f64;
                let progress = (step - warmup) as f64 / span;
                self.lr * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        recipe: Recipe,
    }

    #[test]
    fn cosine_warms_up_then_decays_to_zero() {
        let r = Cli::parse_from(["x", "--lr", "0.1", "--warmup-epochs", "1"]).recipe;
        let (spe, total) = (10, 100);
        assert!((r.lr_at(0, spe, total) - 0.01).abs() < 1e-12);
        assert!((r.lr_at(9, spe, total) - 0.1).abs() < 1e-12);
        assert!((r.lr_at(10, spe, total) - 0.1).abs() < 1e-12);
        assert!(r.lr_at(55, spe, total) < 0.051 && r.lr_at(55, spe, total) > 0.049);
        assert!(r.lr_at(99, spe, total) < 1e-3);
        let c = Cli::parse_from(["x", "--schedule", "constant", "--warmup-epochs", "0"]).recipe;
        assert_eq!(c.lr_at(50, spe, total), 1e-3);
    }
}
