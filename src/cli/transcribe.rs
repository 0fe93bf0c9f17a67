//! `pretune transcribe`: speech to text with a Whisper model.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use burn::prelude::Device;
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use pretune::checkpoint::{Checkpoint, META_FILE};
use pretune::data::{ModelInput, SpeechInput, TextTokenizer, audio, mel};
use pretune::interop::whisper;
use pretune::models::Classifier;
use pretune::transcribe::Transcriber;
use pretune::{bail_input, input_error};

#[derive(Debug, Args)]
pub struct TranscribeArgs {
    /// The speech model: a CTranslate2 Whisper directory (model.bin, config.json,
    /// tokenizer.json; e.g. models/whisper-tiny.en from scripts/whisper.sh), a Hugging Face
    /// Whisper directory, or a pretune checkpoint of one (after `finetune`).
    #[arg(long)]
    pub model: PathBuf,
    /// Audio files: WAV (8/16/24/32-bit integer or float PCM, mono or stereo, any rate;
    /// resampled to 16 kHz) or headerless 16-bit little-endian mono .raw/.pcm.
    #[arg(required = true, value_name = "AUDIO")]
    pub files: Vec<PathBuf>,
    /// Sample rate of .raw/.pcm files, in Hz (WAV files carry theirs).
    #[arg(long, default_value_t = 16_000, value_parser = clap::value_parser!(u32).range(1_000..=384_000))]
    pub sample_rate: u32,
    /// Hypotheses kept by beam search; 1 is greedy search (faster-whisper's beam_size=1).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub beams: u16,
    /// Print one JSON object per file: file, text, tokens, audio and compute seconds.
    #[arg(long)]
    pub json: bool,
}

/// One transcribed file, as `--json` prints it.
#[derive(Serialize)]
struct Line<'a> {
    file: String,
    text: &'a str,
    tokens: &'a [u32],
    /// Seconds of audio.
    audio_seconds: f64,
    /// Seconds spent transcribing it (mel, encoder, decoder).
    seconds: f64,
    /// `seconds / audio_seconds`: below 1 is faster than real time.
    real_time_factor: f64,
}

/// A speech model from a directory: a pretune checkpoint, or a Whisper directory of another
/// tool.
pub fn load_speech_model(
    dir: &Path,
    device: &Device,
) -> Result<(Classifier, SpeechInput, TextTokenizer)> {
    if dir.join(META_FILE).is_file() {
        let ckpt = Checkpoint::open(dir)?;
        let model = ckpt.load_model(device)?;
        return match (ckpt.meta.input, ckpt.tokenizer) {
            (ModelInput::Speech(input), Some(tokenizer)) => Ok((model, input, tokenizer)),
            _ => Err(input_error!(
                "{}: a {} model, not a speech model: it cannot transcribe",
                dir.display(),
                ckpt.arch.name
            )),
        };
    }
    if whisper::is_whisper_dir(dir) {
        let w = whisper::load(dir, device)?;
        return Ok((w.model, w.input, w.tokenizer));
    }
    bail_input!(
        "{}: not a speech model (expected a CTranslate2 Whisper directory with model.bin, a \
         Hugging Face Whisper directory, or a pretune checkpoint of one)",
        dir.display()
    )
}

pub fn run(args: TranscribeArgs, device: &Device) -> Result<()> {
    // Every file is read before the model: a bad one is reported at once.
    let mut recordings = Vec::with_capacity(args.files.len());
    for path in &args.files {
        recordings.push(audio::load(path, Some(args.sample_rate))?);
    }
    let (model, input, tokenizer) = load_speech_model(&args.model, device)?;
    let transcriber = Transcriber::new(&model, &input, &tokenizer, args.beams.into())?;
    let bar =
        ProgressBar::with_draw_target(Some(args.files.len() as u64), ProgressDrawTarget::hidden());
    if args.files.len() > 1 {
        // On a terminal only: indicatif draws nothing into a pipe or a file.
        bar.set_draw_target(ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("[{bar:30.cyan/blue}] {pos}/{len} files ({eta})")
                .expect("valid template")
                .progress_chars("=> "),
        );
    }
    let mut out = std::io::stdout().lock();
    for (path, samples) in args.files.iter().zip(&recordings) {
        let started = Instant::now();
        let transcript = transcriber.transcribe(samples)?;
        let seconds = started.elapsed().as_secs_f64();
        let text = transcript.text.trim();
        let shown = path.display().to_string();
        bar.suspend(|| -> Result<()> {
            if args.json {
                let audio_seconds = samples.len() as f64 / mel::SAMPLE_RATE as f64;
                let line = Line {
                    file: shown,
                    text,
                    tokens: &transcript.tokens,
                    audio_seconds,
                    seconds,
                    real_time_factor: seconds / audio_seconds.max(1e-9),
                };
                writeln!(out, "{}", serde_json::to_string(&line)?)?;
            } else if args.files.len() > 1 {
                writeln!(out, "{shown}\t{text}")?;
            } else {
                writeln!(out, "{text}")?;
            }
            Ok(())
        })?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(())
}
