//! `pretune demo`: the proof. Pretrain on some Fashion-MNIST classes, then learn the others from
//! few labels three ways — from scratch, as a linear probe, fine-tuned — and measure each on the
//! test set, at several label budgets and seeds. Two more pretrainings are compared the same
//! way: the small CNN pretrained without labels (SimCLR) on all training images, and
//! EfficientNet-Lite0 pretrained on ImageNet.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use pretune::data::views::Views;
use pretune::data::{
    self, Augment, Batch, Examples, Normalization, Split, Training, classes, split,
};
use pretune::fs::write_atomic;
use pretune::infer;
use pretune::interop::torch;
use pretune::models::{self, ArchInfo, ArchKind, Classifier, Input, Interpolation, ModelOptions};
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// The small CNN from random weights.
    Scratch,
    /// The CNN pretrained on the source classes, frozen, a new output layer trained.
    LinearProbe,
    /// The CNN pretrained on the source classes, everything trained.
    Finetune,
    /// The CNN pretrained without labels (SimCLR) on all training images, frozen.
    SimclrProbe,
    /// The same, everything trained.
    SimclrFinetune,
    /// EfficientNet-Lite0 pretrained on ImageNet, frozen.
    ImagenetProbe,
    /// The same, everything trained.
    ImagenetFinetune,
}

impl Method {
    pub const ALL: [Method; 7] = [
        Method::Scratch,
        Method::LinearProbe,
        Method::Finetune,
        Method::SimclrProbe,
        Method::SimclrFinetune,
        Method::ImagenetProbe,
        Method::ImagenetFinetune,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Method::Scratch => "scratch",
            Method::LinearProbe => "linear-probe",
            Method::Finetune => "finetune",
            Method::SimclrProbe => "simclr-probe",
            Method::SimclrFinetune => "simclr-finetune",
            Method::ImagenetProbe => "imagenet-probe",
            Method::ImagenetFinetune => "imagenet-finetune",
        }
    }

    /// Whether the backbone stays frozen (only a new output layer learns).
    pub fn is_probe(self) -> bool {
        matches!(
            self,
            Method::LinearProbe | Method::SimclrProbe | Method::ImagenetProbe
        )
    }
}

/// The methods of results written before `--methods` existed.
fn first_methods() -> Vec<Method> {
    Method::ALL[..3].to_vec()
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
    /// The rows to run.
    #[serde(default = "first_methods")]
    pub methods: Vec<Method>,
    /// EfficientNet-Lite0's ImageNet weights (the `.pth` file).
    #[serde(default)]
    pub imagenet_weights: PathBuf,
    /// Side of the square RGB images EfficientNet-Lite0 reads (the 28×28 grey images
    /// resized and repeated).
    #[serde(default)]
    pub imagenet_size: usize,
    /// Where the one-time SimCLR pretraining is kept for later runs.
    #[serde(default)]
    pub cache: PathBuf,
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
    /// The self-supervised pretraining, when its rows ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simclr: Option<SimclrSummary>,
    /// The ImageNet-pretrained network, when its rows ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imagenet: Option<ImagenetSummary>,
    pub results: Vec<RunResult>,
}

/// The SimCLR pretraining of the small CNN (cached: its time is that of the run that made it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimclrSummary {
    pub epochs: usize,
    pub images: usize,
    pub batch_size: usize,
    pub temperature: f64,
    pub seconds: f64,
    /// The k-nearest-neighbour accuracy of its features on test images of all ten classes
    /// (training images the neighbours), after each epoch.
    pub knn_accuracy: Vec<f64>,
    /// The NT-Xent loss of each epoch.
    pub loss: Vec<f64>,
    /// Loaded from the cache rather than trained by this run.
    #[serde(default)]
    pub cached: bool,
}

