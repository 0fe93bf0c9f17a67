//! The training recipe: every knob of a run, parsed from the command line and saved in the
//! checkpoint so a run can be read back and repeated.

use serde::{Deserialize, Serialize};

use crate::bail_input;
use crate::data::Augment;

/// Which optimizer updates the weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    /// SGD with momentum (`--momentum`) and L2 weight decay.
    Sgd,
    /// Adam without weight decay (PyTorch's `Adam` defaults).
    Adam,
    /// Adam with decoupled weight decay.
    Adamw,
}

/// How the learning rate moves through each phase of training.
#[derive(Debug, Clone, Copy, PartialEq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// `--lr` throughout (after the warm-up).
    Constant,
    /// Cosine decay from `--lr` to 0 (after the warm-up).
    Cosine,
    /// Linear decay from `--lr` to 0 (after the warm-up): Hugging Face Trainer's schedule.
    Linear,
    /// fastai's one-cycle: cosine up from lr/25 over the first 25%, then cosine down to ~0.
    Onecycle,
    /// The learning-rate range test's: from `--lr` up by `ratio` over `steps` steps,
    /// geometrically (lr-find; not a training schedule).
    #[value(skip)]
    Exponential { ratio: f64, steps: usize },
}

/// Hyper-parameters of a run, every value resolved and checked (the command line builds one
/// from its flags before any data is read).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recipe {
    /// Passes over the training data (all phases together), at least 1.
    pub epochs: usize,
    /// Examples per optimisation step, at least 1.
    pub batch_size: usize,
    /// Peak learning rate (of the head, when parts of the model learn at other rates).
    pub lr: f64,
    pub optimizer: Optimizer,
    /// Momentum (sgd only), in [0, 1).
    pub momentum: f64,
    /// Weight decay (decoupled for adamw, L2 for sgd); never applied to biases.
    pub weight_decay: f64,
    pub schedule: Schedule,
    /// Epochs of linear learning-rate warm-up at the start of each phase.
    pub warmup_epochs: f64,
    /// Label smoothing of the cross-entropy loss, in [0, 1).
    pub label_smoothing: f64,
    /// Clip the gradient's global L2 norm to this value.
    pub grad_clip: Option<f64>,
    /// Random augmentation of training images.
    pub augment: Augment,
    /// Stop when validation has not improved for this many epochs (at least 1).
    pub patience: Option<usize>,
    /// Seed for weight init, data split, order and augmentation: same seed + same data ⇒ same model.
    pub seed: u64,
    /// Skip (and count) optimisation steps whose loss is NaN or infinite instead of stopping.
    #[serde(default)]
    pub skip_nonfinite: bool,
}

/// The kind of run a recipe's unset values are chosen for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    /// An image model: timm-like defaults.
    Images,
    /// A text model trained from scratch.
    TextFromScratch,
    /// Fine-tuning a pretrained text model: Hugging Face Trainer's recipe.
    TextFinetune,
    /// The same with LoRA adapters, which learn at a higher rate (PEFT's examples use 1e-4–1e-3).
    TextLora,
    /// A recurrent sequence-to-sequence model.
    Sequences,
    /// A transformer encoder–decoder (bert2bert), warm-started or from scratch: label
    /// smoothing 0.1, as fairseq's and Rothe et al.'s recipes.
    TextSequences,
}

impl RunKind {
    /// Learning rate, schedule and label smoothing of this kind of run when the command line
    /// leaves them unset.
    pub fn defaults(self) -> (f64, Schedule, f64) {
        match self {
            RunKind::Images => (1e-3, Schedule::Cosine, 0.1),
            RunKind::TextFromScratch => (1e-3, Schedule::Linear, 0.0),
            RunKind::TextFinetune => (5e-5, Schedule::Linear, 0.0),
            RunKind::TextLora => (5e-4, Schedule::Linear, 0.0),
            RunKind::Sequences => (1e-3, Schedule::Cosine, 0.0),
            RunKind::TextSequences => (1e-4, Schedule::Linear, 0.1),
        }
    }
}

