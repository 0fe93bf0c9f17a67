//! `pretune demo --quick` on the real Fashion-MNIST: the report a user gets, and that it repeats.

mod common;

use std::process::Command;

fn demo(out: &std::path::Path, methods: &str) -> serde_json::Value {
    let data = common::fashion_mnist();
    let run = Command::new(env!("CARGO_BIN_EXE_pretune"))
        .args([
            "demo",
            "--quick",
            "--data",
            data.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--methods",
            methods,
        ])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "demo failed:\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let stdout = String::from_utf8(run.stdout).unwrap();
    assert!(
        stdout.contains("| labels/class |") && stdout.contains("wrote"),
        "{stdout}"
    );
    serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap()
}

/// What must repeat exactly: every accuracy and learning curve (not the timings).
fn outcomes(results: &serde_json::Value) -> Vec<(u64, String, u64, f64, Vec<f64>)> {
    results["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["labels_per_class"].as_u64().unwrap(),
                r["method"].as_str().unwrap().to_string(),
                r["seed"].as_u64().unwrap(),
                r["test_accuracy"].as_f64().unwrap(),
                r["val_accuracy"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap())
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn quick_demo_writes_a_report_and_repeats_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    const FIRST: &str = "scratch,linear-probe,finetune";
    let first = demo(&tmp.path().join("a"), FIRST);

    let runs = outcomes(&first);
    let methods: Vec<&str> = runs.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(runs.len(), 6, "2 budgets x 3 methods x 1 seed");
    for m in ["scratch", "linear-probe", "finetune"] {
        assert_eq!(methods.iter().filter(|&&x| x == m).count(), 2);
    }
    for r in first["results"].as_array().unwrap() {
        let accuracy = r["test_accuracy"].as_f64().unwrap();
        assert!(
            accuracy > 0.3 && accuracy <= 1.0,
            "4 classes: accuracy {accuracy} should beat chance (0.25)"
        );
        assert_eq!(
            r["val_accuracy"].as_array().unwrap().len() as u64,
            r["epochs"].as_u64().unwrap(),
            "one validation point per epoch"
        );
        assert!(r["seconds"].as_f64().unwrap() > 0.0);
    }

    let dir = tmp.path().join("a");
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    for expected in [
        "| labels/class |",
        "accuracy_vs_labels.png",
        "learning_curves.png",
        "## What it means",
        "T-shirt/top",
    ] {
        assert!(report.contains(expected), "report.md lacks {expected:?}");
    }
    for chart in ["accuracy_vs_labels.png", "learning_curves.png"] {
        let img = image::open(dir.join(chart)).unwrap().to_rgb8();
        assert!(img.width() >= 500 && img.height() >= 300);
        // Something was drawn: not a blank canvas.
        let colored = img.pixels().filter(|p| p.0 != [255, 255, 255]).count();
        assert!(colored > 1000, "{chart} looks empty");
    }

    let second = demo(&tmp.path().join("b"), FIRST);
    assert_eq!(
        outcomes(&first),
        outcomes(&second),
        "same seed, same numbers"
    );
}

/// EfficientNet-Lite0's ImageNet weights, where `scripts/efficientnet.sh` puts them.
const LITE0: &str = "models/efficientnet-lite0/efficientnet-lite0-57934424.pth";

/// The self-supervised and ImageNet rows: they run, beat chance, and the one-time SimCLR
/// pretraining is cached and read back the next time, giving the same numbers.
#[test]
fn quick_demo_runs_the_simclr_and_imagenet_rows_and_caches_the_pretraining() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("demo");
    let imagenet = std::path::Path::new(LITE0).is_file();
    if !imagenet {
        eprintln!("{LITE0} missing (scripts/efficientnet.sh): the imagenet rows are not tested");
    }
    let methods = if imagenet {
        "scratch,simclr-probe,simclr-finetune,imagenet-probe,imagenet-finetune"
    } else {
        "scratch,simclr-probe,simclr-finetune"
    };
    let first = demo(&out, methods);
    let runs = outcomes(&first);
    assert_eq!(
        runs.len(),
        2 * methods.split(',').count(),
        "2 budgets, 1 seed"
    );
    for r in &runs {
        assert!(
            r.3 > 0.3,
            "{} at {} labels: {} is no better than chance",
            r.1,
            r.0,
            r.3
        );
    }
    let simclr = &first["simclr"];
    assert_eq!(simclr["cached"], false);
    let knn = simclr["knn_accuracy"].as_array().unwrap();
    assert_eq!(knn.len(), 1, "one epoch, one kNN accuracy");
    assert!(
        knn[0].as_f64().unwrap() > 0.3,
        "kNN over 10 classes: {simclr}"
    );
    assert!(out.join("cache").read_dir().unwrap().count() == 1);
    if imagenet {
        assert_eq!(first["imagenet"]["image_size"], 64);
    }
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        report.contains("simclr-finetune") && report.contains("kNN"),
        "{report}"
    );

    // The second run reads the pretraining back and repeats its rows.
    let second = demo(&out, "simclr-probe");
    assert_eq!(second["simclr"]["cached"], true);
    let probe = |r: &serde_json::Value| {
        outcomes(r)
            .into_iter()
            .filter(|o| o.1 == "simclr-probe")
            .collect::<Vec<_>>()
    };
    assert_eq!(probe(&first), probe(&second));
}
