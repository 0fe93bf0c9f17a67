//! VGG-11/16/19, with or without batch norm, laid out as torchvision's `vgg*`/`vgg*_bn`:
//! `features` is the convolutional Sequential (same indices), `classifier.0`–`.5` the two
//! 4096-wide layers (our backbone's end); torchvision's `classifier.6` is our head.

use burn::module::ParamGroup;
use burn::nn::Relu;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use burn::prelude::*;

use super::layers::{Dense, Layer, batch_norm, conv, dropout, linear, max_pool, sequential};

/// Output channels of each conv, 0 for a 2×2 max-pool (torchvision's `cfgs`).
pub const VGG11: &[usize] = &[64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0];
pub const VGG16: &[usize] = &[
    64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0,
];
pub const VGG19: &[usize] = &[
    64, 64, 0, 128, 128, 0, 256, 256, 256, 256, 0, 512, 512, 512, 512, 0, 512, 512, 512, 512, 0,
];

pub const FEATURES: usize = 4096;

#[derive(Module, Debug)]
pub struct Vgg {
    features: Vec<Layer>,
    avgpool: AdaptiveAvgPool2d,
    classifier: Vec<Dense>,
}

impl Vgg {
    pub fn new(config: &[usize], batch_norm_: bool, device: &Device) -> Self {
        let mut features = Vec::new();
        let mut c_in = 3;
        for &c in config {
            if c == 0 {
                features.push(Layer::MaxPool(max_pool(2, 2, 0)));
                continue;
            }
            features.push(Layer::Conv(conv(
                [c_in, c],
                [3, 3],
                1,
                [1, 1],
                true,
                device,
            )));
            if batch_norm_ {
                features.push(Layer::Bn(batch_norm(c, 1e-5, device)));
            }
            features.push(Layer::Relu(Relu::new()));
            c_in = c;
        }
        Vgg {
            features,
            avgpool: AdaptiveAvgPool2dConfig::new([7, 7]).init(),
            classifier: vec![
                linear(512 * 7 * 7, FEATURES, device),
                Dense::Relu(Relu::new()),
                dropout(0.5),
                linear(FEATURES, FEATURES, device),
                Dense::Relu(Relu::new()),
                dropout(0.5),
            ],
        }
    }

    /// Stages: the five conv blocks (each ends at a max-pool), then the fully connected layers.
    pub fn stages(&self) -> Vec<ParamGroup> {
        let mut stages = Vec::new();
        let mut block = Vec::new();
        for layer in &self.features {
            let is_pool = matches!(layer, Layer::MaxPool(_));
            block.push(layer.clone());
            if is_pool {
                stages.push(ParamGroup::ids_from_module(std::mem::take(&mut block)));
            }
        }
        stages.push(ParamGroup::ids_from_module(self.classifier.clone()));
        stages
    }

    /// `[B, 3, H, W]` (H, W ≥ 32) → `[B, 4096]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = self.avgpool.forward(sequential(&self.features, x));
        let x = x.flatten(1, 3);
        self.classifier.iter().fold(x, |x, layer| layer.forward(x))
    }
}
