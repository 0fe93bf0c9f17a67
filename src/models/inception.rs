//! Inception v3, laid out as torchvision's `inception_v3` (`Conv2d_1a_3x3`, `Mixed_5b`, …,
//! `AuxLogits`), so its `state_dict` maps name for name; torchvision's `fc` is our head.
//!
//! torchvision's `transform_input=True` (used with its ImageNet weights) only re-normalises
//! ImageNet-normalised input to mean 0.5 / std 0.5 per channel; pretune gets the same effect by
//! storing that normalisation in the checkpoint, so the network itself never transforms input.
//! The auxiliary classifier is optional: kept when imported weights have one (and exported
//! again), never used for predictions (as in torchvision's eval mode).
#![allow(non_snake_case)]

use burn::module::ParamGroup;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, AvgPool2d, AvgPool2dConfig};
use burn::nn::{BatchNorm, Dropout, DropoutConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;

use super::layers::{batch_norm, conv, max_pool, union};
use crate::kernels;

pub const FEATURES: usize = 2048;

/// Conv (no bias) + BN (eps 0.001) + ReLU: torchvision's `BasicConv2d`.
#[derive(Module, Debug)]
pub struct BasicConv2d {
    conv: Conv2d,
    bn: BatchNorm,
}

impl BasicConv2d {
    fn new(
        c: [usize; 2],
        kernel: [usize; 2],
        stride: usize,
        padding: [usize; 2],
        device: &Device,
    ) -> Self {
        BasicConv2d {
            conv: conv(c, kernel, stride, padding, false, device),
            bn: batch_norm(c[1], 1e-3, device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        burn::tensor::activation::relu(self.bn.forward(kernels::conv2d(&self.conv, x)))
    }
}

fn c1(c_in: usize, c_out: usize, d: &Device) -> BasicConv2d {
    BasicConv2d::new([c_in, c_out], [1, 1], 1, [0, 0], d)
}
fn c3(c_in: usize, c_out: usize, stride: usize, pad: usize, d: &Device) -> BasicConv2d {
    BasicConv2d::new([c_in, c_out], [3, 3], stride, [pad, pad], d)
}
/// 1×n (`wide`) or n×1 conv with "same" padding.
fn c1n(c_in: usize, c_out: usize, n: usize, wide: bool, d: &Device) -> BasicConv2d {
    let (kernel, pad) = if wide {
        ([1, n], [0, n / 2])
    } else {
        ([n, 1], [n / 2, 0])
    };
    BasicConv2d::new([c_in, c_out], kernel, 1, pad, d)
}

/// 3×3 average pool, stride 1, padding 1 (zeros counted, as `F.avg_pool2d`).
fn avg3() -> AvgPool2d {
    AvgPool2dConfig::new([3, 3])
        .with_strides([1, 1])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init()
}

fn max3s2(x: Tensor<4>) -> Tensor<4> {
    kernels::max_pool2d(&max_pool(3, 2, 0), x)
}

#[derive(Module, Debug)]
pub struct InceptionA {
    branch1x1: BasicConv2d,
    branch5x5_1: BasicConv2d,
    branch5x5_2: BasicConv2d,
    branch3x3dbl_1: BasicConv2d,
    branch3x3dbl_2: BasicConv2d,
    branch3x3dbl_3: BasicConv2d,
    branch_pool: BasicConv2d,
    pool: AvgPool2d,
}

impl InceptionA {
    fn new(c: usize, pool_features: usize, d: &Device) -> Self {
        InceptionA {
            branch1x1: c1(c, 64, d),
            branch5x5_1: c1(c, 48, d),
            branch5x5_2: BasicConv2d::new([48, 64], [5, 5], 1, [2, 2], d),
            branch3x3dbl_1: c1(c, 64, d),
            branch3x3dbl_2: c3(64, 96, 1, 1, d),
            branch3x3dbl_3: c3(96, 96, 1, 1, d),
            branch_pool: c1(c, pool_features, d),
            pool: avg3(),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b1 = self.branch1x1.forward(x.clone());
        let b5 = self
            .branch5x5_2
            .forward(self.branch5x5_1.forward(x.clone()));
        let b3 = self.branch3x3dbl_1.forward(x.clone());
        let b3 = self.branch3x3dbl_3.forward(self.branch3x3dbl_2.forward(b3));
        let bp = self.branch_pool.forward(self.pool.forward(x));
        Tensor::cat(vec![b1, b5, b3, bp], 1)
    }
}

#[derive(Module, Debug)]
pub struct InceptionB {
    branch3x3: BasicConv2d,
    branch3x3dbl_1: BasicConv2d,
    branch3x3dbl_2: BasicConv2d,
    branch3x3dbl_3: BasicConv2d,
}

impl InceptionB {
    fn new(c: usize, d: &Device) -> Self {
        InceptionB {
            branch3x3: c3(c, 384, 2, 0, d),
            branch3x3dbl_1: c1(c, 64, d),
            branch3x3dbl_2: c3(64, 96, 1, 1, d),
            branch3x3dbl_3: c3(96, 96, 2, 0, d),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b3 = self.branch3x3.forward(x.clone());
        let bd = self.branch3x3dbl_1.forward(x.clone());
        let bd = self.branch3x3dbl_3.forward(self.branch3x3dbl_2.forward(bd));
        Tensor::cat(vec![b3, bd, max3s2(x)], 1)
    }
}

#[derive(Module, Debug)]
pub struct InceptionC {
    branch1x1: BasicConv2d,
    branch7x7_1: BasicConv2d,
    branch7x7_2: BasicConv2d,
    branch7x7_3: BasicConv2d,
    branch7x7dbl_1: BasicConv2d,
    branch7x7dbl_2: BasicConv2d,
    branch7x7dbl_3: BasicConv2d,
    branch7x7dbl_4: BasicConv2d,
    branch7x7dbl_5: BasicConv2d,
    branch_pool: BasicConv2d,
    pool: AvgPool2d,
}

impl InceptionC {
    fn new(c: usize, c7: usize, d: &Device) -> Self {
        InceptionC {
            branch1x1: c1(c, 192, d),
            branch7x7_1: c1(c, c7, d),
            branch7x7_2: c1n(c7, c7, 7, true, d),
            branch7x7_3: c1n(c7, 192, 7, false, d),
            branch7x7dbl_1: c1(c, c7, d),
            branch7x7dbl_2: c1n(c7, c7, 7, false, d),
            branch7x7dbl_3: c1n(c7, c7, 7, true, d),
            branch7x7dbl_4: c1n(c7, c7, 7, false, d),
            branch7x7dbl_5: c1n(c7, 192, 7, true, d),
            branch_pool: c1(c, 192, d),
            pool: avg3(),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b1 = self.branch1x1.forward(x.clone());
        let b7 = [&self.branch7x7_1, &self.branch7x7_2, &self.branch7x7_3]
            .iter()
            .fold(x.clone(), |x, m| m.forward(x));
        let bd = [
            &self.branch7x7dbl_1,
            &self.branch7x7dbl_2,
            &self.branch7x7dbl_3,
            &self.branch7x7dbl_4,
            &self.branch7x7dbl_5,
        ]
        .iter()
        .fold(x.clone(), |x, m| m.forward(x));
        let bp = self.branch_pool.forward(self.pool.forward(x));
        Tensor::cat(vec![b1, b7, bd, bp], 1)
    }
}

#[derive(Module, Debug)]
pub struct InceptionD {
    branch3x3_1: BasicConv2d,
    branch3x3_2: BasicConv2d,
    branch7x7x3_1: BasicConv2d,
    branch7x7x3_2: BasicConv2d,
    branch7x7x3_3: BasicConv2d,
    branch7x7x3_4: BasicConv2d,
}

impl InceptionD {
    fn new(c: usize, d: &Device) -> Self {
        InceptionD {
            branch3x3_1: c1(c, 192, d),
            branch3x3_2: c3(192, 320, 2, 0, d),
            branch7x7x3_1: c1(c, 192, d),
            branch7x7x3_2: c1n(192, 192, 7, true, d),
            branch7x7x3_3: c1n(192, 192, 7, false, d),
            branch7x7x3_4: c3(192, 192, 2, 0, d),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b3 = self
            .branch3x3_2
            .forward(self.branch3x3_1.forward(x.clone()));
        let b7 = [
            &self.branch7x7x3_1,
            &self.branch7x7x3_2,
            &self.branch7x7x3_3,
            &self.branch7x7x3_4,
        ]
        .iter()
        .fold(x.clone(), |x, m| m.forward(x));
        Tensor::cat(vec![b3, b7, max3s2(x)], 1)
    }
}

#[derive(Module, Debug)]
pub struct InceptionE {
    branch1x1: BasicConv2d,
    branch3x3_1: BasicConv2d,
    branch3x3_2a: BasicConv2d,
    branch3x3_2b: BasicConv2d,
    branch3x3dbl_1: BasicConv2d,
    branch3x3dbl_2: BasicConv2d,
    branch3x3dbl_3a: BasicConv2d,
    branch3x3dbl_3b: BasicConv2d,
    branch_pool: BasicConv2d,
    pool: AvgPool2d,
}

impl InceptionE {
    fn new(c: usize, d: &Device) -> Self {
        InceptionE {
            branch1x1: c1(c, 320, d),
            branch3x3_1: c1(c, 384, d),
            branch3x3_2a: c1n(384, 384, 3, true, d),
            branch3x3_2b: c1n(384, 384, 3, false, d),
            branch3x3dbl_1: c1(c, 448, d),
            branch3x3dbl_2: c3(448, 384, 1, 1, d),
            branch3x3dbl_3a: c1n(384, 384, 3, true, d),
            branch3x3dbl_3b: c1n(384, 384, 3, false, d),
            branch_pool: c1(c, 192, d),
            pool: avg3(),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b1 = self.branch1x1.forward(x.clone());
        let b3 = self.branch3x3_1.forward(x.clone());
        let b3 = Tensor::cat(
            vec![
                self.branch3x3_2a.forward(b3.clone()),
                self.branch3x3_2b.forward(b3),
            ],
            1,
        );
        let bd = self
            .branch3x3dbl_2
            .forward(self.branch3x3dbl_1.forward(x.clone()));
        let bd = Tensor::cat(
            vec![
                self.branch3x3dbl_3a.forward(bd.clone()),
                self.branch3x3dbl_3b.forward(bd),
            ],
            1,
        );
        let bp = self.branch_pool.forward(self.pool.forward(x));
        Tensor::cat(vec![b1, b3, bd, bp], 1)
    }
}

/// The auxiliary classifier on `Mixed_6e`'s output.
#[derive(Module, Debug)]
pub struct InceptionAux {
    conv0: BasicConv2d,
    conv1: BasicConv2d,
    fc: Linear,
}

impl InceptionAux {
    fn new(c: usize, num_classes: usize, d: &Device) -> Self {
        InceptionAux {
            conv0: c1(c, 128, d),
            conv1: BasicConv2d::new([128, 768], [5, 5], 1, [0, 0], d),
            fc: LinearConfig::new(768, num_classes).init(d),
        }
    }
}

#[derive(Module, Debug)]
pub struct Inception3 {
    Conv2d_1a_3x3: BasicConv2d,
    Conv2d_2a_3x3: BasicConv2d,
    Conv2d_2b_3x3: BasicConv2d,
    Conv2d_3b_1x1: BasicConv2d,
    Conv2d_4a_3x3: BasicConv2d,
    Mixed_5b: InceptionA,
    Mixed_5c: InceptionA,
    Mixed_5d: InceptionA,
    Mixed_6a: InceptionB,
    Mixed_6b: InceptionC,
    Mixed_6c: InceptionC,
    Mixed_6d: InceptionC,
    Mixed_6e: InceptionC,
    AuxLogits: Option<InceptionAux>,
    Mixed_7a: InceptionD,
    Mixed_7b: InceptionE,
    Mixed_7c: InceptionE,
    avgpool: AdaptiveAvgPool2d,
    dropout: Dropout,
}

impl Inception3 {
    /// Whether the model carries the auxiliary classifier.
    pub fn has_aux(&self) -> bool {
        self.AuxLogits.is_some()
    }

    /// `aux_classes`: build the auxiliary classifier for that many classes.
    pub fn new(aux_classes: Option<usize>, d: &Device) -> Self {
        Inception3 {
            Conv2d_1a_3x3: c3(3, 32, 2, 0, d),
            Conv2d_2a_3x3: c3(32, 32, 1, 0, d),
            Conv2d_2b_3x3: c3(32, 64, 1, 1, d),
            Conv2d_3b_1x1: c1(64, 80, d),
            Conv2d_4a_3x3: c3(80, 192, 1, 0, d),
            Mixed_5b: InceptionA::new(192, 32, d),
            Mixed_5c: InceptionA::new(256, 64, d),
            Mixed_5d: InceptionA::new(288, 64, d),
            Mixed_6a: InceptionB::new(288, d),
            Mixed_6b: InceptionC::new(768, 128, d),
            Mixed_6c: InceptionC::new(768, 160, d),
            Mixed_6d: InceptionC::new(768, 160, d),
            Mixed_6e: InceptionC::new(768, 192, d),
            AuxLogits: aux_classes.map(|n| InceptionAux::new(768, n, d)),
            Mixed_7a: InceptionD::new(768, d),
            Mixed_7b: InceptionE::new(1280, d),
            Mixed_7c: InceptionE::new(2048, d),
            avgpool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            dropout: DropoutConfig::new(0.5).init(),
        }
    }

    /// Stages: the stem convs, then the 35×35, 17×17 and 8×8 Inception blocks.
    pub fn stages(&self) -> Vec<ParamGroup> {
        let ids = ParamGroup::ids_from_module::<BasicConv2d>;
        vec![
            union([
                ids(self.Conv2d_1a_3x3.clone()),
                ids(self.Conv2d_2a_3x3.clone()),
                ids(self.Conv2d_2b_3x3.clone()),
                ids(self.Conv2d_3b_1x1.clone()),
                ids(self.Conv2d_4a_3x3.clone()),
            ]),
            ParamGroup::ids_from_module(vec![
                self.Mixed_5b.clone(),
                self.Mixed_5c.clone(),
                self.Mixed_5d.clone(),
            ]),
            union([
                ParamGroup::ids_from_module(self.Mixed_6a.clone()),
                ParamGroup::ids_from_module(vec![
                    self.Mixed_6b.clone(),
                    self.Mixed_6c.clone(),
                    self.Mixed_6d.clone(),
                    self.Mixed_6e.clone(),
                ]),
                ParamGroup::ids_from_module(self.AuxLogits.clone()),
            ]),
            union([
                ParamGroup::ids_from_module(self.Mixed_7a.clone()),
                ParamGroup::ids_from_module(vec![self.Mixed_7b.clone(), self.Mixed_7c.clone()]),
            ]),
        ]
    }

    /// `[B, 3, 299, 299]` (at least 75×75) → `[B, 2048]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = self
            .Conv2d_2b_3x3
            .forward(self.Conv2d_2a_3x3.forward(self.Conv2d_1a_3x3.forward(x)));
        let x = max3s2(x);
        let x = self.Conv2d_4a_3x3.forward(self.Conv2d_3b_1x1.forward(x));
        let x = max3s2(x);
        let x = self
            .Mixed_5d
            .forward(self.Mixed_5c.forward(self.Mixed_5b.forward(x)));
        let x = self.Mixed_6a.forward(x);
        let x = self.Mixed_6e.forward(
            self.Mixed_6d
                .forward(self.Mixed_6c.forward(self.Mixed_6b.forward(x))),
        );
        let x = self
            .Mixed_7c
            .forward(self.Mixed_7b.forward(self.Mixed_7a.forward(x)));
        kernels::dropout(&self.dropout, self.avgpool.forward(x).flatten(1, 3))
    }
}
