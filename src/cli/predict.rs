//! `pretune predict`: classify image files.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use image::imageops::FilterType;
use serde::Serialize;

use crate::checkpoint::Checkpoint;
use crate::data::ImageSet;
use crate::{infer, input_error, training_device};

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// Checkpoint directory to predict with.
    #[arg(long)]
    pub model: PathBuf,
    /// PNG or JPEG files; converted to grayscale and resized to the model's input.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// How many of the most likely classes to show per image.
    #[arg(long, default_value_t = 3)]
    pub top: usize,
    /// Print JSON (one object per image) instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Prediction {
    file: String,
    top: Vec<(String, f32)>,
}

pub fn run(args: PredictArgs) -> Result<()> {
    let ckpt = Checkpoint::open(&args.model)?;
    let model = ckpt.load_model(&training_device())?;
    let input = &ckpt.meta.input;
    let mut set = ImageSet {
        height: input.height,
        width: input.width,
        pixels: Vec::with_capacity(args.images.len() * input.height * input.width),
        labels: vec![0; args.images.len()],
        class_names: ckpt.meta.class_names.clone(),
    };
    for path in &args.images {
        let img = image::open(path).map_err(|e| {
            input_error!(
                "{}: cannot read the image: {e} (expected a PNG or JPEG file)",
                path.display()
            )
        })?;
        let gray = img.to_luma8();
        let gray = image::imageops::resize(
            &gray,
            input.width as u32,
            input.height as u32,
            FilterType::Triangle,
        );
        set.pixels.extend_from_slice(gray.as_raw());
    }
    let probs = infer::probabilities(&model, &set, &input.normalization);
    let k = args.top.clamp(1, set.class_names.len());
    let predictions: Vec<Prediction> = args
        .images
        .iter()
        .zip(&probs)
        .map(|(path, p)| {
            let mut ranked: Vec<usize> = (0..p.len()).collect();
            ranked.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
            Prediction {
                file: path.display().to_string(),
                top: ranked[..k]
                    .iter()
                    .map(|&c| (set.class_names[c].clone(), p[c]))
                    .collect(),
            }
        })
        .collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&predictions)?);
        return Ok(());
    }
    for pred in &predictions {
        println!("{}", pred.file);
        for (name, prob) in &pred.top {
            println!("  {name:<16} {prob:.4}");
        }
    }
    Ok(())
}
