//! Where Whisper's transcription time goes in pretune: the log-mel front end, the encoder
//! (one 30 s window) and the decoder (per generated token, key/value cache), on one recording.
//! bench/whisper.sh runs it beside faster-whisper and transformers.
//!
//!   cargo bench --bench whisper -- --model models/whisper-tiny.en --audio FILE --steps 3
//!
//! Prints one JSON line: {"mel_s", "encoder_s", "decode_s", "tokens", "per_token_s"}.

#[path = "../src/alloc.rs"]
mod alloc;

use std::path::Path;
use std::time::Instant;

use burn::prelude::*;
use pretune::data::{audio, mel};
use pretune::interop::whisper;
use pretune::transcribe::Transcriber;

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.into())
}

fn main() {
    alloc::keep_freed_memory();
    let threads: usize = arg("--threads", "2").parse().unwrap();
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .unwrap();
    let steps: usize = arg("--steps", "3").parse().unwrap();
    let model = arg("--model", "models/whisper-tiny.en");
    let file = arg("--audio", "/usr/share/pocketsphinx/test/data/goforward.raw");
    let device = pretune::DeviceSpec::Cpu.device().unwrap();
    let w = whisper::load(Path::new(&model), &device).unwrap();
    let t = Transcriber::new(&w.model, &w.input, &w.tokenizer, 1).unwrap();
    let samples = audio::load(Path::new(&file), None).unwrap();
    let time = |f: &mut dyn FnMut()| {
        f(); // warm-up
        let started = Instant::now();
        for _ in 0..steps {
            f();
        }
        started.elapsed().as_secs_f64() / steps as f64
    };
    let mel_s = time(&mut || {
        std::hint::black_box(mel::log_mel(&samples));
    });
    let window = || {
        let (values, _) = mel::log_mel(&samples);
        Tensor::<1>::from_data(TensorData::new(values, [80 * 3000]), &device).reshape([1, 80, 3000])
    };
    let encoder_s = time(&mut || {
        let _ = t.encode(window()).into_data();
    });
    let encoded = t.encode(window());
    let mut tokens = 0;
    let decode_s = time(&mut || {
        tokens = t.decode(encoded.clone()).unwrap().len();
    });
    println!(
        "{{\"threads\": {threads}, \"mel_s\": {mel_s:.4}, \"encoder_s\": {encoder_s:.4}, \"decode_s\": {decode_s:.4}, \"tokens\": {tokens}, \"per_token_s\": {:.4}}}",
        decode_s / (tokens + 1) as f64
    );
}
