//! A BERT encoder laid out as Hugging Face's `BertModel`, so its checkpoints load name for name
//! (`embeddings.word_embeddings`, `encoder.layer.N.attention.self.query`, …; see
//! [`from_hf_name`]). Post-LayerNorm, exact (erf) GELU, absolute positions, token types, and an
//! attention mask so padding never changes a result.
#![allow(non_snake_case)] // field names are Hugging Face's

use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer, LayerNorm, LayerNormConfig,
    Linear, LinearConfig,
};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::layers::{attend_heads, split_heads};
use crate::kernels;

/// The sizes of a BERT model: Hugging Face's `config.json` fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "default_positions")]
    pub max_position_embeddings: usize,
    #[serde(default = "default_types")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default = "default_dropout")]
    pub hidden_dropout_prob: f64,
    #[serde(default = "default_dropout")]
    pub attention_probs_dropout_prob: f64,
}

fn default_positions() -> usize {
    512
}
fn default_types() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}
fn default_act() -> String {
    "gelu".into()
}
fn default_dropout() -> f64 {
    0.1
}

impl BertConfig {
    /// Check what this implementation supports; the message names the field.
    pub fn check(&self) -> Result<(), String> {
        if self.hidden_act != "gelu" {
            return Err(format!(
                "hidden_act {:?} is not supported (only \"gelu\")",
                self.hidden_act
            ));
        }
        let sizes = [
            self.vocab_size,
            self.hidden_size,
            self.num_hidden_layers,
            self.num_attention_heads,
            self.intermediate_size,
            self.max_position_embeddings,
            self.type_vocab_size,
        ];
        if sizes.contains(&0) || sizes.iter().any(|&s| s > 1 << 20) {
            return Err("sizes must be between 1 and 2^20".into());
        }
        if self.parameters() > 1 << 34 {
            return Err(format!(
                "describes {} parameters; at most 2^34 are supported",
                self.parameters()
            ));
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        Ok(())
    }
}

impl BertConfig {
    /// Parameters of the encoder this config describes (embeddings and layers; no pooler), so
    /// that a config can be checked against its weights before anything is allocated.
    pub fn parameters(&self) -> u128 {
        let [v, h, l, i, p, t] = [
            self.vocab_size,
            self.hidden_size,
            self.num_hidden_layers,
            self.intermediate_size,
            self.max_position_embeddings,
            self.type_vocab_size,
        ]
        .map(|x| x as u128);
        let embeddings = (v + p + t) * h + 2 * h;
        let layer = 4 * (h * h + h) + 2 * h + (h * i + i) + (i * h + h) + 2 * h;
        embeddings + l * layer
    }
}

#[derive(Module, Debug)]
pub struct Embeddings {
    pub(crate) word_embeddings: Embedding,
    pub(crate) position_embeddings: Embedding,
    pub(crate) token_type_embeddings: Embedding,
    pub(crate) LayerNorm: LayerNorm,
    pub(crate) dropout: Dropout,
}

#[derive(Module, Debug)]
pub struct SelfAttention {
    pub(crate) query: Linear,
    pub(crate) key: Linear,
    pub(crate) value: Linear,
    pub(crate) dropout: Dropout,
    pub(crate) heads: usize,
}

/// A dense layer, dropout, then LayerNorm of it plus the residual: HF's `BertSelfOutput` and
/// `BertOutput`.
#[derive(Module, Debug)]
pub struct AddNorm {
    pub(crate) dense: Linear,
    pub(crate) LayerNorm: LayerNorm,
    pub(crate) dropout: Dropout,
}

#[derive(Module, Debug)]
pub struct Attention {
    /// HF's `attention.self` (`self` is a Rust keyword).
    pub(crate) self_attn: SelfAttention,
    pub(crate) output: AddNorm,
}

#[derive(Module, Debug)]
pub struct Intermediate {
    pub(crate) dense: Linear,
}

#[derive(Module, Debug)]
pub struct Layer {
    pub(crate) attention: Attention,
    pub(crate) intermediate: Intermediate,
    pub(crate) output: AddNorm,
}

#[derive(Module, Debug)]
pub struct Encoder {
    pub(crate) layer: Vec<Layer>,
}

#[derive(Module, Debug)]
pub struct Bert {
    pub(crate) embeddings: Embeddings,
    pub(crate) encoder: Encoder,
}

/// Normal(0, 0.02) weights, as BERT initialises them.
pub(crate) fn init() -> Initializer {
    Initializer::Normal {
        mean: 0.0,
        std: 0.02,
    }
}

pub(crate) fn linear(d_in: usize, d_out: usize, device: &Device) -> Linear {
    LinearConfig::new(d_in, d_out)
        .with_initializer(init())
        .init(device)
}

pub(crate) fn add_norm(d_in: usize, c: &BertConfig, device: &Device) -> AddNorm {
    AddNorm {
        dense: linear(d_in, c.hidden_size, device),
        LayerNorm: LayerNormConfig::new(c.hidden_size)
            .with_epsilon(c.layer_norm_eps)
            .init(device),
        dropout: DropoutConfig::new(c.hidden_dropout_prob).init(),
    }
}

/// A freshly initialised attention block (`attention.self` and `attention.output`).
pub(crate) fn attention(c: &BertConfig, device: &Device) -> Attention {
    let h = c.hidden_size;
    Attention {
        self_attn: SelfAttention {
            query: linear(h, h, device),
            key: linear(h, h, device),
            value: linear(h, h, device),
            dropout: DropoutConfig::new(c.attention_probs_dropout_prob).init(),
            heads: c.num_attention_heads,
        },
        output: add_norm(h, c, device),
    }
}

impl AddNorm {
    pub(crate) fn forward(&self, x: Tensor<3>, residual: Tensor<3>) -> Tensor<3> {
        let x = kernels::dropout(&self.dropout, self.dense.forward(x));
        self.LayerNorm.forward(x + residual)
    }
}

impl Bert {
    /// A freshly initialised encoder. (HF's `[CLS]` pooler is not part of it: the head reads
    /// the mean-pooled states, as sentence encoders do.)
    pub fn new(c: &BertConfig, device: &Device) -> Self {
        let h = c.hidden_size;
        let embedding = |n: usize| {
            EmbeddingConfig::new(n, h)
                .with_initializer(init())
                .init(device)
        };
        let layer = || Layer {
            attention: attention(c, device),
            intermediate: Intermediate {
                dense: linear(h, c.intermediate_size, device),
            },
            output: add_norm(c.intermediate_size, c, device),
        };
        Bert {
            embeddings: Embeddings {
                word_embeddings: embedding(c.vocab_size),
                position_embeddings: embedding(c.max_position_embeddings),
                token_type_embeddings: embedding(c.type_vocab_size),
                LayerNorm: LayerNormConfig::new(h)
                    .with_epsilon(c.layer_norm_eps)
                    .init(device),
                dropout: DropoutConfig::new(c.hidden_dropout_prob).init(),
            },
            encoder: Encoder {
                layer: (0..c.num_hidden_layers).map(|_| layer()).collect(),
            },
        }
    }

