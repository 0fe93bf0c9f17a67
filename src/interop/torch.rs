//! Weights in PyTorch's names and layouts: reading torchvision (or the seed's `Net`) weights
//! from safetensors (F32/F16/BF16) or `torch.save` pickles into a [`Classifier`], and writing a
//! classifier back as a torchvision-style `state_dict` in safetensors.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use burn::prelude::*;
use burn::store::pytorch_reader::PytorchReader;
use burn::store::{BurnToPyTorchAdapter, ModuleAdapter, ModuleSnapshot, bridge};
use burn::tensor::DType;

use serde::{Deserialize, Serialize};

use super::pickle;
use crate::data::Normalization;
use crate::models::{self, ArchInfo, ArchKind, Classifier, Interpolation, ModelOptions};
use crate::{bail_input, input_error};

/// Named float tensors as read from a PyTorch file, in PyTorch's names (sorted).
pub type TorchTensors = BTreeMap<String, TensorData>;

/// Read every floating-point tensor of a safetensors file or a `torch.save` pickle, as F32.
/// Integer tensors (BatchNorm's `num_batches_tracked`) are dropped; a `{"state_dict": …}`
/// wrapper is unwrapped.
pub fn read_tensors(path: &Path) -> Result<TorchTensors> {
    let shown = path.display();
    let mut head = [0u8; 9];
    let n = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
        .map_err(|e| input_error!("{shown}: cannot read: {e}"))?;
    let raw: Vec<(String, TensorData)> = if n == 9 && head[8] == b'{' {
        let bytes = std::fs::read(path).map_err(|e| input_error!("{shown}: cannot read: {e}"))?;
        read_safetensors(&bytes)
            .map_err(|e| input_error!("{shown}: not a valid safetensors file: {e}"))?
    } else if head.starts_with(b"PK") || head.first() == Some(&0x80) {
        pickle::check_file(path)?;
        let reader = PytorchReader::new(path)
            .map_err(|e| input_error!("{shown}: not a readable PyTorch file: {e}"))?;
        let mut tensors = Vec::new();
        for (name, t) in reader.into_tensors() {
            let data = bridge::into_data(bridge::from_pytorch(t))
                .map_err(|e| input_error!("{shown}: tensor {name}: {e}"))?;
            tensors.push((name, data));
        }
        tensors
    } else {
        bail_input!("{shown}: neither safetensors nor a torch.save file (.pt/.pth)");
    };
    // A training checkpoint wraps the weights: take them out, leave the optimizer state.
    let wrapper = ["state_dict.", "model_state_dict."]
        .into_iter()
        .find(|p| raw.iter().any(|(k, _)| k.starts_with(p)));
    let mut out = TorchTensors::new();
    for (name, data) in raw {
        let name = match wrapper {
            Some(p) => match name.strip_prefix(p) {
                Some(rest) => rest.to_string(),
                None => continue,
            },
            None => name,
        };
        match data.dtype() {
            DType::F32 => out.insert(name, data),
            DType::F16 | DType::BF16 | DType::F64 => out.insert(name, data.convert::<f32>()),
            _ => None,
        };
    }
    if out.is_empty() {
        bail_input!("{shown}: holds no floating-point tensors");
    }
    Ok(out)
}

fn read_safetensors(bytes: &[u8]) -> std::result::Result<Vec<(String, TensorData)>, String> {
    use safetensors::Dtype;
    let file = safetensors::SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for (name, view) in file.tensors() {
        let dtype = match view.dtype() {
            Dtype::F32 => DType::F32,
            Dtype::F16 => DType::F16,
            Dtype::BF16 => DType::BF16,
            Dtype::F64 => DType::F64,
            _ => continue,
        };
        let data = TensorData::from_bytes_vec(view.data().to_vec(), view.shape().to_vec(), dtype);
        out.push((name, data));
    }
    Ok(out)
}

/// The first few tensor names, for messages.
fn sample_names(tensors: &TorchTensors) -> String {
    let mut names: Vec<&str> = tensors.keys().take(4).map(String::as_str).collect();
    if tensors.len() > 4 {
        names.push("…");
    }
    names.join(", ")
}

