//! The training loop, checkpoints and fine-tuning surgery, on data the tests generate.

mod common;

use burn::prelude::*;
use pretune::checkpoint::{self, Checkpoint, Meta, Run};
use pretune::data::{DataSpec, Dataset, Examples, InputSpec, ModelInput, TrainingData, Validation};
use pretune::models::{self, Classifier, Task};
use pretune::train::{Frozen, Outcome, Phase, Plan, Recipe, Schedule, fit};
use pretune::{ImageSet, Normalization, infer};

/// Training draws weights and dropout from the device's one global generator, which the loop
/// seeds per step: tests training side by side in threads would interleave their draws.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The command line's image recipe with `epochs`, `batch_size` and `seed`.
fn recipe(epochs: usize, batch_size: usize, seed: u64) -> Recipe {
    Recipe {
        epochs,
        batch_size,
        seed,
        ..Recipe::default()
    }
}

/// Train with one phase in which everything learns.
fn fit_all(
    model: Classifier,
    train: &ImageSet,
    val: Option<&ImageSet>,
    norm: &Normalization,
    r: &Recipe,
) -> Outcome {
    let val = val.map(|v| v.normalized(norm));
    fit(
        model,
        &train.normalized(norm),
        val.as_ref().map(|v| v as &dyn Examples),
        &Plan::all(r.clone()),
        &mut [],
        None,
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

/// A new model whose weights come from `seed`. Burn's generator is global: seeding and drawing
/// happen under one lock (tests run in parallel).
fn fresh(classes: usize, seed: u64) -> Classifier {
    static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let arch = models::arch("cnn").unwrap();
    Classifier::new(arch, &Default::default(), classes, seed, &common::device())
}

/// The metadata a run training a CNN on `set` would write.
fn meta_for(set: &ImageSet, norm: Normalization, recipe: &Recipe) -> Meta {
    let spec = DataSpec::new("generated");
    let sets = TrainingData {
        train: Dataset::Images(set.clone()),
        val: Dataset::Images(set.subset(&[])),
        skipped: 0,
        validation: Validation::HeldOut { fraction: 0.0 },
    };
    Meta::for_run(Run {
        stage: "pretrain",
        task: Task::Classify,
        arch: models::arch("cnn").unwrap(),
        model_options: Default::default(),
        input: ModelInput::Image(InputSpec {
            channels: 1,
            height: 28,
            width: 28,
            normalization: norm,
            interpolation: Default::default(),
        }),
        data: &spec,
        sets: &sets,
        recipe,
        strategy: None,
        phases: vec![Phase::all(recipe.epochs)],
        lineage: None,
    })
}

#[test]
fn learns_a_generated_problem() {
    let _serial = serial();
    let train = common::squares(40, 6, 1);
    let val = common::squares(20, 6, 2);
    let norm = Normalization::of(&train);
    let r = Recipe {
        lr: 2e-3,
        ..recipe(4, 16, 3)
    };
    let out = fit_all(fresh(6, 3), &train, Some(&val), &norm, &r);
    let (_, acc) = infer::loss_and_accuracy(&out.model, &val.normalized(&norm)).unwrap();
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
    let r = recipe(2, 8, 11);
    let a = fit_all(fresh(3, 11), &train, None, &norm, &r);
    let b = fit_all(fresh(3, 11), &train, None, &norm, &r);
    assert_eq!(
        a.history.iter().map(|h| h.train_loss).collect::<Vec<_>>(),
        b.history.iter().map(|h| h.train_loss).collect::<Vec<_>>()
    );
    assert_eq!(backbone_tensors(&a.model), backbone_tensors(&b.model));
    assert_eq!(
        values(a.model.head.weight.as_ref().unwrap().val()),
        values(b.model.head.weight.as_ref().unwrap().val())
    );
    let c = fit_all(fresh(3, 12), &train, None, &norm, &recipe(2, 8, 12));
    assert_ne!(
        values(a.model.head.weight.as_ref().unwrap().val()),
        values(c.model.head.weight.as_ref().unwrap().val())
    );
}

#[test]
fn checkpoint_round_trip_gives_identical_outputs() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let set = common::squares(4, 5, 9);
    let norm = Normalization::of(&set);
    let model = fresh(5, 1);
    let mut meta = meta_for(&set, norm.clone(), &Recipe::default());
    checkpoint::save(dir.path(), &model, &mut meta, None).unwrap();
    assert_eq!(meta.weights_sha256.len(), 64);

    let ckpt = Checkpoint::open(dir.path()).unwrap();
    assert_eq!(ckpt.meta.input.image().unwrap().normalization, norm);
    let loaded = ckpt.load_model(&common::device()).unwrap();
    assert_eq!(
        infer::probabilities(&model, &set.normalized(&norm)).unwrap(),
        infer::probabilities(&loaded, &set.normalized(&norm)).unwrap()
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
    let set = common::squares(2, 10, 1);
    let mut meta = meta_for(
        &set,
        Normalization::uniform(1, 0.3, 0.3),
        &Recipe::default(),
    );
    checkpoint::save(dir.path(), &parent, &mut meta, None).unwrap();

    let (child, loaded) = Checkpoint::open(dir.path())
        .unwrap()
        .load_backbone(4, 99, &common::device())
        .unwrap();
    assert_eq!(
        loaded.len(),
        6,
        "conv1, conv2, fc1: weight + bias: {loaded:?}"
    );
    assert_eq!(backbone_tensors(&child), backbone_tensors(&parent));
    assert_eq!(child.head.weight.as_ref().unwrap().val().dims(), [128, 4]);
}

#[test]
fn linear_probe_leaves_the_backbone_bit_identical() {
    let _serial = serial();
    let train = common::squares(10, 4, 5);
    let norm = Normalization::of(&train);
    let model = fresh(4, 5);
    let before = backbone_tensors(&model);
    let head_before = values(model.head.weight.as_ref().unwrap().val());
    let r = Recipe {
        lr: 1e-2,
        ..recipe(2, 8, 0)
    };
    let probe = Phase {
        name: "head".into(),
        frozen: Frozen::Backbone,
        ..Phase::all(2)
    };
    let plan = Plan::new(r, vec![probe]);
    let cached = fit(
        model.clone(),
        &train.normalized(&norm),
        None,
        &plan,
        &mut [],
        None,
    )
    .unwrap();
    let uncached = Plan {
        feature_cache: false,
        ..plan
    };
    let out = fit(
        model,
        &train.normalized(&norm),
        None,
        &uncached,
        &mut [],
        None,
    )
    .unwrap();
    assert_eq!(backbone_tensors(&cached.model), before);
    // Training the head on cached features is the same computation as running the frozen backbone.
    let (a, b) = (
        values(cached.model.head.weight.as_ref().unwrap().val()),
        values(out.model.head.weight.as_ref().unwrap().val()),
    );
    assert!(
        a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-5),
        "cached and uncached heads differ"
    );
    assert_eq!(backbone_tensors(&out.model), before);
    assert_ne!(
        values(out.model.head.weight.as_ref().unwrap().val()),
        head_before
    );
}

#[test]
fn patience_stops_when_validation_stops_improving() {
    let _serial = serial();
    let train = common::squares(30, 3, 1);
    let val = common::squares(10, 3, 2);
    let norm = Normalization::of(&train);
    let r = Recipe {
        lr: 3e-3,
        patience: Some(2),
        schedule: Schedule::Constant,
        ..recipe(40, 16, 0)
    };
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

/// Checkpoints and resume states written before the redesign (format 1, `images` in field
/// names) still read: tests/fixtures/v1 holds files written by pretune 0.1.0 as it was then.
#[test]
fn checkpoints_and_resume_states_of_format_1_still_read() {
    let _serial = serial();
    let v1 = std::path::Path::new("tests/fixtures/v1");
    let ckpt = Checkpoint::open(&v1.join("cnn-finetune")).unwrap();
    assert_eq!(ckpt.meta.class_names[0], "Sandal");
    assert_eq!(ckpt.meta.data.as_ref().unwrap().train_examples, 50);
    assert!(ckpt.meta.history[0].examples_per_second > 0.0);
    let model = ckpt.load_model(&common::device()).unwrap();
    let set = common::squares(2, 5, 3);
    let norm = &ckpt.meta.input.image().unwrap().normalization;
    for p in infer::probabilities(&model, &set.normalized(norm)).unwrap() {
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-4);
    }
    for dir in ["cnn-pretrain", "bert-mini"] {
        let text = std::fs::read_to_string(v1.join(dir).join("pretune.json")).unwrap();
        Meta::parse(&text).unwrap();
    }

    // A resume state of format 4 (before validation error rates) is refused by name: resume
    // states live only while a run is unfinished, and their layout is not converted.
    let tmp = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(v1.join("resume_header_v4.bin")).unwrap();
    let record = fresh(5, 0).into_record().into_bytes().unwrap();
    for part in [&record[..], &record[..], &[][..]] {
        bytes.extend_from_slice(&(part.len() as u64).to_le_bytes());
        bytes.extend_from_slice(part);
    }
    let path = tmp.path().join("resume.state");
    std::fs::write(&path, bytes).unwrap();
    let err = pretune::train::state::load(&path, |_: &serde_json::Value| Ok(fresh(5, 0)))
        .err()
        .expect("format 4 is refused");
    assert!(
        err.to_string().contains("format 4, this one reads 5"),
        "{err}"
    );
    assert!(pretune::error::is_input_error(&err), "{err:?}");
}
