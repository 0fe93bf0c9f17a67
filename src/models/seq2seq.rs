//! A recurrent encoder–decoder (g2p_en's shape: spelling in, pronunciation out). The encoder
//! reads the source's characters; its last hidden state starts the decoder, which reads the
//! target shifted right (teacher forcing) and whose hidden states, projected by the head, score
//! each next token. Optionally the decoder attends over the encoder's outputs (Luong's dot
//! attention, concatenated and projected).
//!
//! The head (`fc` in g2p_en) and the decoder's embedding belong to the output vocabulary:
//! fine-tuning to a new one replaces both ([`OUTPUT_EMBEDDING`]), the rest is the backbone.

use anyhow::Result;
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::{log_softmax, softmax, tanh};
use serde::{Deserialize, Serialize};

use super::rnn::{Cell, Rnn, RnnConfig, State};
use crate::generate::Decoder;

/// Tensor names (under `backbone.`) that belong to the output vocabulary with the head.
pub const OUTPUT_EMBEDDING: &str = "dec_emb";

/// The sizes of an encoder–decoder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Seq2SeqConfig {
    pub cell: Cell,
    pub source_vocab: usize,
    pub target_vocab: usize,
    pub embedding: usize,
    pub hidden: usize,
    pub layers: usize,
    /// The decoder attends over the encoder's outputs.
    #[serde(default)]
    pub attention: bool,
}

impl Seq2SeqConfig {
    /// g2p_en's model: 256-wide embeddings and GRUs, one layer, no attention.
    pub fn g2p(source_vocab: usize, target_vocab: usize) -> Seq2SeqConfig {
        Seq2SeqConfig {
            cell: Cell::Gru,
            source_vocab,
            target_vocab,
            embedding: 256,
            hidden: 256,
            layers: 1,
            attention: false,
        }
    }

    /// Check the sizes; the message names the field.
    pub fn check(&self) -> Result<(), String> {
        let sizes = [self.embedding, self.hidden, self.layers];
        if sizes.contains(&0) || sizes.iter().any(|&s| s > 1 << 14) || self.layers > 8 {
            return Err("embedding, hidden and layers must be positive (layers at most 8)".into());
        }
        if !(3..=1 << 16).contains(&self.source_vocab)
            || !(4..=1 << 16).contains(&self.target_vocab)
        {
            return Err("vocabularies must have 3 (4) to 65,536 tokens".into());
        }
        Ok(())
    }

    pub fn init(&self, device: &Device) -> Seq2Seq {
        let rnn = |input| RnnConfig {
            cell: self.cell,
            input,
            hidden: self.hidden,
            layers: self.layers,
            bidirectional: false,
        };
        Seq2Seq {
            enc_emb: EmbeddingConfig::new(self.source_vocab, self.embedding).init(device),
            enc: rnn(self.embedding).init(device),
            dec_emb: EmbeddingConfig::new(self.target_vocab, self.embedding).init(device),
            dec: rnn(self.embedding).init(device),
            attend: self
                .attention
                .then(|| LinearConfig::new(2 * self.hidden, self.hidden).init(device)),
        }
    }
}

/// The encoder and the decoder's body (the head is the classifier's).
#[derive(Module, Debug)]
pub struct Seq2Seq {
    pub enc_emb: Embedding,
    pub enc: Rnn,
    pub dec_emb: Embedding,
    pub dec: Rnn,
    /// With attention: `tanh(W [h; context])`.
    pub attend: Option<Linear>,
}

/// What the encoder leaves the decoder.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// The encoder's outputs `[B, S, H]` and mask `[B, S]` (for attention).
    outputs: Tensor<3>,
    mask: Tensor<2>,
    state: State,
}

impl Seq2Seq {
    /// Encode source ids `[B, S]` (padding masked out).
    pub fn encode(&self, source: Tensor<2, Int>, mask: Tensor<2>) -> Encoded {
        let (outputs, state) =
            self.enc
                .forward(self.enc_emb.forward(source), Some(mask.clone()), None);
        Encoded {
            outputs,
            mask,
            state,
        }
    }

