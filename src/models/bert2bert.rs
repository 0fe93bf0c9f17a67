//! BERT2BERT (Rothe, Narayan & Severyn 2020): a transformer encoder–decoder whose two halves
//! are BERT models of one config, both warm-started from a pretrained BERT encoder. The decoder
//! is a copy of the encoder whose self-attention is causal, with a newly initialised
//! cross-attention block after it in every layer (Hugging Face's `BertLMHeadModel` with
//! `add_cross_attention`, named as it names them: `crossattention.self.query`, …). The output
//! layer is tied to the decoder's word embeddings (the classifier's head holds only a bias), and
//! one WordPiece tokenizer serves both sides: the decoder starts from `[CLS]` and stops at
//! `[SEP]`.
//!
//! Generation keeps a key/value cache (Whisper's [`Cache`]): each layer's cross-attention keys
//! and values are computed once from the encoder's output, its self-attention's grow by one
//! position per step.

use anyhow::Result;
use burn::module::{ModuleMapper, Param, ParamGroup};
use burn::prelude::*;
use burn::store::ModuleSnapshot;
use burn::tensor::activation::log_softmax;

use super::bert::{self, AddNorm, Attention, Bert, BertConfig, Embeddings, Intermediate};
use super::whisper::{Cache, LayerCache};
use crate::generate::Decoder;
use crate::kernels;

/// The architecture's registry name.
pub const ARCH: &str = "bert2bert";

#[allow(non_snake_case)] // Hugging Face's names
#[derive(Module, Debug)]
pub struct DecoderLayer {
    pub(crate) attention: Attention,
    pub(crate) crossattention: Attention,
    pub(crate) intermediate: Intermediate,
    pub(crate) output: AddNorm,
}

#[derive(Module, Debug)]
pub struct DecoderStack {
    pub(crate) layer: Vec<DecoderLayer>,
}

/// The decoder: BERT's embeddings and layers (named as BERT's, so the encoder's weights load
/// into it name for name) with cross-attention.
#[derive(Module, Debug)]
pub struct BertDecoder {
    pub(crate) embeddings: Embeddings,
    pub(crate) encoder: DecoderStack,
}

/// The encoder and the decoder; the head (tied to `decoder`'s word embeddings) is the
/// classifier's.
#[derive(Module, Debug)]
pub struct Bert2Bert {
    pub encoder: Bert,
    pub decoder: BertDecoder,
}

/// What decoding carries from step to step: the key/value cache and the source's padding
/// bias `[B, 1, 1, S]` for cross-attention.
#[derive(Clone, Debug)]
pub struct State {
    pub cache: Cache,
    source_bias: Tensor<4>,
}

impl Bert2Bert {
    /// A freshly initialised encoder–decoder of `c`'s sizes (drawn as BERT draws its weights).
    pub fn new(c: &BertConfig, device: &Device) -> Self {
        let encoder = Bert::new(c, device);
        // The decoder's own embeddings and layers, drawn from a second BERT of the same config.
        let twin = Bert::new(c, device);
        let layer = twin
            .encoder
            .layer
            .into_iter()
            .map(|l| DecoderLayer {
                attention: l.attention,
                crossattention: bert::attention(c, device),
                intermediate: l.intermediate,
                output: l.output,
            })
            .collect();
        Bert2Bert {
            encoder,
            decoder: BertDecoder {
                embeddings: twin.embeddings,
                encoder: DecoderStack { layer },
            },
        }
    }

    /// Warm start (BERT2BERT): `pretrained`'s weights into the encoder and, name for name, into
    /// the decoder's embeddings and self-attention and feed-forward layers; the
    /// cross-attention keeps its fresh weights. Returns how many tensors each half took.
    pub fn warm_start(&mut self, pretrained: &Bert) -> Result<(usize, usize)> {
        let snapshots = pretrained.collect(None, None, false);
        let encoder = self.encoder.apply(snapshots.clone(), None, None, false);
        let decoder = self.decoder.apply(snapshots, None, None, false);
        if let Some(err) = encoder.errors.first().or(decoder.errors.first()) {
            anyhow::bail!("warm start: {err}");
        }
        // Loading takes the pretrained parameters' ids along: the two halves (and the
        // pretrained model) would be one parameter to the optimizer. Each gets its own.
        self.encoder = self.encoder.clone().map(&mut FreshIds);
        self.decoder = self.decoder.clone().map(&mut FreshIds);
        // Only the cross-attention is left to its initialisation.
        if let Some((name, _)) = decoder
            .missing
            .iter()
            .find(|(name, _)| !name.contains("crossattention"))
        {
            anyhow::bail!("warm start: the pretrained encoder has no {name}");
        }
        Ok((encoder.applied.len(), decoder.applied.len()))
    }

    /// Stages for freezing and layer-wise rates: the encoder, then the decoder.
    pub fn stages(&self) -> Vec<ParamGroup> {
        vec![
            ParamGroup::ids_from_module(self.encoder.clone()),
            ParamGroup::ids_from_module(self.decoder.clone()),
        ]
    }

    /// The token table the head scores with: the decoder's word embeddings `[vocab, hidden]`.
    pub fn tied_weight(&self) -> Tensor<2> {
        self.decoder.embeddings.word_table()
    }

