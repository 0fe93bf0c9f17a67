//! AWD-LSTM (Merity et al. 2017), the encoder of ULMFiT (Howard & Ruder 2018) as fastai builds
//! it: a token embedding, stacked single-layer LSTMs (the last one as wide as the embedding, so
//! that a language model's output layer can be the embedding read backwards — weight tying,
//! done by the classifier's head), and five dropouts: whole words of the embedding, the same
//! units at every step of the input and between layers (variational), connections of each
//! LSTM's hidden-to-hidden weight (DropConnect, a fresh mask per batch), and the output.
//!
//! A language model predicts each next token from the last layer's outputs; a classifier reads
//! the text's last state, its max-pool and its mean-pool over the real tokens, concatenated
//! (ULMFiT's concat pooling).

use burn::module::{Initializer, ParamGroup};
use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::rnn::{Cell, Rnn, RnnConfig};
use crate::kernels::dropout_mask;

/// The dropout probabilities of an AWD-LSTM.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Dropouts {
    /// Whole rows (words) of the embedding.
    pub embedding: f64,
    /// Units of the embedded input, the same at every step.
    pub input: f64,
    /// Connections of each LSTM's hidden-to-hidden weight.
    pub weight: f64,
    /// Units between LSTM layers, the same at every step.
    pub hidden: f64,
    /// Units of what the head reads.
    pub output: f64,
}

impl Dropouts {
    /// fastai's `awd_lstm_lm_config`.
    pub const LANGUAGE_MODEL: Dropouts = Dropouts {
        embedding: 0.02,
        input: 0.25,
        weight: 0.2,
        hidden: 0.15,
        output: 0.1,
    };
    /// fastai's `awd_lstm_clas_config` at `text_classifier_learner`'s default `drop_mult` 0.5.
    pub const CLASSIFIER: Dropouts = Dropouts {
        embedding: 0.025,
        input: 0.2,
        weight: 0.25,
        hidden: 0.15,
        output: 0.2,
    };
}

/// The sizes of an AWD-LSTM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LstmConfig {
    pub vocab_size: usize,
    /// Embedding width, and the last LSTM's.
    pub embedding: usize,
    /// Width of the other LSTMs.
    pub hidden: usize,
    pub layers: usize,
    pub dropouts: Dropouts,
    /// A language model: the head predicts next tokens with the embedding's weights (and
    /// reads each token's output); otherwise a classifier reading the pooled text.
    pub tie_weights: bool,
}

impl LstmConfig {
    /// pretune's `lstm`: fastai's AWD-LSTM shape (3 layers, the last one embedding-wide) at a
    /// width two CPU cores train on a corpus of a million tokens in minutes (128 / 256 rather
    /// than 400 / 1152: a 512-wide layer alone takes a second per batch of 32 × 64 tokens
    /// there, in PyTorch too), as a language model.
    pub fn preset(vocab_size: usize) -> LstmConfig {
        LstmConfig {
            vocab_size,
            embedding: 128,
            hidden: 256,
            layers: LAYERS,
            dropouts: Dropouts::LANGUAGE_MODEL,
            tie_weights: true,
        }
    }

    /// The same encoder as a classifier (what fine-tuning a language model gives).
    pub fn classifier(&self) -> LstmConfig {
        LstmConfig {
            dropouts: Dropouts::CLASSIFIER,
            tie_weights: false,
            ..self.clone()
        }
    }

    /// Length of what the head reads: a token's output (language model) or the pooled text.
    pub fn features(&self) -> usize {
        if self.tie_weights {
            self.embedding
        } else {
            3 * self.embedding
        }
    }

    /// Check the sizes; the message names the field.
    pub fn check(&self) -> Result<(), String> {
        let sizes = [self.embedding, self.hidden, self.vocab_size];
        if sizes.contains(&0) || self.embedding > 1 << 13 || self.hidden > 1 << 13 {
            return Err(
                "embedding, hidden and vocabulary sizes must be positive (widths at most 8192)"
                    .into(),
            );
        }
        if self.layers != LAYERS {
            return Err(format!("lstm has {LAYERS} layers, not {}", self.layers));
        }
        let d = self.dropouts;
        if [d.embedding, d.input, d.weight, d.hidden, d.output]
            .iter()
            .any(|p| !(0.0..1.0).contains(p))
        {
            return Err("dropout probabilities must be in [0, 1)".into());
        }
        Ok(())
    }

    pub fn init(&self, device: &Device) -> AwdLstm {
        // fastai draws the embedding from U(-0.1, 0.1); the LSTMs as PyTorch does.
        let mut encoder = EmbeddingConfig::new(self.vocab_size, self.embedding).init(device);
        encoder.weight = Initializer::Uniform {
            min: -0.1,
            max: 0.1,
        }
        .init([self.vocab_size, self.embedding], device);
        let rnns = (0..self.layers)
            .map(|l| {
                RnnConfig {
                    cell: Cell::Lstm,
                    input: if l == 0 { self.embedding } else { self.hidden },
                    hidden: if l + 1 == self.layers {
                        self.embedding
                    } else {
                        self.hidden
                    },
                    layers: 1,
                    bidirectional: false,
                }
                .init(device)
            })
            .collect();
        let d = self.dropouts;
        let dropout = |p| DropoutConfig::new(p).init();
        AwdLstm {
            encoder,
            rnns,
            embedding_dp: dropout(d.embedding),
            input_dp: dropout(d.input),
            weight_dp: dropout(d.weight),
            hidden_dp: dropout(d.hidden),
            output_dp: dropout(d.output),
        }
    }
}

