//! Speech: the real Whisper tiny.en against faster-whisper (CTranslate2) on real recordings,
//! a tiny Hugging Face Whisper against transformers, audio files good and bad.

mod common;

use std::path::{Path, PathBuf};

use burn::prelude::*;
use common::{device, input_error, ok, s};
use pretune::data::{audio, mel};
use pretune::interop::whisper;
use pretune::models::{Audio, Input};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/whisper");
const RECORDINGS: &str = "/usr/share/pocketsphinx/test/data";

/// The unpacked Whisper tiny.en (scripts/whisper.sh), or `$PRETUNE_WHISPER`.
fn whisper_tiny() -> PathBuf {
    let dir = std::env::var_os("PRETUNE_WHISPER")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/whisper-tiny.en")
        });
    assert!(
        dir.join("model.bin").is_file(),
        "Whisper tiny.en not found at {}: run scripts/whisper.sh",
        dir.display()
    );
    dir
}

/// A recording of pocketsphinx-testdata (apt-get install pocketsphinx-testdata).
fn recording(file: &str) -> PathBuf {
    let path = Path::new(RECORDINGS).join(file);
    assert!(
        path.is_file(),
        "{} not found: apt-get install pocketsphinx-testdata",
        path.display()
    );
    path
}

/// A float tensor of a safetensors fixture, with its shape.
fn fixture(file: &str, name: &str) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(Path::new(FIXTURES).join(file)).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let t = st.tensor(name).unwrap();
    let values = match t.dtype() {
        safetensors::Dtype::F32 => t
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect(),
        safetensors::Dtype::I64 => t
            .data()
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()) as f32)
            .collect(),
        other => panic!("{name}: {other:?}"),
    };
    (t.shape().to_vec(), values)
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec::<f32>().unwrap()
}

fn max_abs(v: &[f32]) -> f32 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

#[derive(serde::Deserialize)]
struct Reference {
    recordings: Vec<Recording>,
}

#[derive(serde::Deserialize)]
struct Recording {
    file: String,
    tokens: Vec<u32>,
    text: String,
}

#[derive(serde::Deserialize)]
struct Line {
    file: String,
    text: String,
    tokens: Vec<u32>,
    audio_seconds: f64,
    seconds: f64,
}

fn reference() -> Reference {
    serde_json::from_str(
        &std::fs::read_to_string(Path::new(FIXTURES).join("transcripts.json")).unwrap(),
    )
    .unwrap()
}

/// The log-mel front end and the encoder against faster-whisper's, then the first decoding
/// step's scores after suppression against CTranslate2's.
#[test]
fn log_mel_encoder_and_first_step_match_ctranslate2() {
    let samples = audio::load(&recording("goforward.raw"), None).unwrap();
    let (mel, frames) = mel::log_mel(&samples);
    let (shape, expected) = fixture("mel_goforward.safetensors", "mel");
    assert_eq!((frames, shape.clone()), (278, vec![80, 298]));
    let ours: Vec<f32> = (0..80)
        .flat_map(|m| mel[m * 3000..m * 3000 + shape[1]].to_vec())
        .collect();
    let mel_error = max_diff(&ours, &expected);
    assert!(mel_error <= 1e-4, "log-mel differs by {mel_error}");

    let device = device();
    let w = whisper::load(&whisper_tiny(), &device).unwrap();
    let transcriber =
        pretune::transcribe::Transcriber::new(&w.model, &w.input, &w.tokenizer, 1).unwrap();
    let input =
        Tensor::<1>::from_data(TensorData::new(mel, [80 * 3000]), &device).reshape([1, 80, 3000]);
    let encoded = transcriber.encode(input);
    assert_eq!(encoded.dims(), [1, 1500, 384]);
    let (shape, expected) = fixture("encoder_goforward.safetensors", "encoder_output");
    let ours = values(encoded.clone().narrow(1, 0, shape[0]));
    let relative = max_diff(&ours, &expected) / max_abs(&expected);
    assert!(
        relative <= 1e-3,
        "encoder output differs by {relative} of its largest value"
    );

    // The first step's logits (the prompt fed, suppression applied): the scores of the model
    // as a classifier over positions, through the training path.
    let (_, expected) = fixture("encoder_goforward.safetensors", "first_step_logits");
    let tokens =
        Tensor::<2, Int>::from_data(TensorData::new(vec![50257i64, 50362], [1, 2]), &device);
    let logits = w
        .model
        .forward(Input::Speech {
            audio: Audio::Encoded(encoded),
            tokens,
            predict_at: Tensor::from_data(TensorData::new(vec![1i64], [1]), &device),
        })
        .unwrap();
    let mut ours = values(logits);
    for &t in w.input.suppress.iter().chain(&w.input.suppress_first) {
        ours[t as usize] = f32::NEG_INFINITY;
    }
    let kept: Vec<usize> = (0..expected.len())
        .filter(|&i| expected[i] > -1e30)
        .collect();
    assert!(kept.iter().all(|&i| ours[i].is_finite()));
    assert_eq!(
        kept.len(),
        51_864 - 92,
        "the suppressed tokens are CTranslate2's"
    );
    let (a, b): (Vec<f32>, Vec<f32>) = kept.iter().map(|&i| (ours[i], expected[i])).unzip();
    let error = max_diff(&a, &b);
    eprintln!(
        "parity: log-mel {mel_error:.1e}, encoder {relative:.1e} of max, first-step logits {error:.1e} (max |logit| {})",
        max_abs(&b)
    );
    assert!(
        error <= 1e-3 * max_abs(&b),
        "first-step logits differ by {error}"
    );
}

