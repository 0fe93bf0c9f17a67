//! The training loop, checkpoints and fine-tuning surgery, on data the tests generate.

mod common;

use burn::prelude::*;
use pretune::checkpoint::{self, Checkpoint, DataRecord, InputSpec, Meta, ModelInput};
use pretune::data::batch::Examples;
use pretune::models::{self, Classifier};
use pretune::train::{Frozen, Phase, Recipe, RunOptions, fit};
use pretune::{Normalization, infer, training_device};

/// Training draws weights and dropout from the device's one global generator, which the loop
/// seeds per step: tests training side by side in threads would interleave their draws.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn recipe(args: &[&str]) -> Recipe {
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        recipe: Recipe,
    }
    let mut argv = vec!["test"];
    argv.extend_from_slice(args);
    <Cli as clap::Parser>::parse_from(argv).recipe
}

/// Train with one phase in which everything learns.
fn fit_all(
    model: Classifier,
    train: &pretune::ImageSet,
    val: Option<&pretune::ImageSet>,
    norm: &Normalization,
    r: &Recipe,
) -> pretune::train::Outcome {
    let val = val.map(|v| v.normalized(norm));
    fit(
        model,
        &train.normalized(norm),
        val.as_ref().map(|v| v as &dyn Examples),
        r,
        &[Phase::all(r.epochs)],
        &RunOptions {
            quiet: true,
            ..Default::default()
        },
    )
    .unwrap()
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec::<f32>().unwrap()
}

fn backbone_tensors(m: &Classifier) -> Vec<Vec<f32>> {
    let models::Backbone::Cnn(cnn) = &m.backbone else {
        panic!("a cnn")
    };
    vec![
        values(cnn.conv1.weight.val()),
        values(cnn.conv2.weight.val()),
        values(cnn.fc1.weight.val()),
        values(cnn.fc1.bias.as_ref().unwrap().val()),
    ]
}

/// A new model whose weights come from `seed`. Burn's RNG is global and parameters are
/// initialised lazily, so seeding and initialising happen under one lock (tests run in parallel).
fn fresh(classes: usize, seed: u64) -> Classifier {
    static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = RNG.lock().unwrap();
    let device = training_device();
    device.seed(seed);
    let model = Classifier::new(
        models::arch("cnn").unwrap(),
        &Default::default(),
        classes,
        &device,
    );
    backbone_tensors(&model);
    values(model.head.weight.val());
    values(model.head.bias.as_ref().unwrap().val());
    model
}

fn meta_for(classes: usize, norm: Normalization, recipe: &Recipe) -> Meta {
    Meta {
        format_version: checkpoint::FORMAT_VERSION,
        pretune_version: "test".into(),
        stage: "pretrain".into(),
        architecture: "cnn".into(),
        task: Default::default(),
        model_options: Default::default(),
        class_names: (0..classes).map(|c| format!("c{c}")).collect(),
        input: ModelInput::Image(InputSpec {
            channels: 1,
            height: 28,
            width: 28,
            normalization: norm,
        }),
        data: Some(DataRecord {
            spec: pretune::data::DataSpec {
                data: "generated".into(),
                classes: "all".into(),
                per_class: None,
                val_fraction: 0.0,
                skip_bad_images: false,
                columns: Default::default(),
            },
            train_images: 0,
            val_images: 0,
            skipped_images: 0,
        }),
        recipe: Some(recipe.clone()),
        strategy: None,
        phases: vec![],
        history: vec![],
        best_epoch: 1,
        lineage: None,
        weights_sha256: String::new(),
    }
}

#[test]
fn learns_a_generated_problem() {
    let _serial = serial();
    let train = common::squares(40, 6, 1);
    let val = common::squares(20, 6, 2);
    let norm = Normalization::of(&train);
    let r = recipe(&[
        "--epochs",
        "4",
        "--batch-size",
        "16",
        "--lr",
        "2e-3",
        "--seed",
        "3",
    ]);
    let out = fit_all(fresh(6, 3), &train, Some(&val), &norm, &r);
    let (_, acc) = infer::loss_and_accuracy(&out.model, &val.normalized(&norm));
    assert!(acc > 0.95, "validation accuracy {acc}");
    assert_eq!(out.history.len(), 4);
    assert!(out.history[3].train_loss < out.history[0].train_loss);
    // The kept epoch is the one with the best validation accuracy.
    let best = out
        .history
        .iter()
        .map(|h| h.val_accuracy.unwrap())
        .fold(0.0, f64::max);
    assert_eq!(out.history[out.best_epoch - 1].val_accuracy.unwrap(), best);
}

