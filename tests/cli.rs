//! The `pretune` binary as a user runs it.

mod common;

use std::path::Path;

use common::{input_error, ok, s};

#[test]
fn pretrain_finetune_eval_predict_on_fashion_mnist() {
    let d = common::fashion_mnist();
    let tmp = tempfile::tempdir().unwrap();
    let (source, target) = (tmp.path().join("source"), tmp.path().join("target"));
    let out = ok(&[
        "pretrain",
        "--data",
        s(&d),
        "--classes",
        "0-4",
        "--per-class",
        "300",
        "--epochs",
        "2",
        "--out",
        s(&source),
        "--seed",
        "1",
    ]);
    assert!(
        out.contains("epoch 2/2") && out.contains("val accuracy"),
        "{out}"
    );
    let out = ok(&[
        "finetune",
        "--from",
        s(&source),
        "--data",
        s(&d),
        "--classes",
        "Sandal,Shirt,Sneaker,Bag,Ankle boot",
        "--per-class",
        "50",
        "--epochs",
        "3",
        "--batch-size",
        "16",
        "--out",
        s(&target),
        "--seed",
        "1",
    ]);
    assert!(out.contains("loaded 6 backbone tensors"), "{out}");

    // The checkpoint describes itself, including where it came from.
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(target.join("pretune.json")).unwrap()).unwrap();
    assert_eq!(meta["architecture"], "cnn");
    assert_eq!(meta["class_names"][1], "Shirt");
    assert_eq!(meta["history"].as_array().unwrap().len(), 3);
    let parent_meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(source.join("pretune.json")).unwrap()).unwrap();
    assert_eq!(
        meta["lineage"]["parent_weights_sha256"],
        parent_meta["weights_sha256"]
    );
    assert_eq!(
        meta["input"]["normalization"],
        parent_meta["input"]["normalization"]
    );
    assert_eq!(
        std::fs::read_to_string(target.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .count(),
        3
    );

    let report: serde_json::Value = serde_json::from_str(&ok(&[
        "eval",
        "--model",
        s(&target),
        "--data",
        s(&d),
        "--json",
    ]))
    .unwrap();
    let accuracy = report["accuracy"].as_f64().unwrap();
    assert!(accuracy > 0.6, "test accuracy {accuracy} on 5 classes");
    assert_eq!(report["per_class"].as_array().unwrap().len(), 5);
    let confusion: u64 = report["confusion"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(
        confusion, 5000,
        "Fashion-MNIST has 1000 test images per class"
    );
    let table = ok(&["eval", "--model", s(&target), "--data", s(&d)]);
    assert!(
        table.contains("precision")
            && table.contains("confusion matrix")
            && table.contains("Ankle boot"),
        "{table}"
    );

    // predict reads a PNG the way eval reads the test set: the same image gets the same answer.
    let test = pretune::data::idx::load_idx_dir(&d, pretune::data::Split::Test).unwrap();
    let ckpt = pretune::Checkpoint::open(&target).unwrap();
    let model = ckpt.load_model(&common::device()).unwrap();
    let bags = test.restrict_to(&[8]).subset(&(0..20).collect::<Vec<_>>());
    let probs = pretune::infer::probabilities(
        &model,
        &bags.normalized(&ckpt.meta.input.image().unwrap().normalization),
    )
    .unwrap();
    let i = probs
        .iter()
        .position(|p| pretune::infer::argmax(p) == 3)
        .expect("the model recognises some bags");
    let png = tmp.path().join("bag.png");
    image::GrayImage::from_raw(28, 28, bags.image(i).to_vec())
        .unwrap()
        .save(&png)
        .unwrap();
    let out = ok(&["predict", "--model", s(&target), s(&png), "--top", "2"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[1].trim_start().starts_with("Bag"), "{out}");
    let prob: f32 = lines[1].split_whitespace().last().unwrap().parse().unwrap();
    assert!(
        (prob - probs[i][3]).abs() < 1e-4,
        "predict says {prob}, eval's pipeline {}",
        probs[i][3]
    );
}

#[test]
fn truncated_or_mismatched_data_is_exit_2_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let set = common::squares(5, 3, 1);
    let dir = common::write_idx_dir(&tmp.path().join("data"), &set, &set);
    let images = dir.join("train-images-idx3-ubyte.gz");
    let raw = pretune::data::idx::encode_idx(&[15, 28, 28], &set.pixels);
    common::write_gz(&images, &raw[..raw.len() - 500]);
    let out = tmp.path().join("run");
    let err = input_error(&[
        "pretrain",
        "--data",
        s(&dir),
        "--epochs",
        "1",
        "--out",
        s(&out),
    ]);
    assert!(
        err.contains("train-images-idx3-ubyte.gz") && err.contains("truncated"),
        "{err}"
    );

    // Labels that do not match the image count.
    common::write_gz(&images, &raw);
    common::write_gz(
        &dir.join("train-labels-idx1-ubyte.gz"),
        &pretune::data::idx::encode_idx(&[14], &[0; 14]),
    );
    let err = input_error(&[
        "pretrain",
        "--data",
        s(&dir),
        "--epochs",
        "1",
        "--out",
        s(&out),
    ]);
    assert!(
        err.contains("14 labels") && err.contains("15 images"),
        "{err}"
    );

    let err = input_error(&[
        "pretrain",
        "--data",
        s(&tmp.path().join("nowhere")),
        "--out",
        s(&out),
    ]);
    assert!(err.contains("nowhere"), "{err}");
}

#[test]
fn bad_flags_and_checkpoints_are_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let set = common::squares(8, 3, 1);
    let data = common::write_idx_dir(&tmp.path().join("data"), &set, &set);
    let run = tmp.path().join("run");
    let err = input_error(&[
        "pretrain",
        "--data",
        s(&data),
        "--classes",
        "0,7",
        "--out",
        s(&run),
    ]);
    assert!(err.contains("class index 7 is out of range"), "{err}");
    let err = input_error(&[
        "pretrain",
        "--data",
        s(&data),
        "--model",
        "resnet999",
        "--out",
        s(&run),
    ]);
    assert!(err.contains("unknown architecture"), "{err}");

    ok(&[
        "pretrain",
        "--data",
        s(&data),
        "--epochs",
        "1",
        "--val-fraction",
        "0",
        "--out",
        s(&run),
    ]);
    let err = input_error(&[
        "finetune",
        "--from",
        s(&data),
        "--data",
        s(&data),
        "--out",
        s(&tmp.path().join("x")),
    ]);
    assert!(err.contains("not a pretune checkpoint"), "{err}");

    let meta_path = run.join("pretune.json");
    let err = input_error(&["predict", "--model", s(&run), s(&meta_path)]);
    assert!(
        err.contains("pretune.json") && err.contains("not a readable image"),
        "{err}"
    );

    // A checkpoint of another architecture.
    let original = std::fs::read_to_string(&meta_path).unwrap();
    let claim = |arch: &str| {
        let text = original.replace(
            "\"architecture\": \"cnn\"",
            &format!("\"architecture\": \"{arch}\""),
        );
        std::fs::write(&meta_path, text).unwrap();
    };
    claim("resnet18");
    let err = input_error(&["eval", "--model", s(&run), "--data", s(&data)]);
    assert!(
        err.contains("pretune.json") && err.contains("does not suit resnet18"),
        "{err}"
    );
    claim("alexnet");
    let err = input_error(&["eval", "--model", s(&run), "--data", s(&data)]);
    assert!(
        err.contains("pretune.json") && err.contains("unknown architecture \"alexnet\""),
        "{err}"
    );
    let err = input_error(&[
        "finetune",
        "--from",
        s(&run),
        "--model",
        "cnn",
        "--data",
        s(&data),
        "--out",
        s(&tmp.path().join("y")),
    ]);
    assert!(err.contains("unknown architecture \"alexnet\""), "{err}");

    // Weights changed behind the metadata's back, then a weights file missing a tensor.
    std::fs::write(&meta_path, &original).unwrap();
    let weights_path = run.join("model.safetensors");
    let bytes = std::fs::read(&weights_path).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let kept: Vec<(String, safetensors::tensor::TensorView)> = tensors
        .tensors()
        .into_iter()
        .filter(|(name, _)| !name.contains("conv2.weight"))
        .collect();
    std::fs::write(
        &weights_path,
        safetensors::tensor::serialize(kept, None).unwrap(),
    )
    .unwrap();
    let err = input_error(&["eval", "--model", s(&run), "--data", s(&data)]);
    assert!(err.contains("do not match the sha256"), "{err}");
    let unhashed: serde_json::Value = serde_json::from_str(&original).unwrap();
    let mut unhashed = unhashed.as_object().unwrap().clone();
    unhashed.insert("weights_sha256".into(), "".into());
    std::fs::write(&meta_path, serde_json::to_string(&unhashed).unwrap()).unwrap();
    let err = input_error(&["eval", "--model", s(&run), "--data", s(&data)]);
    assert!(
        err.contains("missing 1 tensor(s)") && err.contains("conv2.weight"),
        "{err}"
    );
}

