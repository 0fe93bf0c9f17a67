//! Runs killed at any moment and resumed end bit-identical to runs never interrupted.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A `pretune` command whose output is not waited for (it may be killed).
fn pretune<A: common::CommandLine + ?Sized>(args: &A) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pretune"));
    c.args(args.argv())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

fn meta(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("pretune.json")).unwrap()).unwrap()
}

/// Wait `ms`, then SIGKILL the run if it is still going. Returns whether it had finished.
fn kill_after(mut child: Child, ms: u64) -> bool {
    std::thread::sleep(Duration::from_millis(ms));
    if child.try_wait().unwrap().is_some() {
        return true;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    false
}

/// Run `pretrain {args} --out DIR` to the end once, then again and again killed (SIGKILL) at
/// pseudo-random moments (seeded, so a failure repeats) between `kill_ms` and resumed —
/// alternately with `pretune resume DIR` and `pretrain --resume DIR` — until it completes:
/// every trial must end with the uninterrupted run's weights, losses and kept epoch.
fn kills_and_resumes_to_identical_weights(args: &str, trials: usize, kill_ms: (u64, u64)) {
    let tmp = tempfile::tempdir().unwrap();
    let run = |out: &Path| format!("pretrain {args} --out {}", out.display());
    let reference = tmp.path().join("reference");
    let out = pretune(&run(&reference)).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = meta(&reference);
    assert!(
        !reference.join("resume.state").exists(),
        "a finished run leaves no resume state"
    );

    let mut resumed = 0;
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut random_ms = move |lo: u64, hi: u64| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        lo + (state >> 33) % (hi - lo)
    };
    for trial in 0..trials {
        let dir = tmp.path().join(format!("killed{trial}"));
        let mut finished = kill_after(
            pretune(&run(&dir)).spawn().unwrap(),
            random_ms(kill_ms.0, kill_ms.1),
        );
        let mut kills = 0;
        while !finished {
            kills += 1;
            assert!(kills < 60, "the run never finished");
            let child = if dir.join("resume.state").exists() {
                resumed += 1;
                let dir = dir.to_str().unwrap();
                match resumed % 2 {
                    0 => pretune(&["resume", dir]).spawn().unwrap(),
                    _ => pretune(&["pretrain", "--resume", dir]).spawn().unwrap(),
                }
            } else {
                // Killed before its first save: start over, as a user would.
                pretune(&format!("{} --overwrite", run(&dir)))
                    .spawn()
                    .unwrap()
            };
            // Later kills wait longer, so that a loaded machine still gets the run to its end.
            finished = kill_after(child, random_ms(kill_ms.0, kill_ms.1) / 2 + 100 * kills);
        }
        let got = meta(&dir);
        assert_eq!(
            got["weights_sha256"], expected["weights_sha256"],
            "trial {trial}: weights differ after {kills} kills"
        );
        let losses = |m: &serde_json::Value| {
            m["history"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["train_loss"].as_f64().unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(losses(&got), losses(&expected), "trial {trial}");
        assert_eq!(got["best_epoch"], expected["best_epoch"]);
    }
    assert!(
        resumed >= trials,
        "only {resumed} resumes: the kills came too late to test anything"
    );
}

#[test]
fn killed_runs_resume_to_identical_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let set = common::squares(60, 3, 7);
    let data = common::write_idx_dir(&tmp.path().join("data"), &set, &set);
    kills_and_resumes_to_identical_weights(
        &format!(
            "--data {} --epochs 4 --batch-size 8 --augment crop-flip --val-fraction 0.2 \
             --save-every 3 --seed 9",
            data.display()
        ),
        10,
        (80, 800),
    );
}

/// Contrastive pretraining (two views per image, the projection head, the kNN monitor)
/// resumes as exactly.
#[test]
fn killed_contrastive_runs_resume_to_identical_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let set = common::squares(40, 3, 4);
    let data = common::write_idx_dir(&tmp.path().join("data"), &set, &set);
    kills_and_resumes_to_identical_weights(
        &format!(
            "--task contrastive --data {} --epochs 3 --batch-size 16 --val-fraction 0.2 \
             --save-every 2 --seed 5",
            data.display()
        ),
        4,
        (80, 800),
    );
}

/// A sequence-to-sequence run (no classes, batches of pairs) resumes as exactly.
#[test]
fn killed_sequence_runs_resume_to_identical_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let data = common::reversed_words(&tmp.path().join("pairs.tsv"), 400);
    kills_and_resumes_to_identical_weights(
        &format!(
            "--model g2p-gru --data {} --epochs 3 --batch-size 16 --save-every 5 --seed 2",
            data.display()
        ),
        3,
        (400, 2500),
    );
}

/// BatchNorm's running statistics are state too: a resumed ResNet-18 ends with the same bytes.
#[test]
fn killed_batchnorm_runs_resume_to_identical_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let set = common::squares(20, 3, 5);
    let data = common::write_idx_dir(&tmp.path().join("data"), &set, &set);
    kills_and_resumes_to_identical_weights(
        &format!(
            "--model resnet18 --small-input --data {} --epochs 2 --batch-size 8 \
             --val-fraction 0.2 --save-every 2 --seed 3",
            data.display()
        ),
        4,
        (600, 3000),
    );
}

#[test]
fn ctrl_c_saves_state_and_says_how_to_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let set = common::squares(200, 3, 7);
    let data = common::write_idx_dir(&tmp.path().join("data"), &set, &set);
    let dir = tmp.path().join("run");
    let child = pretune(&[
        "pretrain",
        "--data",
        data.to_str().unwrap(),
        "--epochs",
        "30",
        "--batch-size",
        "8",
        "--out",
        dir.to_str().unwrap(),
    ])
    .spawn()
    .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("continue with: pretune resume"), "{stderr}");
    assert!(dir.join("resume.state").is_file());
    assert!(
        !dir.join("pretune.json").exists(),
        "no checkpoint claims to be finished"
    );
}