#[test]
fn same_seed_same_model() {
    let _serial = serial();
    let train = common::squares(20, 3, 1);
    let norm = Normalization::of(&train);
    let r = recipe(&["--epochs", "2", "--batch-size", "8", "--seed", "11"]);
    let a = fit_all(fresh(3, 11), &train, None, &norm, &r);
    let b = fit_all(fresh(3, 11), &train, None, &norm, &r);
    assert_eq!(
        a.history.iter().map(|h| h.train_loss).collect::<Vec<_>>(),
        b.history.iter().map(|h| h.train_loss).collect::<Vec<_>>()
    );
    assert_eq!(backbone_tensors(&a.model), backbone_tensors(&b.model));
    assert_eq!(
        values(a.model.head.weight.val()),
        values(b.model.head.weight.val())
    );
    let c = fit_all(
        fresh(3, 12),
        &train,
        None,
        &norm,
        &recipe(&["--epochs", "2", "--batch-size", "8", "--seed", "12"]),
    );
    assert_ne!(
        values(a.model.head.weight.val()),
        values(c.model.head.weight.val())
    );
}

#[test]
fn checkpoint_round_trip_gives_identical_outputs() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let set = common::squares(4, 5, 9);
    let norm = Normalization::of(&set);
    let model = fresh(5, 1);
    let mut meta = meta_for(5, norm.clone(), &recipe(&[]));
    checkpoint::save(dir.path(), &model, &mut meta, None).unwrap();
    assert_eq!(meta.weights_sha256.len(), 64);

    let ckpt = Checkpoint::open(dir.path()).unwrap();
    assert_eq!(ckpt.meta.input.image().unwrap().normalization, norm);
    let loaded = ckpt.load_model(&training_device()).unwrap();
    assert_eq!(
        infer::probabilities(&model, &set.normalized(&norm)),
        infer::probabilities(&loaded, &set.normalized(&norm))
    );
    // No stray temporary files are left beside the checkpoint.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, vec!["model.safetensors", "pretune.json"]);
}

#[test]
fn new_head_keeps_the_backbone() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let parent = fresh(10, 1);
    let mut meta = meta_for(10, Normalization::uniform(1, 0.3, 0.3), &recipe(&[]));
    checkpoint::save(dir.path(), &parent, &mut meta, None).unwrap();

    let device = training_device();
    device.seed(99);
    let (child, loaded) = Checkpoint::open(dir.path())
        .unwrap()
        .load_backbone(4, &device)
        .unwrap();
    assert_eq!(
        loaded.len(),
        6,
        "conv1, conv2, fc1: weight + bias: {loaded:?}"
    );
    assert_eq!(backbone_tensors(&child), backbone_tensors(&parent));
    assert_eq!(child.head.weight.val().dims(), [128, 4]);
}

#[test]
fn linear_probe_leaves_the_backbone_bit_identical() {
    let _serial = serial();
    let train = common::squares(10, 4, 5);
    let norm = Normalization::of(&train);
    let model = fresh(4, 5);
    let before = backbone_tensors(&model);
    let head_before = values(model.head.weight.val());
    let r = recipe(&["--epochs", "2", "--batch-size", "8", "--lr", "1e-2"]);
    let probe = Phase {
        name: "head".into(),
        frozen: Frozen::Backbone,
        ..Phase::all(2)
    };
    let cached = fit(
        model.clone(),
        &train.normalized(&norm),
        None,
        &r,
        std::slice::from_ref(&probe),
        &RunOptions {
            quiet: true,
            ..Default::default()
        },
    )
    .unwrap();
    let options = RunOptions {
        quiet: true,
        no_feature_cache: true,
        ..Default::default()
    };
    let out = fit(
        model,
        &train.normalized(&norm),
        None,
        &r,
        &[probe],
        &options,
    )
    .unwrap();
    assert_eq!(backbone_tensors(&cached.model), before);
    // Training the head on cached features is the same computation as running the frozen backbone.
    let (a, b) = (
        values(cached.model.head.weight.val()),
        values(out.model.head.weight.val()),
    );
    assert!(
        a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-5),
        "cached and uncached heads differ"
    );
    assert_eq!(backbone_tensors(&out.model), before);
    assert_ne!(values(out.model.head.weight.val()), head_before);
}

#[test]
fn patience_stops_when_validation_stops_improving() {
    let _serial = serial();
    let train = common::squares(30, 3, 1);
    let val = common::squares(10, 3, 2);
    let norm = Normalization::of(&train);
    let r = recipe(&[
        "--epochs",
        "40",
        "--batch-size",
        "16",
        "--lr",
        "3e-3",
        "--patience",
        "2",
        "--schedule",
        "constant",
    ]);
    let out = fit_all(fresh(3, 4), &train, Some(&val), &norm, &r);
    assert!(
        out.history.len() < 40,
        "ran all {} epochs",
        out.history.len()
    );
    assert_eq!(
        out.history.len(),
        out.best_epoch + 2,
        "stops 2 epochs after the best"
    );
}
