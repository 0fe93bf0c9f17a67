//! Models: a backbone that turns an image into features, plus a linear head that turns
//! features into class scores. Architectures are found by name in a small registry.
//!
//! Every backbone names its tensors as the PyTorch model it mirrors (torchvision's, or the
//! seed's `Net` for `cnn`), so converting to and from PyTorch is one rule for all of them:
//! the PyTorch classifier layer ([`ArchInfo::torch_head`]) is our `head`, everything else is
//! `backbone.` + its PyTorch name (see [`from_torch_name`], [`to_torch_name`]).

pub mod bert;
pub mod cnn;
pub mod inception;
mod layers;
pub mod resnet;
pub mod vgg;

use anyhow::Result;
use burn::module::ParamGroup;
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::bail_input;
use crate::data::{IMAGENET, Normalization};

/// Choices that change a model's layout beyond its architecture name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, clap::Args)]
pub struct ModelOptions {
    /// For 28x28 and 32x32 images: inputs are resized to 32x32 and ResNets get CIFAR's stem
    /// (3x3 first conv at stride 1, no max-pool).
    #[arg(long)]
    #[serde(default)]
    pub small_input: bool,
    /// inception_v3: the model carries the auxiliary classifier (set by `import` when the
    /// weights have one).
    #[arg(skip)]
    #[serde(default)]
    pub aux_logits: bool,
    /// Text models: the sizes of the BERT encoder (its vocabulary is the checkpoint's tokenizer).
    #[arg(skip)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bert: Option<bert::BertConfig>,
}

/// What the registry knows about an architecture.
#[derive(Debug, Clone, Copy)]
pub struct ArchInfo {
    pub name: &'static str,
    pub summary: &'static str,
    /// Whether the model reads text (tokens) rather than images.
    pub text: bool,
    /// Channels, height, width of the input the architecture was designed for (images).
    pub input: [usize; 3],
    /// Whether `--small-input` applies.
    pub small_input: bool,
    /// Length of the backbone's feature vector (the head's input).
    pub features: usize,
    /// Names of the backbone's stages from input to output (see [`Backbone::stages`]).
    pub stages: &'static [&'static str],
    /// Name of the PyTorch module that is our head (`fc`, `classifier.6`, …).
    pub torch_head: &'static str,
    /// Per-channel (mean, std) that imported PyTorch weights of this architecture expect.
    pub torch_normalization: ([f32; 3], [f32; 3]),
    /// A freshly initialised backbone (the class count sizes inception's auxiliary classifier).
    pub backbone: fn(&ModelOptions, usize, &Device) -> Backbone,
}

impl ArchInfo {
    /// Channels, height and width of the model's input with these options.
    pub fn input_for(&self, options: &ModelOptions) -> [usize; 3] {
        match options.small_input {
            true => [self.input[0], 32, 32],
            false => self.input,
        }
    }

    /// Length of the feature vector the head reads.
    pub fn features_for(&self, options: &ModelOptions) -> usize {
        match &options.bert {
            Some(c) if self.text => c.hidden_size,
            _ => self.features,
        }
    }

    /// The encoder sizes of a text model (its options carry them).
    pub fn bert_config<'a>(&self, options: &'a ModelOptions) -> &'a bert::BertConfig {
        options
            .bert
            .as_ref()
            .expect("text models carry their config (checked by ArchInfo::check)")
    }

    /// Check that `options` make sense for this architecture.
    pub fn check(&self, options: &ModelOptions) -> Result<()> {
        if self.text != options.bert.is_some() {
            bail_input!(
                "{}: the model options {} a BERT config",
                self.name,
                if self.text { "lack" } else { "have" }
            );
        }
        if let Some(c) = &options.bert {
            c.check()
                .map_err(|e| crate::input_error!("{}: {e}", self.name))?;
        }
        if options.small_input && !self.small_input {
            bail_input!("--small-input: {} has no small-input variant", self.name);
        }
        if options.aux_logits && self.name != "inception_v3" {
            bail_input!("{} has no auxiliary classifier", self.name);
        }
        Ok(())
    }

    /// The normalisation imported PyTorch weights expect.
    pub fn torch_normalization(&self) -> Normalization {
        let (mean, std) = self.torch_normalization;
        let c = self.input[0];
        Normalization {
            mean: mean[..c].to_vec(),
            std: std[..c].to_vec(),
        }
    }
}

