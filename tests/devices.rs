//! `--device`: every device is named the same way on every command; one this build or this
//! machine lacks is one line and exit 2; with the `wgpu` feature, training on Mesa's software
//! Vulkan adapter (lavapipe) tracks the CPU's losses, and its checkpoint evaluates on the CPU.

mod common;

use common::{input_error, ok};

#[test]
fn a_device_this_build_lacks_is_one_line_and_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let set = common::squares(10, 2, 1);
    let data = common::write_idx_dir(&tmp.path().join("data"), &set, &set);
    let out = tmp.path().join("out");
    #[cfg(not(feature = "cuda"))]
    {
        let err = input_error(&format!(
            "--device cuda pretrain --data {} --out {}",
            data.display(),
            out.display()
        ));
        assert!(
            err.contains("--device cuda") && err.contains("--features cuda"),
            "{err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
    #[cfg(not(feature = "wgpu"))]
    {
        let err = input_error(&format!(
            "--device wgpu:cpu eval --model x --data {}",
            data.display()
        ));
        assert!(err.contains("--features wgpu"), "{err}");
    }
    let err = input_error(&format!(
        "--device tpu pretrain --data {} --out x",
        data.display()
    ));
    assert!(err.contains("expected cpu, wgpu[:N|:cpu]"), "{err}");
    assert!(!out.exists(), "nothing was written");
}

/// Per-epoch training losses of a run's `metrics.jsonl`.
#[cfg(feature = "wgpu")]
fn losses(dir: &std::path::Path) -> Vec<f64> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["train_loss"]
                .as_f64()
                .unwrap()
        })
        .collect()
}

#[cfg(feature = "wgpu")]
#[test]
fn training_on_a_software_gpu_tracks_the_cpu() {
    let tmp = tempfile::tempdir().unwrap();
    let set = common::squares(40, 3, 2);
    let data = common::write_idx_dir(&tmp.path().join("data"), &set, &set);
    let run = |device: &str| {
        let out = tmp.path().join(device.replace(':', "-"));
        let args = format!(
            "--device {device} pretrain --data {} --epochs 3 --batch-size 16 --seed 4 --out {}",
            data.display(),
            out.display()
        );
        // Minimal autotuning: the first run on a fresh machine compiles fewer kernels.
        let run = std::process::Command::new(env!("CARGO_BIN_EXE_pretune"))
            .args(args.split_whitespace())
            .env("CUBECL_AUTOTUNE_LEVEL", "minimal")
            .env("XDG_RUNTIME_DIR", std::env::temp_dir())
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        out
    };
    let (cpu, gpu) = (run("cpu"), run("wgpu:cpu"));
    // The same weights to start (drawn on the CPU from the seed), the same batches; the GPU
    // adds up in its own order, so the losses agree to a few parts in ten thousand.
    for (a, b) in losses(&cpu).iter().zip(losses(&gpu)) {
        assert!(
            (a - b).abs() <= 1e-3 * a.abs().max(1.0),
            "cpu {a} vs wgpu {b}"
        );
    }
    // A checkpoint trained on the GPU is a checkpoint: it evaluates on the CPU.
    let report: serde_json::Value = serde_json::from_str(&ok(&format!(
        "eval --model {} --data {} --json",
        gpu.display(),
        data.display()
    )))
    .unwrap();
    assert!(report["accuracy"].as_f64().unwrap() > 0.9, "{report}");
}
