//! Vision Transformer (ViT-B/16), laid out as torchvision's `VisionTransformer` so its
//! `state_dict` maps onto it name for name: `class_token`, `conv_proj`,
//! `encoder.pos_embedding`, `encoder.layers.encoder_layer_N.{ln_1, self_attention, ln_2,
//! mlp.0, mlp.3}`, `encoder.ln`; its `heads.head` is our head.
//!
//! Pre-norm encoder blocks, LayerNorm eps 1e-6, exact GELU, the class token's output as the
//! features. Unlike torchvision, any square input that is a multiple of the patch size works:
//! the position embeddings are resampled for it ([`resample_positions`], timm's
//! `resample_abs_pos_embed`).

use burn::module::{Param, ParamGroup};
use burn::nn::conv::Conv2d;
use burn::nn::{Dropout, DropoutConfig, Gelu, Initializer, LayerNorm, LayerNormConfig, Linear};
use burn::nn::{LinearConfig, PaddingConfig2d};
use burn::prelude::*;

use super::layers::{Dense, attention, conv_config, union};
use super::named::Named;
use crate::kernels;

/// The sizes of a ViT.
#[derive(Debug, Clone, Copy)]
pub struct VitConfig {
    /// Side of the square patches (and of the patch projection's kernel and stride).
    pub patch: usize,
    /// Encoder blocks.
    pub layers: usize,
    /// Attention heads.
    pub heads: usize,
    /// Token width.
    pub hidden: usize,
    /// Width of each block's MLP.
    pub mlp: usize,
}

/// ViT-B/16: 12 layers, 12 heads, 768 wide, 86.6M parameters.
pub const VIT_B_16: VitConfig = VitConfig {
    patch: 16,
    layers: 12,
    heads: 12,
    hidden: 768,
    mlp: 3072,
};

const EPS: f64 = 1e-6;
/// PyTorch name of the position embeddings.
pub const POSITIONS: &str = "encoder.pos_embedding";

fn layer_norm(width: usize, device: &Device) -> LayerNorm {
    LayerNormConfig::new(width).with_epsilon(EPS).init(device)
}

/// `nn.MultiheadAttention(batch_first=True)`: the query, key and value projections stacked in
/// one `[3·width, width]` matrix, as PyTorch stores them.
#[derive(Module, Debug)]
pub struct SelfAttention {
    in_proj_weight: Param<Tensor<2>>,
    in_proj_bias: Param<Tensor<1>>,
    out_proj: Linear,
    heads: usize,
    dropout: Dropout,
}

impl SelfAttention {
    fn new(c: &VitConfig, device: &Device) -> Self {
        let h = c.hidden;
        SelfAttention {
            in_proj_weight: Initializer::XavierUniform { gain: 1.0 }.init_with(
                [3 * h, h],
                Some(h),
                Some(3 * h),
                device,
            ),
            in_proj_bias: Initializer::Zeros.init([3 * h], device),
            out_proj: LinearConfig::new(h, h).init(device),
            heads: c.heads,
            dropout: DropoutConfig::new(0.0).init(),
        }
    }

    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, t, h] = x.dims();
        let qkv = x
            .reshape([b * t, h])
            .matmul(self.in_proj_weight.val().transpose())
            + self.in_proj_bias.val().unsqueeze();
        let [q, k, v] = [0, 1, 2].map(|i| qkv.clone().narrow(1, i * h, h).reshape([b, t, h]));
        self.out_proj
            .forward(attention([q, k, v], self.heads, None, &self.dropout))
    }
}

/// One pre-norm encoder block.
#[derive(Module, Debug)]
pub struct EncoderBlock {
    ln_1: LayerNorm,
    self_attention: SelfAttention,
    ln_2: LayerNorm,
    /// `mlp.0` Linear, GELU, dropout, `mlp.3` Linear, dropout.
    mlp: Vec<Dense>,
}

impl EncoderBlock {
    fn new(c: &VitConfig, device: &Device) -> Self {
        let linear = |i, o| {
            Dense::Linear(
                LinearConfig::new(i, o)
                    .with_initializer(Initializer::XavierUniform { gain: 1.0 })
                    .init(device),
            )
        };
        let dropout = || Dense::Dropout(DropoutConfig::new(0.0).init());
        EncoderBlock {
            ln_1: layer_norm(c.hidden, device),
            self_attention: SelfAttention::new(c, device),
            ln_2: layer_norm(c.hidden, device),
            mlp: vec![
                linear(c.hidden, c.mlp),
                Dense::Gelu(Gelu::new()),
                dropout(),
                linear(c.mlp, c.hidden),
                dropout(),
            ],
        }
    }

    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let x = x.clone() + self.self_attention.forward(self.ln_1.forward(x));
        let y = self
            .mlp
            .iter()
            .fold(self.ln_2.forward(x.clone()), |y, m| m.forward(y));
        x + y
    }
}

/// torchvision's `Encoder`.
#[derive(Module, Debug)]
pub struct Encoder {
    pos_embedding: Param<Tensor<3>>,
    /// `layers.encoder_layer_0`, … (an `nn.Sequential` built from an `OrderedDict`).
    layers: Named<EncoderBlock>,
    ln: LayerNorm,
}

/// The ViT backbone: images to the final-normed class token.
#[derive(Module, Debug)]
pub struct VisionTransformer {
    class_token: Param<Tensor<3>>,
    conv_proj: Conv2d,
    encoder: Encoder,
}

