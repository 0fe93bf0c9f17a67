//! Models: a backbone that turns an input (images or tokenised texts) into features, plus a
//! linear head that turns features into scores. Architectures are found by name in a small
//! [`registry`].
//!
//! Every backbone names its tensors as the PyTorch model it mirrors (torchvision's, or the
//! seed's `Net` for `cnn`), so converting to and from PyTorch is one rule for all of them:
//! the PyTorch classifier layer ([`ArchInfo::torch_head`]) is our `head`, everything else is
//! `backbone.` + its PyTorch name (see [`from_torch_name`], [`to_torch_name`]).

pub mod bert;
pub mod cnn;
pub mod convnext;
pub mod efficientnet;
pub mod inception;
mod layers;
mod named;
pub mod registry;
pub mod resnet;
pub mod vgg;
pub mod vit;

pub use registry::{ARCHITECTURES, ArchInfo, ArchKind, ImageArch, Interpolation, Sizes, arch};

use anyhow::Result;
use burn::module::ParamGroup;
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::bail_input;

/// Choices that change a model's layout beyond its architecture name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelOptions {
    /// For 28x28 and 32x32 images: inputs are resized to 32x32 and ResNets get CIFAR's stem
    /// (3x3 first conv at stride 1, no max-pool).
    #[serde(default)]
    pub small_input: bool,
    /// inception_v3: the model carries the auxiliary classifier (set by `import` when the
    /// weights have one).
    #[serde(default)]
    pub aux_logits: bool,
    /// Square inputs of this side instead of the architecture's own (`--image-size`): the data
    /// is resized to it; a ViT's position embeddings are resampled for its patch grid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_size: Option<usize>,
    /// Text models: the sizes of the BERT encoder (its vocabulary is the checkpoint's tokenizer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bert: Option<bert::BertConfig>,
}

/// What a model takes: a batch of images, or of tokenised texts.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // one per batch
pub enum Input {
    /// `[B, C, H, W]`, normalised.
    Images(Tensor<4>),
    /// Token ids, token type ids and attention mask (1 for tokens, 0 for padding), each `[B, T]`.
    Tokens {
        ids: Tensor<2, Int>,
        types: Tensor<2, Int>,
        mask: Tensor<2>,
        /// Masked language modelling: flat positions (`b * T + t`) of the tokens to predict. The
        /// features are then those tokens' hidden states rather than each text's mean.
        predict_at: Option<Tensor<1, Int>>,
    },
}

/// The feature extractor of any architecture. (One model exists per run, so the variants'
/// different sizes cost nothing worth boxing for.)
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Backbone {
    Cnn(cnn::Cnn),
    ResNet(resnet::ResNet),
    Vgg(vgg::Vgg),
    Inception(inception::Inception3),
    EfficientNet(efficientnet::EfficientNet),
    Vit(vit::VisionTransformer),
    ConvNext(convnext::ConvNext),
    Bert(bert::Bert),
}

impl Backbone {
    /// The parameters of the backbone's stages from input to output (named in
    /// [`ArchInfo::stages`]): the units that `--freeze-until` and `--layer-decay` work on.
    pub fn stages(&self) -> Vec<ParamGroup> {
        match self {
            Backbone::Cnn(m) => vec![
                ParamGroup::ids_from_module(m.conv1.clone()),
                ParamGroup::ids_from_module(m.conv2.clone()),
                ParamGroup::ids_from_module(m.fc1.clone()),
            ],
            Backbone::ResNet(m) => m.stages(),
            Backbone::Vgg(m) => m.stages(),
            Backbone::Inception(m) => m.stages(),
            Backbone::EfficientNet(m) => m.stages(),
            Backbone::Vit(m) => m.stages(),
            Backbone::ConvNext(m) => m.stages(),
            Backbone::Bert(m) => m.stages(),
        }
    }

    /// The same backbone for square inputs of `image_size`: a ViT resamples its position
    /// embeddings; convolutional backbones take any size as they are.
    pub fn resized(self, image_size: usize) -> Self {
        match self {
            Backbone::Vit(m) => Backbone::Vit(m.resized(image_size)),
            other => other,
        }
    }

    /// Inputs → feature vectors. Image backbones take images, text backbones tokens; a
    /// mismatch (a text checkpoint given images) is the caller's input error.
    pub fn forward(&self, input: Input) -> Result<Tensor<2>> {
        Ok(match (self, input) {
            (Backbone::Cnn(m), Input::Images(x)) => m.forward(x),
            (Backbone::ResNet(m), Input::Images(x)) => m.forward(x),
            (Backbone::Vgg(m), Input::Images(x)) => m.forward(x),
            (Backbone::Inception(m), Input::Images(x)) => m.forward(x),
            (Backbone::EfficientNet(m), Input::Images(x)) => m.forward(x),
            (Backbone::Vit(m), Input::Images(x)) => m.forward(x),
            (Backbone::ConvNext(m), Input::Images(x)) => m.forward(x),
            (
                Backbone::Bert(m),
                Input::Tokens {
                    ids,
                    types,
                    mask,
                    predict_at,
                },
            ) => match predict_at {
                None => m.features(ids, types, mask),
                Some(positions) => m.token_features(ids, types, mask, positions),
            },
            (Backbone::Bert(_), Input::Images(_)) => {
                bail_input!("a text model was given images")
            }
            (_, Input::Tokens { .. }) => bail_input!("an image model was given texts"),
        })
    }
}

/// What a model's head predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// The class of each example (the head has one output per class).
    #[default]
    Classify,
    /// Masked language modelling (text models): each masked token, from the vocabulary (the
    /// head has one output per token of the vocabulary).
    Mlm,
}

