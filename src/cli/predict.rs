//! `pretune predict`: classify image files, or turn a tensor of inputs into raw logits.

use std::path::{Path, PathBuf};

use anyhow::Result;
use burn::module::Module;
use burn::prelude::*;
use clap::Args;
use serde::Serialize;

use pretune::checkpoint::Checkpoint;
use pretune::data::examples::TextExamples;
use pretune::data::texts::TextSet;
use pretune::data::{ImageSet, ModelInput, PairInput, folder};
use pretune::fs::write_atomic;
use pretune::generate::Search;
use pretune::interop::torch;
use pretune::models::{Classifier, Input, Task};
use pretune::{bail_input, infer, input_error};

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// Checkpoint directory to predict with.
    #[arg(long)]
    pub model: PathBuf,
    /// PNG or JPEG files, resized and centre-cropped to the model's input and converted to its
    /// channels (grayscale or RGB); for a text model, the texts themselves.
    #[arg(
        required_unless_present_any = ["tensor", "file"],
        conflicts_with = "tensor",
        value_name = "IMAGE|TEXT"
    )]
    pub inputs: Vec<PathBuf>,
    /// Text models: also classify every non-blank line of this file.
    #[arg(long, value_name = "FILE", conflicts_with = "tensor")]
    pub file: Option<PathBuf>,
    /// How many of the most likely classes to show per input.
    #[arg(long, default_value_t = 3)]
    pub top: usize,
    /// Print JSON (one object per input) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Instead of images: a safetensors file with a float tensor `input` (N×C×H×W, already
    /// normalised), e.g. to compare outputs with PyTorch. Needs --raw-logits.
    #[arg(long, requires = "raw_logits", value_name = "IN.safetensors")]
    pub tensor: Option<PathBuf>,
    /// Where to write the logits (tensor `logits`, N×classes, F32) for --tensor.
    #[arg(long, requires = "tensor", value_name = "OUT.safetensors")]
    pub raw_logits: Option<PathBuf>,
    /// Sequence-to-sequence models: hypotheses kept by beam search (1: greedy, as g2p_en).
    #[arg(long, default_value_t = 1, value_parser = super::args::count)]
    pub beam: usize,
}

#[derive(Serialize)]
struct Prediction {
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    top: Vec<(String, f32)>,
}

pub fn run(args: PredictArgs, device: &Device) -> Result<()> {
    let ckpt = Checkpoint::open(&args.model)?;
    let model = ckpt.load_model(device)?;
    if let (Some(input), Some(out)) = (&args.tensor, &args.raw_logits) {
        return raw_logits(&ckpt, model, input, out);
    }
    if ckpt.meta.task == Task::Transcribe {
        bail_input!(
            "{}: a speech model writes transcripts: use pretune transcribe --model {0}",
            args.model.display()
        );
    }
    if ckpt.meta.task.is_language_model() {
        bail_input!(
            "{}: a language model predicts tokens, not classes; fine-tune it for \
             classification first (pretune finetune --from {0})",
            args.model.display()
        );
    }
    let class_names = &ckpt.meta.class_names;
    let (names, probs, is_text) = match &ckpt.meta.input {
        ModelInput::Pairs(input) => return sequences(&model, input, &args),
        ModelInput::Speech(_) => bail_input!("{}: a speech model", args.model.display()),
        ModelInput::TextPairs(_) => bail_input!(
            "{}: a summarizer writes texts: use pretune summarize --model {0}",
            args.model.display()
        ),
        ModelInput::Image(input) => {
            if args.file.is_some() {
                bail_input!("--file: an image model classifies image files, given as arguments");
            }
            let mut set = ImageSet {
                channels: input.channels,
                height: input.height,
                width: input.width,
                pixels: Vec::new(),
                labels: vec![0; args.inputs.len()],
                class_names: class_names.clone(),
            };
            for path in &args.inputs {
                set.pixels
                    .extend_from_slice(&folder::decode(path, input.shape())?);
            }
            let probs = infer::probabilities(&model, &set.normalized(&input.normalization))?;
            let names = args.inputs.iter().map(|p| p.display().to_string());
            (names.collect::<Vec<_>>(), probs, false)
        }
        ModelInput::Text(_) => {
            let mut texts: Vec<String> = args
                .inputs
                .iter()
                .map(|t| t.to_string_lossy().into_owned())
                .collect();
            if let Some(f) = &args.file {
                let content = std::fs::read_to_string(f)
                    .map_err(|e| input_error!("{}: cannot read as UTF-8 text: {e}", f.display()))?;
                texts.extend(
                    content
                        .lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(String::from),
                );
            }
            let set = TextSet {
                labels: vec![0; texts.len()],
                texts,
                class_names: class_names.clone(),
            };
            let tokenizer = ckpt.tokenizer.as_ref().expect("text checkpoints have one");
            let examples = TextExamples {
                set: &set,
                tokenizer,
                task: Task::Classify,
            };
            let probs = infer::probabilities(&model, &examples)?;
            (set.texts, probs, true)
        }
    };
    let k = args.top.clamp(1, class_names.len());
    let predictions: Vec<Prediction> = names
        .into_iter()
        .zip(&probs)
        .map(|(name, p)| {
            let mut ranked: Vec<usize> = (0..p.len()).collect();
            ranked.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
            Prediction {
                file: (!is_text).then(|| name.clone()),
                text: is_text.then_some(name),
                top: ranked[..k]
                    .iter()
                    .map(|&c| (class_names[c].clone(), p[c]))
                    .collect(),
            }
        })
        .collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&predictions)?);
        return Ok(());
    }
    for pred in &predictions {
        let shown = match (&pred.file, &pred.text) {
            (Some(file), _) => file.clone(),
            // A text's first line, shortened.
            (_, Some(text)) => text.lines().next().unwrap_or("").chars().take(72).collect(),
            _ => String::new(),
        };
        println!("{shown}");
        for (name, prob) in &pred.top {
            println!("  {name:<16} {prob:.4}");
        }
    }
    Ok(())
}

