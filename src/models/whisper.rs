//! OpenAI's Whisper (an encoder–decoder transformer for speech recognition), laid out as
//! Hugging Face's `WhisperForConditionalGeneration` so its weights load name for name
//! (`encoder.layers.N.self_attn.q_proj`, `decoder.layers.N.encoder_attn`, …; the `model.`
//! prefix dropped). CTranslate2's `model.bin` maps onto the same names (`interop::whisper`).
//!
//! The encoder: two 1-D convolutions (the second at stride 2) with GELU, the stored position
//! table, pre-norm blocks, a final LayerNorm. The decoder: token embeddings plus learned
//! positions, pre-norm blocks of causal self-attention, cross-attention over the encoder's
//! output and a feed-forward layer, a final LayerNorm. LayerNorm eps 1e-5, exact GELU, no
//! dropout (Whisper's own is 0), the key projections without bias.
//!
//! The token embedding is the classifier's head (`Classifier::head`, no bias): the decoder
//! reads its input tokens from the same table the head scores the next token with, so the two
//! stay tied through fine-tuning as in Whisper. A [`Cache`] of keys and values makes each
//! generated token cost one position, not the whole sequence.

use anyhow::Result;
use burn::module::{Param, ParamGroup};
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::{
    Embedding, EmbeddingConfig, Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig,
    PaddingConfig1d,
};
use burn::prelude::*;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use serde::{Deserialize, Serialize};

use crate::kernels;

/// The sizes of a Whisper model (Hugging Face's `config.json` names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WhisperConfig {
    pub vocab_size: usize,
    pub num_mel_bins: usize,
    pub d_model: usize,
    pub encoder_layers: usize,
    pub encoder_attention_heads: usize,
    pub encoder_ffn_dim: usize,
    pub decoder_layers: usize,
    pub decoder_attention_heads: usize,
    pub decoder_ffn_dim: usize,
    /// Encoder positions: the encoder reads at most twice this many mel frames.
    pub max_source_positions: usize,
    /// Decoder positions: prompt and generated tokens together.
    pub max_target_positions: usize,
}

/// LayerNorm's epsilon in every Whisper (PyTorch's default, and CTranslate2's for Whisper).
const EPS: f64 = 1e-5;

impl WhisperConfig {
    /// Whisper tiny.en's sizes (37.8M parameters).
    pub fn tiny_en() -> WhisperConfig {
        WhisperConfig {
            vocab_size: 51_864,
            num_mel_bins: 80,
            d_model: 384,
            encoder_layers: 4,
            encoder_attention_heads: 6,
            encoder_ffn_dim: 1536,
            decoder_layers: 4,
            decoder_attention_heads: 6,
            decoder_ffn_dim: 1536,
            max_source_positions: 1500,
            max_target_positions: 448,
        }
    }

    /// Check what this implementation supports; the message names the field.
    pub fn check(&self) -> Result<(), String> {
        let sizes = [
            ("vocab_size", self.vocab_size),
            ("num_mel_bins", self.num_mel_bins),
            ("d_model", self.d_model),
            ("encoder_layers", self.encoder_layers),
            ("encoder_attention_heads", self.encoder_attention_heads),
            ("encoder_ffn_dim", self.encoder_ffn_dim),
            ("decoder_layers", self.decoder_layers),
            ("decoder_attention_heads", self.decoder_attention_heads),
            ("decoder_ffn_dim", self.decoder_ffn_dim),
            ("max_source_positions", self.max_source_positions),
            ("max_target_positions", self.max_target_positions),
        ];
        if let Some((name, n)) = sizes.iter().find(|(_, n)| *n == 0 || *n > 1 << 20) {
            return Err(format!("{name} {n} is not between 1 and 2^20"));
        }
        if self.parameters() > 1 << 34 {
            return Err(format!(
                "describes {} parameters; at most 2^34 are supported",
                self.parameters()
            ));
        }
        for (heads, what) in [
            (self.encoder_attention_heads, "encoder_attention_heads"),
            (self.decoder_attention_heads, "decoder_attention_heads"),
        ] {
            if !self.d_model.is_multiple_of(heads) {
                return Err(format!(
                    "d_model {} is not a multiple of {what} {heads}",
                    self.d_model
                ));
            }
        }
        Ok(())
    }

