//! `pretune import` and `pretune export`: weights in and out of PyTorch's names and layouts.

use std::path::PathBuf;

use anyhow::Result;
use burn::module::Module;
use clap::{Args, ValueEnum};

use burn::prelude::Device;
use pretune::bail_input;
use pretune::checkpoint::{self, Checkpoint, Meta};
use pretune::data::{InputSpec, ModelInput, Normalization};
use pretune::fs::write_atomic;
use pretune::interop::{g2p, torch};
use pretune::models::{self, ArchKind};

use super::args::{ModelArgs, check_out, facts_table};

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Architecture the weights are for: resnet18/34/50/101/152, vgg11/16/19[_bn],
    /// inception_v3, vit_b_16, convnext_tiny (torchvision), efficientnet_lite0/1/2
    /// (efficientnet_lite_pytorch), cnn (PyTorch's MNIST example `Net`: conv1, conv2, fc1,
    /// fc2), or g2p-gru (g2p_en's grapheme-to-phoneme GRU).
    #[arg(long)]
    pub arch: String,
    /// PyTorch weights: safetensors (F32, F16 or BF16) or a torch.save file (.pt/.pth, also
    /// `{"state_dict": ...}` checkpoints and `module.` prefixes). Pickles are checked first:
    /// one that would call anything but PyTorch's tensor rebuilders is refused. For g2p-gru,
    /// g2p_en's checkpoint20.npz.
    #[arg(long, value_name = "FILE")]
    pub weights: PathBuf,
    /// Checkpoint directory to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace the checkpoint in --out if there is one.
    #[arg(long)]
    pub overwrite: bool,
    /// Classes of the head: a count, comma-separated names, a text file with one name per
    /// line, or `imagenet` (ImageNet-1k's 1000 names, for ImageNet weights) [default: the names
    /// `pretune export` saved in the file, else the file's classifier, classes named 0..N-1].
    /// A different count than the file's classifier gives a new, untrained head.
    #[arg(long)]
    pub classes: Option<String>,
    #[command(flatten)]
    pub layout: ModelArgs,
    /// Per-channel input mean the weights expect [default: what `pretune export` saved in the
    /// file; else ImageNet's for torchvision models, 0.5 for inception_v3 and the
    /// TensorFlow-ported efficientnet_lite*, MNIST's 0.1307 for cnn].
    #[arg(long, value_delimiter = ',', requires = "std")]
    pub mean: Option<Vec<f32>>,
    /// Per-channel input standard deviation the weights expect (with --mean).
    #[arg(long, value_delimiter = ',', requires = "mean")]
    pub std: Option<Vec<f32>>,
    /// g2p-gru: g2p_en's vocabularies [default: vocab.json beside the weights, as
    /// scripts/g2p.sh writes it].
    #[arg(long, value_name = "FILE")]
    pub vocab: Option<PathBuf>,
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

