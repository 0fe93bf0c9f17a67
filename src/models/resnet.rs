//! ResNet-18/34/50/101/152, laid out as torchvision's `resnet*` so a torchvision `state_dict`
//! maps onto it name for name: `conv1`, `bn1`, `layer1.0.conv1`, …, `layer1.0.downsample.0/1`;
//! torchvision's `fc` is our head. A small-input option swaps the stem for CIFAR's (3×3 conv at
//! stride 1, no max-pool), for 28×28 and 32×32 images.

use burn::module::ParamGroup;
use burn::nn::conv::Conv2d;
use burn::nn::pool::AdaptiveAvgPool2d;
use burn::nn::pool::AdaptiveAvgPool2dConfig;
use burn::nn::{BatchNorm, Relu};
use burn::prelude::*;

use super::layers::{Layer, batch_norm, conv, max_pool, sequential, union};
use crate::kernels;

/// Depth of a ResNet: blocks per stage, and whether they are bottlenecks (ResNet-50 and up).
#[derive(Debug, Clone, Copy)]
pub struct Depth {
    pub blocks: [usize; 4],
    pub bottleneck: bool,
}

pub const RESNET18: Depth = Depth {
    blocks: [2, 2, 2, 2],
    bottleneck: false,
};
pub const RESNET34: Depth = Depth {
    blocks: [3, 4, 6, 3],
    bottleneck: false,
};
pub const RESNET50: Depth = Depth {
    blocks: [3, 4, 6, 3],
    bottleneck: true,
};
pub const RESNET101: Depth = Depth {
    blocks: [3, 4, 23, 3],
    bottleneck: true,
};
pub const RESNET152: Depth = Depth {
    blocks: [3, 8, 36, 3],
    bottleneck: true,
};

impl Depth {
    /// Length of the feature vector: the last stage's channels.
    pub const fn features(&self) -> usize {
        if self.bottleneck { 2048 } else { 512 }
    }
}

const EPS: f64 = 1e-5;

/// A basic block (two 3×3 convs) or, with `conv3`, a bottleneck (1×1, 3×3, 1×1 ×4).
#[derive(Module, Debug)]
pub struct Block {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    conv3: Option<Conv2d>,
    bn3: Option<BatchNorm>,
    /// 1×1 conv + BN on the shortcut when the shape changes; empty otherwise.
    downsample: Vec<Layer>,
    relu: Relu,
}

impl Block {
    fn new(c_in: usize, width: usize, stride: usize, bottleneck: bool, device: &Device) -> Self {
        let c_out = if bottleneck { width * 4 } else { width };
        let downsample = if stride != 1 || c_in != c_out {
            vec![
                Layer::Conv(conv([c_in, c_out], [1, 1], stride, [0, 0], false, device)),
                Layer::Bn(batch_norm(c_out, EPS, device)),
            ]
        } else {
            vec![]
        };
        // torchvision (v1.5) puts the stride on the 3×3 conv in both kinds of block.
        let (conv1, conv2, conv3) = if bottleneck {
            (
                conv([c_in, width], [1, 1], 1, [0, 0], false, device),
                conv([width, width], [3, 3], stride, [1, 1], false, device),
                Some(conv([width, c_out], [1, 1], 1, [0, 0], false, device)),
            )
        } else {
            (
                conv([c_in, width], [3, 3], stride, [1, 1], false, device),
                conv([width, width], [3, 3], 1, [1, 1], false, device),
                None,
            )
        };
        Block {
            conv1,
            bn1: batch_norm(width, EPS, device),
            conv2,
            bn2: batch_norm(width, EPS, device),
            bn3: conv3.as_ref().map(|_| batch_norm(c_out, EPS, device)),
            conv3,
            downsample,
            relu: Relu::new(),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let identity = if self.downsample.is_empty() {
            x.clone()
        } else {
            sequential(&self.downsample, x.clone())
        };
        let out = self
            .relu
            .forward(self.bn1.forward(kernels::conv2d(&self.conv1, x)));
        let out = self.bn2.forward(kernels::conv2d(&self.conv2, out));
        let out = match (&self.conv3, &self.bn3) {
            (Some(conv3), Some(bn3)) => bn3.forward(kernels::conv2d(conv3, self.relu.forward(out))),
            _ => out,
        };
        self.relu.forward(out + identity)
    }
}

#[derive(Module, Debug)]
pub struct ResNet {
    conv1: Conv2d,
    bn1: BatchNorm,
    /// Absent in the small-input stem.
    maxpool: Option<burn::nn::pool::MaxPool2d>,
    layer1: Vec<Block>,
    layer2: Vec<Block>,
    layer3: Vec<Block>,
    layer4: Vec<Block>,
    relu: Relu,
    avgpool: AdaptiveAvgPool2d,
}

impl ResNet {
    pub fn new(depth: Depth, small_input: bool, device: &Device) -> Self {
        let (conv1, maxpool) = if small_input {
            (conv([3, 64], [3, 3], 1, [1, 1], false, device), None)
        } else {
            (
                conv([3, 64], [7, 7], 2, [3, 3], false, device),
                Some(max_pool(3, 2, 1)),
            )
        };
        let mut c_in = 64;
        let mut stage = |i: usize| {
            let width = 64 << i;
            (0..depth.blocks[i])
                .map(|b| {
                    let stride = if i > 0 && b == 0 { 2 } else { 1 };
                    let block = Block::new(c_in, width, stride, depth.bottleneck, device);
                    c_in = if depth.bottleneck { width * 4 } else { width };
                    block
                })
                .collect::<Vec<_>>()
        };
        let (layer1, layer2, layer3, layer4) = (stage(0), stage(1), stage(2), stage(3));
        ResNet {
            conv1,
            bn1: batch_norm(64, EPS, device),
            maxpool,
            layer1,
            layer2,
            layer3,
            layer4,
            relu: Relu::new(),
            avgpool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
        }
    }

    /// Stages for freezing and layer-wise rates: the stem, then `layer1` … `layer4`.
    pub fn stages(&self) -> Vec<ParamGroup> {
        vec![
            union([
                ParamGroup::ids_from_module(self.conv1.clone()),
                ParamGroup::ids_from_module(self.bn1.clone()),
            ]),
            ParamGroup::ids_from_module(self.layer1.clone()),
            ParamGroup::ids_from_module(self.layer2.clone()),
            ParamGroup::ids_from_module(self.layer3.clone()),
            ParamGroup::ids_from_module(self.layer4.clone()),
        ]
    }

    /// `[B, 3, H, W]` → `[B, 512]` (or 2048 with bottlenecks).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x = self
            .relu
            .forward(self.bn1.forward(kernels::conv2d(&self.conv1, x)));
        if let Some(pool) = &self.maxpool {
            x = kernels::max_pool2d(pool, x);
        }
        for stage in [&self.layer1, &self.layer2, &self.layer3, &self.layer4] {
            x = stage.iter().fold(x, |x, block| block.forward(x));
        }
        self.avgpool.forward(x).flatten(1, 3)
    }
}