    /// Token ids `[B, T]`, token type ids `[B, T]` and the attention mask `[B, T]` (1 for
    /// tokens, 0 for padding) → the last hidden states `[B, T, hidden]`.
    pub fn forward(
        &self,
        ids: Tensor<2, Int>,
        types: Tensor<2, Int>,
        mask: Tensor<2>,
    ) -> Tensor<3> {
        let [b, t] = ids.dims();
        let mut x = self.embeddings.forward(ids, types, 0);
        // Padding gets a large negative score: its attention weight is exactly 0 after softmax.
        let bias = padding_bias(mask).reshape([b, 1, 1, t]);
        for layer in &self.encoder.layer {
            x = layer.forward(x, bias.clone());
        }
        x
    }
}

/// `-1e9` where `mask` is 0, else 0: added to attention scores, it keeps padding out.
pub(crate) fn padding_bias(mask: Tensor<2>) -> Tensor<2> {
    (mask.ones_like() - mask).mul_scalar(-1e9)
}

impl Embeddings {
    /// Token ids and token type ids `[B, T]` at positions `start..start + T` → embeddings.
    pub(crate) fn forward(
        &self,
        ids: Tensor<2, Int>,
        types: Tensor<2, Int>,
        start: usize,
    ) -> Tensor<3> {
        let [b, t] = ids.dims();
        let device = ids.device();
        let positions = Tensor::<1, Int>::arange(start as i64..(start + t) as i64, &device)
            .reshape([1, t])
            .expand([b, t]);
        let x = self.word_embeddings.forward(ids)
            + self.position_embeddings.forward(positions)
            + self.token_type_embeddings.forward(types);
        kernels::dropout(&self.dropout, self.LayerNorm.forward(x))
    }

    /// The token table `[vocab, hidden]`.
    pub(crate) fn word_table(&self) -> Tensor<2> {
        self.word_embeddings.weight.val()
    }
}

impl Bert {
    /// Features for a classification head: the mean-pooled last hidden states.
    pub fn features(
        &self,
        ids: Tensor<2, Int>,
        types: Tensor<2, Int>,
        mask: Tensor<2>,
    ) -> Tensor<2> {
        mean_pool(self.forward(ids, types, mask.clone()), mask)
    }

