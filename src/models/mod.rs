//! Models: a backbone that turns an image into features, plus a linear head that turns
//! features into class scores. Architectures are found by name in a small registry.

pub mod cnn;

use anyhow::Result;
use burn::module::ParamGroup;
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;

use crate::bail_input;

/// What the registry knows about an architecture.
#[derive(Debug, Clone, Copy)]
pub struct ArchInfo {
    pub name: &'static str,
    pub summary: &'static str,
    /// Channels, height, width of the input.
    pub input: [usize; 3],
    /// Length of the backbone's feature vector (the head's input).
    pub features: usize,
    /// Names of the backbone's stages from input to output (see [`Backbone::stages`]).
    pub stages: &'static [&'static str],
    /// A freshly initialised backbone.
    pub backbone: fn(&Device) -> Backbone,
}

/// Every architecture pretune can build, by name.
pub const ARCHITECTURES: &[ArchInfo] = &[ArchInfo {
    name: "cnn",
    summary: "the classic small CNN: 2 conv blocks + fc 128, for 28x28 grayscale",
    input: cnn::INPUT,
    features: cnn::FEATURES,
    stages: &["conv1", "conv2", "fc1"],
    backbone: |device| Backbone::Cnn(cnn::Cnn::new(device)),
}];

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

/// The feature extractor of any architecture.
#[derive(Module, Debug)]
pub enum Backbone {
    Cnn(cnn::Cnn),
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
        }
    }

    /// Images → feature vectors.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        match self {
            Backbone::Cnn(m) => m.forward(x),
        }
    }
}

/// A backbone plus a linear classification head.
#[derive(Module, Debug)]
pub struct Classifier {
    pub backbone: Backbone,
    pub head: Linear,
}

impl Classifier {
    /// A freshly initialised `arch` with a head for `num_classes` classes.
    pub fn new(arch: &ArchInfo, num_classes: usize, device: &Device) -> Self {
        Classifier {
            backbone: (arch.backbone)(device),
            head: LinearConfig::new(arch.features, num_classes).init(device),
        }
    }

    /// Images → features (timm's `forward_features`).
    pub fn forward_features(&self, x: Tensor<4>) -> Tensor<2> {
        self.backbone.forward(x)
    }

    /// Features → class scores (timm's `forward_head`).
    pub fn forward_head(&self, features: Tensor<2>) -> Tensor<2> {
        self.head.forward(features)
    }

    /// Images → class scores (logits).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.forward_head(self.forward_features(x))
    }
}

/// Tensor-name prefix of the backbone's parameters in checkpoints.
pub const BACKBONE_PREFIX: &str = "backbone.";
