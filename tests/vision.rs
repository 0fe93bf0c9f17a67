//! EfficientNet-Lite, ViT-B/16 and ConvNeXt-Tiny: the reference layouts, parity with PyTorch,
//! the real ImageNet-pretrained EfficientNet-Lite0 on two photos, fine-tuning.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::prelude::*;
use common::{input_error, ok, s};
use pretune::interop::torch::{self, TorchTensors};
use pretune::models::convnext::{ConvNext, ConvNextConfig};
use pretune::models::vit::{self, VisionTransformer, VitConfig};
use pretune::models::{self, Backbone, Classifier, Input, ModelOptions};

/// The real EfficientNet-Lite0 weights that `scripts/efficientnet.sh` unpacks, if present.
fn lite0_weights() -> Option<PathBuf> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models/efficientnet-lite0/efficientnet-lite0-57934424.pth");
    if !file.is_file() {
        eprintln!("skipped: no EfficientNet-Lite0 weights; run scripts/efficientnet.sh");
    }
    file.is_file().then_some(file)
}

const PHOTOS: &str = "/usr/lib/python3/dist-packages/sklearn/datasets/images";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_into_vec().unwrap()
}

/// The largest difference between `got` and `expected`, relative to the largest `expected`.
fn relative_error(got: &[f32], expected: &[f32]) -> f32 {
    assert_eq!(got.len(), expected.len());
    let scale = expected.iter().fold(0f32, |m, v| m.max(v.abs()));
    let worst = got
        .iter()
        .zip(expected)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    worst / scale
}

#[test]
fn new_architectures_have_their_reference_tensor_names_and_shapes() {
    type Keys = BTreeMap<String, Vec<(String, Vec<usize>)>>;
    let mut expected: Keys =
        serde_json::from_str(include_str!("fixtures/torchvision_keys_vit_convnext.json")).unwrap();
    let lite: Keys = serde_json::from_str(include_str!("fixtures/efficientnet_keys.json")).unwrap();
    expected.extend(lite);
    let device = Device::flex();
    for (name, mut keys) in expected {
        let arch = models::arch(&name).unwrap();
        let model = Classifier::new(arch, &ModelOptions::default(), 1000, 0, &device);
        keys.sort();
        assert_eq!(torch::torch_layout(arch, &model), keys, "{name}");
        // Every stage name of the registry has its parameters (--freeze-until, --layer-decay).
        assert_eq!(model.backbone.stages().len(), arch.stages.len(), "{name}");
    }
}

/// A fixture's weights (the rest: its input, logits and debug tensors).
fn split_fixture(file: &str) -> (TorchTensors, TorchTensors) {
    let all = torch::read_tensors(&fixture(file)).unwrap();
    all.into_iter()
        .partition(|(k, _)| !(k == "input" || k == "logits" || k.starts_with("debug.")))
}

/// `backbone` with a `classes`-way head, the fixture's weights loaded as `arch`'s, run on the
/// fixture's input: its logits and PyTorch's.
fn run_fixture(
    arch: &str,
    backbone: Backbone,
    features: usize,
    file: &str,
) -> (Vec<f32>, Vec<f32>) {
    let device = Device::flex();
    let (weights, mut rest) = split_fixture(file);
    let classes = weights[&format!("{}.bias", models::arch(arch).unwrap().torch_head)].shape()[0];
    let mut model = Classifier::with_new_head(backbone, features, classes, 0, &device);
    let arch = models::arch(arch).unwrap();
    let (loaded, unused) =
        torch::load_into(arch, &mut model, weights, true, Path::new(file)).unwrap();
    assert!(loaded > 0 && unused.is_empty(), "{unused:?}");
    let x = Tensor::<4>::from_data(rest.remove("input").unwrap(), &device);
    let logits = values(model.forward(Input::Images(x)).unwrap());
    let expected: Vec<f32> = rest["logits"].try_to_vec().unwrap();
    (logits, expected)
}

