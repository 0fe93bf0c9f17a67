//! Reliability: hostile and broken input gets one clear line and exit 2; a diverging run stops
//! cleanly or skips; a full disk leaves the previous checkpoint intact.

mod common;

use std::path::{Path, PathBuf};

use common::{input_error, ok, pretune, s};

/// A small dataset and a checkpoint trained on it.
struct Base {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    data: PathBuf,
    ckpt: PathBuf,
}

fn base() -> Base {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let set = common::squares(8, 3, 5);
    let data = common::write_idx_dir(&root.join("data"), &set, &set);
    let ckpt = root.join("ckpt");
    ok(&[
        "pretrain",
        "--data",
        s(&data),
        "--epochs",
        "1",
        "--val-fraction",
        "0",
        "--out",
        s(&ckpt),
    ]);
    Base {
        _tmp: tmp,
        root,
        data,
        ckpt,
    }
}

/// A copy of the checkpoint with `file` replaced by `bytes` (and the weights' hash dropped when
/// the weights change, to reach the checks behind it).
fn damaged(b: &Base, name: &str, file: &str, bytes: &[u8]) -> PathBuf {
    let dir = b.root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["pretune.json", "model.safetensors"] {
        std::fs::copy(b.ckpt.join(f), dir.join(f)).unwrap();
    }
    std::fs::write(dir.join(file), bytes).unwrap();
    if file == "model.safetensors" {
        let mut meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("pretune.json")).unwrap()).unwrap();
        meta["weights_sha256"] = "".into();
        std::fs::write(dir.join("pretune.json"), meta.to_string()).unwrap();
    }
    dir
}

fn eval_error(b: &Base, model: &Path) -> String {
    input_error(&["eval", "--model", s(model), "--data", s(&b.data)])
}

fn train_error(data: &Path, out: &Path) -> String {
    input_error(&[
        "pretrain",
        "--data",
        s(data),
        "--epochs",
        "1",
        "--out",
        s(out),
    ])
}

fn assert_mentions(err: &str, parts: &[&str]) {
    for p in parts {
        assert!(err.contains(p), "expected {p:?} in: {err}");
    }
}

/// Rewrite one tensor of a safetensors file.
fn edit_weights(
    bytes: &[u8],
    edit: impl FnOnce(&mut Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)>),
) -> Vec<u8> {
    let file = safetensors::SafeTensors::deserialize(bytes).unwrap();
    let mut tensors: Vec<_> = file
        .tensors()
        .into_iter()
        .map(|(k, v)| (k, v.dtype(), v.shape().to_vec(), v.data().to_vec()))
        .collect();
    edit(&mut tensors);
    let views: Vec<_> = tensors
        .iter()
        .map(|(k, d, sh, b)| {
            (
                k.clone(),
                safetensors::tensor::TensorView::new(*d, sh.clone(), b).unwrap(),
            )
        })
        .collect();
    safetensors::serialize(views, None).unwrap()
}