/// A random tiny `WhisperForConditionalGeneration` (transformers 5.24): its logits for a
/// mel input and decoder tokens, name for name from its safetensors.
#[test]
fn hugging_face_whisper_gives_transformers_logits() {
    let device = device();
    let (config, model) =
        whisper::load_hf_weights(&Path::new(FIXTURES).join("hf_tiny"), &device).unwrap();
    assert_eq!(
        (config.d_model, config.vocab_size, config.frames()),
        (64, 100, 300)
    );
    let (_, mel) = fixture("hf_tiny_io.safetensors", "input_features");
    let (_, ids) = fixture("hf_tiny_io.safetensors", "decoder_input_ids");
    let (shape, expected) = fixture("hf_tiny_io.safetensors", "logits");
    let n = ids.len();
    let logits = model
        .forward(Input::Speech {
            audio: Audio::Mel(
                Tensor::<1>::from_data(TensorData::new(mel, [80 * 300]), &device)
                    .reshape([1, 80, 300]),
            ),
            tokens: Tensor::from_data(
                TensorData::new(ids.iter().map(|&i| i as i64).collect(), [1, n]),
                &device,
            ),
            predict_at: Tensor::from_data(TensorData::new((0..n as i64).collect(), [n]), &device),
        })
        .unwrap();
    assert_eq!(shape, [1, n, 100]);
    let error = max_diff(&values(logits), &expected);
    eprintln!(
        "parity: hf_tiny logits {error:.1e} (max |logit| {})",
        max_abs(&expected)
    );
    assert!(error <= 1e-4, "logits differ by {error}");
}

