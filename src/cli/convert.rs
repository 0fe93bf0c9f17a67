//! `pretune import` and `pretune export`: weights in and out of PyTorch's names and layouts.

use std::path::PathBuf;

use anyhow::Result;
use burn::module::Module;
use clap::{Args, ValueEnum};

use crate::checkpoint::{self, Checkpoint, InputSpec, Meta, ModelInput, torch, write_atomic};
use crate::data::Normalization;
use crate::models::{self, ModelOptions};
use crate::{bail_input, training_device};

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Architecture the weights are for: resnet18/34/50/101/152, vgg11/16/19[_bn],
    /// inception_v3, or cnn (the seed's PyTorch `Net`: conv1, conv2, fc1, fc2).
    #[arg(long)]
    pub arch: String,
    /// PyTorch weights: safetensors (F32, F16 or BF16) or a torch.save file (.pt/.pth, also
    /// `{"state_dict": ...}` checkpoints and `module.` prefixes). Pickles are checked first:
    /// one that would call anything but PyTorch's tensor rebuilders is refused.
    #[arg(long, value_name = "FILE")]
    pub weights: PathBuf,
    /// Checkpoint directory to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Classes of the head: a count, comma-separated names, or a text file with one name per
    /// line [default: the file's classifier, classes named 0..N-1]. A different count than the
    /// file's classifier gives a new, untrained head.
    #[arg(long)]
    pub classes: Option<String>,
    #[command(flatten)]
    pub options: ModelOptions,
    /// Per-channel input mean the weights expect [default: ImageNet's for torchvision models,
    /// 0.5 for inception_v3, MNIST's 0.1307 for cnn].
    #[arg(long, value_delimiter = ',', requires = "std")]
    pub mean: Option<Vec<f32>>,
    /// Per-channel input standard deviation the weights expect (with --mean).
    #[arg(long, value_delimiter = ',', requires = "mean")]
    pub std: Option<Vec<f32>>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    /// A PyTorch `state_dict` in torchvision's names and layouts, as F32 safetensors
    /// (`model.load_state_dict(safetensors.torch.load_file(path))`).
    Torch,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Checkpoint directory to export.
    #[arg(long)]
    pub model: PathBuf,
    #[arg(long, value_enum, default_value = "torch")]
    pub format: ExportFormat,
    /// File to write.
    #[arg(long, value_name = "FILE.safetensors")]
    pub out: PathBuf,
}

pub fn import(args: ImportArgs) -> Result<()> {
    let arch = models::arch(&args.arch)?;
    arch.check(&args.options)?;
    let tensors = torch::read_tensors(&args.weights)?;
    let names = args.classes.as_deref().map(class_names).transpose()?;
    let device = training_device();
    let imported = torch::import(
        arch,
        args.options,
        tensors,
        names.as_ref().map(Vec::len),
        &args.weights,
        &device,
    )?;
    let num_classes = imported.model.head.weight.dims()[1];
    let class_names = names.unwrap_or_else(|| (0..num_classes).map(|c| c.to_string()).collect());
    let [channels, height, width] = arch.input_for(&imported.options);
    let normalization = match (args.mean, args.std) {
        (Some(mean), Some(std)) => Normalization { mean, std },
        _ => arch.torch_normalization(),
    };
    if !normalization.fits(channels) {
        bail_input!("--mean/--std: give {channels} value(s) each, standard deviations positive");
    }
    let input = ModelInput::Image(InputSpec {
        channels,
        height,
        width,
        normalization: normalization.clone(),
    });
    let mut meta = Meta::imported(arch, imported.options, class_names, input);
    checkpoint::save(&args.out, &imported.model, &mut meta, None)?;
    let head = match (imported.head_kept, imported.file_classes) {
        (true, _) => format!("kept ({num_classes} classes)"),
        (false, Some(n)) => format!("new, {num_classes} classes (the file's has {n})"),
        (false, None) => format!("new, {num_classes} classes"),
    };
    let unused = match imported.unused.len() {
        0 => "none".to_string(),
        n => format!("{n}: {}", imported.unused.join(", ")),
    };
    println!(
        "{}",
        super::facts_table(&[
            ("checkpoint", args.out.display().to_string()),
            (
                "model",
                format!("{} ({} params)", arch.name, imported.model.num_params())
            ),
            ("tensors loaded", imported.loaded.to_string()),
            ("unused tensors", unused),
            ("head", head),
            (
                "input",
                format!(
                    "{channels}x{height}x{width}, mean {:?}, std {:?}",
                    normalization.mean, normalization.std
                )
            ),
        ])
    );
    Ok(())
}

/// `--classes`: a count, comma-separated names, or a file of names.
fn class_names(spec: &str) -> Result<Vec<String>> {
    let names: Vec<String> = if let Ok(n) = spec.parse::<usize>() {
        (0..n).map(|c| c.to_string()).collect()
    } else if std::path::Path::new(spec).is_file() {
        crate::data::classes::read_names(std::path::Path::new(spec))?
    } else {
        spec.split(',').map(|s| s.trim().to_string()).collect()
    };
    if names.len() < 2 {
        bail_input!("--classes {spec:?}: a classifier needs at least 2 classes");
    }
    Ok(names)
}

pub fn export(args: ExportArgs) -> Result<()> {
    let ckpt = Checkpoint::open(&args.model)?;
    let model = ckpt.load_model(&training_device())?;
    let ExportFormat::Torch = args.format;
    let bytes = torch::export(ckpt.arch, &model)?;
    write_atomic(&args.out, &bytes)?;
    println!(
        "wrote {} ({}, torchvision names, F32) to {}",
        ckpt.arch.name,
        args.model.display(),
        args.out.display()
    );
    Ok(())
}
