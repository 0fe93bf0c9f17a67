//! Pretraining without labels (`--task contrastive`, SimCLR) on images the tests generate.

mod common;

use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;
use common::{input_error, ok, s};
use pretune::models::Classifier;

fn history(dir: &std::path::Path) -> Vec<serde_json::Value> {
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("pretune.json")).unwrap()).unwrap();
    meta["history"].as_array().unwrap().clone()
}

/// Every parameter of `module`, in order.
fn params<M: Module>(module: &M) -> Vec<Vec<f32>> {
    struct All(Vec<Vec<f32>>);
    impl ModuleVisitor for All {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            self.0
                .push(p.val().into_data().try_into_vec::<f32>().unwrap());
        }
    }
    let mut all = All(Vec::new());
    module.visit(&mut all);
    all.0
}

#[test]
fn contrastive_pretraining_learns_and_finetuning_drops_the_projection() {
    let tmp = tempfile::tempdir().unwrap();
    let set = common::squares(100, 3, 5);
    let data = common::write_idx_dir(&tmp.path().join("data"), &set, &common::squares(20, 3, 6));
    let out = tmp.path().join("simclr");
    let printed = ok(&format!(
        "pretrain --task contrastive --data {} --epochs 8 --batch-size 40 --lr 3e-3 \
         --val-fraction 0.2 --out {}",
        s(&data),
        s(&out)
    ));
    assert!(printed.contains("val kNN accuracy"), "{printed}");
    let h = history(&out);
    assert_eq!(h.len(), 8);
    let loss = |r: &serde_json::Value| r["train_loss"].as_f64().unwrap();
    // NT-Xent of 80 views that tell nothing apart is ln(79) ≈ 4.37; the images of a class
    // differ only by their noise, so it cannot fall far below.
    let chance = 79f64.ln();
    assert!(loss(&h[0]) > 3.8, "{h:?}");
    assert!(
        loss(&h[7]) < loss(&h[0]) - 0.15,
        "the loss did not fall: {h:?}"
    );
    assert!(loss(&h[7]) < chance - 0.25, "no better than chance: {h:?}");
    for r in &h {
        let knn = 1.0
            - r["val_error_rate"]
                .as_f64()
                .expect("a kNN accuracy each epoch");
        assert!((0.0..=1.0).contains(&knn), "{r}");
    }
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.matches("val_error_rate").count(), 8, "{metrics}");

    // Fine-tuning keeps the backbone and gets a new linear head in place of the projection.
    let device = common::device();
    let parent = pretune::interop::open_model(&out, &device).unwrap();
    let pretrained: Classifier = parent.load_model(&device).unwrap();
    assert!(pretrained.head.hidden.is_some());
    assert_eq!(pretrained.outputs(), pretune::models::PROJECTION_DIM);
    let (tuned, loaded) = parent.load_backbone(3, 1, &device).unwrap();
    assert!(
        tuned.head.hidden.is_none(),
        "the projection head is dropped"
    );
    let w = tuned.head.weight.as_ref().unwrap().dims();
    assert_eq!(w, [128, 3], "the cnn's 128 features, 3 classes");
    assert!(
        loaded.iter().all(|n| n.starts_with("backbone.")),
        "{loaded:?}"
    );
    assert_eq!(params(&tuned.backbone), params(&pretrained.backbone));

    let tuned_dir = tmp.path().join("tuned");
    let printed = ok(&format!(
        "finetune --from {} --data {} --epochs 1 --out {}",
        s(&out),
        s(&data),
        s(&tuned_dir)
    ));
    assert!(printed.contains("new head 128x3"), "{printed}");
}

#[test]
fn a_folder_of_unlabelled_images_pretrains_without_knn() {
    let tmp = tempfile::tempdir().unwrap();
    let set = common::squares(20, 3, 8);
    let folder = tmp.path().join("photos").join("unlabelled");
    std::fs::create_dir_all(&folder).unwrap();
    for i in 0..set.len() {
        image::save_buffer(
            folder.join(format!("{i}.png")),
            set.image(i),
            28,
            28,
            image::ExtendedColorType::L8,
        )
        .unwrap();
    }
    let out = tmp.path().join("run");
    ok(&format!(
        "pretrain --task contrastive --data {} --epochs 1 --batch-size 16 --out {}",
        s(&tmp.path().join("photos")),
        s(&out)
    ));
    let h = history(&out);
    assert!(h[0]["val_error_rate"].is_null(), "no labels, no kNN: {h:?}");
    // A classifier still needs two classes.
    let err = input_error(&format!(
        "pretrain --data {} --out {}",
        s(&tmp.path().join("photos")),
        s(&tmp.path().join("classify"))
    ));
    assert!(err.contains("at least 2"), "{err}");
}

#[test]
fn contrastive_refuses_what_it_cannot_do() {
    let tmp = tempfile::tempdir().unwrap();
    let set = common::squares(10, 3, 5);
    let data = common::write_idx_dir(&tmp.path().join("data"), &set, &set);
    let out = tmp.path().join("run");
    let err = input_error(&format!(
        "pretrain --task contrastive --model bert-mini --data {} --out {}",
        s(&data),
        s(&out)
    ));
    assert!(err.contains("not an image model"), "{err}");
    let err = input_error(&format!(
        "pretrain --task contrastive --augment none --data {} --out {}",
        s(&data),
        s(&out)
    ));
    assert!(err.contains("--augment none"), "{err}");
    let err = input_error(&format!(
        "pretrain --task contrastive --temperature 0 --data {} --out {}",
        s(&data),
        s(&out)
    ));
    assert!(err.contains("temperature"), "{err}");
}
