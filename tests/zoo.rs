//! The vision zoo: torchvision layouts, PyTorch weights in and out, fine-tuning ResNet-18.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use burn::prelude::*;
use common::{input_error, ok, s};
use pretune::interop::torch;
use pretune::models::{self, Classifier, ModelOptions};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

/// Tensors of a safetensors file as (dtype, shape, bytes).
type Raw = BTreeMap<String, (Dtype, Vec<usize>, Vec<u8>)>;

fn read_raw(path: &Path) -> Raw {
    let bytes = std::fs::read(path).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    file.tensors()
        .into_iter()
        .map(|(k, v)| (k, (v.dtype(), v.shape().to_vec(), v.data().to_vec())))
        .collect()
}

fn write_raw(path: &Path, tensors: &Raw) {
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(k, (d, shape, b))| (k.clone(), TensorView::new(*d, shape.clone(), b).unwrap()))
        .collect();
    std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
}

fn f32s(raw: &(Dtype, Vec<usize>, Vec<u8>)) -> Vec<f32> {
    match raw.0 {
        Dtype::F32 => raw
            .2
            .chunks(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect(),
        Dtype::F16 => raw
            .2
            .chunks(2)
            .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])))
            .collect(),
        other => panic!("unexpected dtype {other:?}"),
    }
}

/// IEEE half → single (normal and subnormal numbers, zeros; the fixture has no inf/NaN).
fn f16_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = ((h >> 10) & 0x1f) as i32;
    let frac = (h & 0x3ff) as f32;
    sign * match exp {
        0 => frac * 2f32.powi(-24),
        e => (1.0 + frac / 1024.0) * 2f32.powi(e - 15),
    }
}

/// The seed `Net`'s fixture (made by bench/parity/make_fixtures.py with PyTorch): F16
/// weights, an input batch and PyTorch's logits, written as separate files.
fn seed_net(dir: &Path) -> (Raw, Vec<f32>) {
    let mut all = read_raw(Path::new("tests/fixtures/seed_net.safetensors"));
    let logits = f32s(&all.remove("logits").unwrap());
    let input = all.remove("input").unwrap();
    write_raw(
        &dir.join("input.safetensors"),
        &BTreeMap::from([("input".to_string(), input)]),
    );
    write_raw(&dir.join("net.safetensors"), &all);
    (all, logits)
}

#[test]
fn every_architecture_has_torchvisions_tensor_names_and_shapes() {
    let expected: BTreeMap<String, Vec<(String, Vec<usize>)>> =
        serde_json::from_str(include_str!("fixtures/torchvision_keys.json")).unwrap();
    let device = Device::flex();
    for (name, mut keys) in expected {
        let arch = models::arch(&name).unwrap();
        let options = ModelOptions {
            aux_logits: name == "inception_v3",
            ..Default::default()
        };
        let model = Classifier::new(arch, &options, 1000, 0, &device);
        keys.sort();
        assert_eq!(torch::torch_layout(arch, &model), keys, "{name}");
    }
}