const RESNET_STAGES: &[&str] = &["stem", "layer1", "layer2", "layer3", "layer4"];
const VGG_STAGES: &[&str] = &["block1", "block2", "block3", "block4", "block5", "fc"];
/// The PyTorch MNIST example's statistics, which the seed's `Net` was trained with.
const MNIST: ([f32; 3], [f32; 3]) = ([0.1307, 0.0, 0.0], [0.3081, 1.0, 1.0]);

macro_rules! resnet {
    ($name:literal, $depth:path, $summary:literal) => {
        ArchInfo {
            name: $name,
            summary: $summary,
            text: false,
            input: [3, 224, 224],
            small_input: true,
            features: $depth.features(),
            stages: RESNET_STAGES,
            torch_head: "fc",
            torch_normalization: IMAGENET,
            backbone: |o, _, d| Backbone::ResNet(resnet::ResNet::new($depth, o.small_input, d)),
        }
    };
}

macro_rules! vgg {
    ($name:literal, $cfg:path, $bn:literal, $summary:literal) => {
        ArchInfo {
            name: $name,
            summary: $summary,
            text: false,
            input: [3, 224, 224],
            small_input: true,
            features: vgg::FEATURES,
            stages: VGG_STAGES,
            torch_head: "classifier.6",
            torch_normalization: IMAGENET,
            backbone: |_, _, d| Backbone::Vgg(vgg::Vgg::new($cfg, $bn, d)),
        }
    };
}

macro_rules! text_arch {
    ($name:literal, $summary:literal) => {
        ArchInfo {
            name: $name,
            summary: $summary,
            text: true,
            input: [0, 0, 0],
            small_input: false,
            features: 0,
            stages: &["embeddings", "encoder"],
            torch_head: "classifier",
            torch_normalization: ([0.0; 3], [1.0; 3]),
            backbone: |o, _, d| {
                let config = o.bert.as_ref().expect("checked by ArchInfo::check");
                Backbone::Bert(bert::Bert::new(config, d))
            },
        }
    };
}

/// Every architecture pretune can build, by name.
pub const ARCHITECTURES: &[ArchInfo] = &[
    ArchInfo {
        name: "cnn",
        summary: "the classic small CNN: 2 conv blocks + fc 128, for 28x28 grayscale",
        text: false,
        input: cnn::INPUT,
        small_input: false,
        features: cnn::FEATURES,
        stages: &["conv1", "conv2", "fc1"],
        torch_head: "fc2",
        torch_normalization: MNIST,
        backbone: |_, _, device| Backbone::Cnn(cnn::Cnn::new(device)),
    },
    resnet!(
        "resnet18",
        resnet::RESNET18,
        "ResNet-18 (11.7M params), torchvision layout"
    ),
    resnet!(
        "resnet34",
        resnet::RESNET34,
        "ResNet-34 (21.8M params), torchvision layout"
    ),
    resnet!(
        "resnet50",
        resnet::RESNET50,
        "ResNet-50 (25.6M params), torchvision layout"
    ),
    resnet!(
        "resnet101",
        resnet::RESNET101,
        "ResNet-101 (44.5M params), torchvision layout"
    ),
    resnet!(
        "resnet152",
        resnet::RESNET152,
        "ResNet-152 (60.2M params), torchvision layout"
    ),
    vgg!(
        "vgg11",
        vgg::VGG11,
        false,
        "VGG-11 (132.9M params), torchvision layout"
    ),
    vgg!(
        "vgg11_bn",
        vgg::VGG11,
        true,
        "VGG-11 with batch norm, torchvision layout"
    ),
    vgg!(
        "vgg16",
        vgg::VGG16,
        false,
        "VGG-16 (138.4M params), torchvision layout"
    ),
    vgg!(
        "vgg16_bn",
        vgg::VGG16,
        true,
        "VGG-16 with batch norm, torchvision layout"
    ),
    vgg!(
        "vgg19",
        vgg::VGG19,
        false,
        "VGG-19 (143.7M params), torchvision layout"
    ),
    vgg!(
        "vgg19_bn",
        vgg::VGG19,
        true,
        "VGG-19 with batch norm, torchvision layout"
    ),
    ArchInfo {
        name: "inception_v3",
        summary: "Inception v3 (27.2M params), 299x299, torchvision layout",
        text: false,
        input: [3, 299, 299],
        small_input: false,
        features: inception::FEATURES,
        stages: &["stem", "mixed5", "mixed6", "mixed7"],
        torch_head: "fc",
        // Its ImageNet weights were trained with transform_input: inputs scaled to [-1, 1].
        torch_normalization: ([0.5; 3], [0.5; 3]),
        backbone: |o, classes, d| {
            Backbone::Inception(inception::Inception3::new(
                o.aux_logits.then_some(classes),
                d,
            ))
        },
    },
    text_arch!(
        "bert-mini",
        "BERT-Mini (4 layers, 256 wide) for pretraining from scratch"
    ),
    text_arch!(
        "bert-small",
        "BERT-Small (4 layers, 512 wide) for pretraining from scratch"
    ),
    text_arch!(
        "bert",
        "a Hugging Face BertModel as its config.json says (e.g. all-MiniLM-L6-v2)"
    ),
];

