//! The seed's small CNN for 28×28 grayscale images.
//!
//! conv 1→32 3×3 pad 1, ReLU, max-pool 2; conv 32→64 3×3 pad 1, ReLU, max-pool 2;
//! fc 3136→128, ReLU. The 128-d output is the feature vector the head classifies.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d, Relu};
use burn::prelude::*;

use crate::kernels;

/// Input the CNN expects: channels, height, width.
pub const INPUT: [usize; 3] = [1, 28, 28];
/// Size of the feature vector.
pub const FEATURES: usize = 128;

/// Backbone of the seed's CNN: two conv blocks and one fully connected layer.
#[derive(Module, Debug)]
pub struct Cnn {
    pub conv1: Conv2d,
    pub conv2: Conv2d,
    pub fc1: Linear,
    pool: MaxPool2d,
    act: Relu,
}

impl Cnn {
    pub fn new(device: &Device) -> Self {
        let conv = |c_in, c_out| {
            Conv2dConfig::new([c_in, c_out], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device)
        };
        Self {
            conv1: conv(1, 32),
            conv2: conv(32, 64),
            fc1: LinearConfig::new(64 * 7 * 7, FEATURES).init(device),
            pool: MaxPool2dConfig::new([2, 2]).init(),
            act: Relu::new(),
        }
    }

    /// `[B, 1, 28, 28]` → `[B, 128]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        // max-pool then ReLU: the same values as ReLU then max-pool (both are monotone), with
        // ReLU on a quarter of the elements.
        let block = |conv, x| {
            self.act
                .forward(kernels::max_pool2d(&self.pool, kernels::conv2d(conv, x)))
        };
        let x = block(&self.conv1, x);
        let x = block(&self.conv2, x);
        let [b, c, h, w] = x.dims();
        self.act
            .forward(self.fc1.forward(x.reshape([b, c * h * w])))
    }
}