/// EfficientNet-Lite0 as the demo uses it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImagenetSummary {
    pub weights: PathBuf,
    pub image_size: usize,
    /// Seconds spent computing the frozen features the probes train on.
    pub feature_seconds: f64,
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
            augment: if labels_per_class < 100 && !method.is_probe() {
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

/// Epochs of SimCLR over all 60,000 training images: a few minutes here, cached.
const SIMCLR_EPOCHS: usize = 5;
/// The NT-Xent temperature and batch of the demo's SimCLR (as measured in PyTorch).
const SIMCLR_TEMPERATURE: f64 = 0.2;
const SIMCLR_BATCH: usize = 256;
/// Test images of all classes the kNN monitor of the SimCLR pretraining classifies.
const SIMCLR_KNN_QUERIES: usize = 2000;

/// Epochs of fine-tuning EfficientNet-Lite0: a fifth of the small CNN's (12 / 4 / 1 at 10 /
/// 100 / 1000 labels per class) — a far larger network per image, kept within the demo's time.
fn imagenet_epochs(labels_per_class: usize, quick: bool) -> usize {
    let e = (epochs_for(labels_per_class) / 5).max(1);
    if quick { (e / 2).max(1) } else { e }
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
    let wants = |methods: &[Method]| methods.iter().any(|m| config.methods.contains(m));
    // Check the ImageNet weights before minutes of other work.
    let imagenet = if wants(&[Method::ImagenetProbe, Method::ImagenetFinetune]) {
        Some(Imagenet::load(config, device)?)
    } else {
        None
    };

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
    let simclr = if wants(&[Method::SimclrProbe, Method::SimclrFinetune]) {
        Some(simclr_backbone(config, &train_all, &test_all, device)?)
    } else {
        None
    };

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
    let draw = |labels, seed| split::per_class(&target_train.labels, &pool, labels, seed);

    // EfficientNet-Lite0 reads larger RGB images; its probes train on features computed once
    // for every image any run draws.
    let mut imagenet_summary = None;
    let (big_val, big_test, probe_features) = match &imagenet {
        Some(net) => {
            let started = Instant::now();
            let probe = if config.methods.contains(&Method::ImagenetProbe) {
                let mut drawn: Vec<usize> = config
                    .labels
                    .iter()
                    .flat_map(|&l| (0..config.seeds as u64).flat_map(move |s| draw(l, s)))
                    .collect();
                drawn.sort_unstable();
                drawn.dedup();
                println!(
                    "EfficientNet-Lite0 features of {} images at {}x{}...",
                    drawn.len() + val.len() + test.len(),
                    net.size,
                    net.size
                );
                Some((
                    net.features(&target_train.subset(&drawn))?,
                    drawn,
                    net.features(&val)?,
                    net.features(&test)?,
                ))
            } else {
                None
            };
            imagenet_summary = Some(ImagenetSummary {
                weights: config.imagenet_weights.clone(),
                image_size: net.size,
                feature_seconds: started.elapsed().as_secs_f64(),
            });
            let finetunes = config.methods.contains(&Method::ImagenetFinetune);
            (
                finetunes.then(|| net.images(&val)),
                finetunes.then(|| net.images(&test)),
                probe,
            )
        }
        None => (None, None, None),
    };

    let methods: Vec<Method> = Method::ALL
        .into_iter()
        .filter(|m| config.methods.contains(m))
        .collect();
    let mut results = Vec::new();
    println!(
        "{:>6} {:>4}  {:<17} {:>8} {:>7}",
        "labels", "seed", "method", "test acc", "time"
    );
    for &labels in &config.labels {
        let cnn_epochs = if config.quick {
            (epochs_for(labels) / 2).max(2)
        } else {
            epochs_for(labels)
        };
        for seed in 0..config.seeds as u64 {
            let drawn = draw(labels, seed);
            let train = target_train.subset(&drawn);
            for &method in &methods {
                let epochs = match method {
                    Method::ImagenetFinetune => imagenet_epochs(labels, config.quick),
                    _ => cnn_epochs,
                };
                let r = target_recipe(config.recipe, method, labels, epochs, seed);
                let started = Instant::now();
                // What each method trains on: the CNN's images normalised its pretraining's
                // way, EfficientNet's larger RGB images, or EfficientNet's features.
                let (big_train, probe_train);
                let (model, phases, examples): (
                    Classifier,
                    Vec<Phase>,
                    [Box<dyn Examples + '_>; 3],
                ) = match method {
                    Method::Scratch => (
                        fresh(arch, target.len(), seed, device),
                        vec![Phase::all(epochs)],
                        images(&train, &val, &test, &norm),
                    ),
                    Method::LinearProbe | Method::Finetune => (
                        transfer(&pretrained, target.len(), seed),
                        phases_for(method, config.recipe, arch, epochs),
                        images(&train, &val, &test, &norm),
                    ),
                    Method::SimclrProbe | Method::SimclrFinetune => {
                        let (backbone, norm) = simclr
                            .as_ref()
                            .map(|s| (&s.0, &s.1))
                            .context("SimCLR rows ran without their pretraining")?;
                        (
                            transfer(backbone, target.len(), seed),
                            phases_for(method, config.recipe, arch, epochs),
                            images(&train, &val, &test, norm),
                        )
                    }
                    Method::ImagenetProbe => {
                        let net = imagenet
                            .as_ref()
                            .context("ImageNet rows ran without the network")?;
                        let (features, rows, val_f, test_f) =
                            probe_features.as_ref().context("probe features")?;
                        let at: Vec<usize> = drawn
                            .iter()
                            .map(|i| {
                                rows.binary_search(i)
                                    .expect("every drawn image has features")
                            })
                            .collect();
                        probe_train = features.subset(&at);
                        (
                            transfer(&net.model, target.len(), seed),
                            probe(net.arch, epochs),
                            [Box::new(&probe_train), Box::new(val_f), Box::new(test_f)],
                        )
                    }
                    Method::ImagenetFinetune => {
                        let net = imagenet
                            .as_ref()
                            .context("ImageNet rows ran without the network")?;
                        big_train = net.images(&train);
                        let (v, t) = (
                            big_val.as_ref().context("images")?,
                            big_test.as_ref().context("images")?,
                        );
                        (
                            transfer(&net.model, target.len(), seed),
                            phases_for(method, config.recipe, net.arch, epochs),
                            images(&big_train, v, t, &net.norm),
                        )
                    }
                };
                let [train_ex, val_ex, test_ex] = examples;
                // Every method keeps its last epoch: validation is only watched.
                let outcome = train::fit(
                    model,
                    train_ex.as_ref(),
                    Some(val_ex.as_ref()),
                    &Plan::new(r, phases).keep(Keep::Last),
                    &mut [],
                    None,
                )?;
                let test_accuracy = infer::loss_and_accuracy(&outcome.model, test_ex.as_ref())?.1;
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
                    "{labels:>6} {seed:>4}  {:<17} {:>7.2}% {:>6.1}s",
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
        simclr: simclr.map(|s| s.2),
        imagenet: imagenet_summary,
        results,
    })
}

/// Training, validation and test images, normalised with `norm`.
fn images<'a>(
    train: &'a data::ImageSet,
    val: &'a data::ImageSet,
    test: &'a data::ImageSet,
    norm: &'a Normalization,
) -> [Box<dyn Examples + 'a>; 3] {
    [
        Box::new(train.normalized(norm)),
        Box::new(val.normalized(norm)),
        Box::new(test.normalized(norm)),
    ]
}

/// The phases of a transfer method: a linear probe, or the fine-tune method's (one epoch
/// trains everything at once). EfficientNet's ImageNet features are worth more than what a
/// few grey images teach its backbone: its head learns alone for half the epochs, then the
/// backbone at a tenth of the head's rate (at the default rate from the first epoch it fell to
/// 34% validation accuracy at 10 labels per class, against 52% so); in one epoch, each stage
/// learns at half the rate of the one above it.
fn phases_for(method: Method, kind: RecipeKind, arch: &ArchInfo, epochs: usize) -> Vec<Phase> {
    let imagenet = |options: FinetuneOptions| {
        options
            .plan(epochs, arch.stages)
            .expect("valid options for these epochs")
    };
    match method {
        _ if method.is_probe() => probe(arch, epochs),
        Method::ImagenetFinetune if epochs < 2 => imagenet(FinetuneOptions {
            strategy: train::Strategy::Full,
            layer_decay: 0.5,
            ..FinetuneOptions::default()
        }),
        Method::ImagenetFinetune => imagenet(FinetuneOptions {
            strategy: train::Strategy::FreezeThenUnfreeze,
            freeze_epochs: (epochs / 2).clamp(1, epochs - 1),
            backbone_lr_mult: 0.1,
            layer_decay: 1.0,
            ..FinetuneOptions::default()
        }),
        _ if epochs < 2 => vec![Phase::all(epochs)],
        _ => finetune_phases(kind, arch, epochs),
    }
}

/// The small CNN pretrained by SimCLR on the training images (all 60,000 of them; 5,000 for
/// one epoch with `--quick`), labels ignored, and the normalisation it learned with: read from
/// the cache when an earlier run made it, else trained and cached there (a pretune
/// checkpoint: `pretune finetune --from` takes it too).
fn simclr_backbone(
    config: &DemoConfig,
    train_all: &data::ImageSet,
    test_all: &data::ImageSet,
    device: &Device,
) -> Result<(Classifier, Normalization, SimclrSummary)> {
    let arch = models::arch("cnn")?;
    let (images, epochs) = if config.quick {
        (train_all.len().min(5000), 1)
    } else {
        (train_all.len(), SIMCLR_EPOCHS)
    };
    let set = train_all.subset(&(0..images).collect::<Vec<_>>());
    let norm = Normalization::of(&set);
    let dir = config
        .cache
        .join(format!("simclr-cnn-{images}img-{epochs}ep"));
    let summary_file = dir.join("simclr.json");
    if let Ok(json) = std::fs::read(&summary_file) {
        let summary: SimclrSummary = serde_json::from_slice(&json)
            .with_context(|| format!("{}: not a SimCLR summary", summary_file.display()))?;
        let model = pretune::interop::open_model(&dir, device)?.load_model(device)?;
        println!(
            "SimCLR backbone from {} ({} epochs over {images} images, {:.0} s when made)\n",
            dir.display(),
            summary.epochs,
            summary.seconds
        );
        return Ok((
            model,
            norm,
            SimclrSummary {
                cached: true,
                ..summary
            },
        ));
    }
    let options = ModelOptions {
        contrastive: Some(models::Contrastive {
            temperature: SIMCLR_TEMPERATURE,
        }),
        ..ModelOptions::default()
    };
    let model = Classifier::new(arch, &options, models::PROJECTION_DIM, 0, device);
    let recipe = Recipe {
        epochs,
        batch_size: SIMCLR_BATCH,
        augment: Augment::Simclr,
        label_smoothing: 0.0,
        ..Recipe::default()
    };
    let queries = test_all.subset(
        &(0..SIMCLR_KNN_QUERIES.min(test_all.len()))
            .map(|k| k * test_all.len() / SIMCLR_KNN_QUERIES.min(test_all.len()))
            .collect::<Vec<_>>(),
    );
    println!(
        "SimCLR pretraining (labels ignored) on {images} images, {epochs} epoch(s), once: cached in {}...",
        dir.display()
    );
    let started = Instant::now();
    let outcome = train::fit(
        model,
        &Views::new(&set, &norm, Augment::Simclr, SIMCLR_TEMPERATURE),
        Some(&Views::new(&queries, &norm, Augment::Simclr, SIMCLR_TEMPERATURE).validation(&set)),
        &Plan::all(recipe.clone()).keep(Keep::Last),
        &mut [&mut Display::new(false)],
        None,
    )?;
    let summary = SimclrSummary {
        epochs,
        images,
        batch_size: SIMCLR_BATCH,
        temperature: SIMCLR_TEMPERATURE,
        seconds: started.elapsed().as_secs_f64(),
        knn_accuracy: outcome
            .history
            .iter()
            .filter_map(|h| h.val_error_rate.map(|e| 1.0 - e))
            .collect(),
        loss: outcome.history.iter().map(|h| h.train_loss).collect(),
        cached: false,
    };
    let [channels, height, width] = arch.input_for(&options).expect("an image model");
    let mut meta = pretune::checkpoint::Meta::imported(
        arch,
        options,
        Vec::new(),
        data::ModelInput::Image(data::InputSpec {
            channels,
            height,
            width,
            normalization: norm.clone(),
            interpolation: Interpolation::default(),
        }),
    );
    meta.stage = "pretrain".into();
    meta.task = models::Task::Contrastive;
    meta.recipe = Some(recipe);
    meta.history = outcome.history;
    meta.best_epoch = epochs;
    pretune::checkpoint::save(&dir, &outcome.model, &mut meta, None)?;
    write_atomic(
        &summary_file,
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    println!(
        "SimCLR: kNN accuracy {:.2}% after {epochs} epoch(s), {:.0} s\n",
        100.0 * summary.knn_accuracy.last().copied().unwrap_or(0.0),
        summary.seconds
    );
    Ok((outcome.model, norm, summary))
}

/// EfficientNet-Lite0 with its ImageNet weights, reading the demo's images resized to
/// `size`×`size` and repeated to RGB.
struct Imagenet {
    model: Classifier,
    arch: &'static ArchInfo,
    norm: Normalization,
    size: usize,
}

impl Imagenet {
    fn load(config: &DemoConfig, device: &Device) -> Result<Imagenet> {
        let path = &config.imagenet_weights;
        if !path.is_file() {
            pretune::bail_input!(
                "{}: EfficientNet-Lite0's ImageNet weights are not there (scripts/efficientnet.sh \
                 fetches them; --imagenet-weights points elsewhere; --methods can leave the \
                 imagenet rows out)",
                path.display()
            );
        }
        let arch = models::arch("efficientnet_lite0")?;
        let ArchKind::Image(image) = arch.kind else {
            unreachable!("an image architecture")
        };
        let options = ModelOptions {
            image_size: Some(config.imagenet_size),
            ..ModelOptions::default()
        };
        arch.check(&options)?;
        let imported = torch::import(
            arch,
            options,
            torch::read_tensors(path)?,
            None,
            path,
            device,
        )?;
        let (mean, std) = image.torch_normalization();
        Ok(Imagenet {
            model: imported.model,
            arch,
            norm: Normalization { mean, std },
            size: config.imagenet_size,
        })
    }

    /// `set` as this network reads it.
    fn images(&self, set: &data::ImageSet) -> data::ImageSet {
        set.clone()
            .resized(self.size, self.size, Interpolation::Bilinear)
            .with_channels(3)
    }

    /// The frozen network's features of `set`.
    fn features(&self, set: &data::ImageSet) -> Result<Features> {
        let big = self.images(set);
        Ok(Features {
            features: infer::features(&self.model, &big.normalized(&self.norm))?,
            labels: set.labels.clone(),
        })
    }
}

/// Labelled features a frozen backbone computed once: a probe's head trains on them directly.
struct Features {
    features: Tensor<2>,
    labels: Vec<usize>,
}

impl Features {
    fn subset(&self, rows: &[usize]) -> Features {
        let device = self.features.device();
        Features {
            features: self.features.clone().select(0, index(rows, &device)),
            labels: rows.iter().map(|&r| self.labels[r]).collect(),
        }
    }
}

fn index(rows: &[usize], device: &Device) -> Tensor<1, Int> {
    let rows: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
    let n = rows.len();
    Tensor::from_data(TensorData::new(rows, [n]), device)
}

impl Examples for &Features {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn labels(&self) -> &[usize] {
        &self.labels
    }

    fn batch(
        &self,
        indices: &[usize],
        training: Option<&Training>,
        device: &Device,
    ) -> Result<Batch> {
        let rows = match training {
            Some(t) => &indices[t.part.clone()],
            None => indices,
        };
        Ok(Batch {
            input: Input::Features(self.features.clone().select(0, index(rows, device))),
            targets: data::examples::labels(&self.labels, rows, device),
        })
    }

    fn inference_batch(&self) -> usize {
        1000
    }

    fn noun(&self) -> &'static str {
        "img"
    }
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
