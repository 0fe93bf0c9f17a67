//! Summarization: the BERT2BERT encoder–decoder (warm start, causal decoder, key/value cache),
//! its pair files, and the `pretune` commands that train, run and score it.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use burn::prelude::*;
use burn::store::ModuleSnapshot;
use common::{device, input_error, ok, s};
use pretune::generate::{self, Decoder, Search};
use pretune::models::bert::{Bert, BertConfig};
use pretune::models::bert2bert::{self, Bert2Bert};
use pretune::models::{Backbone, Classifier, ModelOptions, arch};

fn tiny() -> BertConfig {
    BertConfig {
        vocab_size: 40,
        hidden_size: 16,
        num_hidden_layers: 2,
        num_attention_heads: 2,
        intermediate_size: 32,
        max_position_embeddings: 24,
        type_vocab_size: 2,
        layer_norm_eps: 1e-12,
        hidden_act: "gelu".into(),
        hidden_dropout_prob: 0.1,
        attention_probs_dropout_prob: 0.1,
    }
}

/// Every tensor of `module` by its path.
fn tensors<M: ModuleSnapshot>(module: &M) -> HashMap<String, Vec<f32>> {
    module
        .collect(None, None, false)
        .into_iter()
        .map(|t| {
            let data = burn::store::bridge::to_data(&t).unwrap().convert::<f32>();
            (t.name.clone(), data.try_to_vec::<f32>().unwrap())
        })
        .collect()
}

fn ids(rows: &[&[i64]]) -> Tensor<2, Int> {
    let width = rows[0].len();
    Tensor::from_data(
        TensorData::new(rows.concat(), [rows.len(), width]),
        &device(),
    )
}

/// A tiny bert2bert classifier (tied head) drawn from `seed`.
fn tiny_model(seed: u64) -> Classifier {
    let options = ModelOptions {
        bert: Some(tiny()),
        ..Default::default()
    };
    // `valid`: inference, without dropout.
    Classifier::new(arch("bert2bert").unwrap(), &options, 40, seed, &device()).valid()
}

fn bert2bert(model: &Classifier) -> &Bert2Bert {
    match &model.backbone {
        Backbone::Bert2Bert(m) => m,
        _ => panic!("not a bert2bert"),
    }
}

#[test]
fn warm_start_copies_the_encoder_into_both_halves_and_leaves_cross_attention_new() {
    let device = device();
    device.seed(11);
    let pretrained = Bert::new(&tiny(), &device);
    let mut model = Bert2Bert::new(&tiny(), &device);
    let before = tensors(&model.decoder);
    let (enc, dec) = model.warm_start(&pretrained).unwrap();
    let source = tensors(&pretrained);
    assert_eq!((enc, dec), (source.len(), source.len()));
    let (encoder, decoder) = (tensors(&model.encoder), tensors(&model.decoder));
    for (path, values) in &source {
        assert_eq!(&encoder[path], values, "encoder {path}");
        assert_eq!(&decoder[path], values, "decoder {path}");
    }
    // Each layer's cross-attention: q, k, v, output dense (weights and biases) and LayerNorm,
    // untouched by the warm start, and not a copy of the self-attention.
    let cross: Vec<&String> = decoder
        .keys()
        .filter(|p| p.contains("crossattention"))
        .collect();
    assert_eq!(cross.len(), 2 * 10, "{cross:?}");
    for path in cross {
        assert_eq!(decoder[path], before[path], "{path} changed");
    }
    let q = "encoder.layer.0.crossattention.self_attn.query.weight";
    assert_ne!(
        decoder[q],
        decoder["encoder.layer.0.attention.self_attn.query.weight"]
    );
    // The halves are separate parameters: training one does not move the other.
    let ids = |m: &Bert| {
        let mut v = Vec::new();
        struct Ids<'a>(&'a mut Vec<burn::module::ParamId>);
        impl burn::module::ModuleVisitor for Ids<'_> {
            fn visit_float<const D: usize>(&mut self, p: &burn::module::Param<Tensor<D>>) {
                self.0.push(p.id);
            }
        }
        m.visit(&mut Ids(&mut v));
        v
    };
    let mut all = ids(&model.encoder);
    all.extend(ids(&pretrained));
    let mut decoder_ids = Vec::new();
    struct Ids<'a>(&'a mut Vec<burn::module::ParamId>);
    impl burn::module::ModuleVisitor for Ids<'_> {
        fn visit_float<const D: usize>(&mut self, p: &burn::module::Param<Tensor<D>>) {
            self.0.push(p.id);
        }
    }
    model.decoder.visit(&mut Ids(&mut decoder_ids));
    all.extend(decoder_ids);
    let n = all.len();
    all.sort_by_key(|id| id.val());
    all.dedup();
    assert_eq!(
        all.len(),
        n,
        "the halves share parameters (with the source)"
    );
}

