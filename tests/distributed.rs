//! Data-parallel training over MPI (`--features mpi`, Open MPI's `mpirun`): two ranks, each
//! computing half of every batch, train the model one process trains; rank 0 alone writes; a
//! rank killed mid-run leaves the last resume state, from which the job resumes.
#![cfg(feature = "mpi")]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// One MPI job at a time: two jobs of two ranks on two cores would only slow each other down.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// `mpirun -np 2 pretune {args}` (as root, on however many cores there are).
fn mpirun(args: &str) -> Command {
    let mut c = Command::new("mpirun");
    c.args(["--allow-run-as-root", "--oversubscribe", "-np", "2"])
        .arg(env!("CARGO_BIN_EXE_pretune"))
        .args(args.split_whitespace());
    c
}

fn succeeded(out: Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    String::from_utf8(out.stdout).unwrap()
}

/// Every tensor of a checkpoint's weights.
fn weights(dir: &Path) -> Vec<(String, Vec<f32>)> {
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut out: Vec<(String, Vec<f32>)> = file
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            let values = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect();
            (name, values)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn data(dir: &Path) -> PathBuf {
    let set = common::squares(96, 3, 3);
    common::write_idx_dir(&dir.join("data"), &set, &set)
}

#[test]
fn two_ranks_train_what_one_process_trains() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let data = data(tmp.path());
    let args = |out: &Path| {
        format!(
            "pretrain --data {} --epochs 2 --batch-size 32 --augment crop-flip --seed 5 --out {}",
            data.display(),
            out.display()
        )
    };
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    common::ok(&args(&one));
    let stdout = succeeded(mpirun(&args(&two)).output().unwrap());
    // Rank 0 alone speaks and writes.
    assert_eq!(stdout.matches("epoch 2/2").count(), 1, "{stdout}");
    // The same model: each rank computes half of every batch (its examples augmented as one
    // process augments them), the gradients are summed. Only the order of the additions
    // differs, so the weights agree to float rounding accumulated over 16 steps.
    let (a, b) = (weights(&one), weights(&two));
    assert_eq!(a.len(), b.len());
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        let scale = x.iter().fold(0f32, |m, v| m.max(v.abs()));
        let worst = x.iter().zip(y).fold(0f32, |m, (p, q)| m.max((p - q).abs()));
        assert!(
            worst <= 1e-4 * scale.max(1e-3),
            "{name}: differs by {worst} (scale {scale})"
        );
    }
    // And the metrics to their printed precision.
    let meta = |dir: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(dir.join("pretune.json")).unwrap()).unwrap()
    };
    for (r1, r2) in meta(&one)["history"]
        .as_array()
        .unwrap()
        .iter()
        .zip(meta(&two)["history"].as_array().unwrap())
    {
        for key in ["train_loss", "train_accuracy", "val_accuracy"] {
            let (p, q) = (r1[key].as_f64().unwrap(), r2[key].as_f64().unwrap());
            assert!((p - q).abs() < 5e-5, "{key}: {p} vs {q}");
        }
    }
}

#[test]
fn a_killed_rank_ends_the_job_and_the_run_resumes() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let data = data(tmp.path());
    let run = tmp.path().join("run");
    let mut job = mpirun(&format!(
        "pretrain --data {} --epochs 40 --batch-size 8 --save-every 5 --seed 2 --out {}",
        data.display(),
        run.display()
    ))
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // Wait for a saved state, then kill one rank (not mpirun): the whole job must end.
    let state = run.join("resume.state");
    for _ in 0..200 {
        if state.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(state.exists(), "no resume state was saved");
    let ranks = String::from_utf8(
        Command::new("pgrep")
            .args([
                "-f",
                &format!(
                    "^{} pretrain.*{}",
                    env!("CARGO_BIN_EXE_pretune"),
                    run.display()
                ),
            ])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let victim: i32 = ranks
        .lines()
        .last()
        .expect("the ranks run")
        .trim()
        .parse()
        .unwrap();
    unsafe { libc::kill(victim, libc::SIGKILL) };
    let status = job.wait().unwrap();
    assert!(!status.success(), "the job went on without a rank");
    // The last saved state is whole, and the job resumes from it to the end.
    let out = succeeded(
        mpirun(&format!("resume {}", run.display()))
            .output()
            .unwrap(),
    );
    assert!(out.contains("resuming pretrain"), "{out}");
    assert!(run.join("pretune.json").is_file() && !state.exists());
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("pretune.json")).unwrap()).unwrap();
    assert_eq!(meta["history"].as_array().unwrap().len(), 40);
}
