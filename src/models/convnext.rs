//! ConvNeXt-Tiny, laid out as torchvision's `ConvNeXt` so its `state_dict` maps onto it name
//! for name: `features.0` the stem (4×4 conv, LayerNorm), `features.1/3/5/7` the stages of
//! `CNBlock`s (`layer_scale`, `block.0` depthwise 7×7, `block.2` LayerNorm, `block.3` and
//! `block.5` Linear), `features.2/4/6` the downsamplings (LayerNorm, 2×2 conv), `classifier.0`
//! the final LayerNorm; torchvision's `classifier.2` is our head.
//!
//! LayerNorms (eps 1e-6) normalise each pixel over its channels. Stochastic depth: block k of
//! n drops its branch with probability `drop_path · k / (n − 1)` while training.

use burn::module::{Param, ParamGroup};
use burn::nn::conv::Conv2d;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use burn::nn::{
    Dropout, DropoutConfig, Gelu, Identity, Initializer, LayerNorm, LayerNormConfig, Linear,
    LinearConfig, PaddingConfig2d,
};
use burn::prelude::*;

use super::layers::{conv_config, drop_path, union};
use crate::kernels;

/// Channels and blocks of the four stages, and the last block's stochastic depth.
#[derive(Debug, Clone, Copy)]
pub struct ConvNextConfig {
    /// Channels of each stage.
    pub dims: [usize; 4],
    /// Blocks of each stage.
    pub depths: [usize; 4],
    /// Stochastic depth of the last block (the first has none).
    pub drop_path: f64,
}

/// ConvNeXt-Tiny: 28.6M parameters.
pub const CONVNEXT_TINY: ConvNextConfig = ConvNextConfig {
    dims: [96, 192, 384, 768],
    depths: [3, 3, 9, 3],
    drop_path: 0.1,
};

const EPS: f64 = 1e-6;
/// torchvision's initial `layer_scale`.
const LAYER_SCALE: f64 = 1e-6;
/// torchvision draws conv and linear weights from N(0, 0.02) (truncated at ±2).
const INIT: Initializer = Initializer::Normal {
    mean: 0.0,
    std: 0.02,
};

/// One module of a ConvNeXt `nn.Sequential`; `Nothing` holds the place of a module without
/// parameters (torchvision's `Permute`, `Flatten`).
#[derive(Module, Debug)]
pub enum Part {
    Conv(Conv2d),
    Norm(LayerNorm),
    Linear(Linear),
    Gelu(Gelu),
    Nothing(Identity),
}

fn conv(channels: [usize; 2], kernel: usize, groups: usize, padding: usize, d: &Device) -> Part {
    let stride = if groups == 1 { kernel } else { 1 };
    Part::Conv(
        conv_config(channels, [kernel, kernel], stride, true)
            .with_groups(groups)
            .with_padding(PaddingConfig2d::Explicit(
                padding, padding, padding, padding,
            ))
            .with_initializer(INIT)
            .init(d),
    )
}

fn norm(channels: usize, device: &Device) -> Part {
    Part::Norm(
        LayerNormConfig::new(channels)
            .with_epsilon(EPS)
            .init(device),
    )
}

fn linear(c_in: usize, c_out: usize, device: &Device) -> Part {
    Part::Linear(
        LinearConfig::new(c_in, c_out)
            .with_initializer(INIT)
            .init(device),
    )
}

/// LayerNorm over the channels of each pixel of an NCHW tensor (torchvision's `LayerNorm2d`).
fn norm_2d(norm: &LayerNorm, x: Tensor<4>) -> Tensor<4> {
    norm.forward(x.permute([0, 2, 3, 1])).permute([0, 3, 1, 2])
}

/// A stem or downsampling `nn.Sequential` of convolutions and LayerNorms.
fn sequential(parts: &[Part], x: Tensor<4>) -> Tensor<4> {
    parts.iter().fold(x, |x, part| match part {
        Part::Conv(conv) => kernels::conv2d(conv, x),
        Part::Norm(n) => norm_2d(n, x),
        _ => x,
    })
}

