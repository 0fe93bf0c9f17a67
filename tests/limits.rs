//! What a careless or hostile input must not do: take the machine down (every size from a file
//! or a flag is bounded before allocation; these tests run under a 2 GB address-space limit),
//! destroy work (a run directory is never overwritten unless asked), mislabel data (class
//! names come from the data, never from its path), or be learned from silently.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{input_error, ok, s};

/// Run pretune under `ulimit -v` of 2 GB; returns (exit code, stderr).
fn limited(args: &str) -> (Option<i32>, String) {
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "ulimit -v 2000000; exec {} {args}",
            env!("CARGO_BIN_EXE_pretune")
        ))
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Exit 2 within 2 GB, with one short line.
fn refused_within_limits(args: &str, says: &str) {
    let (code, stderr) = limited(args);
    assert_eq!(code, Some(2), "{args}: {stderr}");
    assert!(stderr.contains(says), "{args}: {stderr}");
    assert!(
        stderr.len() < 600 && !stderr.contains("panicked"),
        "{args}: {stderr}"
    );
}

/// A copy of all-MiniLM-L6-v2 whose `config.json` is edited by `edit` (weights linked).
fn minilm_with(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let source = common::minilm();
    std::fs::create_dir_all(dir).unwrap();
    for entry in std::fs::read_dir(&source).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "config.json" {
            std::os::unix::fs::symlink(entry.path(), dir.join(entry.file_name())).unwrap();
        }
    }
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(source.join("config.json")).unwrap()).unwrap();
    edit(&mut config);
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    dir.to_path_buf()
}

#[test]
fn sizes_from_flags_and_files_are_bounded_before_allocating() {
    let tmp = tempfile::tempdir().unwrap();
    let topics = tmp.path().join("topics");
    std::fs::create_dir(&topics).unwrap();
    for t in ["cats", "dogs"] {
        let entries: Vec<String> = (0..30).map(|i| format!("{t} text number {i}")).collect();
        std::fs::write(topics.join(t), entries.join("\n%\n")).unwrap();
    }
    let out = tmp.path().join("out");
    refused_within_limits(
        &format!(
            "pretrain --model bert-mini --data {} --vocab-size 100000000000 --out {}",
            topics.display(),
            out.display()
        ),
        "--vocab-size",
    );
    refused_within_limits(
        &format!(
            "--threads 100000 pretrain --data {} --out {}",
            topics.display(),
            out.display()
        ),
        "--threads",
    );

    // An image CSV with one label of four billion (in the test split's rows).
    let csv = tmp.path().join("digits.csv");
    let rows: Vec<String> = (0..20)
        .map(|i| {
            let label = if i == 5 { 4_000_000_000u64 } else { i % 2 };
            format!("0,8,16,4,{label}")
        })
        .collect();
    std::fs::write(&csv, rows.join("\n")).unwrap();
    refused_within_limits(
        &format!("pretrain --data {} --out {}", csv.display(), out.display()),
        "digits.csv:6: label 4000000000 is not a class index",
    );

    // Hugging Face configs that promise more than their weights hold.
    for layers in [1_048_576, 100_000] {
        let dir = minilm_with(&tmp.path().join(format!("layers{layers}")), |c| {
            c["num_hidden_layers"] = layers.into()
        });
        refused_within_limits(
            &format!("embed --model {} hello", dir.display()),
            "config.json: describes",
        );
    }

    // One 50 MB line: truncated before tokenising, embedded within the limit.
    let big = tmp.path().join("big.txt");
    std::fs::write(&big, "word ".repeat(10_000_000)).unwrap();
    let (code, stderr) = limited(&format!(
        "embed --model {} --file {} --out {}",
        common::minilm().display(),
        big.display(),
        tmp.path().join("emb.jsonl").display()
    ));
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn a_run_directory_is_never_overwritten_unless_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let set = common::squares(20, 3, 1);
    let data = common::write_idx_dir(&tmp.path().join("data"), &set, &set);
    let run = tmp.path().join("run");
    let pretrain = |extra: &str| {
        format!(
            "pretrain --data {} --epochs 1 --out {} {extra}",
            data.display(),
            run.display()
        )
    };
    ok(&pretrain(""));
    let weights = std::fs::read(run.join("model.safetensors")).unwrap();
    let err = input_error(&pretrain("--seed 5"));
    assert!(
        err.contains("already holds") && err.contains("--overwrite"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(run.join("model.safetensors")).unwrap(),
        weights
    );
    ok(&pretrain("--seed 5 --overwrite"));
    assert_ne!(
        std::fs::read(run.join("model.safetensors")).unwrap(),
        weights
    );

    // A folder of someone's files.
    let photos = tmp.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    std::fs::write(photos.join("holiday.jpg"), b"not ours").unwrap();
    let err = input_error(&format!(
        "pretrain --data {} --out {}",
        data.display(),
        photos.display()
    ));
    assert!(err.contains("holiday.jpg"), "{err}");

    // Never the checkpoint being fine-tuned, whatever the flags say.
    for extra in ["", "--overwrite"] {
        let err = input_error(&format!(
            "finetune --from {0} --data {1} --out {0} {extra}",
            run.display(),
            data.display()
        ));
        assert!(err.contains("is the checkpoint being fine-tuned"), "{err}");
    }
    let err = input_error(&format!(
        "finetune --from {} --data {} --out {}/. --overwrite",
        run.display(),
        data.display(),
        run.display()
    ));
    assert!(err.contains("is the checkpoint being fine-tuned"), "{err}");
}

#[test]
fn data_describes_itself() {
    let tmp = tempfile::tempdir().unwrap();
    // Fashion-MNIST copied under a name that says nothing is still Fashion-MNIST.
    let fashion = common::fashion_mnist();
    let copy = tmp.path().join("clothes");
    std::fs::create_dir(&copy).unwrap();
    for f in std::fs::read_dir(&fashion).unwrap() {
        let f = f.unwrap();
        std::os::unix::fs::symlink(f.path(), copy.join(f.file_name())).unwrap();
    }
    let out = ok(&format!(
        "pretrain --data {} --classes Sandal,Bag --per-class 20 --epochs 1 --out {}",
        copy.display(),
        tmp.path().join("c").display()
    ));
    assert!(out.contains("Sandal, Bag"), "{out}");
    // Other data under a path that says "fashion" is not Fashion-MNIST.
    let set = common::squares(20, 3, 1);
    let data = common::write_idx_dir(&tmp.path().join("fashion-like"), &set, &set);
    let out = ok(&format!(
        "pretrain --data {} --epochs 1 --out {}",
        data.display(),
        tmp.path().join("f").display()
    ));
    assert!(out.contains("3 classes (0, 1, 2)"), "{out}");

    // export → import keeps the class names and the normalisation.
    let run = tmp.path().join("c");
    let exported = tmp.path().join("c.safetensors");
    ok(&format!(
        "export --model {} --out {}",
        run.display(),
        exported.display()
    ));
    let back = tmp.path().join("back");
    ok(&format!(
        "import --arch cnn --weights {} --out {}",
        exported.display(),
        back.display()
    ));
    let meta = |dir: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(dir.join("pretune.json")).unwrap()).unwrap()
    };
    assert_eq!(meta(&back)["class_names"], meta(&run)["class_names"]);
    assert_eq!(meta(&back)["input"], meta(&run)["input"]);
    let accuracy = |dir: &Path| {
        let report = ok(&format!(
            "eval --model {} --data {} --json",
            dir.display(),
            copy.display()
        ));
        serde_json::from_str::<serde_json::Value>(&report).unwrap()["accuracy"].clone()
    };
    assert_eq!(accuracy(&back), accuracy(&run));
}