#[test]
fn help_shows_defaults() {
    let help = ok(&["finetune", "--help"]);
    for expected in [
        "--per-class",
        "--strategy",
        "[default: 0.1]",
        "linear-probe",
        "--from",
    ] {
        assert!(help.contains(expected), "missing {expected:?} in:\n{help}");
    }
}

#[test]
fn fashion_backbone_fine_tunes_on_real_handwritten_digits() {
    let digits = Path::new("/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz");
    assert!(
        digits.is_file(),
        "scikit-learn's digits not found: apt-get install -y python3-sklearn"
    );
    let tmp = tempfile::tempdir().unwrap();
    let (source, target) = (tmp.path().join("fashion"), tmp.path().join("digits"));
    let fashion = common::fashion_mnist();
    ok(&[
        "pretrain",
        "--data",
        s(&fashion),
        "--per-class",
        "200",
        "--epochs",
        "1",
        "--out",
        s(&source),
    ]);
    let out = ok(&[
        "finetune",
        "--from",
        s(&source),
        "--data",
        s(digits),
        "--epochs",
        "6",
        "--out",
        s(&target),
    ]);
    assert!(
        out.contains("10 classes (0, 1, 2, 3, 4, 5, 6, 7, 8, 9)"),
        "{out}"
    );
    let report: serde_json::Value = serde_json::from_str(&ok(&[
        "eval",
        "--model",
        s(&target),
        "--data",
        s(digits),
        "--json",
    ]))
    .unwrap();
    assert_eq!(
        report["examples"], 360,
        "every 5th of 1,797 digits is the test split"
    );
    let accuracy = report["accuracy"].as_f64().unwrap();
    assert!(
        accuracy > 0.8,
        "8x8 digits resized to 28x28: accuracy {accuracy}"
    );
}