impl Default for Recipe {
    /// The image recipe of the command line's defaults.
    fn default() -> Self {
        let (lr, schedule, label_smoothing) = RunKind::Images.defaults();
        Recipe {
            epochs: 3,
            batch_size: 64,
            lr,
            optimizer: Optimizer::Adamw,
            momentum: 0.9,
            weight_decay: 0.01,
            schedule,
            warmup_epochs: 0.1,
            label_smoothing,
            grad_clip: None,
            augment: Augment::None,
            patience: None,
            seed: 0,
            skip_nonfinite: false,
        }
    }
}

impl Recipe {
    /// Learning-rate factor (of the phase's peak rate) at step `step` of a phase of `total` steps.
    pub fn lr_factor(&self, step: usize, steps_per_epoch: usize, total: usize) -> f64 {
        let cos_between = |from: f64, to: f64, t: f64| {
            to + (from - to) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
        };
        match self.schedule {
            Schedule::Onecycle => {
                // fastai defaults: pct_start 0.25, div 25, final div 1e5.
                let up = ((total as f64) * 0.25).round().max(1.0);
                let s = step as f64;
                return if s < up {
                    cos_between(1.0 / 25.0, 1.0, s / up)
                } else {
                    cos_between(
                        1.0,
                        1.0 / 25.0 / 1e4,
                        (s - up) / (total as f64 - up).max(1.0),
                    )
                };
            }
            Schedule::Exponential { ratio, steps } => {
                return ratio.powf(step as f64 / steps.saturating_sub(1).max(1) as f64);
            }
            _ => {}
        }
        let warmup = (self.warmup_epochs * steps_per_epoch as f64).round() as usize;
        if step < warmup {
            return (step + 1) as f64 / warmup as f64;
        }
        let t = (step - warmup) as f64 / total.saturating_sub(warmup).max(1) as f64;
        match self.schedule {
            Schedule::Cosine => cos_between(1.0, 0.0, t),
            Schedule::Linear => 1.0 - t,
            _ => 1.0,
        }
    }
}

impl Default for FinetuneOptions {
    fn default() -> Self {
        FinetuneOptions {
            strategy: Strategy::Full,
            freeze_epochs: 1,
            backbone_lr_mult: 0.1,
            layer_decay: 1.0,
            freeze_until: None,
            lora_rank: 8,
            lora_alpha: 16.0,
        }
    }
}

/// Which parameters learn, and how fast, when fine-tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Every parameter learns, at one rate (or decayed per stage with `--layer-decay`).
    Full,
    /// The backbone is frozen; only the new head learns (on cached features when possible).
    LinearProbe,
    /// fastai's fine_tune: `--freeze-epochs` with the backbone frozen, then everything, at half
    /// the rate, with the backbone at `--backbone-lr-mult` of the head's rate.
    FreezeThenUnfreeze,
    /// LoRA (Hu et al. 2021; text and speech models): the backbone frozen, low-rank adapters
    /// on its attention query and value projections learn with the head (unless the head is
    /// a speech model's token table, which stays), and are merged into the weights when the
    /// checkpoint is saved.
    Lora,
    /// ULMFiT's gradual unfreezing (Howard & Ruder 2018): the head alone for an epoch, then one
    /// backbone stage more each epoch, from the top, until everything learns. Combine with
    /// `--layer-decay` (ULMFiT: 1/2.6 ≈ 0.38) for its discriminative rates.
    GradualUnfreeze,
    /// Encoder–decoder models (speech): the encoder frozen; the decoder and its output layer
    /// learn.
    DecoderOnly,
}

