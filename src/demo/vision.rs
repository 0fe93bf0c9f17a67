//! `pretune demo`: the proof. Pretrain on some Fashion-MNIST classes, then learn the others from
//! few labels three ways — from scratch, as a linear probe, fine-tuned — and measure each on the
//! test set, at several label budgets and seeds.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use burn::prelude::Device;
use serde::{Deserialize, Serialize};

use pretune::data::{self, Augment, Normalization, Split, classes, split};
use pretune::infer;
use pretune::models::{self, ArchInfo, Classifier};
use pretune::train::observe::Display;
use pretune::train::{self, FinetuneOptions, Keep, Optimizer, Phase, Plan, Recipe, Schedule};

/// Which training recipe the demo uses for all three methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecipeKind {
    /// pretune's defaults: AdamW, one-cycle, label smoothing, light augmentation;
    /// fine-tuning freezes the backbone first, then trains it at a tenth of the head's rate.
    Default,
    /// The usual PyTorch baseline: Adam 1e-3, batch 64, constant rate, no augmentation,
    /// full fine-tune at one rate.
    Plain,
}

/// How a target model was trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    Scratch,
    LinearProbe,
    Finetune,
}

impl Method {
    pub const ALL: [Method; 3] = [Method::Scratch, Method::LinearProbe, Method::Finetune];

    pub fn name(self) -> &'static str {
        match self {
            Method::Scratch => "scratch",
            Method::LinearProbe => "linear-probe",
            Method::Finetune => "finetune",
        }
    }
}

/// What to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoConfig {
    pub data: PathBuf,
    pub source: String,
    pub target: String,
    pub labels: Vec<usize>,
    pub seeds: usize,
    pub recipe: RecipeKind,
    pub quick: bool,
}

/// One trained target model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    pub labels_per_class: usize,
    pub method: Method,
    pub seed: u64,
    pub test_accuracy: f64,
    pub epochs: usize,
    pub seconds: f64,
    /// Validation accuracy after each epoch (a held-out set of target images; watched, not
    /// used to pick weights: every method keeps its last epoch).
    pub val_accuracy: Vec<f64>,
}

/// The pretraining run the transfer methods start from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PretrainSummary {
    pub epochs: usize,
    pub images: usize,
    pub seconds: f64,
    /// Accuracy on the source classes' test images.
    pub test_accuracy: f64,
}

/// Everything the demo measured (`results.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoResults {
    pub pretune_version: String,
    pub config: DemoConfig,
    pub source_classes: Vec<String>,
    pub target_classes: Vec<String>,
    pub val_images: usize,
    pub test_images: usize,
    pub pretrain: PretrainSummary,
    pub results: Vec<RunResult>,
}

/// Epochs of target training per label budget: the plain baseline's budgets (60 / 20 / 5 for
/// 10 / 100 / 1000 labels per class), interpolated on a log scale for other budgets.
pub fn epochs_for(labels_per_class: usize) -> usize {
    const KNOWN: [(f64, f64); 3] = [(10.0, 60.0), (100.0, 20.0), (1000.0, 5.0)];
    let l = (labels_per_class.max(1) as f64).clamp(10.0, 1000.0);
    let i = if l <= 100.0 { 0 } else { 1 };
    let ((l0, e0), (l1, e1)) = (KNOWN[i], KNOWN[i + 1]);
    let t = (l.ln() - l0.ln()) / (l1.ln() - l0.ln());
    (e0.ln() + t * (e1.ln() - e0.ln())).exp().round() as usize
}

/// The recipe of the pretraining run: pretune's command-line defaults, or the plain baseline.
fn pretrain_recipe(kind: RecipeKind, epochs: usize) -> Recipe {
    match kind {
        RecipeKind::Plain => plain(epochs, 0),
        RecipeKind::Default => Recipe {
            epochs,
            ..Recipe::default()
        },
    }
}

/// The recipe a method trains the target task with. The default was chosen by measuring on
/// this demo: with few images, more and smaller steps at a higher peak rate, one-cycle and label
/// smoothing help both scratch and fine-tuning; augmentation helps at 10 labels per class and
/// hurts from 100 on (at these epoch budgets), so it is on only below 100. A linear probe never
/// augments, so it trains on cached features.
fn target_recipe(
    kind: RecipeKind,
    method: Method,
    labels_per_class: usize,
    epochs: usize,
    seed: u64,
) -> Recipe {
    match kind {
        RecipeKind::Plain => plain(epochs, seed),
        RecipeKind::Default => Recipe {
            epochs,
            seed,
            lr: 2e-3,
            batch_size: 32,
            schedule: Schedule::Onecycle,
            label_smoothing: 0.1,
            augment: if labels_per_class < 100 && method != Method::LinearProbe {
                Augment::CropFlip
            } else {
                Augment::None
            },
            ..Recipe::default()
        },
    }
}