    /// Parameters this config describes (the tied token table counted once), so that a config
    /// can be checked against its weights before anything is allocated.
    pub fn parameters(&self) -> u128 {
        let [v, m, d, le, fe, ld, fd, ps, pt] = [
            self.vocab_size,
            self.num_mel_bins,
            self.d_model,
            self.encoder_layers,
            self.encoder_ffn_dim,
            self.decoder_layers,
            self.decoder_ffn_dim,
            self.max_source_positions,
            self.max_target_positions,
        ]
        .map(|x| x as u128);
        let attention = 4 * d * d + 3 * d;
        let ffn = |f: u128| 2 * d * f + f + d;
        let convs = (m * 3 * d + d) + (d * 3 * d + d);
        let encoder = convs + ps * d + le * (attention + ffn(fe) + 4 * d) + 2 * d;
        let decoder = pt * d + ld * (2 * attention + ffn(fd) + 6 * d) + 2 * d;
        encoder + decoder + v * d
    }

    /// Mel frames the encoder reads: twice its positions (the second convolution halves them).
    pub fn frames(&self) -> usize {
        2 * self.max_source_positions
    }
}

/// Multi-head attention with Whisper's projections (the key without bias).
#[derive(Module, Debug)]
pub struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    out_proj: Linear,
    heads: usize,
}

#[derive(Module, Debug)]
pub struct EncoderLayer {
    self_attn: Attention,
    self_attn_layer_norm: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    final_layer_norm: LayerNorm,
}

#[derive(Module, Debug)]
pub struct DecoderLayer {
    self_attn: Attention,
    self_attn_layer_norm: LayerNorm,
    encoder_attn: Attention,
    encoder_attn_layer_norm: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    final_layer_norm: LayerNorm,
}

#[derive(Module, Debug)]
pub struct Encoder {
    conv1: Conv1d,
    conv2: Conv1d,
    embed_positions: Embedding,
    layers: Vec<EncoderLayer>,
    layer_norm: LayerNorm,
}

#[derive(Module, Debug)]
pub struct Decoder {
    embed_positions: Embedding,
    layers: Vec<DecoderLayer>,
    layer_norm: LayerNorm,
}

/// The encoder and the decoder's body; the token table is the classifier's head.
#[derive(Module, Debug)]
pub struct Whisper {
    pub encoder: Encoder,
    pub decoder: Decoder,
}

/// Normal(0, 0.02), Whisper's initialisation (Hugging Face's `init_std`).
pub fn init() -> Initializer {
    Initializer::Normal {
        mean: 0.0,
        std: 0.02,
    }
}

fn linear(d_in: usize, d_out: usize, bias: bool, device: &Device) -> Linear {
    LinearConfig::new(d_in, d_out)
        .with_bias(bias)
        .with_initializer(init())
        .init(device)
}

fn norm(d: usize, device: &Device) -> LayerNorm {
    LayerNormConfig::new(d).with_epsilon(EPS).init(device)
}

fn attention_layer(d: usize, heads: usize, device: &Device) -> Attention {
    Attention {
        q_proj: linear(d, d, true, device),
        k_proj: linear(d, d, false, device),
        v_proj: linear(d, d, true, device),
        out_proj: linear(d, d, true, device),
        heads,
    }
}

fn conv(c_in: usize, c_out: usize, stride: usize, device: &Device) -> Conv1d {
    Conv1dConfig::new(c_in, c_out, 3)
        .with_stride(stride)
        .with_padding(PaddingConfig1d::Explicit(1, 1))
        .with_initializer(init())
        .init(device)
}

/// OpenAI's `sinusoids(length, channels)`: the encoder's position table (stored with the
/// weights, and what Hugging Face initialises it to).
pub fn sinusoids(length: usize, channels: usize) -> Vec<f32> {
    let half = channels / 2;
    let step = (10_000f64).ln() / (half.max(2) - 1) as f64;
    let mut out = vec![0.0; length * channels];
    for t in 0..length {
        for i in 0..half {
            let angle = t as f64 * (-step * i as f64).exp();
            out[t * channels + i] = angle.sin() as f32;
            out[t * channels + half + i] = angle.cos() as f32;
        }
    }
    out
}