/// What [`import`] did.
pub struct Imported {
    pub model: Classifier,
    pub options: ModelOptions,
    /// Tensors copied into the model.
    pub loaded: usize,
    /// PyTorch tensors the architecture has no place for.
    pub unused: Vec<String>,
    /// Whether the file's classifier was kept (else the head is new).
    pub head_kept: bool,
    /// Classes of the file's classifier.
    pub file_classes: Option<usize>,
}

/// Build `arch` from PyTorch weights. With `num_classes` different from the file's classifier,
/// the head is new and freshly initialised; every backbone tensor must be in the file.
pub fn import(
    arch: &'static ArchInfo,
    options: ModelOptions,
    tensors: TorchTensors,
    num_classes: Option<usize>,
    file: &Path,
    device: &Device,
) -> Result<Imported> {
    let shown = file.display();
    let head_weight = format!("{}.weight", arch.torch_head);
    let file_classes = tensors
        .iter()
        .find(|(k, _)| models::from_torch_name(arch, k) == "head.weight")
        .map(|(_, t)| t.shape()[0]);
    let num_classes = match num_classes.or(file_classes) {
        Some(n) if n >= 2 => n,
        Some(n) => bail_input!("{shown}: {n} classes; a classifier needs at least 2"),
        None => bail_input!(
            "{shown}: no classifier tensor {head_weight} (the file has {}): say how many classes \
             the new head has with --classes",
            sample_names(&tensors)
        ),
    };
    let head_kept = file_classes == Some(num_classes);
    // Position embeddings (a ViT's) fix the input size the weights were made for: the model is
    // built for that size, then resampled to the one asked for (or kept at it).
    let file_size = match arch.kind {
        ArchKind::Image(image) => image.positions.and_then(|(name, patch)| {
            let tokens = tensors.get(name)?.shape().get(1).copied()?;
            let grid = ((tokens.saturating_sub(1)) as f64).sqrt().round() as usize;
            (grid * grid + 1 == tokens).then_some(grid * patch)
        }),
        ArchKind::Text | ArchKind::Pairs | ArchKind::Speech => None,
    };
    let design = arch.input_for(&ModelOptions::default()).map(|[_, h, _]| h);
    let options = ModelOptions {
        aux_logits: head_kept
            && tensors
                .keys()
                .any(|k| models::from_torch_name(arch, k) == "backbone.AuxLogits.fc.weight"),
        image_size: options
            .image_size
            .or(file_size.filter(|&s| Some(s) != design)),
        ..options
    };
    arch.check(&options)?;
    let built = ModelOptions {
        image_size: file_size.or(options.image_size),
        ..options.clone()
    };
    arch.check(&built)?;
    let mut model = Classifier::new(arch, &built, num_classes, 0, device);
    let (loaded, unused) = load_into(arch, &mut model, tensors, head_kept, file)?;
    if let Some(size) = options
        .image_size
        .or(design)
        .filter(|_| file_size.is_some())
    {
        model = model.resized(size);
    }
    Ok(Imported {
        model,
        options,
        loaded,
        unused,
        head_kept,
        file_classes,
    })
}

/// Copy PyTorch `tensors` into `model`, an `arch` of any size (the head's too when
/// `with_head`). Every tensor of the model but the head must be there, in its shape; returns
/// how many were copied and the PyTorch names of those the model has no place for.
pub fn load_into(
    arch: &ArchInfo,
    model: &mut Classifier,
    tensors: TorchTensors,
    with_head: bool,
    file: &Path,
) -> Result<(usize, Vec<String>)> {
    let shown = file.display();
    let aux_logits = matches!(&model.backbone, models::Backbone::Inception(m) if m.has_aux());
    let mut pack = Vec::new();
    let mut unused = Vec::new();
    for (name, data) in tensors {
        let ours = models::from_torch_name(arch, &name);
        if ours.starts_with("head.") && !with_head {
            continue;
        }
        if !aux_logits && ours.starts_with("backbone.AuxLogits.") {
            unused.push(name);
            continue;
        }
        pack.push(bridge::from_data(data, ours, None));
    }
    let result = model.apply(pack, None, Some(models::from_pytorch_layout()), true);
    if let Some(err) = result.errors.first() {
        bail_input!(
            "{shown}: {}",
            models::load_error(err, |p| models::to_torch_name(arch, p), true)
        );
    }
    let missing: Vec<String> = result
        .missing
        .iter()
        .map(|(p, _)| models::to_torch_name(arch, p))
        .filter(|p| with_head || !p.starts_with(arch.torch_head))
        .collect();
    if !missing.is_empty() {
        bail_input!(
            "{shown}: missing {} tensor(s) of {}: {} (is this a {} state_dict?)",
            missing.len(),
            arch.name,
            crate::error::listed(&missing, 8),
            arch.name
        );
    }
    unused.extend(result.unused.iter().map(|p| models::to_torch_name(arch, p)));
    Ok((result.applied.len(), unused))
}

