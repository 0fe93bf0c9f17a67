//! Recurrent models and sequence pairs: GRU/LSTM layers against PyTorch, the real pretrained
//! g2p_en GRU imported and reproduced, fine-tuning it to a new output vocabulary, and bad pair
//! files.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::prelude::*;
use common::{device, input_error, ok, s};
use pretune::metrics::edit::levenshtein;
use pretune::models::rnn::{Cell, Rnn, RnnConfig, State};

/// The fixture's tensors by name (see bench/parity/rnn_fixtures.py).
fn fixture() -> HashMap<String, (Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read("tests/fixtures/rnn_parity.safetensors").unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(name, view)| {
            let data = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (name, (view.shape().to_vec(), data))
        })
        .collect()
}

fn tensor<const D: usize>(t: &(Vec<usize>, Vec<f32>)) -> Tensor<D> {
    Tensor::from_data(TensorData::new(t.1.clone(), t.0.clone()), &device())
}

/// The fixture's module `prefix` as our [`Rnn`], with PyTorch's weights.
fn rnn_from_fixture(f: &HashMap<String, (Vec<usize>, Vec<f32>)>, prefix: &str, cell: Cell) -> Rnn {
    let layers = if prefix.ends_with('2') { 2 } else { 1 };
    let mut rnn = RnnConfig {
        cell,
        input: 5,
        hidden: 7,
        layers,
        bidirectional: layers == 2,
    }
    .init(&device());
    let get = |name: &str| &f[&format!("{prefix}.{name}")];
    for (l, layer) in rnn.layers.iter_mut().enumerate() {
        let mut directions = vec![(&mut layer.forward, "")];
        if let Some(r) = layer.reverse.as_mut() {
            directions.push((r, "_reverse"));
        }
        for (d, suffix) in directions {
            d.weight_ih = Param::from_tensor(tensor(get(&format!("weight_ih_l{l}{suffix}"))));
            d.weight_hh = Param::from_tensor(tensor(get(&format!("weight_hh_l{l}{suffix}"))));
            d.bias_ih = Param::from_tensor(tensor(get(&format!("bias_ih_l{l}{suffix}"))));
            d.bias_hh = Param::from_tensor(tensor(get(&format!("bias_hh_l{l}{suffix}"))));
        }
    }
    rnn
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// Largest difference relative to the reference's largest magnitude.
fn relative_error(ours: &[f32], theirs: &[f32]) -> f32 {
    assert_eq!(ours.len(), theirs.len());
    let scale = theirs.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
    ours.iter()
        .zip(theirs)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max)
        / scale
}

#[test]
fn gru_and_lstm_layers_match_pytorch() {
    let f = fixture();
    for (prefix, cell) in [
        ("gru1", Cell::Gru),
        ("gru2", Cell::Gru),
        ("lstm1", Cell::Lstm),
        ("lstm2", Cell::Lstm),
    ] {
        let rnn = rnn_from_fixture(&f, prefix, cell);
        let get = |name: &str| &f[&format!("{prefix}.{name}")];
        let state = State {
            h: tensor(get("h0")),
            c: (cell == Cell::Lstm).then(|| tensor(get("c0"))),
        };
        let (out, last) = rnn.forward(tensor(get("input")), None, Some(state));
        let checks = [
            ("output", values(out), &get("output").1),
            ("h_n", values(last.h), &get("h_n").1),
        ];
        for (what, ours, theirs) in checks {
            let err = relative_error(&ours, theirs);
            assert!(err <= 1e-5, "{prefix} {what}: relative error {err:e}");
        }
        if cell == Cell::Lstm {
            let err = relative_error(&values(last.c.unwrap()), &get("c_n").1);
            assert!(err <= 1e-5, "{prefix} c_n: relative error {err:e}");
        }
    }
}