#[test]
fn vit_matches_torchvision_on_small_random_weights() {
    // The fixture's constructor: VisionTransformer(image_size=32, patch_size=16, num_layers=2,
    // num_heads=2, hidden_dim=32, mlp_dim=64, num_classes=5).
    let config = VitConfig {
        patch: 16,
        layers: 2,
        heads: 2,
        hidden: 32,
        mlp: 64,
    };
    let backbone = Backbone::Vit(VisionTransformer::new(&config, 32, &Device::flex()));
    let (got, expected) = run_fixture("vit_b_16", backbone, 32, "vit_tiny.safetensors");
    let error = relative_error(&got, &expected);
    eprintln!("ViT largest logit error, relative: {error:.2e}");
    assert!(error < 1e-4, "largest logit error {error} (relative)");
}

#[test]
fn convnext_matches_torchvision_on_small_random_weights() {
    // ConvNeXt([CNBlockConfig(8, 16, 1), (16, 32, 1), (32, 64, 1), (64, None, 1)],
    // stochastic_depth_prob=0.1, num_classes=5), 64x64 inputs.
    let config = ConvNextConfig {
        dims: [8, 16, 32, 64],
        depths: [1, 1, 1, 1],
        drop_path: 0.1,
    };
    let backbone = Backbone::ConvNext(ConvNext::new(&config, &Device::flex()));
    let (got, expected) = run_fixture(
        "convnext_tiny",
        backbone,
        64,
        "convnext_tiny_small.safetensors",
    );
    let error = relative_error(&got, &expected);
    eprintln!("ConvNeXt largest logit error, relative: {error:.2e}");
    assert!(error < 1e-4, "largest logit error {error} (relative)");
}

#[test]
fn position_embeddings_resample_as_timm_does() {
    let device = Device::flex();
    let mut fx = torch::read_tensors(&fixture("vit_pos_embed_resample.safetensors")).unwrap();
    let pos = Tensor::<3>::from_data(fx.remove("pos").unwrap(), &device);
    for (name, grid) in [("grow", 20), ("shrink", 5)] {
        let got = values(vit::resample_positions(pos.clone(), [grid, grid]));
        let expected: Vec<f32> = fx[name].try_to_vec().unwrap();
        let error = relative_error(&got, &expected);
        assert!(error < 1e-5, "{name}: {error}");
        // The class token is kept as it was.
        assert_eq!(got[..8], values(pos.clone())[..8]);
    }
}

/// ViT-B/16 and ConvNeXt-Tiny at 32x32 with 2 classes: one AdamW step changes the weights
/// (the ViT's position embeddings resampled from 224's 14x14 grid to 2x2 learn too), and
/// evaluation repeats itself exactly (stochastic depth is off there).
#[test]
fn vit_and_convnext_take_a_training_step_at_32_pixels() {
    let device = common::device();
    for name in ["vit_b_16", "convnext_tiny"] {
        let arch = models::arch(name).unwrap();
        let model = Classifier::new(arch, &ModelOptions::default(), 2, 1, &device).resized(32);
        let x = Tensor::<4>::random(
            [2, 3, 32, 32],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        let y = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 1], [2]), &device);
        let logits = model.forward(Input::Images(x.clone())).unwrap();
        let loss = CrossEntropyLossConfig::new()
            .init(&device)
            .forward(logits, y);
        let loss_value = values(loss.clone())[0];
        assert!(loss_value.is_finite(), "{name}: loss {loss_value}");
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let before = torch::torch_layout(arch, &model);
        // The first four tensors: the embeddings (with the position embeddings) or the stem.
        let first = |m: &Classifier| -> Vec<Vec<f32>> {
            let mut out = Vec::new();
            struct Grab<'a>(&'a mut Vec<Vec<f32>>);
            impl burn::module::ModuleVisitor for Grab<'_> {
                fn visit_float<const D: usize>(&mut self, p: &burn::module::Param<Tensor<D>>) {
                    if self.0.len() < 4 {
                        self.0.push(values(p.val()));
                    }
                }
            }
            m.visit(&mut Grab(&mut out));
            out
        };
        let old = first(&model);
        let model = AdamWConfig::new().init().step(1e-3, model, grads);
        assert_ne!(
            first(&model),
            old,
            "{name}: the first tensors did not learn"
        );
        assert_eq!(torch::torch_layout(arch, &model), before);
        let eval = model.valid();
        let x = x.inner();
        let a = values(eval.forward(Input::Images(x.clone())).unwrap());
        let b = values(eval.forward(Input::Images(x)).unwrap());
        assert_eq!(a, b, "{name}");
    }
}

