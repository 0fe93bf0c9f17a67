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
    // Nothing but the data given: Hugging Face Trainer's recipe for a pretrained text model.
    let recipe = &meta["recipe"];
    assert_eq!(
        (
            &recipe["lr"],
            &recipe["schedule"],
            &recipe["label_smoothing"],
            &recipe["optimizer"]
        ),
        (
            &serde_json::json!(5e-5),
            &serde_json::json!("linear"),
            &serde_json::json!(0.0),
            &serde_json::json!("adamw")
        )
    );
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
    let predicted: serde_json::Value = serde_json::from_str(&ok(&[
        "predict",
        "--model",
        s(&tuned),
        "--json",
        "--top",
        "2",
        "The rocket left orbit for a distant planet.",
    ]))
    .unwrap();
    assert_eq!(
        predicted[0]["text"],
        "The rocket left orbit for a distant planet."
    );
    assert_eq!(predicted[0]["top"].as_array().unwrap().len(), 2);

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

/// The tensors of a safetensors file, as f32 values by name.
fn tensors(path: &std::path::Path) -> std::collections::HashMap<String, Vec<f32>> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(name, view)| {
            let values = view
                .data()
                .chunks(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect();
            (name, values)
        })
        .collect()
}

#[test]
fn lora_trains_only_attention_adapters_and_merges_them() {
    let tmp = tempfile::tempdir().unwrap();
    let data = topics(tmp.path());
    let tuned = tmp.path().join("lora");
    let model = minilm();
    let finetune = |strategy: &str, out: &std::path::Path| {
        ok(&[
            "finetune",
            "--from",
            s(&model),
            "--data",
            s(&data),
            "--per-class",
            "8",
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--strategy",
            strategy,
            "--lora-rank",
            "4",
            "--out",
            s(out),
        ])
    };
    let out = finetune("lora", &tuned);
    assert!(out.contains("1 epoch(s) lora"), "{out}");
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tuned.join("pretune.json")).unwrap()).unwrap();
    assert_eq!(meta["recipe"]["lr"], 5e-4, "LoRA's default rate");

    // Saved merged: the plain layout, no adapter tensors, and beside the new head only the
    // attention query and value weights differ from MiniLM's (as a linear probe leaves them).
    let probe = tmp.path().join("probe");
    finetune("linear-probe", &probe);
    let before = tensors(&probe.join("model.safetensors"));
    let after = tensors(&tuned.join("model.safetensors"));
    let mut names: Vec<&String> = after.keys().collect();
    names.sort();
    let mut probe_names: Vec<&String> = before.keys().collect();
    probe_names.sort();
    assert_eq!(names, probe_names);
    let changed: Vec<&str> = names
        .into_iter()
        .filter(|n| !n.starts_with("head.") && before[*n] != after[*n])
        .map(|n| n.trim_start_matches("backbone.Bert.encoder.layer."))
        .collect();
    let expected: Vec<String> = (0..6)
        .flat_map(|l| ["query", "value"].map(|p| format!("{l}.attention.self_attn.{p}.weight")))
        .collect();
    assert_eq!(changed, expected);
    // A merged checkpoint is an ordinary one.
    ok(&["eval", "--model", s(&tuned), "--data", s(&data)]);
    let err = input_error(&[
        "finetune",
        "--from",
        s(&tmp.path().join("lora")),
        "--data",
        s(&data),
        "--strategy",
        "lora",
        "--lora-rank",
        "0",
        "--out",
        s(&tmp.path().join("x")),
    ]);
    assert!(err.contains("--lora-rank"), "{err}");
}

/// A corpus with structure a masked language model can learn: fixed phrases.
fn corpus(dir: &std::path::Path) -> PathBuf {
    let path = dir.join("corpus.txt");
    let lines: Vec<String> = (0..400)
        .map(|i| {
            let [a, b] = [
                ["red", "apple"],
                ["yellow", "banana"],
                ["green", "pear"],
                ["purple", "plum"],
            ][i % 4];
            format!("the {a} {b} is on the table number {}", i % 7)
        })
        .collect();
    std::fs::write(&path, lines.join("\n")).unwrap();
    path
}