#[test]
fn the_seed_net_imports_with_pytorchs_logits_and_exports_back() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (weights, expected) = seed_net(dir);
    let ckpt = dir.join("ckpt");
    let out = ok(&[
        "import",
        "--arch",
        "cnn",
        "--weights",
        s(&dir.join("net.safetensors")),
        "--out",
        s(&ckpt),
    ]);
    let loaded = out.lines().find(|l| l.contains("tensors loaded")).unwrap();
    assert!(loaded.contains(" 8 "), "{out}");
    let logits = dir.join("logits.safetensors");
    ok(&[
        "predict",
        "--model",
        s(&ckpt),
        "--tensor",
        s(&dir.join("input.safetensors")),
        "--raw-logits",
        s(&logits),
    ]);
    let got = f32s(&read_raw(&logits)["logits"]);
    let scale = expected.iter().fold(0f32, |m, v| m.max(v.abs()));
    let worst = got
        .iter()
        .zip(&expected)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert_eq!(got.len(), expected.len());
    assert!(
        worst / scale < 1e-4,
        "largest logit error {worst} against {scale}"
    );

    // Back to PyTorch: the same names, F32, the same values.
    let back = dir.join("back.safetensors");
    ok(&[
        "export",
        "--model",
        s(&ckpt),
        "--format",
        "torch",
        "--out",
        s(&back),
    ]);
    let back = read_raw(&back);
    assert_eq!(
        back.keys().collect::<Vec<_>>(),
        weights.keys().collect::<Vec<_>>()
    );
    for (name, original) in &weights {
        assert_eq!(back[name].0, Dtype::F32, "{name}");
        assert_eq!(back[name].1, original.1, "{name}");
        assert_eq!(f32s(&back[name]), f32s(original), "{name}");
    }
}

#[test]
fn import_names_missing_misshapen_and_unused_tensors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (weights, _) = seed_net(dir);
    let file = dir.join("w.safetensors");
    let out_dir = dir.join("ck");
    let import = |extra: &[&'static str]| {
        let mut args = vec![
            "import",
            "--arch",
            "cnn",
            "--weights",
            s(&file),
            "--out",
            s(&out_dir),
        ];
        args.extend_from_slice(extra);
        args
    };

    let mut missing = weights.clone();
    missing.remove("conv2.bias");
    write_raw(&file, &missing);
    let err = input_error(&import(&[]));
    assert!(
        err.contains("missing 1 tensor") && err.contains("conv2.bias"),
        "{err}"
    );

    let mut misshapen = weights.clone();
    let fc1 = misshapen.get_mut("fc1.weight").unwrap();
    fc1.1 = vec![64, 6272];
    write_raw(&file, &misshapen);
    let err = input_error(&import(&[]));
    assert!(
        err.contains("fc1.weight") && err.contains("[64, 6272]") && err.contains("[128, 3136]"),
        "{err}"
    );

    // An extra tensor is reported; a different class count gives a new head.
    let mut extra = weights.clone();
    extra.insert("projector.weight".into(), (Dtype::F32, vec![2], vec![0; 8]));
    write_raw(&file, &extra);
    let out = ok(&import(&["--classes", "3"]));
    assert!(
        out.contains("projector.weight") && out.contains("new, 3 classes (the file's has 10)"),
        "{out}"
    );
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("ck/pretune.json")).unwrap())
            .unwrap();
    assert_eq!(meta["class_names"].as_array().unwrap().len(), 3);
    assert_eq!(
        meta["input"]["normalization"]["mean"][0].as_f64().unwrap() as f32,
        0.1307
    );

    // BF16: the upper half of each F32.
    let bf16: Raw = weights
        .iter()
        .map(|(k, v)| {
            let bytes = f32s(v)
                .iter()
                .flat_map(|x| ((x.to_bits() >> 16) as u16).to_le_bytes())
                .collect();
            (k.clone(), (Dtype::BF16, v.1.clone(), bytes))
        })
        .collect();
    write_raw(&file, &bf16);
    // The checkpoint written above is never replaced without being asked.
    let err = input_error(&import(&[]));
    assert!(
        err.contains("already holds") && err.contains("--overwrite"),
        "{err}"
    );
    ok(&import(&["--overwrite"]));

    std::fs::write(&file, b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":").unwrap();
    let err = input_error(&import(&["--overwrite"]));
    assert!(
        err.contains("w.safetensors") && err.contains("not a valid safetensors"),
        "{err}"
    );
}

/// A pickle that calls `posix.system(cmd)` when Python unpickles it: protocol 2 (GLOBAL).
fn evil_pickle(cmd: &str) -> Vec<u8> {
    let mut p = b"\x80\x02cposix\nsystem\nq\x00X".to_vec();
    p.extend((cmd.len() as u32).to_le_bytes());
    p.extend(cmd.as_bytes());
    p.extend(b"q\x01\x85q\x02Rq\x03.");
    p
}