    /// Encode `source` `[B, S]` (`mask` 1 for tokens) and start decoding against it: the
    /// cross-attention keys and values of every layer, computed once.
    pub fn start(&self, source: Tensor<2, Int>, mask: Tensor<2>) -> State {
        let [b, s] = source.dims();
        let encoded = self
            .encoder
            .forward(source.clone(), source.zeros_like(), mask.clone());
        let layers = self
            .decoder
            .encoder
            .layer
            .iter()
            .map(|l| LayerCache {
                cross: l.crossattention.self_attn.keys_values(encoded.clone()),
                own: None,
            })
            .collect();
        State {
            cache: Cache { layers, length: 0 },
            source_bias: bert::padding_bias(mask).reshape([b, 1, 1, s]),
        }
    }

    /// Feed `tokens` (`[B, n]`, the next `n` target tokens of every sequence) after what
    /// `state` holds: the decoder's hidden states `[B, n, hidden]` and the state with them. New
    /// token `i` sees the cached tokens and the new ones up to itself.
    pub fn decode(&self, state: State, tokens: Tensor<2, Int>) -> (Tensor<3>, State) {
        let [_, n] = tokens.dims();
        let start = state.cache.length;
        let device = tokens.device();
        let mut x = self
            .decoder
            .embeddings
            .forward(tokens.clone(), tokens.zeros_like(), start);
        let causal = (n > 1).then(|| causal_bias(start, n, &device));
        let mut layers = Vec::with_capacity(state.cache.layers.len());
        for (layer, c) in self.decoder.encoder.layer.iter().zip(state.cache.layers) {
            let attention = &layer.attention;
            let (k, v) = attention.self_attn.keys_values(x.clone());
            let (k, v) = c.own_with(k, v);
            let attended =
                attention
                    .self_attn
                    .attend(x.clone(), k.clone(), v.clone(), causal.clone());
            x = attention.output.forward(attended, x);
            let cross = &layer.crossattention;
            let (ck, cv) = c.cross;
            let attended = cross.self_attn.attend(
                x.clone(),
                ck.clone(),
                cv.clone(),
                Some(state.source_bias.clone()),
            );
            x = cross.output.forward(attended, x);
            let h = kernels::gelu(layer.intermediate.dense.forward(x.clone()));
            x = layer.output.forward(h, x);
            layers.push(LayerCache {
                cross: (ck, cv),
                own: Some((k, v)),
            });
        }
        let cache = Cache {
            layers,
            length: start + n,
        };
        let state = State {
            cache,
            source_bias: state.source_bias,
        };
        (x, state)
    }

    /// Teacher forcing: the decoder's hidden states at the flat positions `predict_at`
    /// (`b * T + t`) of the targets read whole (`target_in` `[B, T]`, `<s>` first), `[N,
    /// hidden]`. Padding after a target's end changes nothing before it (causal).
    pub fn features(
        &self,
        source: Tensor<2, Int>,
        source_mask: Tensor<2>,
        target_in: Tensor<2, Int>,
        predict_at: Tensor<1, Int>,
    ) -> Tensor<2> {
        let state = self.start(source, source_mask);
        let (hidden, _) = self.decode(state, target_in);
        let [b, t, h] = hidden.dims();
        hidden.reshape([b * t, h]).select(0, predict_at)
    }
}

/// Gives every parameter a new id, keeping its value.
struct FreshIds;

impl ModuleMapper for FreshIds {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        Param::from_tensor(param.val())
    }
}

/// `[1, 1, n, start + n]`: `-1e9` where new position `i` would see a key after itself.
fn causal_bias(start: usize, n: usize, device: &Device) -> Tensor<4> {
    let total = start + n;
    let values: Vec<f32> = (0..n)
        .flat_map(|i| (0..total).map(move |j| if j > start + i { -1e9 } else { 0.0 }))
        .collect();
    Tensor::<2>::from_data(TensorData::new(values, [n, total]), device).reshape([1, 1, n, total])
}

impl State {
    /// The states of sequences `rows`, in that order (a row may repeat: a beam that forks).
    pub fn select(self, rows: Tensor<1, Int>) -> State {
        State {
            source_bias: self.source_bias.select(0, rows.clone()),
            cache: self.cache.select(rows),
        }
    }
}

/// Generation with a trained BERT2BERT: one hypothesis per row of the state.
pub struct Generator<'a> {
    pub model: &'a Bert2Bert,
    /// The whole model, for its head.
    pub classifier: &'a super::Classifier,
}

impl Decoder for Generator<'_> {
    type State = State;

    fn step(&self, state: State, tokens: &[u32]) -> Result<(Vec<Vec<f32>>, State)> {
        let device = self.classifier.device();
        let n = tokens.len();
        let ids = TensorData::new(tokens.iter().map(|&t| t as i64).collect(), [n, 1]);
        let (hidden, state) = self
            .model
            .decode(state, Tensor::<2, Int>::from_data(ids, &device));
        let [_, _, h] = hidden.dims();
        let logp = log_softmax(self.classifier.forward_head(hidden.reshape([n, h])), 1);
        let [_, v] = logp.dims();
        let values: Vec<f32> = logp
            .into_data()
            .try_into_vec::<f32>()
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        Ok((values.chunks(v).map(<[f32]>::to_vec).collect(), state))
    }

    fn select(&self, state: State, rows: &[usize]) -> State {
        if rows.iter().enumerate().all(|(i, &r)| i == r) && rows.len() == state.cache.rows() {
            return state;
        }
        let rows = TensorData::new(rows.iter().map(|&r| r as i64).collect(), [rows.len()]);
        state.select(Tensor::from_data(rows, &self.classifier.device()))
    }
}