/// Look up an architecture by name.
pub fn arch(name: &str) -> Result<&'static ArchInfo> {
    match ARCHITECTURES.iter().find(|a| a.name == name) {
        Some(a) => Ok(a),
        None => bail_input!(
            "unknown architecture {name:?}; known: {}",
            ARCHITECTURES
                .iter()
                .map(|a| a.name)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
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
            Backbone::Bert(m) => m.stages(),
        }
    }

    /// Inputs → feature vectors. Image backbones take images, text backbones tokens (the
    /// checkpoint's input kind decides which data is loaded, so they always meet their kind).
    pub fn forward(&self, input: Input) -> Tensor<2> {
        let x = match (self, input) {
            (
                Backbone::Bert(m),
                Input::Tokens {
                    ids,
                    types,
                    mask,
                    predict_at,
                },
            ) => {
                return match predict_at {
                    None => m.features(ids, types, mask),
                    Some(positions) => m.token_features(ids, types, mask, positions),
                };
            }
            (Backbone::Bert(_), Input::Images(_)) => {
                unreachable!("a text backbone was given images")
            }
            (_, Input::Tokens { .. }) => unreachable!("an image backbone was given tokens"),
            (_, Input::Images(x)) => x,
        };
        match self {
            Backbone::Bert(_) => unreachable!("handled above"),
            Backbone::Cnn(m) => m.forward(x),
            Backbone::ResNet(m) => m.forward(x),
            Backbone::Vgg(m) => m.forward(x),
            Backbone::Inception(m) => m.forward(x),
        }
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
    /// A freshly initialised `arch` with a head for `num_classes` classes.
    pub fn new(
        arch: &ArchInfo,
        options: &ModelOptions,
        num_classes: usize,
        device: &Device,
    ) -> Self {
        Classifier {
            backbone: (arch.backbone)(options, num_classes, device),
            head: LinearConfig::new(arch.features_for(options), num_classes).init(device),
        }
    }

    /// Inputs → features (timm's `forward_features`).
    pub fn forward_features(&self, x: Input) -> Tensor<2> {
        self.backbone.forward(x)
    }

    /// Features → class scores (timm's `forward_head`).
    pub fn forward_head(&self, features: Tensor<2>) -> Tensor<2> {
        self.head.forward(features)
    }

    /// Inputs → class scores (logits).
    pub fn forward(&self, x: Input) -> Tensor<2> {
        self.forward_head(self.forward_features(x))
    }
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