#[test]
fn a_relative_data_path_resumes_from_anywhere() {
    let tmp = tempfile::tempdir().unwrap();
    let set = common::squares(200, 3, 7);
    common::write_idx_dir(&tmp.path().join("data"), &set, &set);
    let child = Command::new(env!("CARGO_BIN_EXE_pretune"))
        .current_dir(tmp.path())
        .args([
            "pretrain", "--data", "data", "--epochs", "30", "--out", "run",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = tmp.path().join("run");
    let resumed = Command::new(env!("CARGO_BIN_EXE_pretune"))
        .current_dir("/")
        .args(["resume", s(&run)])
        .output()
        .unwrap();
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("pretune.json")).unwrap()).unwrap();
    assert_eq!(meta["data"]["data"], "data", "kept as typed");
    assert_eq!(
        meta["data"]["data_absolute"],
        s(&tmp.path().join("data").canonicalize().unwrap())
    );
}

#[test]
fn inputs_that_would_be_learned_silently_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let fashion = common::fashion_mnist();
    // Before any data is read.
    let err = input_error(&[
        "pretrain",
        "--data",
        s(&fashion),
        "--classes",
        "",
        "--out",
        s(&out),
    ]);
    assert!(err.contains("--classes"), "{err}");
    let err = input_error(&format!(
        "pretrain --data {} --save-every 0 --out {}",
        fashion.display(),
        out.display()
    ));
    assert!(err.contains("--save-every"), "{err}");

    // A CSV whose texts are all empty.
    let csv = tmp.path().join("t.csv");
    std::fs::write(&csv, "text,label\n,a\n  ,b\n,a\n").unwrap();
    let err = input_error(&format!(
        "pretrain --model bert-mini --data {} --out {}",
        csv.display(),
        out.display()
    ));
    assert!(err.contains("t.csv:row 2: the text is empty"), "{err}");

    // A config that describes half the weights' layers, and a vocabulary that does not fit.
    let three = minilm_with(&tmp.path().join("three"), |c| {
        c["num_hidden_layers"] = 3.into()
    });
    let err = input_error(&format!("embed --model {} hello", three.display()));
    assert!(
        err.contains("encoder.layer.3") && err.contains("num_hidden_layers"),
        "{err}"
    );
    let vocab = minilm_with(&tmp.path().join("vocab"), |c| {
        c["vocab_size"] = 30000.into()
    });
    let err = input_error(&format!("embed --model {} hello", vocab.display()));
    assert!(
        err.contains("embeddings.word_embeddings.weight has shape [30522, 384]")
            && !err.contains("ShapeMismatch"),
        "{err}"
    );
}