    /// Decoder hidden states (after attention) `[B, T, H]` for target inputs `[B, T]`.
    fn decode(&self, enc: &Encoded, target_in: Tensor<2, Int>, mask: Tensor<2>) -> Tensor<3> {
        let (h, _) = self.dec.forward(
            self.dec_emb.forward(target_in),
            Some(mask),
            Some(enc.state.clone()),
        );
        self.attended(h, enc)
    }

    /// With attention, each decoder state mixed with the encoder outputs it attends to.
    fn attended(&self, h: Tensor<3>, enc: &Encoded) -> Tensor<3> {
        let Some(attend) = &self.attend else {
            return h;
        };
        // scores [B, T, S]; padding positions get -inf (a large negative) before softmax.
        let scores = h.clone().matmul(enc.outputs.clone().swap_dims(1, 2));
        let blocked = enc
            .mask
            .clone()
            .neg()
            .add_scalar(1.0)
            .mul_scalar(-1e9)
            .unsqueeze_dim(1);
        let weights = softmax(scores + blocked, 2);
        let context = weights.matmul(enc.outputs.clone());
        tanh(attend.forward(Tensor::cat(vec![h, context], 2)))
    }

    /// Features at the predicted positions (`predict_at`: flat `b * T + t`), `[N, H]`: what the
    /// head scores during training.
    pub fn features(
        &self,
        source: Tensor<2, Int>,
        source_mask: Tensor<2>,
        target_in: Tensor<2, Int>,
        target_mask: Tensor<2>,
        predict_at: Tensor<1, Int>,
    ) -> Tensor<2> {
        let enc = self.encode(source, source_mask);
        let h = self.decode(&enc, target_in, target_mask);
        let [b, t, d] = h.dims();
        h.reshape([b * t, d]).select(0, predict_at)
    }
}

/// Generation with a trained encoder–decoder: the state is the decoder's recurrent state plus
/// what it attends to, one row per hypothesis.
pub struct Generator<'a> {
    pub model: &'a Seq2Seq,
    /// The whole model, for its head.
    pub classifier: &'a super::Classifier,
}

impl Decoder for Generator<'_> {
    type State = Encoded;

    fn step(&self, state: Encoded, tokens: &[u32]) -> Result<(Vec<Vec<f32>>, Encoded)> {
        let device = state.outputs.device();
        let n = tokens.len();
        let ids = Tensor::<1, Int>::from_data(
            TensorData::new(tokens.iter().map(|&t| t as i64).collect::<Vec<_>>(), [n]),
            &device,
        )
        .reshape([n, 1]);
        let x = self.model.dec_emb.forward(ids).squeeze_dim::<2>(1);
        let (h, dec_state) = self.model.dec.step(x, state.state.clone());
        let next = Encoded {
            state: dec_state,
            ..state
        };
        let features = self
            .model
            .attended(h.unsqueeze_dim(1), &next)
            .squeeze_dim::<2>(1);
        let logp = log_softmax(self.classifier.forward_head(features), 1);
        let [_, v] = logp.dims();
        let values: Vec<f32> = logp
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        Ok((values.chunks(v).map(<[f32]>::to_vec).collect(), next))
    }

    fn select(&self, state: Encoded, rows: &[usize]) -> Encoded {
        let device = state.outputs.device();
        let index = Tensor::<1, Int>::from_data(
            TensorData::new(
                rows.iter().map(|&r| r as i64).collect::<Vec<_>>(),
                [rows.len()],
            ),
            &device,
        );
        Encoded {
            outputs: state.outputs.select(0, index.clone()),
            mask: state.mask.select(0, index.clone()),
            state: State {
                h: state.state.h.select(1, index.clone()),
                c: state.state.c.map(|c| c.select(1, index)),
            },
        }
    }
}