#[test]
fn a_decoder_position_does_not_see_the_tokens_after_it() {
    let model = tiny_model(5);
    let m = bert2bert(&model);
    let source = ids(&[&[1, 5, 9, 7, 2]]);
    let mask = Tensor::ones([1, 5], &device());
    let hidden = |target: &[i64]| {
        let (h, _) = m.decode(m.start(source.clone(), mask.clone()), ids(&[target]));
        h.into_data().try_to_vec::<f32>().unwrap()
    };
    let a = hidden(&[1, 12, 13, 14, 15]);
    let b = hidden(&[1, 12, 13, 30, 31]);
    let h = 16;
    assert_eq!(a[..3 * h], b[..3 * h], "positions 0-2 saw later tokens");
    assert_ne!(a[3 * h..4 * h], b[3 * h..4 * h]);
    // The decoder reads the source: another one changes every position.
    let other = ids(&[&[1, 6, 6, 6, 2]]);
    let (o, _) = m.decode(m.start(other, mask.clone()), ids(&[&[1, 12, 13, 14, 15]]));
    let o = o.into_data().try_into_vec::<f32>().unwrap();
    for t in 0..5 {
        assert_ne!(a[t * h..(t + 1) * h], o[t * h..(t + 1) * h], "position {t}");
    }
    // Padding the source does not change anything (the mask keeps it out).
    let padded = ids(&[&[1, 5, 9, 7, 2, 0, 0]]);
    let pmask = Tensor::from_data(
        TensorData::new(vec![1f32, 1., 1., 1., 1., 0., 0.], [1, 7]),
        &device(),
    );
    let (p, _) = m.decode(m.start(padded, pmask), ids(&[&[1, 12, 13, 14, 15]]));
    let p = p.into_data().try_to_vec::<f32>().unwrap();
    let diff = a
        .iter()
        .zip(&p)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(diff < 1e-5, "{diff}");
}

/// Decoding without a cache: every step runs the decoder over the whole prefix again.
struct Uncached<'a> {
    model: &'a Classifier,
    source: Tensor<2, Int>,
}

impl Decoder for Uncached<'_> {
    /// The tokens fed so far, per hypothesis.
    type State = Vec<Vec<i64>>;

    fn step(&self, mut state: Self::State, tokens: &[u32]) -> Result<(Vec<Vec<f32>>, Self::State)> {
        if state.is_empty() {
            state = vec![Vec::new(); tokens.len()];
        }
        let m = bert2bert(self.model);
        let mut out = Vec::new();
        for (prefix, &t) in state.iter_mut().zip(tokens) {
            prefix.push(t as i64);
            let n = self.source.dims()[1];
            let st = m.start(self.source.clone(), Tensor::ones([1, n], &device()));
            let (h, _) = m.decode(st, ids(&[&prefix[..]]));
            let [_, t, d] = h.dims();
            let last = h.slice([0..1, t - 1..t, 0..d]).reshape([1, d]);
            let logp = burn::tensor::activation::log_softmax(self.model.forward_head(last), 1);
            out.push(logp.into_data().try_to_vec::<f32>().unwrap());
        }
        Ok((out, state))
    }

    fn select(&self, state: Self::State, rows: &[usize]) -> Self::State {
        rows.iter().map(|&r| state[r].clone()).collect()
    }
}