impl Whisper {
    /// A freshly initialised model of `c`'s sizes (the token table is the head's).
    pub fn new(c: &WhisperConfig, device: &Device) -> Self {
        let d = c.d_model;
        let positions = c.max_source_positions;
        let embed_positions = Embedding {
            weight: Param::from_data(
                TensorData::new(sinusoids(positions, d), [positions, d]),
                device,
            ),
        };
        let encoder_layer = || EncoderLayer {
            self_attn: attention_layer(d, c.encoder_attention_heads, device),
            self_attn_layer_norm: norm(d, device),
            fc1: linear(d, c.encoder_ffn_dim, true, device),
            fc2: linear(c.encoder_ffn_dim, d, true, device),
            final_layer_norm: norm(d, device),
        };
        let decoder_layer = || DecoderLayer {
            self_attn: attention_layer(d, c.decoder_attention_heads, device),
            self_attn_layer_norm: norm(d, device),
            encoder_attn: attention_layer(d, c.decoder_attention_heads, device),
            encoder_attn_layer_norm: norm(d, device),
            fc1: linear(d, c.decoder_ffn_dim, true, device),
            fc2: linear(c.decoder_ffn_dim, d, true, device),
            final_layer_norm: norm(d, device),
        };
        Whisper {
            encoder: Encoder {
                conv1: conv(c.num_mel_bins, d, 1, device),
                conv2: conv(d, d, 2, device),
                embed_positions,
                layers: (0..c.encoder_layers).map(|_| encoder_layer()).collect(),
                layer_norm: norm(d, device),
            },
            decoder: Decoder {
                embed_positions: EmbeddingConfig::new(c.max_target_positions, d)
                    .with_initializer(init())
                    .init(device),
                layers: (0..c.decoder_layers).map(|_| decoder_layer()).collect(),
                layer_norm: norm(d, device),
            },
        }
    }

    /// Stages for freezing and layer-wise rates: the encoder, then the decoder.
    pub fn stages(&self) -> Vec<ParamGroup> {
        vec![
            ParamGroup::ids_from_module(self.encoder.clone()),
            ParamGroup::ids_from_module(self.decoder.clone()),
        ]
    }

    /// Mel spectrograms `[B, mels, frames]` → the encoder's output `[B, frames / 2, d]`.
    /// `frames` is at most twice the encoder's positions (checked by the caller).
    pub fn encode(&self, mel: Tensor<3>) -> Tensor<3> {
        let e = &self.encoder;
        let x = kernels::gelu(e.conv1.forward(mel));
        let x = kernels::gelu(e.conv2.forward(x)).swap_dims(1, 2);
        let [b, t, d] = x.dims();
        let positions = e.embed_positions.weight.val().narrow(0, 0, t);
        let mut x = x + positions.reshape([1, t, d]).expand([b, t, d]);
        for layer in &e.layers {
            let h = layer.self_attn_layer_norm.forward(x.clone());
            x = x + layer.self_attn.forward(h.clone(), h);
            x = x.clone() + ffn(&layer.fc1, &layer.fc2, layer.final_layer_norm.forward(x));
        }
        e.layer_norm.forward(x)
    }

    /// A decoder cache for the encoder's output `encoded` (`[B, positions, d]`): each layer's
    /// cross-attention keys and values, computed once.
    pub fn start(&self, encoded: Tensor<3>) -> Cache {
        let layers = self
            .decoder
            .layers
            .iter()
            .map(|l| {
                let a = &l.encoder_attn;
                LayerCache {
                    cross: (
                        a.split(a.k_proj.forward(encoded.clone())),
                        a.split(a.v_proj.forward(encoded.clone())),
                    ),
                    own: None,
                }
            })
            .collect();
        Cache { layers, length: 0 }
    }