/// `model`'s tensors in PyTorch's names and layouts (not yet read out).
fn torch_tensors(
    arch: &ArchInfo,
    model: &Classifier,
) -> Vec<(String, burn::store::burn_pack::Tensor)> {
    model
        .collect(
            None,
            Some(Box::new(BurnToPyTorchAdapter.chain(models::HeadLayout))),
            true,
        )
        .into_iter()
        .map(|t| (models::to_torch_name(arch, &t.name), t))
        .collect()
}

/// Name and shape of every tensor `model` has in PyTorch's layout, sorted by name.
pub fn torch_layout(arch: &ArchInfo, model: &Classifier) -> Vec<(String, Vec<usize>)> {
    let mut layout: Vec<(String, Vec<usize>)> = torch_tensors(arch, model)
        .into_iter()
        .map(|(name, t)| (name, t.shape.to_vec()))
        .collect();
    layout.sort();
    layout
}

/// What `export` writes into the safetensors header (`__metadata__`, key `pretune`) beside
/// the weights, so that `import` restores what the tensors alone cannot say. PyTorch's
/// `load_file` ignores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exported {
    pub architecture: String,
    pub class_names: Vec<String>,
    pub normalization: Normalization,
    /// How image files are scaled for the model (absent from files exported before it: bilinear).
    #[serde(default)]
    pub interpolation: Interpolation,
    pub model_options: ModelOptions,
}

/// The metadata key of [`Exported`].
const EXPORTED_KEY: &str = "pretune";

/// What an exported safetensors file says about itself, if it was written by `export`.
pub fn exported(path: &Path) -> Result<Option<Exported>> {
    use std::io::Read;
    let shown = path.display();
    let mut file =
        std::fs::File::open(path).map_err(|e| input_error!("{shown}: cannot read: {e}"))?;
    let len = file.metadata().map_or(0, |m| m.len());
    let mut prefix = [0u8; 8];
    if file.read_exact(&mut prefix).is_err() {
        return Ok(None);
    }
    let n = u64::from_le_bytes(prefix);
    if n > len.saturating_sub(8) || n > 100 << 20 {
        return Ok(None);
    }
    let mut header = vec![0u8; n as usize];
    file.read_exact(&mut header)
        .map_err(|e| input_error!("{shown}: cannot read: {e}"))?;
    let Ok(header) = serde_json::from_slice::<serde_json::Value>(&header) else {
        return Ok(None);
    };
    match header["__metadata__"][EXPORTED_KEY].as_str() {
        None => Ok(None),
        Some(text) => serde_json::from_str(text)
            .map(Some)
            .map_err(|e| input_error!("{shown}: damaged pretune metadata: {e}")),
    }
}

/// `model`'s tensors in PyTorch's names and layouts, F32, as a safetensors file, with
/// `exported` in its header.
pub fn export(arch: &ArchInfo, model: &Classifier, exported: &Exported) -> Result<Vec<u8>> {
    let mut named = BTreeMap::new();
    for (name, t) in torch_tensors(arch, model) {
        let data = bridge::into_data(t).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        named.insert(name, data.convert::<f32>());
    }
    let views: Vec<(String, safetensors::tensor::TensorView)> = named
        .iter()
        .map(|(name, data)| {
            let view = safetensors::tensor::TensorView::new(
                safetensors::Dtype::F32,
                data.shape().to_vec(),
                data.as_bytes(),
            )
            .expect("shape and bytes agree");
            (name.clone(), view)
        })
        .collect();
    let meta = std::collections::HashMap::from([
        ("format".to_string(), "pt".to_string()),
        (EXPORTED_KEY.to_string(), serde_json::to_string(exported)?),
    ]);
    Ok(safetensors::serialize(views, Some(meta))?)
}