/// Adam at a constant 1e-3, batch 64, nothing else: the usual PyTorch baseline.
fn plain(epochs: usize, seed: u64) -> Recipe {
    Recipe {
        epochs,
        seed,
        optimizer: Optimizer::Adam,
        schedule: Schedule::Constant,
        warmup_epochs: 0.0,
        weight_decay: 0.0,
        label_smoothing: 0.0,
        ..Recipe::default()
    }
}

/// The phases of the fine-tune method. The default freezes the backbone for the first tenth of
/// the epochs (the new head learns on cached features), then trains everything, each backbone
/// stage at 0.7 of the rate of the stage above it.
fn finetune_phases(kind: RecipeKind, arch: &ArchInfo, epochs: usize) -> Vec<Phase> {
    match kind {
        RecipeKind::Plain => vec![Phase::all(epochs)],
        RecipeKind::Default => {
            let options = FinetuneOptions {
                strategy: train::Strategy::FreezeThenUnfreeze,
                freeze_epochs: (epochs / 10).clamp(1, epochs - 1),
                backbone_lr_mult: 1.0,
                layer_decay: 0.7,
                ..FinetuneOptions::default()
            };
            options
                .plan(epochs, arch.stages)
                .expect("valid for 2+ epochs")
        }
    }
}

/// Run the demo, printing one line per trained model.
pub fn run(config: &DemoConfig, device: &Device) -> Result<DemoResults> {
    let arch = models::arch("cnn")?;
    let input = arch.input_for(&Default::default()).expect("an image model");
    let train_all = data::load(&config.data, Split::Train, input, false)?.0;
    let test_all = data::load(&config.data, Split::Test, input, false)?.0;
    let source = classes::parse_classes(&config.source, &train_all.class_names)?;
    let target = classes::parse_classes(&config.target, &train_all.class_names)?;
    if let Some(c) = source.iter().find(|c| target.contains(c)) {
        pretune::bail_input!(
            "--source and --target share class {} ({}): the target classes must be new",
            c,
            train_all.class_names[*c]
        );
    }

    // Pretraining on the source classes.
    let pretrain_epochs = if config.quick { 1 } else { 3 };
    let source_train = {
        let set = train_all.restrict_to(&source);
        let keep: Vec<usize> = if config.quick {
            split::per_class(&set.labels, &(0..set.len()).collect::<Vec<_>>(), 500, 0)
        } else {
            (0..set.len()).collect()
        };
        set.subset(&keep)
    };
    let source_test = test_all.restrict_to(&source);
    let norm = Normalization::of(&source_train);
    let started = Instant::now();
    println!(
        "pretraining on {} source images ({}), {pretrain_epochs} epoch(s)...",
        source_train.len(),
        source_train.class_names.join(", ")
    );
    let pretrained = train::fit(
        fresh(arch, source.len(), 0, device),
        &source_train.normalized(&norm),
        None,
        &Plan::all(pretrain_recipe(config.recipe, pretrain_epochs)),
        &mut [&mut Display::new(false)],
        None,
    )?
    .model;
    let pretrain = PretrainSummary {
        epochs: pretrain_epochs,
        images: source_train.len(),
        seconds: started.elapsed().as_secs_f64(),
        test_accuracy: infer::loss_and_accuracy(&pretrained, &source_test.normalized(&norm))?.1,
    };
    println!(
        "pretrained: {:.2}% on the source test images, {:.0} s\n",
        100.0 * pretrain.test_accuracy,
        pretrain.seconds
    );

    // The target task: a fixed validation set, a pool to draw labels from, the test images.
    let target_train = train_all.restrict_to(&target);
    let val_per_class = if config.quick { 25 } else { 100 };
    let all_idx: Vec<usize> = (0..target_train.len()).collect();
    let val_idx = split::per_class(&target_train.labels, &all_idx, val_per_class, 0xDE30);
    let pool: Vec<usize> = all_idx
        .into_iter()
        .filter(|i| val_idx.binary_search(i).is_err())
        .collect();
    let val = target_train.subset(&val_idx);
    let test = {
        let set = test_all.restrict_to(&target);
        if config.quick {
            set.subset(&split::per_class(
                &set.labels,
                &(0..set.len()).collect::<Vec<_>>(),
                250,
                0,
            ))
        } else {
            set
        }
    };

    let mut results = Vec::new();
    println!(
        "{:>6} {:>4}  {:<13} {:>8} {:>7}",
        "labels", "seed", "method", "test acc", "time"
    );
    for &labels in &config.labels {
        let epochs = if config.quick {
            (epochs_for(labels) / 2).max(2)
        } else {
            epochs_for(labels)
        };
        for seed in 0..config.seeds as u64 {
            let train =
                target_train.subset(&split::per_class(&target_train.labels, &pool, labels, seed));
            for method in Method::ALL {
                let r = target_recipe(config.recipe, method, labels, epochs, seed);
                let started = Instant::now();
                let (model, phases) = match method {
                    Method::Scratch => (
                        fresh(arch, target.len(), seed, device),
                        vec![Phase::all(epochs)],
                    ),
                    Method::LinearProbe => (
                        transfer(&pretrained, target.len(), seed),
                        probe(arch, epochs),
                    ),
                    Method::Finetune => (
                        transfer(&pretrained, target.len(), seed),
                        finetune_phases(config.recipe, arch, epochs),
                    ),
                };
                // Every method keeps its last epoch: validation is only watched.
                let outcome = train::fit(
                    model,
                    &train.normalized(&norm),
                    Some(&val.normalized(&norm)),
                    &Plan::new(r, phases).keep(Keep::Last),
                    &mut [],
                    None,
                )?;
                let test_accuracy =
                    infer::loss_and_accuracy(&outcome.model, &test.normalized(&norm))?.1;
                let result = RunResult {
                    labels_per_class: labels,
                    method,
                    seed,
                    test_accuracy,
                    epochs,
                    seconds: started.elapsed().as_secs_f64(),
                    val_accuracy: outcome
                        .history
                        .iter()
                        .filter_map(|h| h.val_accuracy)
                        .collect(),
                };
                println!(
                    "{labels:>6} {seed:>4}  {:<13} {:>7.2}% {:>6.1}s",
                    method.name(),
                    100.0 * test_accuracy,
                    result.seconds
                );
                results.push(result);
            }
        }
    }
    Ok(DemoResults {
        pretune_version: env!("CARGO_PKG_VERSION").to_string(),
        config: config.clone(),
        source_classes: source_train.class_names.clone(),
        target_classes: target_train.class_names.clone(),
        val_images: val.len(),
        test_images: test.len(),
        pretrain,
        results,
    })
}

