//! Building blocks shared by the torchvision-style architectures.
//!
//! [`Layer`] and [`Dense`] let a `Vec` stand for a PyTorch `nn.Sequential`: position `i` in
//! the `Vec` is module `i` of the Sequential, so tensor names line up one to one with
//! torchvision's (`features.3.weight`) once enum variant names are skipped.

use burn::module::ParamGroup;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Gelu, Initializer, Linear, LinearConfig,
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
    conv_config(channels, kernel, stride, bias)
        .with_padding(PaddingConfig2d::Explicit(
            padding[0], padding[1], padding[0], padding[1],
        ))
        .init(device)
}

/// [`conv`]'s configuration without the padding, for other paddings and groups.
pub fn conv_config(
    channels: [usize; 2],
    kernel: [usize; 2],
    stride: usize,
    bias: bool,
) -> Conv2dConfig {
    Conv2dConfig::new(channels, kernel)
        .with_stride([stride, stride])
        .with_bias(bias)
        .with_initializer(Initializer::KaimingNormal {
            gain: std::f64::consts::SQRT_2,
            fan_out_only: true,
        })
}

/// `nn.BatchNorm2d(channels, eps=epsilon)` (momentum 0.1, as PyTorch).
pub fn batch_norm(channels: usize, epsilon: f64, device: &Device) -> BatchNorm {
    batch_norm_with(channels, epsilon, 0.1, device)
}

/// `nn.BatchNorm2d(channels, eps=epsilon, momentum=momentum)`.
pub fn batch_norm_with(channels: usize, epsilon: f64, momentum: f64, device: &Device) -> BatchNorm {
    BatchNormConfig::new(channels)
        .with_epsilon(epsilon)
        .with_momentum(momentum)
        .init(device)
}

/// Stochastic depth (timm's drop path, EfficientNet's drop-connect) of a residual branch `x`:
/// while training, each example's branch is dropped with probability `layer.prob` and the kept
/// ones scaled by `1 / (1 - prob)`; the identity in evaluation or when frozen. The mask comes
/// from our dropout kernel on a ones tensor, so it follows the run's seed as dropout does.
pub fn drop_path<const D: usize>(layer: &Dropout, x: Tensor<D>) -> Tensor<D> {
    let device = x.device();
    if !layer.training.is_enabled() || !device.is_autodiff() || layer.prob == 0.0 {
        return x;
    }
    let mut shape = [1; D];
    shape[0] = x.dims()[0];
    x * kernels::dropout(layer, Tensor::ones(shape, &device))
}

/// Scaled dot-product attention of `heads` heads over `[batch, tokens, width]` queries, keys
/// and values (each head a contiguous slice of the width), with an additive `bias` on the
/// scores (a padding mask) and dropout on the attention weights.
pub fn attention(
    [q, k, v]: [Tensor<3>; 3],
    heads: usize,
    bias: Option<Tensor<4>>,
    dropout: &Dropout,
) -> Tensor<3> {
    attend_heads(
        split_heads(q, heads),
        split_heads(k, heads),
        split_heads(v, heads),
        bias,
        dropout,
    )
}

/// `[B, T, width]` → `[B, heads, T, width / heads]`.
pub fn split_heads(y: Tensor<3>, heads: usize) -> Tensor<4> {
    let [b, t, h] = y.dims();
    y.reshape([b, t, heads, h / heads]).swap_dims(1, 2)
}

/// [`attention`] on queries `[B, heads, T, d]` and keys and values `[B, heads, S, d]` already
/// split into heads (a decoder's cached keys and values are kept so); `[B, T, heads · d]` out.
pub fn attend_heads(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    bias: Option<Tensor<4>>,
    dropout: &Dropout,
) -> Tensor<3> {
    let [b, heads, t, d] = q.dims();
    let scores = q.matmul(k.swap_dims(2, 3)).div_scalar((d as f64).sqrt());
    let scores = match bias {
        Some(bias) => scores + bias,
        None => scores,
    };
    let probs = kernels::dropout(dropout, kernels::softmax(scores, 3));
    probs.matmul(v).swap_dims(1, 2).reshape([b, t, heads * d])
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
    Gelu(Gelu),
    Dropout(Dropout),
}

impl Dense {
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Dense::Linear(m) => m.forward(x),
            Dense::Relu(m) => m.forward(x),
            Dense::Gelu(_) => kernels::gelu(x),
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