    /// The hidden states of the tokens at flat `positions` (`b * T + t`): `[positions, hidden]`.
    pub fn token_features(
        &self,
        ids: Tensor<2, Int>,
        types: Tensor<2, Int>,
        mask: Tensor<2>,
        positions: Tensor<1, Int>,
    ) -> Tensor<2> {
        let hidden = self.forward(ids, types, mask);
        let [b, t, h] = hidden.dims();
        hidden.reshape([b * t, h]).select(0, positions)
    }

    /// Stages for freezing and layer-wise rates: the embeddings, then the encoder.
    pub fn stages(&self) -> Vec<burn::module::ParamGroup> {
        use burn::module::ParamGroup;
        vec![
            ParamGroup::ids_from_module(self.embeddings.clone()),
            ParamGroup::ids_from_module(self.encoder.clone()),
        ]
    }
}

impl Layer {
    fn forward(&self, x: Tensor<3>, bias: Tensor<4>) -> Tensor<3> {
        let attended = self.attention.self_attn.forward(x.clone(), bias);
        let x = self.attention.output.forward(attended, x);
        let h = kernels::gelu(self.intermediate.dense.forward(x.clone()));
        self.output.forward(h, x)
    }
}

impl SelfAttention {
    fn forward(&self, x: Tensor<3>, bias: Tensor<4>) -> Tensor<3> {
        let (k, v) = self.keys_values(x.clone());
        self.attend(x, k, v, Some(bias))
    }

    /// The keys and values of `x`, split into heads.
    pub(crate) fn keys_values(&self, x: Tensor<3>) -> (Tensor<4>, Tensor<4>) {
        (
            split_heads(self.key.forward(x.clone()), self.heads),
            split_heads(self.value.forward(x), self.heads),
        )
    }

    /// Queries from `x` `[B, T, hidden]` over keys and values `[B, heads, S, d]`, `bias`
    /// (broadcast to `[B, heads, T, S]`) added to the scores.
    pub(crate) fn attend(
        &self,
        x: Tensor<3>,
        k: Tensor<4>,
        v: Tensor<4>,
        bias: Option<Tensor<4>>,
    ) -> Tensor<3> {
        let q = split_heads(self.query.forward(x), self.heads);
        attend_heads(q, k, v, bias, &self.dropout)
    }
}

/// Mean of the hidden states over the tokens the mask keeps.
pub fn mean_pool(hidden: Tensor<3>, mask: Tensor<2>) -> Tensor<2> {
    let [b, t, _] = hidden.dims();
    let m = mask.reshape([b, t, 1]);
    let summed = (hidden * m.clone()).sum_dim(1).squeeze_dim::<2>(1);
    let counts = m.sum_dim(1).squeeze_dim::<2>(1).clamp_min(1e-9);
    summed / counts
}

/// The mean-pooled embedding, L2-normalised: sentence-transformers' embedding.
pub fn mean_pool_normalized(hidden: Tensor<3>, mask: Tensor<2>) -> Tensor<2> {
    let mean = mean_pool(hidden, mask);
    let norm = mean
        .clone()
        .powi_scalar(2)
        .sum_dim(1)
        .sqrt()
        .clamp_min(1e-12);
    mean / norm
}

/// BERT-Mini and BERT-Small (Turc et al. 2019) sizes, for pretraining from scratch.
pub fn preset(name: &str, vocab_size: usize) -> Option<BertConfig> {
    let (hidden, heads) = match name {
        "bert-mini" => (256, 4),
        "bert-small" => (512, 8),
        _ => return None,
    };
    Some(BertConfig {
        vocab_size,
        hidden_size: hidden,
        num_hidden_layers: 4,
        num_attention_heads: heads,
        intermediate_size: 4 * hidden,
        max_position_embeddings: 512,
        type_vocab_size: 2,
        layer_norm_eps: 1e-12,
        hidden_act: "gelu".into(),
        hidden_dropout_prob: 0.1,
        attention_probs_dropout_prob: 0.1,
    })
}

/// Our name of a Hugging Face BERT tensor (`bert.` prefix optional), or `None` for tensors
/// that are not weights (`position_ids`).
pub fn from_hf_name(key: &str) -> Option<String> {
    let key = key.strip_prefix("bert.").unwrap_or(key);
    if key.ends_with("position_ids") {
        return None;
    }
    Some(key.replace(".attention.self.", ".attention.self_attn."))
}

/// The Hugging Face name of one of our tensors.
pub fn to_hf_name(name: &str) -> String {
    name.replace(".attention.self_attn.", ".attention.self.")
}