/// An image folder of two classes for fine-tuning: red squares and blue discs on noise.
fn shapes_folder(root: &Path, per_class: u32) {
    for class in ["blue-disc", "red-square"] {
        std::fs::create_dir_all(root.join(class)).unwrap();
        for i in 0..per_class {
            let size = 40 + (i * 7) % 20;
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

fn weights_of(dir: &Path) -> BTreeMap<String, Vec<f32>> {
    torch::read_tensors(&dir.join("model.safetensors"))
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, v.try_to_vec().unwrap()))
        .collect()
}

/// EfficientNet-Lite0 pretrained from scratch on 48x48 images, then fine-tuned with its stem
/// and first two stages frozen: those keep their weights and BatchNorm statistics.
#[test]
fn efficientnet_fine_tunes_with_frozen_stages() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("shapes");
    shapes_folder(&data, 6);
    let (source, target) = (tmp.path().join("source"), tmp.path().join("target"));
    let common = |out: &Path| {
        vec![
            "--data".to_string(),
            s(&data).to_string(),
            "--epochs".into(),
            "1".into(),
            "--batch-size".into(),
            "4".into(),
            "--val-fraction".into(),
            "0".into(),
            "--out".into(),
            s(out).to_string(),
        ]
    };
    let mut args: Vec<String> = [
        "pretrain",
        "--model",
        "efficientnet_lite0",
        "--image-size",
        "48",
    ]
    .map(String::from)
    .to_vec();
    args.extend(common(&source));
    ok(&args);
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(source.join("pretune.json")).unwrap())
            .unwrap();
    assert_eq!(meta["input"]["height"], 48);
    assert_eq!(meta["input"]["interpolation"], "bicubic");
    let mut args: Vec<String> = ["finetune", "--from", s(&source), "--freeze-until", "stage2"]
        .map(String::from)
        .to_vec();
    args.extend(["--layer-decay", "0.8"].map(String::from));
    args.extend(common(&target));
    ok(&args);
    let (parent, child) = (weights_of(&source), weights_of(&target));
    let frozen = [
        "backbone.EfficientNet._conv_stem.weight",
        "backbone.EfficientNet._bn0.running_var",
        "backbone.EfficientNet._blocks.2._depthwise_conv.weight",
        "backbone.EfficientNet._blocks.2._bn1.running_mean",
    ];
    for name in frozen {
        assert_eq!(parent[name], child[name], "{name} changed");
    }
    for name in [
        "backbone.EfficientNet._blocks.3._depthwise_conv.weight",
        "backbone.EfficientNet._conv_head.weight",
    ] {
        assert_ne!(parent[name], child[name], "{name} did not learn");
    }
    // A ViT takes sizes on its patch grid only.
    let err = input_error(&[
        "pretrain",
        "--model",
        "vit_b_16",
        "--image-size",
        "40",
        "--data",
        s(&data),
        "--out",
        s(&tmp.path().join("vit")),
    ]);
    assert!(
        err.contains("--image-size 40") && err.contains("multiples of 16"),
        "{err}"
    );
}

