//! The architectures pretune can build, by name, and what each one reads.

use anyhow::Result;
use burn::prelude::*;

use serde::{Deserialize, Serialize};

use super::{
    Backbone, ModelOptions, bert, bert2bert, cnn, convnext, efficientnet, inception, lstm, resnet,
    vgg, vit, whisper,
};
use crate::bail_input;

/// What the registry knows about an architecture.
#[derive(Debug, Clone, Copy)]
pub struct ArchInfo {
    pub name: &'static str,
    pub summary: &'static str,
    /// What the model reads, and what that implies.
    pub kind: ArchKind,
    /// Names of the backbone's stages from input to output (see [`Backbone::stages`]).
    pub stages: &'static [&'static str],
    /// Name of the PyTorch module that is our head (`fc`, `classifier.6`, …).
    pub torch_head: &'static str,
    /// A freshly initialised backbone (the class count sizes inception's auxiliary classifier).
    pub backbone: fn(&ModelOptions, usize, &Device) -> Backbone,
}

/// Images, texts or speech.
#[derive(Debug, Clone, Copy)]
pub enum ArchKind {
    Image(ImageArch),
    /// Texts through a tokenizer; the encoder's sizes travel in [`ModelOptions::bert`] (or
    /// [`ModelOptions::lstm`] for `lstm`).
    Text,
    /// Sequence pairs (characters in, tokens out); the sizes travel in
    /// [`ModelOptions::seq2seq`] (`bert2bert`: WordPiece tokens both sides, the sizes in
    /// [`ModelOptions::bert`]).
    Pairs,
    /// Speech (log-mel spectrograms) to text; the sizes travel in [`ModelOptions::whisper`].
    Speech,
}

/// What an image architecture takes and gives.
#[derive(Debug, Clone, Copy)]
pub struct ImageArch {
    /// Channels, height, width of the input the architecture was designed for.
    pub input: [usize; 3],
    /// Whether `--small-input` applies.
    pub small_input: bool,
    /// Length of the backbone's feature vector (the head's input).
    pub features: usize,
    /// Per-channel (mean, std) that imported PyTorch weights of this architecture expect.
    pub torch_normalization: ([f32; 3], [f32; 3]),
    /// How image files are scaled for the weights the architecture is imported with.
    pub interpolation: Interpolation,
    /// Which other square sizes `--image-size` may choose; `None`: the input size is fixed.
    pub sizes: Option<Sizes>,
    /// Learned position embeddings on a grid of patches (a ViT's): their PyTorch tensor name
    /// and the patch size, which say the input size a file of weights was made for.
    pub positions: Option<(&'static str, usize)>,
}

/// How image files of another size are scaled to a model's input (the filter of the resize
/// before the centre crop). Pretrained weights expect the one they were trained with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Interpolation {
    /// torchvision's default.
    #[default]
    Bilinear,
    /// PIL's bicubic, timm's default (TensorFlow-ported weights such as EfficientNet-Lite's).
    Bicubic,
}

impl Interpolation {
    /// Whether this is the default (left out of `pretune.json`).
    pub fn is_default(&self) -> bool {
        *self == Interpolation::default()
    }
}

/// Square input sizes an architecture takes: at least `min`, a multiple of `step`.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// The smallest side.
    pub min: usize,
    /// Sides are multiples of this (a ViT's patch size).
    pub step: usize,
}

/// The largest `--image-size`: bounds the memory a checkpoint can ask for.
pub const MAX_IMAGE_SIZE: usize = 2048;
/// Convolutional networks that end in a global pooling take any size from 32 up.
const ANY_SIZE: Option<Sizes> = Some(Sizes { min: 32, step: 1 });

/// torchvision's ImageNet statistics, which models imported from torchvision expect.
pub const IMAGENET: ([f32; 3], [f32; 3]) = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]);
/// The PyTorch MNIST example's statistics, which the seed's `Net` was trained with.
const MNIST: ([f32; 3], [f32; 3]) = ([0.1307, 0.0, 0.0], [0.3081, 1.0, 1.0]);

impl ImageArch {
    /// The per-channel mean and std imported PyTorch weights expect.
    pub fn torch_normalization(&self) -> (Vec<f32>, Vec<f32>) {
        let (mean, std) = self.torch_normalization;
        let c = self.input[0];
        (mean[..c].to_vec(), std[..c].to_vec())
    }
}