/// How to fine-tune: the strategy and its knobs.
#[derive(Debug, Clone, clap::Args, Serialize, Deserialize)]
pub struct FinetuneOptions {
    #[arg(long, value_enum, default_value_t = Strategy::Full)]
    pub strategy: Strategy,
    /// Epochs of head-only training first (freeze-then-unfreeze), counted in --epochs.
    #[arg(long, default_value_t = 1)]
    pub freeze_epochs: usize,
    /// Backbone learning rate as a fraction of the head's after unfreezing (freeze-then-unfreeze).
    #[arg(long, default_value_t = 0.1, value_parser = positive)]
    pub backbone_lr_mult: f64,
    /// Layer-wise rate decay: each backbone stage learns at this fraction of the rate of the
    /// stage above it (1 = no decay).
    #[arg(long, default_value_t = 1.0, value_parser = unit_interval)]
    pub layer_decay: f64,
    /// Keep the backbone's stages up to and including this one frozen throughout (e.g. `conv1`).
    #[arg(long, value_name = "STAGE")]
    pub freeze_until: Option<String>,
    /// Rank of the LoRA adapters (`--strategy lora`).
    #[arg(long, default_value_t = 8, value_parser = rank)]
    #[serde(default = "lora_rank")]
    pub lora_rank: usize,
    /// LoRA scaling: adapters add (alpha / rank) · A·B to a weight.
    #[arg(long, default_value_t = 16.0, value_parser = positive)]
    #[serde(default = "lora_alpha")]
    pub lora_alpha: f64,
}

fn lora_rank() -> usize {
    8
}
fn lora_alpha() -> f64 {
    16.0
}

/// A finite number above 0, for flags such as `--lr`.
pub fn positive(s: &str) -> Result<f64, String> {
    let x: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if !(x.is_finite() && x > 0.0) {
        return Err(format!("{x} is not a positive number"));
    }
    Ok(x)
}

/// A number in (0, 1], for `--layer-decay`.
fn unit_interval(s: &str) -> Result<f64, String> {
    let x = positive(s)?;
    if x > 1.0 {
        return Err(format!("{x} is not in (0, 1]"));
    }
    Ok(x)
}

/// A LoRA rank: 1 to 4096.
fn rank(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(r) if (1..=4096).contains(&r) => Ok(r),
        _ => Err(format!("{s:?} is not a rank between 1 and 4096")),
    }
}

/// What is frozen during a phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Frozen {
    Nothing,
    /// The whole backbone.
    Backbone,
    /// Backbone stages `0..=index`.
    Stages(usize),
    /// The whole backbone, with trainable LoRA adapters on its attention query and value weights.
    Lora {
        rank: usize,
        alpha: f64,
    },
}

/// One stretch of training with fixed frozen parts and learning-rate multipliers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    pub name: String,
    pub epochs: usize,
    pub frozen: Frozen,
    /// Peak rate of the head, as a fraction of `--lr`.
    pub lr_scale: f64,
    /// Rate of the backbone's top stage relative to the head.
    pub backbone_lr_mult: f64,
    /// Each stage further from the head learns at this fraction of the one above.
    pub layer_decay: f64,
}

impl Phase {
    /// Everything learns at the same rate: pretraining, or training from scratch.
    pub fn all(epochs: usize) -> Phase {
        Phase {
            name: "all".into(),
            epochs,
            frozen: Frozen::Nothing,
            lr_scale: 1.0,
            backbone_lr_mult: 1.0,
            layer_decay: 1.0,
        }
    }
}