    /// Feed `tokens` (`[B, n]`, the next `n` tokens of every sequence, their embeddings read
    /// from `table`, the head's `[d, vocab]` weight) after what `cache` holds: the decoder's
    /// last hidden states `[B, n, d]` and the cache with them. Position `i` of the new tokens
    /// sees the cached ones and new ones up to `i`.
    pub fn decode(
        &self,
        cache: Cache,
        tokens: Tensor<2, Int>,
        table: Tensor<2>,
    ) -> (Tensor<3>, Cache) {
        let [b, n] = tokens.dims();
        let dec = &self.decoder;
        let [d, _] = table.dims();
        let embedded = table
            .select(1, tokens.reshape([b * n]))
            .swap_dims(0, 1)
            .reshape([b, n, d]);
        let start = cache.length;
        let positions = dec.embed_positions.weight.val().narrow(0, start, n);
        let mut x = embedded + positions.reshape([1, n, d]).expand([b, n, d]);
        let mut layers = Vec::with_capacity(cache.layers.len());
        for (layer, c) in dec.layers.iter().zip(cache.layers) {
            let h = layer.self_attn_layer_norm.forward(x.clone());
            let a = &layer.self_attn;
            let (k, v) = (
                a.split(a.k_proj.forward(h.clone())),
                a.split(a.v_proj.forward(h.clone())),
            );
            let (k, v) = c.own_with(k, v);
            // New token i may not see the new tokens after it.
            x = x + a.attend(h, k.clone(), v.clone(), n > 1);
            let h = layer.encoder_attn_layer_norm.forward(x.clone());
            let (ck, cv) = c.cross;
            x = x + layer.encoder_attn.attend(h, ck.clone(), cv.clone(), false);
            x = x.clone() + ffn(&layer.fc1, &layer.fc2, layer.final_layer_norm.forward(x));
            layers.push(LayerCache {
                cross: (ck, cv),
                own: Some((k, v)),
            });
        }
        let cache = Cache {
            layers,
            length: start + n,
        };
        (dec.layer_norm.forward(x), cache)
    }

    /// Teacher forcing: the decoder's hidden states `[B, T, d]` for whole token sequences
    /// `[B, T]` read against `encoded`. (Padding after a sequence's end changes nothing before
    /// it: every position only sees the ones before.)
    pub fn forward(
        &self,
        encoded: Tensor<3>,
        tokens: Tensor<2, Int>,
        table: Tensor<2>,
    ) -> Tensor<3> {
        self.decode(self.start(encoded), tokens, table).0
    }
}

/// `fc2(GELU(fc1(x)))`.
fn ffn(fc1: &Linear, fc2: &Linear, x: Tensor<3>) -> Tensor<3> {
    fc2.forward(kernels::gelu(fc1.forward(x)))
}

impl Attention {
    /// `[B, T, d]` → `[B, heads, T, d / heads]`.
    fn split(&self, y: Tensor<3>) -> Tensor<4> {
        let [b, t, d] = y.dims();
        y.reshape([b, t, self.heads, d / self.heads])
            .swap_dims(1, 2)
    }

    /// Self-attention of `x` (queries) over `kv` (keys and values from the same input).
    fn forward(&self, x: Tensor<3>, kv: Tensor<3>) -> Tensor<3> {
        let k = self.split(self.k_proj.forward(kv.clone()));
        let v = self.split(self.v_proj.forward(kv));
        self.attend(x, k, v, false)
    }

    /// Queries from `x` over already projected keys and values `[B, heads, S, d / heads]`;
    /// `causal`: the queries are the last positions of the keys', each seeing the keys up to
    /// its own. Burn's fused attention: on the CPU without autodiff, tiled with an online
    /// softmax (a 30 s window's 1500 x 1500 scores are never stored: the encoder runs 1.5x
    /// faster); with autodiff, the same computation from differentiable operations.
    fn attend(&self, x: Tensor<3>, k: Tensor<4>, v: Tensor<4>, causal: bool) -> Tensor<3> {
        let [b, t, d] = x.dims();
        let q = self.split(self.q_proj.forward(x));
        let options = AttentionModuleOptions {
            scale: None,
            softcap: None,
            is_causal: causal,
        };
        let out = attention(q, k, v, None, None, options)
            .swap_dims(1, 2)
            .reshape([b, t, d]);
        self.out_proj.forward(out)
    }
}

/// What the decoder has seen, per layer: its own keys and values so far and the
/// cross-attention's (fixed) ones, for `B` sequences at once.
#[derive(Clone, Debug)]
pub struct Cache {
    pub(crate) layers: Vec<LayerCache>,
    /// Tokens fed so far (the position of the next one).
    pub length: usize,
}

#[derive(Clone, Debug)]
pub(crate) struct LayerCache {
    pub(crate) cross: (Tensor<4>, Tensor<4>),
    pub(crate) own: Option<(Tensor<4>, Tensor<4>)>,
}