#[test]
fn masked_language_modelling_lowers_perplexity_and_fine_tunes() {
    let tmp = tempfile::tempdir().unwrap();
    let mlm = tmp.path().join("mlm");
    let out = ok(&[
        "pretrain",
        "--model",
        "bert-mini",
        "--task",
        "mlm",
        "--data",
        s(&corpus(tmp.path())),
        "--epochs",
        "3",
        "--batch-size",
        "16",
        "--vocab-size",
        "100",
        "--max-length",
        "16",
        "--lr",
        "1e-3",
        "--out",
        s(&mlm),
    ]);
    assert!(
        out.contains("val_ppl") && out.contains("val perplexity"),
        "{out}"
    );
    let epochs: Vec<serde_json::Value> = std::fs::read_to_string(mlm.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let val: Vec<f64> = epochs
        .iter()
        .map(|e| e["val_loss"].as_f64().unwrap())
        .collect();
    assert!(
        val.windows(2).all(|w| w[1] < w[0]),
        "held-out MLM loss falls every epoch: {val:?}"
    );
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(mlm.join("pretune.json")).unwrap()).unwrap();
    assert_eq!(meta["task"], "mlm");
    assert_eq!(meta["recipe"]["schedule"], "linear");

    // eval scores a masked language model on its own task.
    let scored: serde_json::Value = serde_json::from_str(&ok(&[
        "eval",
        "--model",
        s(&mlm),
        "--data",
        s(&corpus(tmp.path())),
        "--split",
        "train",
        "--json",
    ]))
    .unwrap();
    let perplexity = scored["perplexity"].as_f64().unwrap();
    assert!(perplexity > 1.0 && perplexity < val[0].exp(), "{scored}");

    // Its backbone fine-tunes for classification with its own vocabulary.
    let data = topics(tmp.path());
    let tuned = tmp.path().join("tuned");
    let out = ok(&[
        "finetune",
        "--from",
        s(&mlm),
        "--data",
        s(&data),
        "--epochs",
        "1",
        "--out",
        s(&tuned),
    ]);
    assert!(out.contains("3 classes"), "{out}");
    ok(&["eval", "--model", s(&tuned), "--data", s(&data)]);

    // Masked language modelling needs a text model, classification at least two classes.
    let err = input_error(&[
        "pretrain",
        "--task",
        "mlm",
        "--data",
        s(&data),
        "--out",
        s(&tmp.path().join("x")),
    ]);
    assert!(err.contains("--task mlm") && err.contains("cnn"), "{err}");
    let err = input_error(&[
        "pretrain",
        "--model",
        "bert-mini",
        "--data",
        s(&corpus(tmp.path())),
        "--out",
        s(&tmp.path().join("x")),
    ]);
    assert!(
        err.contains("corpus.txt") && err.contains("at least 2"),
        "{err}"
    );
}

/// Weights of a checkpoint by tensor name.
fn weights(dir: &std::path::Path) -> std::collections::HashMap<String, Vec<f32>> {
    tensors(&dir.join("model.safetensors"))
}

#[test]
fn an_lstm_language_model_learns_ties_its_output_and_fine_tunes_gradually() {
    let tmp = tempfile::tempdir().unwrap();
    let lm = tmp.path().join("lm");
    let out = ok(&format!(
        "pretrain --model lstm --task lm --data {} --epochs 3 --batch-size 16 --vocab-size 100 \
         --max-length 16 --lr 3e-3 --out {}",
        s(&corpus(tmp.path())),
        s(&lm)
    ));
    assert!(
        out.contains("next-token language modelling") && out.contains("val perplexity"),
        "{out}"
    );
    let val: Vec<f64> = std::fs::read_to_string(lm.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["val_loss"]
                .as_f64()
                .unwrap()
        })
        .collect();
    assert!(
        val.windows(2).all(|w| w[1] < w[0]),
        "held-out loss falls every epoch: {val:?}"
    );
    // The corpus's phrases are predictable: far below the vocabulary's size.
    assert!(val[2].exp() < 20.0, "perplexity {}", val[2].exp());

    // Weight tying: the output layer is the embedding; only its bias is the head's own.
    let w = weights(&lm);
    assert!(
        !w.contains_key("head.weight"),
        "{:?}",
        w.keys().collect::<Vec<_>>()
    );
    let vocab = w["head.bias"].len();
    let embedding = w
        .iter()
        .find(|(k, _)| k.contains("encoder.weight"))
        .map(|(_, v)| v.len())
        .unwrap();
    assert_eq!(embedding, vocab * 128);

    let scored: serde_json::Value = serde_json::from_str(&ok(&format!(
        "eval --model {} --data {} --split train --json",
        s(&lm),
        s(&corpus(tmp.path()))
    )))
    .unwrap();
    assert!(
        scored["next_token_accuracy"].as_f64().unwrap() > 0.3,
        "{scored}"
    );

    // ULMFiT: a language model of the topics' texts (their labels unused), then a classifier
    // on its encoder: the head alone first, then one LSTM more per epoch.
    let data = topics(tmp.path());
    let lm = tmp.path().join("topics-lm");
    ok(&format!(
        "pretrain --model lstm --task lm --data {} --epochs 2 --vocab-size 200 --max-length 32 \
         --lr 3e-3 --out {}",
        s(&data),
        s(&lm)
    ));
    let w = weights(&lm);
    let tuned = tmp.path().join("tuned");
    let out = ok(&format!(
        "finetune --from {} --data {} --epochs 12 --batch-size 8 --strategy gradual-unfreeze \
         --layer-decay 0.38 --lr 1e-2 --grad-clip 0.25 --val-fraction 0 --out {}",
        s(&lm),
        s(&data),
        s(&tuned)
    ));
    assert!(out.contains("3 classes"), "{out}");
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tuned.join("pretune.json")).unwrap()).unwrap();
    let phases: Vec<&str> = meta["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        phases,
        ["head", "from lstm3", "from lstm2", "from lstm1", "all"]
    );
    assert_eq!(meta["phases"][4]["epochs"], 8);
    assert_eq!(meta["model_options"]["lstm"]["tie_weights"], false);
    let (before, after) = (w, weights(&tuned));
    assert_eq!(
        after["head.weight"].len(),
        3 * 128 * 3,
        "concat pooling: 3 × 128 features"
    );
    assert!(
        after.contains_key("head.norm.gamma"),
        "a classifier's head batch-normalises"
    );
    // Every stage learned by the end (the embedding in the last epoch only).
    for stage in ["encoder.weight", "rnns.0.", "rnns.2."] {
        let key = before.keys().find(|k| k.contains(stage)).unwrap();
        assert!(before[key] != after[key], "{key} never learned");
    }
    let report: serde_json::Value = serde_json::from_str(&ok(&format!(
        "eval --model {} --data {} --json",
        s(&tuned),
        s(&data)
    )))
    .unwrap();
    assert!(report["accuracy"].as_f64().unwrap() > 0.6, "{report}");

    // Next-token language modelling needs an LSTM; masked, a BERT.
    let err = input_error(&format!(
        "pretrain --model bert-mini --task lm --data {} --out {}",
        s(&corpus(tmp.path())),
        s(&tmp.path().join("x"))
    ));
    assert!(err.contains("--task lm") && err.contains("lstm"), "{err}");
    let err = input_error(&format!(
        "pretrain --model lstm --task mlm --data {} --out {}",
        s(&corpus(tmp.path())),
        s(&tmp.path().join("x"))
    ));
    assert!(err.contains("--task mlm"), "{err}");
}