pub fn import(args: ImportArgs, device: &Device) -> Result<()> {
    let arch = models::arch(&args.arch)?;
    if arch.is_seq2seq() {
        return import_g2p(args, device);
    }
    let ArchKind::Image(image) = arch.kind else {
        bail_input!(
            "--arch {}: import takes image models; a Hugging Face text model directory is used \
             as it is (finetune --from DIR)",
            arch.name
        );
    };
    check_out(&args.out, args.overwrite, None)?;
    let exported = torch::exported(&args.weights)?;
    if let Some(e) = &exported
        && e.architecture != arch.name
    {
        bail_input!(
            "{}: was exported from a {} checkpoint, not {} (--arch)",
            args.weights.display(),
            e.architecture,
            arch.name
        );
    }
    let mut options = args.layout.options();
    if let Some(e) = &exported {
        options.small_input |= e.model_options.small_input;
        options.image_size = options.image_size.or(e.model_options.image_size);
    }
    arch.check(&options)?;
    let names = match (&args.classes, &exported) {
        (Some(spec), _) => Some(class_names(spec)?),
        (None, Some(e)) => Some(e.class_names.clone()),
        (None, None) => None,
    };
    let tensors = torch::read_tensors(&args.weights)?;
    let imported = torch::import(
        arch,
        options,
        tensors,
        names.as_ref().map(Vec::len),
        &args.weights,
        device,
    )?;
    let num_classes = imported.model.outputs();
    let class_names = names.unwrap_or_else(|| (0..num_classes).map(|c| c.to_string()).collect());
    let [channels, height, width] = arch
        .input_for(&imported.options)
        .expect("an image architecture");
    let interpolation = match &exported {
        Some(e) => e.interpolation,
        None => image.interpolation,
    };
    let normalization = match (args.mean, args.std, &exported) {
        (Some(mean), Some(std), _) => Normalization { mean, std },
        (_, _, Some(e)) => e.normalization.clone(),
        _ => {
            let (mean, std) = image.torch_normalization();
            Normalization { mean, std }
        }
    };
    if !normalization.fits(channels) {
        bail_input!("--mean/--std: give {channels} value(s) each, standard deviations positive");
    }
    let input = ModelInput::Image(InputSpec {
        channels,
        height,
        width,
        normalization: normalization.clone(),
        interpolation,
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
        facts_table(&[
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
                    "{channels}x{height}x{width}, mean {:?}, std {:?}, {} resize",
                    normalization.mean,
                    normalization.std,
                    format!("{interpolation:?}").to_lowercase()
                )
            ),
        ])
    );
    Ok(())
}

/// `--classes`: a count, comma-separated names, or a file of names.
fn class_names(spec: &str) -> Result<Vec<String>> {
    let names: Vec<String> = if spec == "imagenet" {
        pretune::data::classes::imagenet()
    } else if let Ok(n) = spec.parse::<usize>() {
        if n > pretune::data::classes::MAX_CLASSES {
            bail_input!(
                "--classes {n}: at most {} classes are supported",
                pretune::data::classes::MAX_CLASSES
            );
        }
        (0..n).map(|c| c.to_string()).collect()
    } else if std::path::Path::new(spec).is_file() {
        pretune::data::classes::read_names(std::path::Path::new(spec))?
    } else {
        spec.split(',').map(|s| s.trim().to_string()).collect()
    };
    if names.len() < 2 {
        bail_input!("--classes {spec:?}: a classifier needs at least 2 classes");
    }
    Ok(names)
}

pub fn export(args: ExportArgs, device: &Device) -> Result<()> {
    let ckpt = Checkpoint::open(&args.model)?;
    let model = ckpt.load_model(device)?;
    let ExportFormat::Torch = args.format;
    let ModelInput::Image(input) = &ckpt.meta.input else {
        bail_input!(
            "{}: a text model; export writes image models in torchvision's names",
            args.model.display()
        );
    };
    let exported = torch::Exported {
        architecture: ckpt.arch.name.to_string(),
        class_names: ckpt.meta.class_names.clone(),
        normalization: input.normalization.clone(),
        interpolation: input.interpolation,
        model_options: ckpt.meta.model_options.clone(),
    };
    let bytes = torch::export(ckpt.arch, &model, &exported)?;
    write_atomic(&args.out, &bytes)?;
    println!(
        "wrote {} ({}, torchvision names, F32) to {}",
        ckpt.arch.name,
        args.model.display(),
        args.out.display()
    );
    Ok(())
}

/// `import --arch g2p-gru --weights checkpoint20.npz`: g2p_en's pretrained GRU.
fn import_g2p(args: ImportArgs, device: &Device) -> Result<()> {
    check_out(&args.out, args.overwrite, None)?;
    let vocab = args
        .vocab
        .clone()
        .unwrap_or_else(|| args.weights.with_file_name("vocab.json"));
    let imported = g2p::import(&args.weights, &vocab, device)?;
    let arch = models::arch(&args.arch)?;
    imported.save(&args.out)?;
    println!(
        "{}",
        facts_table(&[
            ("checkpoint", args.out.display().to_string()),
            (
                "model",
                format!("{} ({} params)", arch.name, imported.model.num_params())
            ),
            (
                "vocabularies",
                format!(
                    "{} characters in, {} tokens out",
                    imported.input.source_vocab.len(),
                    imported.input.target_vocab.len()
                )
            ),
        ])
    );
    Ok(())
}