#[test]
fn broken_checkpoints_are_refused_by_name() {
    let b = base();
    let weights = std::fs::read(b.ckpt.join("model.safetensors")).unwrap();
    let meta = std::fs::read_to_string(b.ckpt.join("pretune.json")).unwrap();

    let dir = damaged(
        &b,
        "truncated",
        "model.safetensors",
        &weights[..weights.len() / 2],
    );
    assert_mentions(
        &eval_error(&b, &dir),
        &["model.safetensors", "not a readable safetensors"],
    );

    let wrong_dtype = edit_weights(&weights, |t| {
        let conv = t
            .iter_mut()
            .find(|t| t.0.ends_with("conv1.weight"))
            .unwrap();
        conv.1 = safetensors::Dtype::I32;
    });
    let dir = damaged(&b, "dtype", "model.safetensors", &wrong_dtype);
    assert_mentions(
        &eval_error(&b, &dir),
        &["model.safetensors", "conv1.weight"],
    );

    let wrong_shape = edit_weights(&weights, |t| {
        let fc = t.iter_mut().find(|t| t.0.ends_with("fc1.bias")).unwrap();
        fc.2 = vec![64];
        fc.3.truncate(64 * 4);
    });
    let dir = damaged(&b, "shape", "model.safetensors", &wrong_shape);
    assert_mentions(
        &eval_error(&b, &dir),
        &["model.safetensors", "fc1.bias", "[64]", "[128]"],
    );

    let extra = edit_weights(&weights, |t| {
        t.push((
            "backbone.Cnn.fc9.weight".into(),
            safetensors::Dtype::F32,
            vec![1],
            vec![0; 4],
        ));
    });
    let dir = damaged(&b, "extra", "model.safetensors", &extra);
    assert_mentions(
        &eval_error(&b, &dir),
        &["model.safetensors", "fc9.weight", "does not have"],
    );

    for (name, text, expected) in [
        (
            "json",
            "{\"format_version\": 1, ".to_string(),
            "not valid pretune metadata",
        ),
        (
            "newer",
            meta.replace("\"format_version\": 1", "\"format_version\": 99"),
            "newer than this pretune",
        ),
        (
            "arch",
            meta.replace("\"architecture\": \"cnn\"", "\"architecture\": \"alexnet\""),
            "unknown architecture",
        ),
        (
            "input",
            meta.replace("\"height\": 28", "\"height\": 1000000"),
            "does not suit cnn",
        ),
    ] {
        let dir = damaged(&b, name, "pretune.json", text.as_bytes());
        assert_mentions(&eval_error(&b, &dir), &["pretune.json", expected]);
    }
}

#[test]
fn broken_datasets_are_refused_by_name() {
    let b = base();
    let copy = |name: &str| {
        let dir = b.root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(&b.data).unwrap() {
            let p = entry.unwrap().path();
            std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
        }
        dir
    };
    let out = b.root.join("out");

    // A gzip stream that breaks off in the middle of its deflate data.
    let dir = copy("corrupt-gzip");
    let images = dir.join("train-images-idx3-ubyte.gz");
    let mut gz = std::fs::read(&images).unwrap();
    let n = gz.len();
    gz[n / 2..].iter_mut().for_each(|b| *b = !*b);
    std::fs::write(&images, &gz).unwrap();
    assert_mentions(&train_error(&dir, &out), &["train-images-idx3-ubyte.gz"]);

    // A header claiming 2^31 images of 2^16 x 2^16: refused before anything is allocated.
    let dir = copy("absurd");
    std::fs::remove_file(dir.join("train-images-idx3-ubyte.gz")).unwrap();
    let mut header = vec![0, 0, 8, 3];
    for d in [1u32 << 31, 1 << 16, 1 << 16] {
        header.extend(d.to_be_bytes());
    }
    std::fs::write(dir.join("train-images-idx3-ubyte"), &header).unwrap();
    assert_mentions(
        &train_error(&dir, &out),
        &["train-images-idx3-ubyte", "header promises"],
    );

    // Labels beyond the classes named in classes.txt.
    let dir = copy("labels");
    std::fs::write(dir.join("classes.txt"), "a\nb\n").unwrap();
    assert_mentions(
        &train_error(&dir, &out),
        &["classes.txt", "labels go up to 2"],
    );

    // CSV: a ragged row, and a gzip file that is not gzip inside.
    let csv = b.root.join("ragged.csv");
    std::fs::write(&csv, "1,2,3,4,0\n1,2,3,0\n").unwrap();
    assert_mentions(&train_error(&csv, &out), &["ragged.csv"]);
    let gz = b.root.join("bad.csv.gz");
    std::fs::write(&gz, [0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7]).unwrap();
    assert_mentions(&train_error(&gz, &out), &["bad.csv.gz"]);

    // Image folders: a truncated PNG and a text file named .jpg.
    let folder = b.root.join("folder");
    for class in ["a", "b"] {
        let dir = folder.join("train").join(class);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..6 {
            image::GrayImage::from_pixel(30, 30, image::Luma([i * 40]))
                .save(dir.join(format!("{i}.png")))
                .unwrap();
        }
    }
    let png = std::fs::read(folder.join("train/a/0.png")).unwrap();
    for (file, bytes) in [
        ("a/0.png", &png[..png.len() / 2]),
        ("a/1.png", b"hello, not a jpeg".as_slice()),
    ] {
        let path = folder.join("train").join(file);
        let saved = std::fs::read(&path).unwrap();
        std::fs::write(&path, bytes).unwrap();
        let err = train_error(&folder, &out);
        assert_mentions(&err, &[file, "not a readable image"]);
        std::fs::write(&path, saved).unwrap();
    }

    // CIFAR-10 batches cut mid-record.
    let cifar = b.root.join("cifar");
    std::fs::create_dir_all(&cifar).unwrap();
    std::fs::write(cifar.join("data_batch_1.bin"), vec![1u8; 3073 + 100]).unwrap();
    assert_mentions(
        &train_error(&cifar, &out),
        &["data_batch_1.bin", "truncated"],
    );
}