impl VisionTransformer {
    /// A ViT for square `image_size` inputs (a multiple of the patch size).
    pub fn new(c: &VitConfig, image_size: usize, device: &Device) -> Self {
        let grid = image_size / c.patch;
        let fan_in = 3 * c.patch * c.patch;
        let conv_proj = conv_config([3, c.hidden], [c.patch, c.patch], c.patch, true)
            .with_padding(PaddingConfig2d::Valid)
            .with_initializer(Initializer::Normal {
                mean: 0.0,
                std: (1.0 / fan_in as f64).sqrt(),
            })
            .init(device);
        VisionTransformer {
            class_token: Initializer::Zeros.init([1, 1, c.hidden], device),
            conv_proj,
            encoder: Encoder {
                pos_embedding: Initializer::Normal {
                    mean: 0.0,
                    std: 0.02,
                }
                .init([1, 1 + grid * grid, c.hidden], device),
                layers: Named::new(
                    "encoder_layer_",
                    (0..c.layers)
                        .map(|_| EncoderBlock::new(c, device))
                        .collect(),
                ),
                ln: layer_norm(c.hidden, device),
            },
        }
    }

    /// Stages for freezing and layer-wise rates (timm's grouping): the embeddings (class
    /// token, patch projection, position embeddings), each encoder block, the final norm.
    pub fn stages(&self) -> Vec<ParamGroup> {
        let mut stages = vec![union([
            ParamGroup::ids_from_module(self.conv_proj.clone()),
            ParamGroup::from_ids(vec![self.class_token.id, self.encoder.pos_embedding.id]),
        ])];
        stages.extend(
            self.encoder
                .layers
                .iter()
                .map(|block| ParamGroup::ids_from_module(block.clone())),
        );
        stages.push(ParamGroup::ids_from_module(self.encoder.ln.clone()));
        stages
    }

    /// The same model for square inputs of `image_size`: the position embeddings of the patch
    /// grid resampled (bicubic) to the new grid, the class token's kept.
    pub fn resized(mut self, image_size: usize) -> Self {
        let patch = self.conv_proj.kernel_size[0];
        let grid = image_size / patch;
        if self.encoder.pos_embedding.dims()[1] != 1 + grid * grid {
            self.encoder.pos_embedding = self
                .encoder
                .pos_embedding
                .map(|pos| resample_positions(pos, [grid, grid]));
        }
        self
    }

    /// `[B, 3, H, W]` → `[B, hidden]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let patches = kernels::conv2d(&self.conv_proj, x);
        let [b, hidden, _, _] = patches.dims();
        let patches = patches.flatten::<3>(2, 3).swap_dims(1, 2);
        let class = self.class_token.val().repeat_dim(0, b);
        let x = Tensor::cat(vec![class, patches], 1) + self.encoder.pos_embedding.val();
        let x = self.encoder.layers.iter().fold(x, |x, l| l.forward(x));
        let x = self.encoder.ln.forward(x);
        x.narrow(1, 0, 1).reshape([b, hidden])
    }
}

/// Position embeddings `[1, 1 + h·w, width]` of a square patch grid, resampled to `grid`:
/// the class token's kept, the grid's resized as an image with PyTorch's antialiased bicubic
/// (`F.interpolate(mode="bicubic", antialias=True)`, as timm's `resample_abs_pos_embed`).
pub fn resample_positions(pos: Tensor<3>, grid: [usize; 2]) -> Tensor<3> {
    let [_, tokens, width] = pos.dims();
    let old = ((tokens - 1) as f64).sqrt().round() as usize;
    let device = pos.device();
    let values: Vec<f32> = pos
        .into_data()
        .convert::<f32>()
        .try_into_vec()
        .expect("f32 values");
    let (class, cells) = values.split_at(width);
    // The grid is [old, old, width]: resample its columns, then its rows.
    let columns = resample_axis(cells, [old, old, width], grid[1]);
    let out = resample_axis(&columns, [1, old, grid[1] * width], grid[0]);
    let mut all = class.to_vec();
    all.extend(out);
    Tensor::from_data(
        TensorData::new(all, [1, 1 + grid[0] * grid[1], width]),
        &device,
    )
}

/// Resample the middle axis of `x` (`[outer, len, inner]`, row-major) to `new_len`: PIL's and
/// PyTorch's antialiased bicubic (a = −0.5, the kernel stretched by the reduction factor when
/// shrinking, weights normalised to sum to 1).
fn resample_axis(x: &[f32], [outer, len, inner]: [usize; 3], new_len: usize) -> Vec<f32> {
    let cubic = |t: f64| {
        let (t, a) = (t.abs(), -0.5);
        if t < 1.0 {
            ((a + 2.0) * t - (a + 3.0)) * t * t + 1.0
        } else if t < 2.0 {
            (((t - 5.0) * t + 8.0) * t - 4.0) * a
        } else {
            0.0
        }
    };
    let scale = len as f64 / new_len as f64;
    let stretch = scale.max(1.0);
    let mut out = vec![0.0f32; outer * new_len * inner];
    for i in 0..new_len {
        let center = scale * (i as f64 + 0.5);
        let lo = (center - 2.0 * stretch + 0.5).max(0.0) as usize;
        let hi = ((center + 2.0 * stretch + 0.5) as usize).min(len);
        let weights: Vec<f64> = (lo..hi)
            .map(|j| cubic((j as f64 - center + 0.5) / stretch))
            .collect();
        let total: f64 = weights.iter().sum();
        for o in 0..outer {
            let dst = &mut out[(o * new_len + i) * inner..][..inner];
            for (j, w) in (lo..hi).zip(&weights) {
                let src = &x[(o * len + j) * inner..][..inner];
                for (d, s) in dst.iter_mut().zip(src) {
                    *d += (w / total) as f32 * s;
                }
            }
        }
    }
    out
}
