//! Text models: the real pretrained all-MiniLM-L6-v2 against sentence-transformers.

mod common;

use std::path::PathBuf;

use common::{input_error, ok, s};

/// The unpacked MiniLM (scripts/minilm.sh), or `$PRETUNE_MINILM`.
fn minilm() -> PathBuf {
    let dir = std::env::var_os("PRETUNE_MINILM")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/all-MiniLM-L6-v2")
        });
    assert!(
        dir.join("model.safetensors").is_file(),
        "all-MiniLM-L6-v2 not found at {}: run scripts/minilm.sh",
        dir.display()
    );
    dir
}

#[derive(serde::Deserialize)]
struct Line {
    text: String,
    embedding: Vec<f32>,
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

#[test]
fn embed_matches_sentence_transformers() {
    // Made by bench/parity/minilm_reference.py with sentence-transformers: English, accents,
    // Chinese, German ß, one letter, the empty text, emoji and odd whitespace, a text far
    // beyond the 256-token limit.
    let expected: Vec<Line> =
        serde_json::from_str(include_str!("fixtures/minilm_embeddings.json")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("texts.txt");
    // One text per line: the one with a newline goes on the command line instead.
    let (multiline, lines): (Vec<&Line>, Vec<&Line>) =
        expected.iter().partition(|l| l.text.contains('\n'));
    let file_text: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    std::fs::write(&input, file_text.join("\n") + "\n").unwrap();
    let out = tmp.path().join("embeddings.jsonl");
    ok(&[
        "embed",
        "--model",
        s(&minilm()),
        "--file",
        s(&input),
        "--out",
        s(&out),
    ]);
    let got: Vec<Line> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(got.len(), lines.len());
    let model = minilm();
    let mut args = vec!["embed", "--model", s(&model)];
    args.extend(multiline.iter().map(|l| l.text.as_str()));
    let stdout = ok(&args);
    let got: Vec<Line> = got
        .into_iter()
        .chain(stdout.lines().map(|l| serde_json::from_str(l).unwrap()))
        .collect();
    for (want, have) in lines.iter().chain(&multiline).zip(&got) {
        assert_eq!(want.text, have.text);
        assert_eq!(have.embedding.len(), 384);
        let c = cosine(&want.embedding, &have.embedding);
        assert!(c >= 0.9999, "cosine {c} for {:?}", want.text);
    }
}

#[test]
fn padding_never_changes_an_embedding() {
    let short = "tiny";
    let long = "a much longer sentence that forces the short one in its batch to be padded a lot";
    let alone: Line =
        serde_json::from_str(ok(&["embed", "--model", s(&minilm()), short]).trim()).unwrap();
    let batched = ok(&["embed", "--model", s(&minilm()), short, long]);
    let first: Line = serde_json::from_str(batched.lines().next().unwrap()).unwrap();
    let c = cosine(&alone.embedding, &first.embedding);
    assert!(c > 0.999999, "padding changed the embedding: cosine {c}");
}

#[test]
fn a_directory_that_is_not_a_model_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let err = input_error(&["embed", "--model", s(tmp.path()), "hello"]);
    assert!(err.contains("config.json"), "{err}");
    std::fs::write(tmp.path().join("config.json"), r#"{"hidden_size": 10}"#).unwrap();
    let err = input_error(&["embed", "--model", s(tmp.path()), "hello"]);
    assert!(
        err.contains("config.json") && err.contains("not a BERT config"),
        "{err}"
    );
}

/// Topic files as the fortunes package has them: entries separated by `%` lines.
fn topics(dir: &std::path::Path) -> PathBuf {
    let root = dir.join("topics");
    std::fs::create_dir_all(&root).unwrap();
    let subjects = [
        ("space", ["rocket", "orbit", "planet", "comet", "galaxy"]),
        ("cooking", ["butter", "oven", "recipe", "garlic", "simmer"]),
        ("sailing", ["harbour", "anchor", "mast", "tide", "rudder"]),
    ];
    for (topic, words) in subjects {
        let entries: Vec<String> = (0..40)
            .map(|i| {
                format!(
                    "The {} and the {} were mentioned {i} times,\nalong with a {}.",
                    words[i % 5],
                    words[(i + 2) % 5],
                    words[(i + 3) % 5]
                )
            })
            .collect();
        std::fs::write(root.join(topic), entries.join("\n%\n") + "\n%\n").unwrap();
        std::fs::write(root.join(format!("{topic}.dat")), [1u8, 2, 3]).unwrap();
    }
    root
}

#[test]
fn minilm_fine_tunes_on_topics_and_bert_mini_trains_from_scratch() {
    let tmp = tempfile::tempdir().unwrap();
    let data = topics(tmp.path());
    let tuned = tmp.path().join("tuned");
    let out = ok(&[
        "finetune",
        "--from",
        s(&minilm()),
        "--data",
        s(&data),
        "--per-class",
        "8",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--out",
        s(&tuned),
    ]);
    assert!(out.contains("3 classes (cooking, sailing, space)"), "{out}");
    assert!(tuned.join("tokenizer.json").is_file());
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tuned.join("pretune.json")).unwrap()).unwrap();
    assert_eq!(meta["architecture"], "bert");
    assert_eq!(meta["input"]["max_length"], 256);
    assert_eq!(meta["model_options"]["bert"]["hidden_size"], 384);
    let report: serde_json::Value = serde_json::from_str(&ok(&[
        "eval",
        "--model",
        s(&tuned),
        "--data",
        s(&data),
        "--json",
    ]))
    .unwrap();
    let support: u64 = report["per_class"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["support"].as_u64().unwrap())
        .sum();
    assert!(
        support > 5 && support < 60,
        "the hashed test split: {support} texts"
    );

    // From scratch: a WordPiece vocabulary learned from the training texts, saved with the model.
    let scratch = tmp.path().join("scratch");
    ok(&[
        "pretrain",
        "--model",
        "bert-mini",
        "--data",
        s(&data),
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--vocab-size",
        "300",
        "--max-length",
        "32",
        "--out",
        s(&scratch),
    ]);
    let vocab: serde_json::Value =
        serde_json::from_slice(&std::fs::read(scratch.join("tokenizer.json")).unwrap()).unwrap();
    let pieces = vocab["model"]["vocab"].as_object().unwrap();
    assert!(
        pieces.contains_key("[MASK]") && pieces.contains_key("rocket"),
        "{pieces:?}"
    );
    ok(&["eval", "--model", s(&scratch), "--data", s(&data)]);
    // ... which fine-tunes like any other checkpoint, here from a CSV file.
    let csv = tmp.path().join("reviews.csv");
    let rows: Vec<String> = (0..30)
        .map(|i| match i % 2 {
            0 => format!("\"the rocket {i} reached orbit\",space"),
            _ => format!("\"simmer the garlic {i} in butter\",cooking"),
        })
        .collect();
    std::fs::write(&csv, format!("body,topic\n{}\n", rows.join("\n"))).unwrap();
    ok(&[
        "finetune",
        "--from",
        s(&scratch),
        "--data",
        s(&csv),
        "--text-column",
        "body",
        "--label-column",
        "topic",
        "--epochs",
        "1",
        "--out",
        s(&tmp.path().join("csv")),
    ]);
    let err = input_error(&[
        "finetune",
        "--from",
        s(&scratch),
        "--data",
        s(&csv),
        "--out",
        s(&tmp.path().join("x")),
    ]);
    assert!(
        err.contains("reviews.csv") && err.contains("\"text\""),
        "{err}"
    );
}