impl ArchInfo {
    /// Whether the model reads text (tokens) rather than images.
    pub fn is_text(&self) -> bool {
        matches!(self.kind, ArchKind::Text)
    }

    /// Whether the model turns sequences into sequences.
    pub fn is_seq2seq(&self) -> bool {
        matches!(self.kind, ArchKind::Pairs)
    }

    /// Whether the model transcribes speech.
    pub fn is_speech(&self) -> bool {
        matches!(self.kind, ArchKind::Speech)
    }

    /// Channels, height and width of the model's input with these options; `None` for text,
    /// sequence pairs and speech.
    pub fn input_for(&self, options: &ModelOptions) -> Option<[usize; 3]> {
        match self.kind {
            ArchKind::Image(image) if options.image_size.is_some() => {
                let size = options.image_size.expect("just checked");
                Some([image.input[0], size, size])
            }
            ArchKind::Image(image) if options.small_input => Some([image.input[0], 32, 32]),
            ArchKind::Image(image) => Some(image.input),
            ArchKind::Text | ArchKind::Pairs | ArchKind::Speech => None,
        }
    }

    /// Length of the feature vector the head reads.
    pub fn features_for(&self, options: &ModelOptions) -> usize {
        match (self.kind, &options.bert, &options.lstm) {
            (ArchKind::Image(image), _, _) => image.features,
            (ArchKind::Text, Some(c), _) => c.hidden_size,
            (ArchKind::Text, None, Some(c)) => c.features(),
            (ArchKind::Text, None, None) => 0,
            (ArchKind::Pairs, Some(c), _) => c.hidden_size,
            (ArchKind::Pairs, None, _) => options.seq2seq.as_ref().map_or(0, |c| c.hidden),
            (ArchKind::Speech, _, _) => options.whisper.as_ref().map_or(0, |c| c.d_model),
        }
    }

    /// Check that `options` make sense for this architecture.
    pub fn check(&self, options: &ModelOptions) -> Result<()> {
        let is_lstm = self.name == lstm::ARCH;
        let is_bert2bert = self.name == bert2bert::ARCH;
        for (wanted, present, what) in [
            (
                (self.is_text() && !is_lstm) || is_bert2bert,
                options.bert.is_some(),
                "a BERT config",
            ),
            (is_lstm, options.lstm.is_some(), "an LSTM config"),
        ] {
            if wanted != present {
                bail_input!(
                    "{}: the model options {} {what}",
                    self.name,
                    if wanted { "lack" } else { "have" }
                );
            }
        }
        if let Some(c) = &options.bert {
            c.check()
                .map_err(|e| crate::input_error!("{}: {e}", self.name))?;
        }
        if let Some(c) = &options.lstm {
            c.check()
                .map_err(|e| crate::input_error!("{}: {e}", self.name))?;
        }
        if self.is_speech() != options.whisper.is_some() {
            bail_input!(
                "{}: the model options {} a Whisper config",
                self.name,
                if self.is_speech() { "lack" } else { "have" }
            );
        }
        if let Some(c) = &options.whisper {
            c.check()
                .map_err(|e| crate::input_error!("{}: {e}", self.name))?;
        }
        let recurrent_seq2seq = self.is_seq2seq() && !is_bert2bert;
        if recurrent_seq2seq != options.seq2seq.is_some() {
            bail_input!(
                "{}: the model options {} an encoder–decoder config",
                self.name,
                if recurrent_seq2seq { "lack" } else { "have" }
            );
        }
        if let Some(c) = &options.seq2seq {
            c.check()
                .map_err(|e| crate::input_error!("{}: {e}", self.name))?;
        }
        let small = matches!(self.kind, ArchKind::Image(i) if i.small_input);
        if options.small_input && !small {
            bail_input!("--small-input: {} has no small-input variant", self.name);
        }
        if options.aux_logits && self.name != "inception_v3" {
            bail_input!("{} has no auxiliary classifier", self.name);
        }
        if let Some(size) = options.image_size {
            let ArchKind::Image(image) = self.kind else {
                bail_input!("--image-size: {} is a text model", self.name);
            };
            let Some(sizes) = image.sizes else {
                bail_input!(
                    "--image-size: {} takes only {}x{} inputs",
                    self.name,
                    image.input[1],
                    image.input[2]
                );
            };
            if options.small_input {
                bail_input!("--image-size and --small-input: give one of them");
            }
            if size < sizes.min || size > MAX_IMAGE_SIZE || size % sizes.step != 0 {
                bail_input!(
                    "--image-size {size}: {} takes sizes from {} to {MAX_IMAGE_SIZE}{}",
                    self.name,
                    sizes.min,
                    match sizes.step {
                        1 => String::new(),
                        n => format!(", multiples of {n}"),
                    }
                );
            }
        }
        Ok(())
    }
}