#[test]
fn demo_text_compares_scratch_mlm_ulmfit_and_minilm() {
    let tmp = tempfile::tempdir().unwrap();
    let data = topics(tmp.path());
    let out_dir = tmp.path().join("demo");
    let out = ok(&[
        "demo",
        "text",
        "--quick",
        "--data",
        s(&data),
        "--model",
        s(&minilm()),
        "--classes",
        "all",
        "--out",
        s(&out_dir),
    ]);
    assert!(
        out.contains("| scratch") && out.contains("| minilm"),
        "{out}"
    );
    for f in [
        "report.md",
        "results.json",
        "training_loss.png",
        "lm_perplexity.png",
    ] {
        assert!(out_dir.join(f).is_file(), "{f} missing");
    }
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("results.json")).unwrap()).unwrap();
    let runs: Vec<&str> = r["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["method"].as_str().unwrap())
        .collect();
    assert_eq!(runs, ["scratch", "mlm+finetune", "lm+ulmfit", "minilm"]);
    assert_eq!(r["mlm"]["val_perplexity"].as_array().unwrap().len(), 1);
    assert_eq!(r["lm"]["val_perplexity"].as_array().unwrap().len(), 1);
    assert!(out.contains("| lm+ulmfit"), "{out}");
    let report = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(report.contains("![training loss per epoch](training_loss.png)"));
}

#[test]
fn an_interrupted_lora_run_with_dropout_resumes_bit_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let data = topics(tmp.path());
    let model = minilm();
    let args = |out: &std::path::Path| -> Vec<String> {
        [
            "finetune",
            "--from",
            s(&model),
            "--data",
            s(&data),
            "--per-class",
            "8",
            "--epochs",
            "2",
            "--batch-size",
            "4",
            "--strategy",
            "lora",
            "--val-fraction",
            "0",
            "--save-every",
            "1",
            "--out",
            s(out),
        ]
        .map(String::from)
        .to_vec()
    };
    let whole = tmp.path().join("whole");
    let whole_args = args(&whole);
    ok(&whole_args.iter().map(String::as_str).collect::<Vec<_>>());

    // Ctrl-C as soon as the first resume state is saved: the run stops after that step.
    let parted = tmp.path().join("parted");
    common::interrupt_after_first_state(&args(&parted), &parted);
    let out = ok(&["resume", s(&parted)]);
    assert!(out.contains("resuming finetune"), "{out}");
    assert!(
        std::fs::read(whole.join("model.safetensors")).unwrap()
            == std::fs::read(parted.join("model.safetensors")).unwrap(),
        "dropout and adapters continue exactly where they stopped"
    );
}