/// The layers of `lstm`, fixed so that its stages have names.
pub const LAYERS: usize = 3;

#[derive(Module, Debug)]
pub struct AwdLstm {
    pub encoder: Embedding,
    pub rnns: Vec<Rnn>,
    embedding_dp: Dropout,
    input_dp: Dropout,
    weight_dp: Dropout,
    hidden_dp: Dropout,
    output_dp: Dropout,
}

/// Whether `dropout` acts on `x` now: in training, on a device that learns.
fn active(dropout: &Dropout, device: &Device) -> bool {
    dropout.training.is_enabled() && device.is_autodiff() && dropout.prob > 0.0
}

/// `x` `[B, T, D]` with the same units of each sequence dropped at every step.
fn variational(dropout: &Dropout, x: Tensor<3>) -> Tensor<3> {
    let device = x.device();
    if !active(dropout, &device) {
        return x;
    }
    let [b, _, d] = x.dims();
    x * dropout_mask(dropout.prob, [b, 1, d], true, &device)
}

impl AwdLstm {
    /// The last layer's outputs `[B, T, E]` (zeros at padding) and final states `[B, E]`.
    fn encode(&self, ids: Tensor<2, Int>, mask: Tensor<2>) -> (Tensor<3>, Tensor<2>) {
        let device = ids.device();
        let mut weight = self.encoder.weight.val();
        if active(&self.embedding_dp, &device) {
            let [v, _] = weight.dims();
            weight = weight * dropout_mask(self.embedding_dp.prob, [v, 1], false, &device);
        }
        let mut x = variational(&self.input_dp, burn::tensor::module::embedding(weight, ids));
        let drop_weights = active(&self.weight_dp, &device);
        let mut last = None;
        for (l, rnn) in self.rnns.iter().enumerate() {
            let (out, state) = rnn.forward_with(x, Some(mask.clone()), None, |w| {
                if drop_weights {
                    let dims = w.dims();
                    w * dropout_mask(self.weight_dp.prob, dims, false, &device)
                } else {
                    w
                }
            });
            x = if l + 1 < self.rnns.len() {
                variational(&self.hidden_dp, out)
            } else {
                out
            };
            last = Some(state.h.squeeze_dim::<2>(0));
        }
        (x, last.expect("an AWD-LSTM has layers"))
    }

    /// A classifier's features: last state, max-pool and mean-pool over the real tokens,
    /// `[B, 3E]`.
    pub fn features(&self, ids: Tensor<2, Int>, mask: Tensor<2>) -> Tensor<2> {
        let (out, last) = self.encode(ids, mask.clone());
        let m = mask.unsqueeze_dim::<3>(2);
        let count = m.clone().sum_dim(1).clamp_min(1.0).squeeze_dim::<2>(1);
        let mean = out.clone().sum_dim(1).squeeze_dim::<2>(1) / count;
        // Padding must not win the max: push it far below any output (LSTM outputs are in ±1).
        let max = (out + m.sub_scalar(1.0).mul_scalar(1e4))
            .max_dim(1)
            .squeeze_dim::<2>(1);
        let pooled = Tensor::cat(vec![last, max, mean], 1);
        let device = pooled.device();
        if active(&self.output_dp, &device) {
            let dims = pooled.dims();
            pooled * dropout_mask(self.output_dp.prob, dims, true, &device)
        } else {
            pooled
        }
    }

    /// A language model's features: the outputs at flat `positions` (`b * T + t`), `[N, E]`.
    pub fn token_features(
        &self,
        ids: Tensor<2, Int>,
        mask: Tensor<2>,
        positions: Tensor<1, Int>,
    ) -> Tensor<2> {
        let (out, _) = self.encode(ids, mask);
        let out = variational(&self.output_dp, out);
        let [b, t, e] = out.dims();
        out.reshape([b * t, e]).select(0, positions)
    }

    /// The embedding's width (and the last LSTM's).
    pub fn width(&self) -> usize {
        self.encoder.weight.dims()[1]
    }

    /// The same weights with other dropouts (a language model's encoder becoming a
    /// classifier's).
    pub fn with_dropouts(self, d: Dropouts) -> AwdLstm {
        let dropout = |p| DropoutConfig::new(p).init();
        AwdLstm {
            embedding_dp: dropout(d.embedding),
            input_dp: dropout(d.input),
            weight_dp: dropout(d.weight),
            hidden_dp: dropout(d.hidden),
            output_dp: dropout(d.output),
            ..self
        }
    }

    /// The embedding a tied head scores with, `[vocab, E]`.
    pub fn tied_weight(&self) -> Tensor<2> {
        self.encoder.weight.val()
    }

    /// Stages for freezing, gradual unfreezing and layer-wise rates: the embedding, then each
    /// LSTM.
    pub fn stages(&self) -> Vec<ParamGroup> {
        std::iter::once(ParamGroup::ids_from_module(self.encoder.clone()))
            .chain(
                self.rnns
                    .iter()
                    .map(|r| ParamGroup::ids_from_module(r.clone())),
            )
            .collect()
    }
}

/// The architecture's name.
pub const ARCH: &str = "lstm";

/// The stage names of `lstm` (see [`AwdLstm::stages`]).
pub const STAGES: &[&str] = &["embedding", "lstm1", "lstm2", "lstm3"];