const RESNET_STAGES: &[&str] = &["stem", "layer1", "layer2", "layer3", "layer4"];
const VGG_STAGES: &[&str] = &["block1", "block2", "block3", "block4", "block5", "fc"];

macro_rules! resnet {
    ($name:literal, $depth:path, $summary:literal) => {
        ArchInfo {
            name: $name,
            summary: $summary,
            kind: ArchKind::Image(ImageArch {
                input: [3, 224, 224],
                small_input: true,
                features: $depth.features(),
                torch_normalization: IMAGENET,
                interpolation: Interpolation::Bilinear,
                sizes: ANY_SIZE,
                positions: None,
            }),
            stages: RESNET_STAGES,
            torch_head: "fc",
            backbone: |o, _, d| Backbone::ResNet(resnet::ResNet::new($depth, o.small_input, d)),
        }
    };
}

macro_rules! vgg {
    ($name:literal, $cfg:path, $bn:literal, $summary:literal) => {
        ArchInfo {
            name: $name,
            summary: $summary,
            kind: ArchKind::Image(ImageArch {
                input: [3, 224, 224],
                small_input: true,
                features: vgg::FEATURES,
                torch_normalization: IMAGENET,
                interpolation: Interpolation::Bilinear,
                sizes: ANY_SIZE,
                positions: None,
            }),
            stages: VGG_STAGES,
            torch_head: "classifier.6",
            backbone: |_, _, d| Backbone::Vgg(vgg::Vgg::new($cfg, $bn, d)),
        }
    };
}

macro_rules! efficientnet {
    ($name:literal, $variant:path, $size:literal, $summary:literal) => {
        ArchInfo {
            name: $name,
            summary: $summary,
            kind: ArchKind::Image(ImageArch {
                input: [3, $size, $size],
                small_input: false,
                features: efficientnet::FEATURES,
                // TensorFlow's (x - 127) / 128 on 0..255 pixels, as timm's configs say it;
                // ImageNet's statistics change flower.jpg's top-1 from daisy to lampshade.
                torch_normalization: ([0.5; 3], [0.5; 3]),
                interpolation: Interpolation::Bicubic,
                sizes: ANY_SIZE,
                positions: None,
            }),
            stages: &[
                "stem",
                "stage1",
                "stage2",
                "stage3",
                "stage4",
                "stage5",
                "stage6",
                "stage7",
                "conv_head",
            ],
            torch_head: "_fc",
            backbone: |_, _, d| {
                Backbone::EfficientNet(efficientnet::EfficientNet::new($variant, d))
            },
        }
    };
}