#[test]
fn a_damaged_resume_state_is_refused_by_name() {
    let b = base();
    let dir = b.root.join("run");
    std::fs::create_dir_all(&dir).unwrap();
    for (bytes, expected) in [
        (
            b"PRETUNE-STATE-5\n\xff\xff\xff\xff\xff\xff\xff\x7f".to_vec(),
            "truncated resume state",
        ),
        (b"something else".to_vec(), "not a pretune resume state"),
    ] {
        std::fs::write(dir.join("resume.state"), bytes).unwrap();
        let err = input_error(&["pretrain", "--resume", s(&dir)]);
        assert_mentions(&err, &["resume.state", expected]);
    }
}

#[test]
fn a_diverging_run_stops_or_skips_the_steps() {
    let b = base();
    let diverge = |out: &Path, extra: &[&str]| {
        let mut args = vec![
            "pretrain",
            "--data",
            s(&b.data),
            "--epochs",
            "2",
            "--optimizer",
            "sgd",
            "--lr",
            "1e30",
            "--batch-size",
            "4",
            "--val-fraction",
            "0",
            "--out",
            s(out),
        ];
        args.extend_from_slice(extra);
        pretune(&args)
    };
    let stopped = b.root.join("stopped");
    let out = diverge(&stopped, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_mentions(&stderr, &["diverged", "NaN", "--skip-nonfinite"]);
    assert!(!stderr.contains("panicked"));
    assert!(
        !stopped.join("pretune.json").exists(),
        "no checkpoint of a diverged run"
    );

    let skipped = b.root.join("skipped");
    let out = diverge(&skipped, &["--skip-nonfinite"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_mentions(&stdout, &["non-finite steps skipped"]);
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(skipped.join("pretune.json")).unwrap()).unwrap();
    let total: u64 = meta["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["skipped_steps"].as_u64().unwrap())
        .sum();
    assert!(total > 0, "{meta}");
    ok(&["eval", "--model", s(&skipped), "--data", s(&b.data)]);
}

#[test]
fn a_full_disk_fails_clearly_and_keeps_the_previous_checkpoint() {
    let b = base();
    let before: Vec<Vec<u8>> = ["pretune.json", "model.safetensors"]
        .iter()
        .map(|f| std::fs::read(b.ckpt.join(f)).unwrap())
        .collect();
    // Retrain into the same directory with a 64 KB file size limit: the weights (1.7 MB) and
    // the resume state cannot be written.
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "ulimit -f 64; exec {} pretrain --data {} --epochs 1 --out {} --overwrite",
            env!("CARGO_BIN_EXE_pretune"),
            s(&b.data),
            s(&b.ckpt)
        ))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_mentions(&stderr, &["write failed", "File too large"]);
    let after: Vec<Vec<u8>> = ["pretune.json", "model.safetensors"]
        .iter()
        .map(|f| std::fs::read(b.ckpt.join(f)).unwrap())
        .collect();
    assert!(before == after, "the previous checkpoint changed");
    let leftovers: Vec<_> = std::fs::read_dir(&b.ckpt)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".pretune-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    ok(&["eval", "--model", s(&b.ckpt), "--data", s(&b.data)]);
}