/// torchvision's `CNBlock`: depthwise 7×7, LayerNorm, Linear ×4, GELU, Linear, layer scale,
/// stochastic depth, residual.
#[derive(Module, Debug)]
pub struct CnBlock {
    layer_scale: Param<Tensor<3>>,
    block: Vec<Part>,
    stochastic_depth: Dropout,
}

impl CnBlock {
    fn new(c: usize, drop: f64, device: &Device) -> Self {
        CnBlock {
            layer_scale: Initializer::Constant { value: LAYER_SCALE }.init([c, 1, 1], device),
            block: vec![
                conv([c, c], 7, c, 3, device),
                Part::Nothing(Identity),
                norm(c, device),
                linear(c, 4 * c, device),
                Part::Gelu(Gelu::new()),
                linear(4 * c, c, device),
                Part::Nothing(Identity),
            ],
            stochastic_depth: DropoutConfig::new(drop).init(),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [
            Part::Conv(dw),
            _,
            Part::Norm(n),
            Part::Linear(up),
            _,
            Part::Linear(down),
            _,
        ] = &self.block[..]
        else {
            unreachable!("a CNBlock is built with this layout")
        };
        let y = kernels::conv2d(dw, x.clone()).permute([0, 2, 3, 1]);
        let y = down.forward(kernels::gelu(up.forward(n.forward(y))));
        let y = y.permute([0, 3, 1, 2]) * self.layer_scale.val().unsqueeze();
        drop_path(&self.stochastic_depth, y) + x
    }
}

/// An entry of torchvision's `features`: the stem or a downsampling, or a stage's blocks.
#[derive(Module, Debug)]
pub enum Feature {
    Sequential(Vec<Part>),
    Blocks(Vec<CnBlock>),
}

/// The ConvNeXt backbone: images to the final-normed pooled features.
#[derive(Module, Debug)]
pub struct ConvNext {
    features: Vec<Feature>,
    avgpool: AdaptiveAvgPool2d,
    /// torchvision's `classifier` up to its Linear: `classifier.0` LayerNorm, `Flatten`.
    classifier: Vec<Part>,
}

impl ConvNext {
    /// A freshly initialised backbone of `c`'s sizes.
    pub fn new(c: &ConvNextConfig, device: &Device) -> Self {
        let total: usize = c.depths.iter().sum();
        let mut done = 0;
        let mut features = vec![Feature::Sequential(vec![
            conv([3, c.dims[0]], 4, 1, 0, device),
            norm(c.dims[0], device),
        ])];
        for (i, (&dim, &depth)) in c.dims.iter().zip(&c.depths).enumerate() {
            if i > 0 {
                features.push(Feature::Sequential(vec![
                    norm(c.dims[i - 1], device),
                    conv([c.dims[i - 1], dim], 2, 1, 0, device),
                ]));
            }
            let blocks = (0..depth)
                .map(|_| {
                    let drop = c.drop_path * done as f64 / (total - 1).max(1) as f64;
                    done += 1;
                    CnBlock::new(dim, drop, device)
                })
                .collect();
            features.push(Feature::Blocks(blocks));
        }
        ConvNext {
            features,
            avgpool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            classifier: vec![norm(c.dims[3], device), Part::Nothing(Identity)],
        }
    }

    /// Stages for freezing and layer-wise rates: the stem, the four stages (each with the
    /// downsampling before it), the final norm.
    pub fn stages(&self) -> Vec<ParamGroup> {
        let group = |i: usize| ParamGroup::ids_from_module(self.features[i].clone());
        vec![
            group(0),
            group(1),
            union([group(2), group(3)]),
            union([group(4), group(5)]),
            union([group(6), group(7)]),
            ParamGroup::ids_from_module(self.classifier.clone()),
        ]
    }

    /// `[B, 3, H, W]` → `[B, 768]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = self.features.iter().fold(x, |x, feature| match feature {
            Feature::Sequential(parts) => sequential(parts, x),
            Feature::Blocks(blocks) => blocks.iter().fold(x, |x, b| b.forward(x)),
        });
        let pooled = self.avgpool.forward(x).flatten::<2>(1, 3);
        match &self.classifier[0] {
            Part::Norm(n) => n.forward(pooled),
            _ => unreachable!("classifier.0 is a LayerNorm"),
        }
    }
}