macro_rules! text_arch {
    ($name:literal, $summary:literal) => {
        ArchInfo {
            name: $name,
            summary: $summary,
            kind: ArchKind::Text,
            stages: &["embeddings", "encoder"],
            torch_head: "classifier",
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
        kind: ArchKind::Image(ImageArch {
            input: cnn::INPUT,
            small_input: false,
            features: cnn::FEATURES,
            torch_normalization: MNIST,
            interpolation: Interpolation::Bilinear,
            sizes: None,
            positions: None,
        }),
        stages: &["conv1", "conv2", "fc1"],
        torch_head: "fc2",
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
        kind: ArchKind::Image(ImageArch {
            input: [3, 299, 299],
            small_input: false,
            features: inception::FEATURES,
            // Its ImageNet weights were trained with transform_input: inputs scaled to [-1, 1].
            torch_normalization: ([0.5; 3], [0.5; 3]),
            interpolation: Interpolation::Bilinear,
            sizes: Some(Sizes { min: 75, step: 1 }),
            positions: None,
        }),
        stages: &["stem", "mixed5", "mixed6", "mixed7"],
        torch_head: "fc",
        backbone: |o, classes, d| {
            Backbone::Inception(inception::Inception3::new(
                o.aux_logits.then_some(classes),
                d,
            ))
        },
    },
    efficientnet!(
        "efficientnet_lite0",
        efficientnet::LITE0,
        224,
        "EfficientNet-Lite0 (4.7M params), 224x224, efficientnet_lite_pytorch layout"
    ),
    efficientnet!(
        "efficientnet_lite1",
        efficientnet::LITE1,
        240,
        "EfficientNet-Lite1 (5.4M params), 240x240, efficientnet_lite_pytorch layout"
    ),
    efficientnet!(
        "efficientnet_lite2",
        efficientnet::LITE2,
        260,
        "EfficientNet-Lite2 (6.1M params), 260x260, efficientnet_lite_pytorch layout"
    ),
    ArchInfo {
        name: "vit_b_16",
        summary: "ViT-B/16 (86.6M params), torchvision layout; --image-size resamples its \
                  position embeddings",
        kind: ArchKind::Image(ImageArch {
            input: [3, 224, 224],
            small_input: false,
            features: vit::VIT_B_16.hidden,
            torch_normalization: IMAGENET,
            interpolation: Interpolation::Bilinear,
            sizes: Some(Sizes {
                min: vit::VIT_B_16.patch,
                step: vit::VIT_B_16.patch,
            }),
            positions: Some((vit::POSITIONS, vit::VIT_B_16.patch)),
        }),
        stages: &[
            "embeddings",
            "block0",
            "block1",
            "block2",
            "block3",
            "block4",
            "block5",
            "block6",
            "block7",
            "block8",
            "block9",
            "block10",
            "block11",
            "norm",
        ],
        torch_head: "heads.head",
        backbone: |o, _, d| {
            let size = o.image_size.unwrap_or(224);
            Backbone::Vit(vit::VisionTransformer::new(&vit::VIT_B_16, size, d))
        },
    },
    ArchInfo {
        name: "convnext_tiny",
        summary: "ConvNeXt-Tiny (28.6M params), torchvision layout",
        kind: ArchKind::Image(ImageArch {
            input: [3, 224, 224],
            small_input: false,
            features: convnext::CONVNEXT_TINY.dims[3],
            torch_normalization: IMAGENET,
            interpolation: Interpolation::Bilinear,
            sizes: ANY_SIZE,
            positions: None,
        }),
        stages: &["stem", "stage1", "stage2", "stage3", "stage4", "norm"],
        torch_head: "classifier.2",
        backbone: |_, _, d| {
            Backbone::ConvNext(convnext::ConvNext::new(&convnext::CONVNEXT_TINY, d))
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
    ArchInfo {
        name: lstm::ARCH,
        summary: "AWD-LSTM (3 layers, 128/256 wide), ULMFiT's encoder: pretrain with --task lm",
        kind: ArchKind::Text,
        stages: lstm::STAGES,
        torch_head: "decoder",
        backbone: |o, _, d| {
            let config = o.lstm.as_ref().expect("checked by ArchInfo::check");
            Backbone::Lstm(config.init(d))
        },
    },
    ArchInfo {
        name: "g2p-gru",
        summary: "g2p_en's GRU encoder–decoder (256 wide): characters in, tokens out",
        kind: ArchKind::Pairs,
        stages: &["encoder", "decoder"],
        torch_head: "fc",
        backbone: |o, _, d| {
            let config = o.seq2seq.as_ref().expect("checked by ArchInfo::check");
            Backbone::Seq2Seq(config.init(d))
        },
    },
    ArchInfo {
        name: bert2bert::ARCH,
        summary: "BERT2BERT encoder–decoder (both halves BERT of one config, e.g. warm-started from all-MiniLM-L6-v2): WordPiece tokens in and out",
        kind: ArchKind::Pairs,
        stages: &["encoder", "decoder"],
        torch_head: "decoder.cls",
        backbone: |o, _, d| {
            let config = o.bert.as_ref().expect("checked by ArchInfo::check");
            Backbone::Bert2Bert(bert2bert::Bert2Bert::new(config, d))
        },
    },
    ArchInfo {
        name: "whisper",
        summary: "OpenAI's Whisper speech recognizer (e.g. tiny.en: 37.8M params), Hugging Face layout",
        kind: ArchKind::Speech,
        stages: &["encoder", "decoder"],
        torch_head: "proj_out",
        backbone: |o, _, d| {
            let config = o.whisper.as_ref().expect("checked by ArchInfo::check");
            Backbone::Whisper(whisper::Whisper::new(config, d))
        },
    },
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