#[test]
fn the_cache_gives_what_decoding_without_it_gives() {
    let model = tiny_model(21);
    let m = bert2bert(&model);
    // Hidden states: step by step through the cache = the whole sequence at once.
    let source = ids(&[&[1, 5, 9, 7, 2], &[1, 6, 6, 2, 0]]);
    let mask = Tensor::from_data(
        TensorData::new(vec![1f32, 1., 1., 1., 1., 1., 1., 1., 1., 0.], [2, 5]),
        &device(),
    );
    let target = [[1i64, 12, 13, 14], [1, 3, 3, 9]];
    let whole = m
        .decode(
            m.start(source.clone(), mask.clone()),
            ids(&[&target[0], &target[1]]),
        )
        .0;
    let mut state = m.start(source, mask);
    let mut steps = Vec::new();
    for (&a, &b) in target[0].iter().zip(&target[1]) {
        let (h, next) = m.decode(state, ids(&[&[a], &[b]]));
        steps.push(h);
        state = next;
    }
    let diff: f32 = (whole - Tensor::cat(steps, 1)).abs().max().into_scalar();
    assert!(diff < 1e-5, "{diff}");
    // Generated tokens: greedy and beam search, with and without the cache.
    let source = ids(&[&[1, 5, 9, 7, 11, 2]]);
    for beams in [1, 3] {
        let search = Search {
            beams,
            no_repeat_ngram: 2,
            ..Search::greedy(2, 8)
        };
        let cached = bert2bert::Generator {
            model: m,
            classifier: &model,
        };
        let start = m.start(source.clone(), Tensor::ones([1, 6], &device()));
        let with = generate::generate(&cached, start, &[1], &search).unwrap();
        let uncached = Uncached {
            model: &model,
            source: source.clone(),
        };
        let without = generate::generate(&uncached, Vec::new(), &[1], &search).unwrap();
        assert_eq!(with, without, "beams {beams}");
        assert!(!with.is_empty());
    }
}

/// A Hugging Face-style directory with a tiny BERT config and MiniLM's tokenizer: what
/// `pretrain --model bert2bert --config-from` reads (no weights).
fn tiny_config_dir(dir: &Path) -> PathBuf {
    let out = dir.join("tiny-bert");
    std::fs::create_dir_all(&out).unwrap();
    let config = serde_json::json!({
        "vocab_size": 30522, "hidden_size": 32, "num_hidden_layers": 2,
        "num_attention_heads": 4, "intermediate_size": 64, "max_position_embeddings": 128,
        "hidden_act": "gelu"
    });
    std::fs::write(out.join("config.json"), config.to_string()).unwrap();
    std::fs::copy(
        common::minilm().join("tokenizer.json"),
        out.join("tokenizer.json"),
    )
    .unwrap();
    out
}

const WORDS: &[&str] = &[
    "library", "tool", "game", "server", "client", "editor", "viewer", "plugin", "driver",
    "daemon", "parser", "player", "manager", "monitor", "compiler", "shell", "browser", "font",
];

/// `n` description-like pairs: a long text whose first words name the thing; the summary is
/// those words (a lead-style task a tiny model can learn). Every 5th pair is in the test split.
fn pairs_file(dir: &Path, n: usize) -> PathBuf {
    let path = dir.join("pairs.jsonl");
    let mut lines = Vec::new();
    for i in 0..n {
        let (a, b) = (WORDS[i % WORDS.len()], WORDS[(i * 7 + 3) % WORDS.len()]);
        let text = format!(
            "{a} {b} for the desktop. this package provides the {a} and a {b} with many \
             options, documentation and examples for users of the {a}."
        );
        let split = if i % 5 == 0 { "test" } else { "train" };
        lines.push(
            serde_json::json!({"text": text, "summary": format!("{a} {b}"), "split": split})
                .to_string(),
        );
    }
    std::fs::write(&path, lines.join("\n")).unwrap();
    path
}

const COLUMNS: [&str; 4] = ["--source-column", "text", "--target-column", "summary"];