fn probe(arch: &ArchInfo, epochs: usize) -> Vec<Phase> {
    FinetuneOptions {
        strategy: train::Strategy::LinearProbe,
        ..FinetuneOptions::default()
    }
    .plan(epochs, arch.stages)
    .expect("a linear probe has no options to get wrong")
}

/// A new model whose weights come from `seed`.
fn fresh(arch: &ArchInfo, classes: usize, seed: u64, device: &Device) -> Classifier {
    Classifier::new(arch, &Default::default(), classes, seed, device)
}

/// The pretrained backbone with a new head (seeded) for `classes` classes.
fn transfer(pretrained: &Classifier, classes: usize, seed: u64) -> Classifier {
    pretrained.clone().reset_head(classes, seed)
}

impl DemoResults {
    /// Test accuracies of one method at one budget.
    pub fn accuracies(&self, labels: usize, method: Method) -> Vec<f64> {
        self.results
            .iter()
            .filter(|r| r.labels_per_class == labels && r.method == method)
            .map(|r| r.test_accuracy)
            .collect()
    }

    /// Mean validation curve of one method at one budget.
    pub fn mean_curve(&self, labels: usize, method: Method) -> Vec<f64> {
        let runs: Vec<&RunResult> = self
            .results
            .iter()
            .filter(|r| r.labels_per_class == labels && r.method == method)
            .collect();
        let len = runs.iter().map(|r| r.val_accuracy.len()).min().unwrap_or(0);
        (0..len)
            .map(|e| runs.iter().map(|r| r.val_accuracy[e]).sum::<f64>() / runs.len() as f64)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_budgets_match_the_baseline() {
        assert_eq!(
            (epochs_for(10), epochs_for(100), epochs_for(1000)),
            (60, 20, 5)
        );
        assert!(epochs_for(30) > 20 && epochs_for(30) < 60);
    }
}