/// `--tensor IN --raw-logits OUT`: the model's logits for already-normalised inputs.
fn raw_logits(ckpt: &Checkpoint, model: Classifier, input: &Path, out: &Path) -> Result<()> {
    let mut tensors = torch::read_tensors(input)?;
    let Some(data) = tensors.remove("input") else {
        bail_input!(
            "{}: no float tensor named `input` (found: {})",
            input.display(),
            tensors.keys().cloned().collect::<Vec<_>>().join(", ")
        );
    };
    let shape = data.shape().to_vec();
    let channels = ckpt.meta.input.image()?.channels;
    if shape.len() != 4 || shape[1] != channels || shape[0] == 0 {
        bail_input!(
            "{}: `input` has shape {shape:?}; expected N×{channels}×H×W",
            input.display()
        );
    }
    let model = model.valid();
    let device = model.device();
    let x = Tensor::<4>::from_data(data, &device);
    let logits = catch_shape_panic(|| model.forward(Input::Images(x))).map_err(|e| {
        input_error!(
            "{}: the model cannot take {}×{} images: {e}",
            input.display(),
            shape[2],
            shape[3]
        )
    })??;
    let dims = logits.dims().to_vec();
    let values: Vec<f32> = logits
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, dims, &bytes)?;
    write_atomic(out, &safetensors::serialize([("logits", view)], None)?)?;
    println!("wrote logits of {} inputs to {}", shape[0], out.display());
    Ok(())
}

/// Run `f`, turning a panic (Burn's shape assertions, e.g. an image too small for the network)
/// into an error message.
fn catch_shape_panic<T>(f: impl FnOnce() -> T) -> std::result::Result<T, String> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    result.map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "shape error".into())
    })
}

/// A sequence-to-sequence model's output for each input: `tomato  T AH0 M EY1 T OW2`.
fn sequences(model: &Classifier, input: &PairInput, args: &PredictArgs) -> Result<()> {
    let mut sources: Vec<String> = args
        .inputs
        .iter()
        .map(|t| t.to_string_lossy().into_owned())
        .collect();
    if let Some(f) = &args.file {
        let content = std::fs::read_to_string(f)
            .map_err(|e| input_error!("{}: cannot read as UTF-8 text: {e}", f.display()))?;
        sources.extend(
            content
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from),
        );
    }
    let search = Search {
        beams: args.beam,
        ..Search::greedy(0, pretune::data::pairs::MAX_GENERATED)
    };
    let outputs = infer::transduce(model, input, &sources, &search)?;
    if args.json {
        let rows: Vec<serde_json::Value> = sources
            .iter()
            .zip(&outputs)
            .map(|(s, o)| serde_json::json!({"input": s, "output": o}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    let width = sources.iter().map(|s| s.chars().count()).max().unwrap_or(0);
    for (source, output) in sources.iter().zip(&outputs) {
        println!("{source:<width$}  {output}");
    }
    Ok(())
}