#[test]
fn padding_after_a_sequence_changes_nothing_it_computes() {
    // A sequence of 4 steps padded to 6 (with noise where the padding is) gives the same
    // outputs at its 4 steps and the same final state as the sequence alone, in both
    // directions: the reverse direction starts at the sequence's own end.
    let f = fixture();
    for (prefix, cell) in [("gru2", Cell::Gru), ("lstm2", Cell::Lstm)] {
        let rnn = rnn_from_fixture(&f, prefix, cell);
        let x: Tensor<3> = tensor(&f[&format!("{prefix}.input")]);
        let short = x.clone().narrow(1, 0, 4);
        let (out_short, state_short) = rnn.forward(short, None, None);
        let mask = Tensor::<2>::from_data(
            TensorData::new([[1.0f32, 1.0, 1.0, 1.0, 0.0, 0.0]; 3].concat(), [3, 6]),
            &device(),
        );
        let (out_padded, state_padded) = rnn.forward(x, Some(mask), None);
        let real = values(out_padded.clone().narrow(1, 0, 4));
        assert!(
            relative_error(&real, &values(out_short)) <= 1e-5,
            "{prefix} outputs"
        );
        let pad = values(out_padded.narrow(1, 4, 2));
        assert!(
            pad.iter().all(|v| *v == 0.0),
            "{prefix}: padding outputs are zero"
        );
        assert!(
            relative_error(&values(state_padded.h), &values(state_short.h)) <= 1e-5,
            "{prefix} final state"
        );
    }
}

/// The real g2p_en checkpoint that scripts/g2p.sh unpacks, or `$PRETUNE_G2P`.
fn g2p_weights() -> PathBuf {
    let dir = std::env::var_os("PRETUNE_G2P")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("models/g2p-en"));
    let npz = dir.join("checkpoint20.npz");
    assert!(
        npz.is_file(),
        "g2p_en not found at {}: run scripts/g2p.sh",
        dir.display()
    );
    npz
}

/// The real g2p_en GRU imported into a checkpoint under `dir`.
fn import_g2p(dir: &Path) -> PathBuf {
    let out = dir.join("g2p-us");
    ok(&format!(
        "import --arch g2p-gru --weights {} --out {}",
        s(&g2p_weights()),
        s(&out)
    ));
    out
}

/// Rows of a fixture TSV: word, g2p_en's output, CMUdict's pronunciation.
fn g2p_fixture(name: &str) -> Vec<(String, String, String)> {
    std::fs::read_to_string(Path::new("tests/fixtures").join(name))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let mut cols = l.split('\t').map(String::from);
            let mut next = || cols.next().unwrap_or_default();
            (next(), next(), next())
        })
        .collect()
}