impl LayerCache {
    /// The self-attention's keys and values so far followed by the new ones `k`, `v`
    /// (`[B, heads, n, d]`).
    pub(crate) fn own_with(&self, k: Tensor<4>, v: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        match &self.own {
            Some((pk, pv)) => (
                Tensor::cat(vec![pk.clone(), k], 2),
                Tensor::cat(vec![pv.clone(), v], 2),
            ),
            None => (k, v),
        }
    }
}

impl Cache {
    /// Sequences the cache holds.
    pub fn rows(&self) -> usize {
        self.layers.first().map_or(0, |l| l.cross.0.dims()[0])
    }

    /// The caches of sequences `rows` (`[R]`), in that order: a row may repeat (a beam that
    /// forks).
    pub fn select(self, rows: Tensor<1, Int>) -> Cache {
        let pick = |t: Tensor<4>| t.select(0, rows.clone());
        Cache {
            layers: self
                .layers
                .into_iter()
                .map(|l| LayerCache {
                    cross: (pick(l.cross.0), pick(l.cross.1)),
                    own: l.own.map(|(k, v)| (pick(k), pick(v))),
                })
                .collect(),
            length: self.length,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    fn tiny() -> WhisperConfig {
        WhisperConfig {
            vocab_size: 30,
            num_mel_bins: 80,
            d_model: 16,
            encoder_layers: 2,
            encoder_attention_heads: 2,
            encoder_ffn_dim: 32,
            decoder_layers: 2,
            decoder_attention_heads: 4,
            decoder_ffn_dim: 24,
            max_source_positions: 10,
            max_target_positions: 8,
        }
    }

    /// Feeding tokens one at a time through the cache gives what the whole sequence gives at
    /// once (teacher forcing), also for a batch of two and a cache forked by `select`.
    #[test]
    fn the_cache_gives_the_whole_sequences_states() {
        let device = crate::DeviceSpec::Cpu.device().unwrap();
        let c = tiny();
        device.seed(3);
        let model = Whisper::new(&c, &device);
        let table = Tensor::<2>::random([16, 30], Distribution::Normal(0.0, 1.0), &device);
        let mel = Tensor::<3>::random([2, 80, 20], Distribution::Normal(0.0, 1.0), &device);
        let encoded = model.encode(mel);
        assert_eq!(encoded.dims(), [2, 10, 16]);
        let ids = [[3i64, 7, 1, 29, 5], [0, 2, 2, 8, 11]];
        let tokens = Tensor::<2, Int>::from_data(TensorData::new(ids.concat(), [2, 5]), &device);
        let whole = model.forward(encoded.clone(), tokens, table.clone());
        let mut cache = model.start(encoded);
        let mut steps = Vec::new();
        for (a, b) in ids[0].iter().zip(&ids[1]) {
            let step = TensorData::new(vec![*a, *b], [2, 1]);
            let (h, next) = model.decode(cache, Tensor::from_data(step, &device), table.clone());
            steps.push(h);
            cache = next;
        }
        let stepped = Tensor::cat(steps, 1);
        let diff: f32 = (whole - stepped).abs().max().into_scalar();
        assert!(diff < 1e-5, "{diff}");
        // Row 1 forked twice: both copies continue as row 1 alone would.
        let forked = cache.select(Tensor::from_data(
            TensorData::new(vec![1i64, 1], [2]),
            &device,
        ));
        assert_eq!((forked.rows(), forked.length), (2, 5));
        let next = Tensor::<2, Int>::from_data(TensorData::new(vec![4i64, 4], [2, 1]), &device);
        let (h, _) = model.decode(forked, next, table);
        let rows = h.into_data().try_into_vec::<f32>().unwrap();
        assert_eq!(rows[..16], rows[16..]);
    }

    #[test]
    fn configs_are_checked_and_counted() {
        let c = WhisperConfig::tiny_en();
        assert_eq!(c.check(), Ok(()));
        // 37,760,256 parameters, as the CTranslate2 file holds (the token table once).
        assert_eq!(c.parameters(), 37_760_256);
        let bad = WhisperConfig {
            decoder_attention_heads: 5,
            ..c.clone()
        };
        assert!(bad.check().unwrap_err().contains("decoder_attention_heads"));
        let huge = WhisperConfig {
            vocab_size: 1 << 20,
            d_model: 1 << 20,
            ..c
        };
        assert!(huge.check().unwrap_err().contains("parameters"));
    }
}
