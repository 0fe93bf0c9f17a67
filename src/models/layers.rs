//! Building blocks shared by the torchvision-style architectures.
//!
//! [`Layer`] and [`Dense`] let a `Vec` stand for a PyTorch `nn.Sequential`: position `i` in
//! the `Vec` is module `i` of the Sequential, so tensor names line up one to one with
//! torchvision's (`features.3.weight`) once enum variant names are skipped.

use burn::module::ParamGroup;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Initializer, Linear, LinearConfig,
    PaddingConfig2d, Relu,
};
use burn::prelude::*;

use crate::kernels;

/// A convolution laid out like `nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=bias)`,
/// initialised as torchvision does (Kaiming normal, fan-out, for ReLU).
pub fn conv(
    channels: [usize; 2],
    kernel: [usize; 2],
    stride: usize,
    padding: [usize; 2],
    bias: bool,
    device: &Device,
) -> Conv2d {
    Conv2dConfig::new(channels, kernel)
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(
            padding[0], padding[1], padding[0], padding[1],
        ))
        .with_bias(bias)
        .with_initializer(Initializer::KaimingNormal {
            gain: std::f64::consts::SQRT_2,
            fan_out_only: true,
        })
        .init(device)
}

/// `nn.BatchNorm2d(channels, eps=epsilon)` (momentum 0.1, as PyTorch).
pub fn batch_norm(channels: usize, epsilon: f64, device: &Device) -> BatchNorm {
    BatchNormConfig::new(channels)
        .with_epsilon(epsilon)
        .init(device)
}

/// `nn.MaxPool2d(kernel, stride, padding)`.
pub fn max_pool(kernel: usize, stride: usize, padding: usize) -> MaxPool2d {
    MaxPool2dConfig::new([kernel, kernel])
        .with_strides([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(
            padding, padding, padding, padding,
        ))
        .init()
}

/// One module of a convolutional `nn.Sequential`.
#[derive(Module, Debug)]
pub enum Layer {
    Conv(Conv2d),
    Bn(BatchNorm),
    Relu(Relu),
    MaxPool(MaxPool2d),
}

impl Layer {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Layer::Conv(m) => kernels::conv2d(m, x),
            Layer::Bn(m) => m.forward(x),
            Layer::Relu(m) => m.forward(x),
            Layer::MaxPool(m) => kernels::max_pool2d(m, x),
        }
    }
}

/// Run a convolutional Sequential.
pub fn sequential(layers: &[Layer], x: Tensor<4>) -> Tensor<4> {
    layers.iter().fold(x, |x, layer| layer.forward(x))
}

/// One module of a fully connected `nn.Sequential`.
#[derive(Module, Debug)]
pub enum Dense {
    Linear(Linear),
    Relu(Relu),
    Dropout(Dropout),
}

impl Dense {
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        match self {
            Dense::Linear(m) => m.forward(x),
            Dense::Relu(m) => m.forward(x),
            Dense::Dropout(m) => kernels::dropout(m, x),
        }
    }
}

/// `nn.Linear(c_in, c_out)`, `nn.ReLU`, `nn.Dropout(p)`.
pub fn linear(c_in: usize, c_out: usize, device: &Device) -> Dense {
    Dense::Linear(LinearConfig::new(c_in, c_out).init(device))
}

pub fn dropout(p: f64) -> Dense {
    Dense::Dropout(DropoutConfig::new(p).init())
}

/// The parameters of all `groups` together.
pub fn union<const N: usize>(groups: [ParamGroup; N]) -> ParamGroup {
    groups
        .into_iter()
        .reduce(|a, b| a.fuse(&b))
        .expect("at least one group")
}