#[test]
fn pretrain_summarize_and_eval_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tiny_config_dir(tmp.path());
    let data = pairs_file(tmp.path(), 400);
    let out = tmp.path().join("scratch");
    let mut args = vec![
        "pretrain",
        "--model",
        "bert2bert",
        "--config-from",
        s(&config),
        "--data",
        s(&data),
        "--out",
        s(&out),
        "--epochs",
        "10",
        "--batch-size",
        "16",
        "--lr",
        "1e-2",
        "--max-source-length",
        "20",
        "--max-target-length",
        "8",
    ];
    args.extend(COLUMNS);
    let printed = ok(&args);
    assert!(printed.contains("bert2bert"), "{printed}");
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("pretune.json")).unwrap()).unwrap();
    assert_eq!(meta["task"], "seq2seq");
    assert_eq!(meta["input"]["max_source_length"], 20);
    // Validation every epoch: its loss falls, and its ROUGE-L (as 1 − ROUGE-L) is logged and
    // picks the epoch kept.
    let log = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    let epochs: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .collect();
    let losses: Vec<f64> = epochs
        .iter()
        .filter_map(|v| v["val_loss"].as_f64())
        .collect();
    let errors: Vec<f64> = epochs
        .iter()
        .filter_map(|v| v["val_error_rate"].as_f64())
        .collect();
    assert_eq!((losses.len(), errors.len()), (10, 10), "{log}");
    assert!(losses[9] < losses[0], "{losses:?}");
    let best = errors.iter().cloned().fold(f64::INFINITY, f64::min);
    let kept = meta["best_epoch"].as_u64().unwrap() as usize;
    assert_eq!(errors[kept - 1], best, "{errors:?} kept {kept}");

    // The task is learnt: the test split's summaries come out (ROUGE-L well above chance).
    let mut eval = vec!["eval", "--model", s(&out), "--data", s(&data), "--json"];
    eval.extend(COLUMNS);
    let report: serde_json::Value = serde_json::from_str(&ok(&eval)).unwrap();
    assert_eq!(report["pairs"], 80);
    let rouge_l = report["rougeL"].as_f64().unwrap();
    assert!(rouge_l > 0.4, "{report}");
    assert!(report["rouge1"].as_f64().unwrap() >= rouge_l - 1e-9);
    assert!(report["truncated_sources"].as_u64().unwrap() > 0);

    let text = "editor viewer for the desktop. this package provides the editor and a viewer.";
    let summary = ok(&["summarize", "--model", s(&out), text]);
    assert_eq!(summary.lines().count(), 1, "{summary}");
    let json = ok(&[
        "summarize",
        "--model",
        s(&out),
        "--json",
        "--beam",
        "1",
        text,
        "font tool",
    ]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["input"], text);
    assert!(rows[0]["summary"].as_str().is_some());
    // A non-summarizer, and an empty text, are input errors.
    let err = input_error(&["summarize", "--model", s(&out), " "]);
    assert!(err.contains("empty"), "{err}");
    let err = input_error(&["predict", "--model", s(&out), text]);
    assert!(err.contains("pretune summarize"), "{err}");
}

#[test]
fn finetune_warm_starts_from_minilm() {
    let tmp = tempfile::tempdir().unwrap();
    let data = pairs_file(tmp.path(), 20);
    let out = tmp.path().join("warm");
    let minilm = common::minilm();
    let mut args = vec![
        "finetune",
        "--from",
        s(&minilm),
        "--data",
        s(&data),
        "--out",
        s(&out),
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--max-source-length",
        "16",
        "--max-target-length",
        "6",
        "--val-fraction",
        "0",
    ];
    args.extend(COLUMNS);
    let printed = ok(&args);
    assert!(
        printed.contains("101 tensors into the encoder, 101 into the decoder"),
        "{printed}"
    );
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("pretune.json")).unwrap()).unwrap();
    assert_eq!(meta["architecture"], "bert2bert");
    assert_eq!(meta["model_options"]["bert"]["hidden_size"], 384);
    let summary = ok(&[
        "summarize",
        "--model",
        s(&out),
        "--beam",
        "2",
        "a text editor for the terminal",
    ]);
    assert_eq!(summary.lines().count(), 1);
}