#[test]
fn lr_find_writes_a_chart_and_suggests_a_rate() {
    let tmp = tempfile::tempdir().unwrap();
    let set = common::squares(20, 3, 1);
    let data = common::write_idx_dir(&tmp.path().join("data"), &set, &set);
    let out = tmp.path().join("lr");
    let stdout = ok(&[
        "lr-find",
        "--data",
        s(&data),
        "--batch-size",
        "16",
        "--steps",
        "60",
        "--out",
        s(&out),
    ]);
    assert!(stdout.contains("suggested --lr"), "{stdout}");
    let found: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("lr_find.json")).unwrap()).unwrap();
    let points: Vec<(f64, f64)> = found["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_f64().unwrap(), p[1].as_f64().unwrap()))
        .collect();
    assert!(points.len() >= 20);
    assert!(
        (points[0].0 - 1e-7).abs() < 1e-12 && points.windows(2).all(|w| w[1].0 > w[0].0),
        "rates rise from --start-lr"
    );
    let lowest = points.iter().min_by(|a, b| a.1.total_cmp(&b.1)).unwrap();
    assert!(
        lowest.1 < points[0].1,
        "training lowers the loss somewhere in the range"
    );
    let suggestion = found["suggestion"].as_f64().unwrap();
    assert!(
        (suggestion - lowest.0 / 10.0).abs() < 1e-12,
        "a tenth of the rate at the lowest loss"
    );
    assert!(image::open(out.join("lr_find.png")).unwrap().width() >= 500);
}

#[test]
fn finetune_strategies_leave_what_they_promise() {
    let tmp = tempfile::tempdir().unwrap();
    let set = common::squares(12, 4, 3);
    let data = common::write_idx_dir(&tmp.path().join("data"), &set, &set);
    let source = tmp.path().join("source");
    ok(&[
        "pretrain",
        "--data",
        s(&data),
        "--classes",
        "0,1",
        "--epochs",
        "1",
        "--val-fraction",
        "0",
        "--out",
        s(&source),
    ]);
    let weights = |dir: &Path| {
        let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let mut named: Vec<(String, Vec<u8>)> = st
            .tensors()
            .into_iter()
            .map(|(n, t)| (n, t.data().to_vec()))
            .collect();
        named.sort();
        named
    };
    let parent = weights(&source);
    for (strategy, extra, frozen) in [
        ("linear-probe", vec![], vec!["conv1", "conv2", "fc1"]),
        (
            "full",
            vec!["--freeze-until", "conv2"],
            vec!["conv1", "conv2"],
        ),
        ("freeze-then-unfreeze", vec!["--freeze-epochs", "1"], vec![]),
    ] {
        let out = tmp.path().join(strategy);
        let mut args = vec![
            "finetune",
            "--from",
            s(&source),
            "--data",
            s(&data),
            "--classes",
            "2,3",
            "--epochs",
            "2",
            "--val-fraction",
            "0",
            "--strategy",
            strategy,
            "--out",
            s(&out),
        ];
        args.extend(extra);
        ok(&args);
        for ((name, before), (_, after)) in parent
            .iter()
            .zip(weights(&out))
            .filter(|((n, _), _)| n.starts_with("backbone"))
        {
            let stage_frozen = frozen.iter().any(|f| name.contains(&format!(".{f}.")));
            assert_eq!(
                stage_frozen,
                *before == after,
                "{strategy}: {name} frozen={stage_frozen}"
            );
        }
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("pretune.json")).unwrap()).unwrap();
        assert_eq!(meta["strategy"]["strategy"], strategy);
    }
}