/// Greedy decoding writes faster-whisper's token ids exactly, on a representative subset of
/// the 14 real recordings (bench/whisper.sh runs all of them): the five librivox sentences,
/// the five spoken card names and goforward.raw.
#[test]
fn transcribes_real_recordings_exactly_as_faster_whisper() {
    let reference = reference();
    let chosen: Vec<&Recording> = reference
        .recordings
        .iter()
        .filter(|r| {
            r.file.starts_with("librivox/")
                || r.file.starts_with("cards/")
                || r.file == "goforward.raw"
        })
        .collect();
    assert_eq!(chosen.len(), 11);
    let model = whisper_tiny();
    let mut args = vec![
        "transcribe".to_string(),
        "--model".into(),
        s(&model).into(),
        "--json".into(),
    ];
    args.extend(chosen.iter().map(|r| s(&recording(&r.file)).to_string()));
    let started = std::time::Instant::now();
    let stdout = ok(&args);
    let lines: Vec<Line> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), chosen.len());
    for (want, got) in chosen.iter().zip(&lines) {
        assert!(got.file.ends_with(&want.file));
        assert_eq!(
            got.tokens, want.tokens,
            "{}: {:?} vs {:?}",
            want.file, got.text, want.text
        );
        assert_eq!(got.text, want.text.trim());
    }
    let audio: f64 = lines.iter().map(|l| l.audio_seconds).sum();
    let compute: f64 = lines.iter().map(|l| l.seconds).sum();
    eprintln!(
        "{} recordings, {audio:.1} s of audio in {compute:.1} s (real-time factor {:.2}); the command took {:.1} s",
        lines.len(),
        compute / audio,
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn one_file_prints_its_text_alone() {
    let out = ok(&[
        "transcribe",
        "--model",
        s(&whisper_tiny()),
        s(&recording("goforward.raw")),
    ]);
    assert_eq!(out, "Go forward 10 meters.\n");
}

#[test]
fn bad_audio_and_models_are_input_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let model = whisper_tiny();
    let empty = d.join("empty.wav");
    std::fs::write(&empty, b"").unwrap();
    let text = d.join("notes.wav");
    std::fs::write(&text, b"hello, this is not audio").unwrap();
    let good = std::fs::read(recording("cards/001.wav")).unwrap();
    let truncated = d.join("truncated.wav");
    std::fs::write(&truncated, &good[..good.len() / 2]).unwrap();
    let odd = d.join("odd.raw");
    std::fs::write(&odd, [1u8, 2, 3]).unwrap();
    for (file, says) in [
        (&empty, "is empty"),
        (&text, "is not a WAV file"),
        (&truncated, "is truncated"),
        (&odd, "odd number of bytes"),
        (&d.join("missing.wav"), "missing.wav"),
    ] {
        let err = input_error(&["transcribe", "--model", s(&model), s(file)]);
        assert!(err.contains(s(file)) && err.contains(says), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    let err = input_error(&[
        "transcribe",
        "--model",
        s(d),
        s(&recording("goforward.raw")),
    ]);
    assert!(err.contains("not a speech model"), "{err}");
    let err = input_error(&[
        "transcribe",
        "--model",
        s(&model),
        "--sample-rate",
        "5",
        "x.raw",
    ]);
    assert!(err.contains("--sample-rate"), "{err}");
}

/// Spoken card names from espeak-ng (`apt-get install espeak-ng`), each with its transcript:
/// `train` files in `dir/train`, `test` in `dir/test`, voices alternating.
fn spoken_cards(dir: &Path, train: usize, test: usize) -> PathBuf {
    let ranks = [
        "ace", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    ];
    let suits = ["clubs", "diamonds", "hearts", "spades"];
    let voices = ["en-us", "en-gb", "en-gb-scotland", "en-029"];
    for (split, n, offset) in [("train", train, 0), ("test", test, 17)] {
        let folder = dir.join(split);
        std::fs::create_dir_all(&folder).unwrap();
        for i in 0..n {
            let k = i + offset;
            let text = format!("{} of {}", ranks[k * 7 % 10], suits[k % 4]);
            let wav = folder.join(format!("{split}{i}.wav"));
            let status = std::process::Command::new("espeak-ng")
                .args(["-v", voices[k % 4], "-w", s(&wav), &text])
                .status()
                .expect("espeak-ng runs (apt-get install espeak-ng)");
            assert!(status.success());
            std::fs::write(wav.with_extension("txt"), format!("{text}\n")).unwrap();
        }
    }
    dir.to_path_buf()
}

fn metrics(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn word_error_rate(model: &Path, data: &Path) -> f64 {
    let out = ok(&[
        "eval",
        "--model",
        s(model),
        "--data",
        s(data),
        "--split",
        "test",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["word_error_rate"].as_f64().unwrap()
}

/// Decoder-only fine-tuning on synthetic voices: validated by word error rate each epoch,
/// better on held-out files afterwards, and stopped by Ctrl-C and resumed it ends with the
/// same bytes.
#[test]
fn decoder_only_finetuning_lowers_word_errors_and_resumes_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let data = spoken_cards(&tmp.path().join("cards"), 12, 6);
    let model = whisper_tiny();
    let args = |out: &Path| -> Vec<String> {
        [
            "finetune",
            "--from",
            s(&model),
            "--data",
            s(&data),
            "--strategy",
            "decoder-only",
            "--epochs",
            "2",
            "--batch-size",
            "4",
            "--lr",
            "1e-4",
            "--val-fraction",
            "0.25",
            "--out",
            s(out),
        ]
        .map(String::from)
        .to_vec()
    };
    let whole = tmp.path().join("whole");
    let started = std::time::Instant::now();
    let out = ok(&args(&whole));
    eprintln!(
        "decoder-only fine-tune: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(out.contains("encoding 12 recordings once"), "{out}");
    let epochs = metrics(&whole);
    assert_eq!(epochs.len(), 2);
    assert!(
        epochs.iter().all(|e| e["val_error_rate"].is_number()),
        "{epochs:?}"
    );
    let before = word_error_rate(&model, &data);
    let after = word_error_rate(&whole, &data);
    eprintln!("held-out word error rate: pretrained {before:.3}, fine-tuned {after:.3}");
    assert!(after < before, "{after} vs {before}");
    let transcript = ok(&[
        "transcribe",
        "--model",
        s(&whole),
        s(&data.join("test/test0.wav")),
    ]);
    assert!(!transcript.trim().is_empty());

    // Ctrl-C as soon as the first resume state is saved (after epoch 1), then resume.
    let parted = tmp.path().join("parted");
    common::interrupt_after_first_state(&args(&parted), &parted);
    let out = ok(&["resume", s(&parted)]);
    assert!(out.contains("resuming finetune"), "{out}");
    assert!(
        std::fs::read(whole.join("model.safetensors")).unwrap()
            == std::fs::read(parted.join("model.safetensors")).unwrap(),
        "the resumed run ends with the uninterrupted one's weights"
    );
    // The same epochs, apart from their timings.
    let untimed = |dir: &Path| -> Vec<serde_json::Value> {
        let mut epochs = metrics(dir);
        for e in &mut epochs {
            e["seconds"] = 0.into();
            e["examples_per_second"] = 0.into();
        }
        epochs
    };
    assert_eq!(untimed(&whole), untimed(&parted));
}

/// LoRA on a speech model: only the attention query and value weights change (the adapters
/// merged into them); the token table stays the pretrained one.
#[test]
fn lora_changes_only_attention_queries_and_values() {
    let tmp = tempfile::tempdir().unwrap();
    let data = spoken_cards(&tmp.path().join("cards"), 4, 1);
    let model = whisper_tiny();
    let out = tmp.path().join("lora");
    ok(&[
        "finetune",
        "--from",
        s(&model),
        "--data",
        s(&data),
        "--strategy",
        "lora",
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--val-fraction",
        "0",
        "--out",
        s(&out),
    ]);
    let pretrained = whisper::open(&model, &device()).unwrap().weights;
    let tuned = std::fs::read(out.join("model.safetensors")).unwrap();
    let (a, b) = (
        safetensors::SafeTensors::deserialize(&pretrained).unwrap(),
        safetensors::SafeTensors::deserialize(&tuned).unwrap(),
    );
    let mut changed: Vec<String> = Vec::new();
    for (name, t) in a.tensors() {
        if b.tensor(&name).unwrap().data() != t.data() {
            changed.push(name);
        }
    }
    changed.sort();
    assert!(!changed.is_empty());
    assert!(
        changed
            .iter()
            .all(|n| n.ends_with("q_proj.weight") || n.ends_with("v_proj.weight")),
        "{changed:?}"
    );
    assert_eq!(
        changed.len(),
        2 * (4 + 2 * 4),
        "self- and cross-attention, encoder and decoder"
    );
}

/// `pretune demo speech --quick`: the report a user gets, and the story it tells.
#[test]
fn quick_speech_demo_reports_pretraining_paying_off() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("demo");
    let started = std::time::Instant::now();
    let stdout = ok(&[
        "demo",
        "speech",
        "--quick",
        "--model",
        s(&whisper_tiny()),
        "--out",
        s(&out),
    ]);
    eprintln!(
        "demo speech --quick: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(stdout.contains("| fine-tuned |"), "{stdout}");
    for file in ["results.json", "report.md", "training.png"] {
        assert!(out.join(file).is_file(), "{file}");
    }
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let wer = |method: &str, set: &str| {
        let run = results["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["method"] == method)
            .unwrap();
        run[set]["word_error_rate"].as_f64().unwrap()
    };
    // The real recordings: the pretrained model's 14.3% (tests/fixtures/whisper/wer).
    assert!((wer("pretrained", "real") - 3.0 / 21.0).abs() < 1e-9);
    assert!(wer("fine-tuned", "synthetic") < wer("pretrained", "synthetic"));
    assert!(wer("fine-tuned", "synthetic") < wer("scratch", "synthetic"));
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        report.contains("for Queen of Clothes."),
        "the pretrained model's slip is shown"
    );
}