#[test]
fn pickles_that_call_anything_are_refused_unrun() {
    let tmp = tempfile::tempdir().unwrap();
    let marker = tmp.path().join("pwned");
    let cmd = format!("touch {}", marker.display());
    // The legacy format (a bare pickle) and the zip format torch.save writes today, with the
    // protocol 4 spelling (STACK_GLOBAL of memoised strings) inside.
    let legacy = tmp.path().join("legacy.pth");
    std::fs::write(&legacy, evil_pickle(&cmd)).unwrap();
    let zipped = tmp.path().join("model.pt");
    {
        use std::io::Write;
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&zipped).unwrap());
        zip.start_file("archive/data.pkl", zip::write::SimpleFileOptions::default())
            .unwrap();
        let mut p = b"\x80\x04\x8c\x05posix\x94\x8c\x06system\x94\x93\x94\x8c".to_vec();
        p.push(cmd.len() as u8);
        p.extend(cmd.as_bytes());
        p.extend(b"\x94\x85\x94R\x94.");
        zip.write_all(&p).unwrap();
        zip.finish().unwrap();
    }
    for file in [&legacy, &zipped] {
        let err = input_error(&[
            "import",
            "--arch",
            "resnet18",
            "--weights",
            s(file),
            "--out",
            s(&tmp.path().join("ck")),
        ]);
        assert!(
            err.contains("posix.system") && err.contains("refused") && err.contains(s(file)),
            "{err}"
        );
    }
    assert!(!marker.exists());
    assert!(!tmp.path().join("ck").exists());
}

/// An image folder of two classes: red squares and blue circles on noise, of varied sizes.
fn shapes_folder(root: &Path, per_class: u32) {
    for class in ["blue-circle", "red-square"] {
        std::fs::create_dir_all(root.join(class)).unwrap();
        for i in 0..per_class {
            let size = 24 + (i * 7) % 20;
            let img = image::RgbImage::from_fn(size, size + i % 5, |x, y| {
                let noise = ((x * 31 + y * 17 + i * 13) % 40) as u8;
                let (cx, cy) = (x as i32 - size as i32 / 2, y as i32 - size as i32 / 2);
                let inside = if class == "red-square" {
                    cx.abs() < size as i32 / 4 && cy.abs() < size as i32 / 4
                } else {
                    cx * cx + cy * cy < (size as i32 / 3).pow(2)
                };
                match (inside, class) {
                    (true, "red-square") => image::Rgb([220, noise, noise]),
                    (true, _) => image::Rgb([noise, noise, 220]),
                    _ => image::Rgb([noise, noise, noise]),
                }
            });
            img.save(root.join(class).join(format!("{i}.png"))).unwrap();
        }
    }
}

fn tensors(dir: &Path) -> BTreeMap<String, Vec<f32>> {
    read_raw(&dir.join("model.safetensors"))
        .iter()
        .map(|(k, v)| (k.clone(), f32s(v)))
        .collect()
}