/// `pretune predict --json` outputs for `words`, via a file of words.
fn predict(model: &Path, words: &[&str], dir: &Path, extra: &str) -> Vec<String> {
    let file = dir.join("words.txt");
    std::fs::write(&file, words.join("\n")).unwrap();
    let out = ok(&format!(
        "predict --model {} --file {} --json {extra}",
        s(model),
        s(&file)
    ));
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(rows.len(), words.len());
    rows.iter()
        .zip(words)
        .map(|(r, w)| {
            assert_eq!(r["input"], *w);
            r["output"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn imported_g2p_en_speaks_exactly_as_g2p_en_does() {
    let tmp = tempfile::tempdir().unwrap();
    let model = import_g2p(tmp.path());
    let sample = g2p_fixture("g2p_cmudict_sample.tsv");
    assert!(sample.len() >= 1000);
    let words: Vec<&str> = sample.iter().map(|r| r.0.as_str()).collect();
    let ours = predict(&model, &words, tmp.path(), "");
    let mismatches: Vec<String> = sample
        .iter()
        .zip(&ours)
        .filter(|((_, theirs, _), ours)| theirs != *ours)
        .map(|((w, theirs, _), ours)| format!("{w}: g2p_en {theirs:?}, pretune {ours:?}"))
        .collect();
    assert!(
        mismatches.is_empty(),
        "{} words differ:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );

    // Its phoneme error rate against CMUdict (stress stripped: Debian's copy has none) is the
    // numpy reference's: 639 errors in 7,358 phonemes.
    let (mut errors, mut phonemes) = (0, 0);
    for ((_, _, cmudict), ours) in sample.iter().zip(&ours) {
        let reference: Vec<&str> = cmudict.split_whitespace().collect();
        let ours: Vec<&str> = ours
            .split_whitespace()
            .map(|p| p.trim_end_matches(|c: char| c.is_ascii_digit()))
            .collect();
        errors += levenshtein(&reference, &ours);
        phonemes += reference.len();
    }
    assert_eq!((errors, phonemes), (639, 7358));

    // Words it never saw, and a capitalised one (read lower-cased, as g2p_en's `__call__` does
    // before predicting).
    let picked = g2p_fixture("g2p_handpicked.tsv");
    let words: Vec<&str> = picked.iter().map(|r| r.0.as_str()).collect();
    let ours = predict(&model, &words, tmp.path(), "");
    for ((word, theirs, _), ours) in picked.iter().zip(&ours) {
        let expected = if word == "Tomato" {
            "T OW0 M AA1 T OW0"
        } else {
            theirs
        };
        assert_eq!(ours, expected, "{word}");
    }

    // Beam search keeps the likeliest hypothesis: on these words it agrees with greedy search
    // almost everywhere, and its outputs are well-formed phonemes.
    let beam = predict(&model, &words, tmp.path(), "--beam 4");
    let same = beam.iter().zip(&ours).filter(|(a, b)| a == b).count();
    assert!(
        same * 10 >= words.len() * 8,
        "beam agrees on only {same} of {}",
        words.len()
    );
    assert!(
        beam.iter().all(|p| !p.is_empty() && !p.contains('<')),
        "{beam:?}"
    );
}

/// A pair file of British pronunciations (the repository's data/g2p-en-gb.tsv.gz): the first
/// `train` training words and `test` test words.
fn british(dir: &Path, train: usize, test: usize) -> PathBuf {
    use std::io::Read;
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open("data/g2p-en-gb.tsv.gz").unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let split = header.split('\t').position(|c| c == "split").unwrap();
    let rows: Vec<&str> = lines.collect();
    let pick = |which: &str, n: usize| {
        rows.iter()
            .filter(move |l| l.split('\t').nth(split) == Some(which))
            .take(n)
            .copied()
            .collect::<Vec<_>>()
    };
    let mut out = vec![header];
    out.extend(pick("train", train));
    out.extend(pick("test", test));
    let path = dir.join("gb.tsv");
    std::fs::write(&path, out.join("\n") + "\n").unwrap();
    path
}

fn token_error_rate(model: &Path, data: &Path) -> f64 {
    let out = ok(&format!(
        "eval --model {} --data {} --source-column word --target-column gb --json",
        s(model),
        s(data)
    ));
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    report["token_error_rate"].as_f64().unwrap()
}

#[test]
fn fine_tuning_g2p_en_to_british_beats_training_from_scratch() {
    // 300 words: the pretrained encoder and decoder keep what they know of English spelling;
    // only the output vocabulary (IPA instead of ARPAbet) is new.
    let tmp = tempfile::tempdir().unwrap();
    let us = import_g2p(tmp.path());
    let data = british(tmp.path(), 300, 300);
    let (tuned, scratch) = (tmp.path().join("gb-tuned"), tmp.path().join("gb-scratch"));
    let common = format!(
        "--data {} --source-column word --target-column gb --epochs 4 --seed 1",
        s(&data)
    );
    let out = ok(&format!(
        "finetune --from {} --out {} {common}",
        s(&us),
        s(&tuned)
    ));
    assert!(out.contains("sequences of a"), "{out}");
    ok(&format!(
        "pretrain --model g2p-gru --out {} {common}",
        s(&scratch)
    ));
    let (t, sc) = (
        token_error_rate(&tuned, &data),
        token_error_rate(&scratch, &data),
    );
    assert!(t < sc - 0.05, "fine-tuned {t:.3} vs scratch {sc:.3}");

    // The fine-tuned model writes British IPA, not ARPAbet.
    let words = predict(&tuned, &["tomato"], tmp.path(), "");
    assert!(
        !words[0].chars().any(|c| c.is_ascii_uppercase()),
        "{words:?}"
    );
}

#[test]
fn a_sequence_model_learns_a_task_from_scratch() {
    let tmp = tempfile::tempdir().unwrap();
    let data = common::reversed_words(&tmp.path().join("reverse.tsv"), 1200);
    let model = tmp.path().join("reverse");
    ok(&format!(
        "pretrain --model g2p-gru --attention --data {} --epochs 6 --out {}",
        s(&data),
        s(&model)
    ));
    let out = ok(&format!(
        "eval --model {} --data {} --json",
        s(&model),
        s(&data)
    ));
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rate = report["token_error_rate"].as_f64().unwrap();
    assert!(rate < 0.2, "token error rate {rate}: {out}");
    let words = predict(&model, &["abcd"], tmp.path(), "--beam 3");
    assert_eq!(words[0], "D C B A");
}

#[test]
fn bad_pair_files_are_named_and_explained() {
    let tmp = tempfile::tempdir().unwrap();
    let write = |name: &str, content: &[u8]| {
        let p = tmp.path().join(name);
        std::fs::write(&p, content).unwrap();
        p
    };
    let train = |p: &Path| {
        input_error(&format!(
            "pretrain --model g2p-gru --epochs 1 --data {} --out {}",
            s(p),
            s(&tmp.path().join("out"))
        ))
    };
    let no_column = write("a.tsv", b"word\tphones\ncat\tK AE T\n");
    let e = train(&no_column);
    assert!(e.contains("a.tsv") && e.contains("--source-column"), "{e}");

    let empty_target = write("b.tsv", b"source\ttarget\ncat\t\n");
    let e = train(&empty_target);
    assert!(
        e.contains("b.tsv") && e.contains("row 2") && e.contains("empty"),
        "{e}"
    );

    let long = format!("source\ttarget\n{}\tA\n", "x".repeat(10_000));
    let e = train(&write("c.tsv", long.as_bytes()));
    assert!(e.contains("c.tsv") && e.contains("longer than"), "{e}");

    let e = train(&write(
        "d.jsonl",
        b"{\"source\": \"cat\", \"target\": \"K AE T\"}\n{nope\n",
    ));
    assert!(e.contains("d.jsonl:2") && e.contains("JSON"), "{e}");

    let e = train(&write("e.tsv.gz", b"\x1f\x8b\x08\x00garbage"));
    assert!(e.contains("e.tsv.gz") && e.contains("gzip"), "{e}");

    let e = train(&write("f.dict", b"cat K AE T\ndog D QQ G\n"));
    assert!(e.contains("f.dict") && e.contains("QQ"), "{e}");

    // Every pair in the test split leaves nothing to train on.
    let e = train(&write(
        "g.tsv",
        b"source\ttarget\tsplit\ncat\tK AE T\ttest\n",
    ));
    assert!(e.contains("g.tsv") && e.contains("Train"), "{e}");
}

#[test]
fn bad_g2p_weights_are_named_and_explained() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("m");
    let import = |weights: &Path| {
        input_error(&format!(
            "import --arch g2p-gru --weights {} --vocab {} --out {}",
            s(weights),
            s(&g2p_weights().with_file_name("vocab.json")),
            s(&out)
        ))
    };
    let garbage = tmp.path().join("garbage.npz");
    std::fs::write(&garbage, b"PK\x03\x04 not really").unwrap();
    let e = import(&garbage);
    assert!(e.contains("garbage.npz"), "{e}");

    // A real archive without the decoder.
    let partial = tmp.path().join("partial.npz");
    let source = std::fs::File::open(g2p_weights()).unwrap();
    let mut zip = zip::ZipArchive::new(source).unwrap();
    let mut w = zip::ZipWriter::new(std::fs::File::create(&partial).unwrap());
    for i in 0..zip.len() {
        let file = zip.by_index(i).unwrap();
        if !file.name().unwrap().starts_with("dec_") {
            w.raw_copy_file(file).unwrap();
        }
    }
    w.finish().unwrap();
    let e = import(&partial);
    assert!(e.contains("partial.npz") && e.contains("dec_"), "{e}");
}
