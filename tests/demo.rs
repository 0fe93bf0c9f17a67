//! `pretune demo --quick` on the real Fashion-MNIST: the report a user gets, and that it repeats.

mod common;

use std::process::Command;

fn demo(out: &std::path::Path) -> serde_json::Value {
    let data = common::fashion_mnist();
    let run = Command::new(env!("CARGO_BIN_EXE_pretune"))
        .args([
            "demo",
            "--quick",
            "--data",
            data.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
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
    let first = demo(&tmp.path().join("a"));

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

    let second = demo(&tmp.path().join("b"));
    assert_eq!(
        outcomes(&first),
        outcomes(&second),
        "same seed, same numbers"
    );
}