#[test]
fn resnet18_fine_tunes_from_an_image_folder_with_every_strategy() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("shapes");
    shapes_folder(&data, 12);
    let source = tmp.path().join("source");
    let out = ok(&[
        "pretrain",
        "--model",
        "resnet18",
        "--small-input",
        "--data",
        s(&data),
        "--epochs",
        "2",
        "--batch-size",
        "8",
        "--val-fraction",
        "0",
        "--out",
        s(&source),
        "--seed",
        "1",
    ]);
    assert!(
        out.contains("resnet18") && out.contains("2 classes"),
        "{out}"
    );
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(source.join("pretune.json")).unwrap())
            .unwrap();
    assert_eq!(meta["input"]["channels"], 3);
    assert_eq!(meta["input"]["height"], 32);
    assert_eq!(meta["model_options"]["small_input"], true);
    let parent = tensors(&source);
    let running_mean = "backbone.ResNet.layer1.0.bn1.running_mean";
    assert!(
        parent[running_mean].iter().any(|&v| v != 0.0),
        "pretraining updates BN statistics"
    );

    for (name, extra) in [
        (
            "linear-probe",
            vec!["--strategy", "linear-probe", "--epochs", "1"],
        ),
        (
            "freeze-then-unfreeze",
            vec!["--strategy", "freeze-then-unfreeze", "--epochs", "2"],
        ),
        (
            "freeze-until",
            vec![
                "--freeze-until",
                "layer2",
                "--layer-decay",
                "0.7",
                "--epochs",
                "1",
            ],
        ),
        ("full", vec!["--epochs", "1"]),
    ] {
        let target = tmp.path().join(name);
        let mut args = vec![
            "finetune",
            "--from",
            s(&source),
            "--data",
            s(&data),
            "--per-class",
            "6",
            // The last epoch is kept: what each strategy trains shows in the weights.
            "--val-fraction",
            "0",
            "--batch-size",
            "6",
            "--out",
            s(&target),
            "--seed",
            "2",
        ];
        args.extend(extra);
        ok(&args);
        let child = tensors(&target);
        let frozen_stem =
            child["backbone.ResNet.conv1.weight"] == parent["backbone.ResNet.conv1.weight"];
        let stats_kept = child[running_mean] == parent[running_mean];
        match name {
            // A frozen backbone uses its running statistics and leaves them as they were.
            "linear-probe" => assert!(
                child
                    .iter()
                    .filter(|(k, _)| k.starts_with("backbone."))
                    .all(|(k, v)| parent[k] == *v)
            ),
            "freeze-until" => assert!(frozen_stem && stats_kept, "{name}"),
            _ => assert!(!frozen_stem && !stats_kept, "{name}"),
        }
    }
    let scored = ok(&[
        "eval",
        "--model",
        s(&tmp.path().join("full")),
        "--data",
        s(&data),
        "--json",
    ]);
    let report: serde_json::Value = serde_json::from_str(&scored).unwrap();
    assert!(report["accuracy"].as_f64().unwrap() >= 0.0);
    let pred = ok(&[
        "predict",
        "--model",
        s(&tmp.path().join("full")),
        s(&data.join("red-square/0.png")),
    ]);
    assert!(
        pred.contains("red-square") && pred.contains("blue-circle"),
        "{pred}"
    );
}

#[test]
fn resnet18_fine_tunes_on_fashion_mnist_grayscale_as_rgb() {
    let d = common::fashion_mnist();
    let tmp = tempfile::tempdir().unwrap();
    let (source, target) = (tmp.path().join("source"), tmp.path().join("target"));
    ok(&[
        "pretrain",
        "--model",
        "resnet18",
        "--small-input",
        "--data",
        s(&d),
        "--classes",
        "0-1",
        "--per-class",
        "20",
        "--epochs",
        "1",
        "--batch-size",
        "10",
        "--out",
        s(&source),
    ]);
    ok(&[
        "finetune",
        "--from",
        s(&source),
        "--data",
        s(&d),
        "--classes",
        "Sandal,Bag",
        "--per-class",
        "10",
        "--epochs",
        "1",
        "--batch-size",
        "10",
        "--out",
        s(&target),
    ]);
    let scored = ok(&["eval", "--model", s(&target), "--data", s(&d), "--json"]);
    let report: serde_json::Value = serde_json::from_str(&scored).unwrap();
    let per_class = report["per_class"].as_array().unwrap();
    assert_eq!(per_class.len(), 2);
    // 2,000 test images of the two classes were scored.
    let support: u64 = per_class
        .iter()
        .map(|c| c["support"].as_u64().unwrap())
        .sum();
    assert_eq!(support, 2000);
}