/// A backbone plus a linear classification head.
#[derive(Module, Debug)]
pub struct Classifier {
    pub backbone: Backbone,
    pub head: Linear,
}

impl Classifier {
    /// A freshly initialised `arch` with a head for `num_classes` classes, on `device`. The
    /// weights are drawn on the CPU from `seed` (then moved): the same seed gives the same
    /// weights on every device, and every process of a distributed run starts alike.
    pub fn new(
        arch: &ArchInfo,
        options: &ModelOptions,
        num_classes: usize,
        seed: u64,
        device: &Device,
    ) -> Self {
        let cpu = init_device();
        cpu.seed(seed);
        let model = Classifier {
            backbone: (arch.backbone)(options, num_classes, &cpu),
            head: LinearConfig::new(arch.features_for(options), num_classes).init(&cpu),
        };
        initialised(model).fork(device)
    }

    /// The same backbone with a new head for `num_classes` classes (timm's `reset_classifier`),
    /// drawn from `seed`.
    pub fn reset_head(self, num_classes: usize, seed: u64) -> Self {
        let device = self.head.weight.device();
        let cpu = init_device();
        cpu.seed(seed);
        let [features, _] = self.head.weight.dims();
        let head = initialised(LinearConfig::new(features, num_classes).init(&cpu)).fork(&device);
        Classifier { head, ..self }
    }

    /// The same model for square inputs of `image_size` (see [`Backbone::resized`]).
    pub fn resized(self, image_size: usize) -> Self {
        Classifier {
            backbone: self.backbone.resized(image_size),
            ..self
        }
    }

    /// Inputs → features (timm's `forward_features`).
    pub fn forward_features(&self, x: Input) -> Result<Tensor<2>> {
        self.backbone.forward(x)
    }

    /// Features → class scores (timm's `forward_head`).
    pub fn forward_head(&self, features: Tensor<2>) -> Tensor<2> {
        self.head.forward(features)
    }

    /// Inputs → class scores (logits).
    pub fn forward(&self, x: Input) -> Result<Tensor<2>> {
        Ok(self.forward_head(self.forward_features(x)?))
    }
}

/// Where weights are drawn: the CPU, with autodiff as training wants them.
fn init_device() -> Device {
    Device::flex().autodiff()
}

/// `module` with every parameter drawn now. Burn draws them lazily, on first use — that is,
/// after whatever the first step seeded the generator with; drawing at once makes the weights
/// a function of the seed the model was built with alone.
fn initialised<M: Module>(module: M) -> M {
    struct Touch;
    impl burn::module::ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    module.visit(&mut Touch);
    module
}

/// Tensor-name prefix of the backbone's parameters in checkpoints.
pub const BACKBONE_PREFIX: &str = "backbone.";
const HEAD_PREFIX: &str = "head.";

/// Our name (without enum variants) of the PyTorch tensor `key` of `arch`. A `module.` prefix
/// (left by `nn.DataParallel`/DDP) is dropped.
pub fn from_torch_name(arch: &ArchInfo, key: &str) -> String {
    let key = key.strip_prefix("module.").unwrap_or(key);
    match key
        .strip_prefix(arch.torch_head)
        .and_then(|r| r.strip_prefix('.'))
    {
        Some(rest) => format!("{HEAD_PREFIX}{rest}"),
        None => format!("{BACKBONE_PREFIX}{key}"),
    }
}

/// The PyTorch name of our tensor `name` (without enum variants).
pub fn to_torch_name(arch: &ArchInfo, name: &str) -> String {
    match name.strip_prefix(HEAD_PREFIX) {
        Some(rest) => format!("{}.{rest}", arch.torch_head),
        None => name
            .strip_prefix(BACKBONE_PREFIX)
            .unwrap_or(name)
            .to_string(),
    }
}

/// A tensor that did not fit when loading weights into a model, for a person: its name (as
/// `rename` gives it) and the shapes, in PyTorch's layout when `torch_layout` (Linear weights
/// there are [out, in]; Burn keeps [in, out]).
pub fn load_error(
    err: &burn::store::ApplyError,
    rename: impl Fn(&str) -> String,
    torch_layout: bool,
) -> String {
    use burn::store::ApplyError;
    let shape = |path: &str, shape: &burn::tensor::Shape| {
        let mut dims = shape.to_vec();
        // (Embedding tables are not transposed: only Linear weights are.)
        if torch_layout
            && dims.len() == 2
            && path.ends_with("weight")
            && !path.contains("embeddings")
        {
            dims.reverse();
        }
        dims
    };
    match err {
        ApplyError::ShapeMismatch {
            path,
            expected,
            found,
        } => format!(
            "tensor {} has shape {:?}, but the model needs {:?} there",
            rename(path),
            shape(path, found),
            shape(path, expected)
        ),
        ApplyError::DTypeMismatch {
            path,
            expected,
            found,
        } => format!(
            "tensor {} is {found:?}, but the model needs {expected:?}",
            rename(path)
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torch_names_map_both_ways() {
        let vgg = arch("vgg16").unwrap();
        for (torch, ours) in [
            ("features.28.weight", "backbone.features.28.weight"),
            ("classifier.3.bias", "backbone.classifier.3.bias"),
            ("classifier.6.weight", "head.weight"),
            ("module.classifier.6.bias", "head.bias"),
        ] {
            assert_eq!(from_torch_name(vgg, torch), ours);
            assert_eq!(
                to_torch_name(vgg, ours),
                torch.trim_start_matches("module.")
            );
        }
        // `fc2` is the cnn's head, `fc1` is not.
        let cnn = arch("cnn").unwrap();
        assert_eq!(from_torch_name(cnn, "fc1.weight"), "backbone.fc1.weight");
        assert_eq!(from_torch_name(cnn, "fc2.weight"), "head.weight");
    }
}