#[test]
fn bad_pair_files_are_input_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tiny_config_dir(tmp.path());
    let run = |name: &str, content: &str| {
        let path = tmp.path().join(name);
        std::fs::write(&path, content).unwrap();
        let out = tmp.path().join("out");
        let mut args = vec![
            "pretrain".to_string(),
            "--model".into(),
            "bert2bert".into(),
            "--config-from".into(),
            s(&config).into(),
            "--data".into(),
            s(&path).into(),
            "--out".into(),
            s(&out).into(),
            "--overwrite".into(),
        ];
        args.extend(COLUMNS.iter().map(|a| a.to_string()));
        input_error(&args)
    };
    let good = r#"{"text": "a long text", "summary": "short"}"#;
    let err = run(
        "missing.jsonl",
        &format!("{good}\n{{\"text\": \"only a text\"}}\n"),
    );
    assert!(
        err.contains("missing.jsonl:2") && err.contains("\"summary\""),
        "{err}"
    );
    let err = run(
        "empty.jsonl",
        &format!("{good}\n{{\"text\": \"x\", \"summary\": \"  \"}}\n"),
    );
    assert!(
        err.contains("empty.jsonl:2") && err.contains("target is empty"),
        "{err}"
    );
    let err = run("nojson.jsonl", &format!("{good}\nnot json\n"));
    assert!(err.contains("nojson.jsonl:2"), "{err}");
    let err = run("nocol.tsv", "text\tother\na\tb\n");
    assert!(err.contains("no column \"summary\""), "{err}");
    // --config-from belongs to bert2bert.
    let err = input_error(&[
        "pretrain",
        "--model",
        "bert2bert",
        "--data",
        "x.jsonl",
        "--out",
        "o",
    ]);
    assert!(err.contains("--config-from"), "{err}");
}

#[test]
fn the_quick_demo_writes_its_report() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("demo");
    let minilm = common::minilm();
    let printed = ok(&[
        "demo",
        "summarize",
        "--quick",
        "--from",
        s(&minilm),
        "--out",
        s(&out),
    ]);
    assert!(printed.contains("lead-10"), "{printed}");
    for file in [
        "report.md",
        "results.json",
        "rouge_l.png",
        "training_loss.png",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["test_pairs"], 12);
    assert_eq!(results["runs"].as_array().unwrap().len(), 2);
    // The lead-10 baseline, by our ROUGE, is in the range rouge-score gives on the whole test
    // split (31.2 / 14.7 / 27.8).
    let lead_l = results["lead10"]["rouge_l"].as_f64().unwrap();
    assert!((0.1..0.5).contains(&lead_l), "{lead_l}");
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("| — | lead-10 |") && report.contains("## Examples"));
}

/// A run stopped by Ctrl-C after its first saved state and resumed ends with the model the
/// uninterrupted run ends with (the optimizer's moments, updated in place, carried over), and a
/// pair file's own val rows are what it validates on.
#[test]
fn an_interrupted_bert2bert_run_resumes_bit_identical_and_validates_on_the_val_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tiny_config_dir(tmp.path());
    let data = pairs_file(tmp.path(), 120);
    // Every 6th training pair becomes a validation pair: 120 = 24 test, 16 val, 80 train.
    let text = std::fs::read_to_string(&data).unwrap();
    let lines: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| match i % 5 != 0 && i % 6 == 1 {
            true => l.replace("\"split\":\"train\"", "\"split\":\"val\""),
            false => l.to_string(),
        })
        .collect();
    let val = lines.iter().filter(|l| l.contains("\"val\"")).count();
    std::fs::write(&data, lines.join("\n")).unwrap();
    let args = |out: &Path| -> Vec<String> {
        let mut a: Vec<String> = [
            "pretrain",
            "--model",
            "bert2bert",
            "--config-from",
            s(&config),
            "--data",
            s(&data),
            "--epochs",
            "2",
            "--batch-size",
            "8",
            "--max-source-length",
            "20",
            "--max-target-length",
            "8",
            "--save-every",
            "1",
            "--out",
            s(out),
        ]
        .map(String::from)
        .to_vec();
        a.extend(COLUMNS.map(String::from));
        a
    };
    let whole = tmp.path().join("whole");
    let printed = ok(&args(&whole).iter().map(String::as_str).collect::<Vec<_>>());
    let train = 120 - 24 - val;
    assert!(
        printed.contains(&format!("{train} train / {val} val pairs")),
        "{printed}"
    );

    let parted = tmp.path().join("parted");
    common::interrupt_after_first_state(&args(&parted), &parted);
    let out = ok(&["resume", s(&parted)]);
    assert!(out.contains("resuming pretrain"), "{out}");
    assert!(
        std::fs::read(whole.join("model.safetensors")).unwrap()
            == std::fs::read(parted.join("model.safetensors")).unwrap(),
        "the resumed run ends where the whole one does"
    );
}