/// The real EfficientNet-Lite0 (a legacy, non-zip `torch.save` with TF-ordered strides):
/// imported with ImageNet's class names, PyTorch's logits on the reference input, the
/// reference top-1 on both photos, and exported back tensor for tensor.
#[test]
fn efficientnet_lite0_imports_real_weights_and_recognises_photos() {
    let Some(weights) = lite0_weights() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let ckpt = tmp.path().join("lite0");
    let out = ok(&[
        "import",
        "--arch",
        "efficientnet_lite0",
        "--weights",
        s(&weights),
        "--classes",
        "imagenet",
        "--out",
        s(&ckpt),
    ]);
    assert!(
        out.contains("unused tensors") && out.contains("none"),
        "{out}"
    );
    assert!(out.contains("kept (1000 classes)"), "{out}");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ckpt.join("pretune.json")).unwrap()).unwrap();
    assert_eq!(meta["class_names"][985], "daisy");
    assert_eq!(meta["input"]["normalization"]["mean"][0], 0.5);
    assert_eq!(meta["input"]["interpolation"], "bicubic");

    let logits = tmp.path().join("logits.safetensors");
    let fixture = fixture("efficientnet_lite0_logits.safetensors");
    ok(&[
        "predict",
        "--model",
        s(&ckpt),
        "--tensor",
        s(&fixture),
        "--raw-logits",
        s(&logits),
    ]);
    let got: Vec<f32> = torch::read_tensors(&logits).unwrap()["logits"]
        .try_to_vec()
        .unwrap();
    let expected: Vec<f32> = torch::read_tensors(&fixture).unwrap()["logits"]
        .try_to_vec()
        .unwrap();
    let error = relative_error(&got, &expected);
    eprintln!("EfficientNet-Lite0 largest logit error, relative: {error:.2e}");
    assert!(error < 1e-4, "largest logit error {error} (relative)");

    let photos = Path::new(PHOTOS);
    if photos.join("china.jpg").is_file() {
        let out = ok(&[
            "predict",
            "--model",
            s(&ckpt),
            s(&photos.join("china.jpg")),
            s(&photos.join("flower.jpg")),
            "--json",
        ]);
        let preds: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(preds[0]["top"][0][0], "palace", "{out}");
        assert_eq!(preds[1]["top"][0][0], "daisy", "{out}");
    } else {
        eprintln!("skipped the photos: apt-get install python3-sklearn");
    }

    let back = tmp.path().join("back.safetensors");
    ok(&["export", "--model", s(&ckpt), "--out", s(&back)]);
    let (original, exported) = (
        torch::read_tensors(&weights).unwrap(),
        torch::read_tensors(&back).unwrap(),
    );
    assert_eq!(
        original.keys().collect::<Vec<_>>(),
        exported.keys().collect::<Vec<_>>()
    );
    for (name, t) in &original {
        assert_eq!(t, &exported[name], "{name}");
    }
    // The export says what it is: importing it back needs no flags.
    let again = tmp.path().join("again");
    ok(&[
        "import",
        "--arch",
        "efficientnet_lite0",
        "--weights",
        s(&back),
        "--out",
        s(&again),
    ]);
    let meta2: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(again.join("pretune.json")).unwrap())
            .unwrap();
    assert_eq!(meta2["input"], meta["input"]);
    assert_eq!(meta2["class_names"], meta["class_names"]);
}

/// ViT-B/16 weights made for 224 imported at 64: the model reads 64x64 images, its position
/// embeddings are resampled to the 4x4 grid and the class token's kept.
#[test]
fn vit_weights_import_at_another_image_size() {
    let device = Device::flex();
    let arch = models::arch("vit_b_16").unwrap();
    let original = Classifier::new(arch, &ModelOptions::default(), 3, 7, &device);
    let exported = torch::Exported {
        architecture: arch.name.into(),
        class_names: vec!["a".into(), "b".into(), "c".into()],
        normalization: pretune::Normalization::uniform(3, 0.5, 0.5),
        interpolation: Default::default(),
        model_options: ModelOptions::default(),
    };
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("vit.safetensors");
    std::fs::write(&file, torch::export(arch, &original, &exported).unwrap()).unwrap();
    let tensors = torch::read_tensors(&file).unwrap();
    let options = ModelOptions {
        image_size: Some(64),
        ..Default::default()
    };
    let imported = torch::import(arch, options, tensors.clone(), None, &file, &device).unwrap();
    assert_eq!(imported.options.image_size, Some(64));
    assert!(imported.head_kept && imported.unused.is_empty());
    let back = tmp.path().join("back.safetensors");
    std::fs::write(
        &back,
        torch::export(arch, &imported.model, &exported).unwrap(),
    )
    .unwrap();
    let resized = &torch::read_tensors(&back).unwrap()[vit::POSITIONS];
    assert_eq!(resized.shape().to_vec(), vec![1, 17, 768]);
    let before: Vec<f32> = tensors[vit::POSITIONS].try_to_vec().unwrap();
    let after: Vec<f32> = resized.try_to_vec().unwrap();
    assert_eq!(before[..768], after[..768]);
    let x = Tensor::<4>::zeros([1, 3, 64, 64], &device);
    let logits = imported.model.forward(Input::Images(x)).unwrap();
    assert_eq!(logits.dims(), [1, 3]);
}
