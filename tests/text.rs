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