#[test]
fn a_tokenizer_that_does_not_belong_to_the_weights_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    // A tokenizer whose ids go past MiniLM's 30,522-row embedding table.
    let dir = minilm_with(&tmp.path().join("m"), |_| {});
    let mut tokenizer: serde_json::Value =
        serde_json::from_slice(&std::fs::read(common::minilm().join("tokenizer.json")).unwrap())
            .unwrap();
    tokenizer["model"]["vocab"]["zzzzunseen"] = 107_592.into();
    std::fs::remove_file(dir.join("tokenizer.json")).unwrap();
    std::fs::write(dir.join("tokenizer.json"), tokenizer.to_string()).unwrap();
    let err = input_error(&format!("embed --model {} zzzzunseen", dir.display()));
    assert!(
        err.contains("tokenizer.json") && err.contains("107592") && err.contains("30522"),
        "{err}"
    );
    let topics = tmp.path().join("topics");
    std::fs::create_dir(&topics).unwrap();
    for t in ["a", "b"] {
        let entries: Vec<String> = (0..30).map(|i| format!("{t} zzzzunseen {i}")).collect();
        std::fs::write(topics.join(t), entries.join("\n%\n")).unwrap();
    }
    let err = input_error(&format!(
        "finetune --from {} --data {} --out {}",
        dir.display(),
        topics.display(),
        tmp.path().join("ft").display()
    ));
    assert!(err.contains("107592"), "{err}");

    // A pretune checkpoint whose tokenizer.json was edited after it was saved.
    let run = tmp.path().join("run");
    ok(&format!(
        "pretrain --model bert-mini --data {} --vocab-size 200 --max-length 16 --epochs 1 --out {}",
        topics.display(),
        run.display()
    ));
    let path = run.join("tokenizer.json");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("\"[UNK]\"", "\"[UNK2]\"", 1)).unwrap();
    for cmd in [
        format!("predict --model {} hello", run.display()),
        format!("eval --model {} --data {}", run.display(), topics.display()),
    ] {
        let err = input_error(&cmd);
        assert!(
            err.contains("tokenizer.json") && err.contains("sha256"),
            "{err}"
        );
    }
}

#[test]
fn few_shot_runs_validate_on_their_own_labels() {
    let tmp = tempfile::tempdir().unwrap();
    let fashion = common::fashion_mnist();
    let meta = |dir: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(dir.join("pretune.json")).unwrap()).unwrap()
    };
    let run = tmp.path().join("a");
    ok(&format!(
        "pretrain --data {} --classes 0-4 --per-class 20 --epochs 1 --out {}",
        fashion.display(),
        run.display()
    ));
    let data = &meta(&run)["data"];
    assert_eq!(
        (
            data["train_examples"].as_u64(),
            data["val_examples"].as_u64()
        ),
        (Some(90), Some(10))
    );
    assert_eq!(data["validation"]["from"], "labelled-budget");
    let run = tmp.path().join("b");
    ok(&format!(
        "pretrain --data {} --classes 0-4 --per-class 20 --val-per-class 6 --epochs 1 --out {}",
        fashion.display(),
        run.display()
    ));
    let data = &meta(&run)["data"];
    assert_eq!(
        (
            data["train_examples"].as_u64(),
            data["val_examples"].as_u64()
        ),
        (Some(100), Some(30))
    );
    assert_eq!(data["validation"]["examples"], 6);
}

#[test]
fn long_epochs_say_how_far_they_are() {
    let tmp = tempfile::tempdir().unwrap();
    let topics = tmp.path().join("topics");
    std::fs::create_dir(&topics).unwrap();
    for t in ["cats", "dogs"] {
        let entries: Vec<String> = (0..200).map(|i| format!("{t} say {i} things")).collect();
        std::fs::write(topics.join(t), entries.join("\n%\n")).unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_pretune"))
        .env("PRETUNE_PROGRESS_SECONDS", "0")
        .args([
            "pretrain",
            "--model",
            "bert-mini",
            "--data",
            s(&topics),
            "--vocab-size",
            "200",
            "--max-length",
            "16",
            "--epochs",
            "1",
            "--batch-size",
            "32",
            "--out",
            s(&tmp.path().join("run")),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let within: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("epoch 1/1  ") && l.contains(" texts  loss "))
        .collect();
    assert!(within.len() >= 5, "progress inside the epoch:\n{stdout}");
    // The summary's throughput is the run's, not an average of rates.
    assert!(stdout.contains("train texts/s)"), "{stdout}");
}