impl FinetuneOptions {
    /// The phases of a fine-tune of `epochs` epochs, given the backbone's stage names.
    /// `--freeze-until` must name a stage, and `--freeze-epochs` leave an epoch to unfreeze.
    pub fn plan(&self, epochs: usize, stages: &[&str]) -> anyhow::Result<Vec<Phase>> {
        let partly_frozen = match &self.freeze_until {
            None => Frozen::Nothing,
            Some(name) => match stages.iter().position(|s| s == name) {
                Some(i) if i + 1 == stages.len() => Frozen::Backbone,
                Some(i) => Frozen::Stages(i),
                None => bail_input!(
                    "--freeze-until: no stage {name:?}; the backbone's stages are {}",
                    stages.join(", ")
                ),
            },
        };
        let tuned = |name: &str, epochs, lr_scale, backbone_lr_mult| Phase {
            name: name.into(),
            epochs,
            frozen: partly_frozen.clone(),
            lr_scale,
            backbone_lr_mult,
            layer_decay: self.layer_decay,
        };
        let head = |epochs| Phase {
            name: "head".into(),
            frozen: Frozen::Backbone,
            ..Phase::all(epochs)
        };
        Ok(match self.strategy {
            Strategy::Lora => {
                vec![Phase {
                    name: "lora".into(),
                    frozen: Frozen::Lora {
                        rank: self.lora_rank,
                        alpha: self.lora_alpha,
                    },
                    ..Phase::all(epochs)
                }]
            }
            Strategy::Full => vec![tuned("all", epochs, 1.0, 1.0)],
            Strategy::GradualUnfreeze => {
                // Stages stay frozen up to `k` in the epoch after the head's; then one fewer.
                let n = stages.len();
                let floor = match partly_frozen {
                    Frozen::Stages(i) => Some(i),
                    Frozen::Backbone => Some(n - 1),
                    _ => None,
                };
                let mut phases = vec![head(1)];
                for k in (0..n).rev() {
                    let used: usize = phases.iter().map(|p| p.epochs).sum();
                    if used == epochs {
                        break;
                    }
                    let frozen_to = k.checked_sub(1).max(floor);
                    let last = used + 1 == epochs || frozen_to.is_none() || frozen_to == floor;
                    phases.push(Phase {
                        name: match frozen_to {
                            None => "all".into(),
                            Some(f) if f + 1 < n => format!("from {}", stages[f + 1]),
                            Some(_) => "head".into(),
                        },
                        epochs: if last { epochs - used } else { 1 },
                        frozen: frozen_to.map_or(Frozen::Nothing, |f| {
                            if f + 1 == n {
                                Frozen::Backbone
                            } else {
                                Frozen::Stages(f)
                            }
                        }),
                        lr_scale: 1.0,
                        backbone_lr_mult: 1.0,
                        layer_decay: self.layer_decay,
                    });
                    if last {
                        break;
                    }
                }
                phases
            }
            Strategy::DecoderOnly => match stages.iter().position(|s| *s == "encoder") {
                Some(i) => vec![Phase {
                    name: "decoder".into(),
                    frozen: Frozen::Stages(i),
                    ..Phase::all(epochs)
                }],
                None => bail_input!(
                    "--strategy decoder-only freezes an encoder; this model's stages are {}",
                    stages.join(", ")
                ),
            },
            Strategy::LinearProbe => vec![head(epochs)],
            Strategy::FreezeThenUnfreeze => {
                if self.freeze_epochs >= epochs {
                    bail_input!(
                        "--freeze-epochs ({}) must be less than --epochs ({epochs})",
                        self.freeze_epochs
                    );
                }
                let mut phases = vec![tuned(
                    "all",
                    epochs - self.freeze_epochs,
                    0.5,
                    self.backbone_lr_mult,
                )];
                if self.freeze_epochs > 0 {
                    phases.insert(0, head(self.freeze_epochs));
                }
                phases
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        finetune: FinetuneOptions,
    }

    fn with(schedule: Schedule, warmup_epochs: f64) -> Recipe {
        Recipe {
            schedule,
            warmup_epochs,
            ..Recipe::default()
        }
    }

    #[test]
    fn cosine_warms_up_then_decays_to_zero() {
        let r = with(Schedule::Cosine, 1.0);
        let (spe, total) = (10, 100);
        assert!((r.lr_factor(0, spe, total) - 0.1).abs() < 1e-12);
        assert!((r.lr_factor(9, spe, total) - 1.0).abs() < 1e-12);
        assert!((r.lr_factor(55, spe, total) - 0.5).abs() < 0.01);
        assert!(r.lr_factor(99, spe, total) < 1e-3);
        let c = with(Schedule::Constant, 0.0);
        assert_eq!(c.lr_factor(50, spe, total), 1.0);
        let l = with(Schedule::Linear, 1.0);
        assert!((l.lr_factor(10, spe, total) - 1.0).abs() < 1e-12);
        assert!((l.lr_factor(55, spe, total) - 0.5).abs() < 1e-12);
        assert!(l.lr_factor(99, spe, total) < 0.02);
    }

    #[test]
    fn onecycle_rises_then_falls() {
        let r = with(Schedule::Onecycle, 0.1);
        assert!((r.lr_factor(0, 10, 100) - 0.04).abs() < 1e-9);
        assert!((r.lr_factor(25, 10, 100) - 1.0).abs() < 1e-9);
        assert!(r.lr_factor(99, 10, 100) < 1e-3);
    }

    #[test]
    fn exponential_spans_the_range_in_its_steps() {
        let r = with(
            Schedule::Exponential {
                ratio: 1e4,
                steps: 5,
            },
            0.0,
        );
        let f: Vec<f64> = (0..5).map(|s| r.lr_factor(s, 3, 6)).collect();
        assert!((f[0] - 1.0).abs() < 1e-12 && (f[2] - 100.0).abs() < 1e-9);
        assert!((f[4] - 1e4).abs() < 1e-6);
    }

    #[test]
    fn the_default_recipe_is_the_command_lines() {
        // The CLI's defaults are written in `RecipeArgs`; the library's default must agree.
        let r = Recipe::default();
        assert_eq!((r.epochs, r.batch_size, r.lr), (3, 64, 1e-3));
        assert_eq!((r.schedule, r.label_smoothing), (Schedule::Cosine, 0.1));
        let f = Cli::parse_from(["x"]).finetune;
        let d = FinetuneOptions::default();
        assert_eq!(
            (
                f.strategy,
                f.freeze_epochs,
                f.backbone_lr_mult,
                f.layer_decay
            ),
            (
                d.strategy,
                d.freeze_epochs,
                d.backbone_lr_mult,
                d.layer_decay
            )
        );
        assert_eq!((f.lora_rank, f.lora_alpha), (d.lora_rank, d.lora_alpha));
    }

    #[test]
    fn strategies_become_phases() {
        let stages = ["conv1", "conv2", "fc1"];
        let plan = |args: &[&str], epochs| {
            let mut argv = vec!["x"];
            argv.extend_from_slice(args);
            Cli::parse_from(argv).finetune.plan(epochs, &stages)
        };
        let p = plan(&["--strategy", "freeze-then-unfreeze"], 10).unwrap();
        assert_eq!(
            p.iter()
                .map(|p| (p.epochs, p.frozen.clone()))
                .collect::<Vec<_>>(),
            vec![(1, Frozen::Backbone), (9, Frozen::Nothing)]
        );
        assert_eq!((p[1].lr_scale, p[1].backbone_lr_mult), (0.5, 0.1));
        let p = plan(&["--strategy", "linear-probe"], 5).unwrap();
        assert_eq!((p.len(), p[0].frozen.clone()), (1, Frozen::Backbone));
        let p = plan(&["--freeze-until", "conv2", "--layer-decay", "0.5"], 5).unwrap();
        assert_eq!(
            (
                p.len(),
                p[0].frozen.clone(),
                p[0].backbone_lr_mult,
                p[0].layer_decay
            ),
            (1, Frozen::Stages(1), 1.0, 0.5)
        );
        // Gradual unfreezing: the head, then from fc1, from conv2, then everything.
        let p = plan(&["--strategy", "gradual-unfreeze"], 6).unwrap();
        assert_eq!(
            p.iter()
                .map(|p| (p.name.as_str(), p.epochs, p.frozen.clone()))
                .collect::<Vec<_>>(),
            vec![
                ("head", 1, Frozen::Backbone),
                ("from fc1", 1, Frozen::Stages(1)),
                ("from conv2", 1, Frozen::Stages(0)),
                ("all", 3, Frozen::Nothing),
            ]
        );
        // Fewer epochs than stages: the last one keeps what it reached.
        let p = plan(&["--strategy", "gradual-unfreeze"], 2).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!((p[1].epochs, p[1].frozen.clone()), (1, Frozen::Stages(1)));
        // --freeze-until keeps the bottom frozen throughout.
        let p = plan(
            &["--strategy", "gradual-unfreeze", "--freeze-until", "conv1"],
            5,
        )
        .unwrap();
        assert_eq!(
            p.iter()
                .map(|p| (p.epochs, p.frozen.clone()))
                .collect::<Vec<_>>(),
            vec![
                (1, Frozen::Backbone),
                (1, Frozen::Stages(1)),
                (3, Frozen::Stages(0))
            ]
        );
        let err = plan(&["--freeze-until", "conv9"], 5)
            .unwrap_err()
            .to_string();
        assert!(err.contains("conv1, conv2, fc1"), "{err}");
        assert!(
            plan(
                &["--strategy", "freeze-then-unfreeze", "--freeze-epochs", "5"],
                5
            )
            .is_err()
        );
    }
}
