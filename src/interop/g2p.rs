//! g2p_en's pretrained grapheme-to-phoneme GRU (`checkpoint20.npz`, float32, and the
//! vocabularies of its `g2p.py`, which `scripts/g2p.sh` writes to `vocab.json`) as a pretune
//! encoder–decoder: `enc_emb`, `enc_w_ih`… map onto the same names in [`Seq2Seq`], `fc_w`/`fc_b`
//! onto the head.

use std::path::Path;

use anyhow::Result;
use burn::module::{Module, Param};
use burn::prelude::*;
use serde::Deserialize;

use super::npz;
use crate::checkpoint::{self, Meta};
use crate::data::pairs::Vocab;
use crate::data::{ModelInput, PairInput};
use crate::models::seq2seq::Seq2SeqConfig;
use crate::models::{self, Backbone, Classifier, ModelOptions, Task};
use crate::{bail_input, input_error};

/// `vocab.json` as `scripts/g2p.sh` writes it from g2p_en's source.
#[derive(Deserialize)]
struct G2pVocab {
    graphemes: Vec<String>,
    phonemes: Vec<String>,
}

/// What an import made.
pub struct Imported {
    pub model: Classifier,
    pub options: ModelOptions,
    pub input: PairInput,
}

impl Imported {
    /// Write the model as a checkpoint directory.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let arch = models::arch(ARCH)?;
        let mut meta = Meta::imported(
            arch,
            self.options.clone(),
            Vec::new(),
            ModelInput::Pairs(self.input.clone()),
        );
        meta.task = Task::Seq2seq;
        checkpoint::save(dir, &self.model, &mut meta, None)
    }
}

/// The architecture g2p_en's model is.
pub const ARCH: &str = "g2p-gru";

/// Read `weights` (g2p_en's npz) and `vocab` (its vocabularies) into a model.
pub fn import(weights: &Path, vocab: &Path, device: &Device) -> Result<Imported> {
    let text = std::fs::read_to_string(vocab).map_err(|e| {
        input_error!(
            "{}: cannot read g2p_en's vocabularies ({e}); scripts/g2p.sh writes vocab.json \
             beside checkpoint20.npz",
            vocab.display()
        )
    })?;
    let lists: G2pVocab = serde_json::from_str(&text)
        .map_err(|e| input_error!("{}: not g2p_en's vocab.json: {e}", vocab.display()))?;
    // g2p.py: graphemes <pad> <unk> </s> a…z; phonemes <pad> <unk> <s> </s> AA0…
    if lists.graphemes.get(2).map(String::as_str) != Some("</s>")
        || lists.phonemes.get(2).map(String::as_str) != Some("<s>")
        || lists.phonemes.get(3).map(String::as_str) != Some("</s>")
    {
        bail_input!(
            "{}: the special tokens are not where g2p.py puts them",
            vocab.display()
        );
    }
    let input = PairInput {
        source_vocab: Vocab {
            tokens: lists.graphemes,
            chars: true,
            bos: None,
            eos: 2,
        },
        target_vocab: Vocab {
            tokens: lists.phonemes,
            chars: false,
            bos: Some(2),
            eos: 3,
        },
    };
    let arrays = npz::read_npz(weights).map_err(|e| input_error!("{e}"))?;
    let get = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
        let a = arrays.get(name).ok_or_else(|| {
            input_error!(
                "{}: no array {name:?} (is it g2p_en's checkpoint?)",
                weights.display()
            )
        })?;
        if a.shape != shape {
            bail_input!(
                "{}: {name} has shape {:?}, expected {shape:?}",
                weights.display(),
                a.shape
            );
        }
        Ok(a.data.clone())
    };
    let (v_in, v_out) = (input.source_vocab.len(), input.target_vocab.len());
    let config = Seq2SeqConfig::g2p(v_in, v_out);
    let h = config.hidden;
    let options = ModelOptions {
        seq2seq: Some(config.clone()),
        ..Default::default()
    };
    let arch = models::arch(ARCH)?;
    let mut model = Classifier::new(arch, &options, v_out, 0, device);
    let Backbone::Seq2Seq(ref mut m) = model.backbone else {
        anyhow::bail!("g2p-gru builds an encoder–decoder");
    };
    let tensor2 = |v: Vec<f32>, shape: [usize; 2]| -> Tensor<2> {
        Tensor::from_data(TensorData::new(v, shape), device)
    };
    let tensor1 = |v: Vec<f32>| -> Tensor<1> {
        let n = v.len();
        Tensor::from_data(TensorData::new(v, [n]), device)
    };
    m.enc_emb.weight = Param::from_tensor(tensor2(get("enc_emb", &[v_in, h])?, [v_in, h]));
    m.dec_emb.weight = Param::from_tensor(tensor2(get("dec_emb", &[v_out, h])?, [v_out, h]));
    for (prefix, rnn) in [("enc", &mut m.enc), ("dec", &mut m.dec)] {
        let d = &mut rnn.layers[0].forward;
        d.weight_ih = Param::from_tensor(tensor2(
            get(&format!("{prefix}_w_ih"), &[3 * h, h])?,
            [3 * h, h],
        ));
        d.weight_hh = Param::from_tensor(tensor2(
            get(&format!("{prefix}_w_hh"), &[3 * h, h])?,
            [3 * h, h],
        ));
        d.bias_ih = Param::from_tensor(tensor1(get(&format!("{prefix}_b_ih"), &[3 * h])?));
        d.bias_hh = Param::from_tensor(tensor1(get(&format!("{prefix}_b_hh"), &[3 * h])?));
    }
    // fc_w is PyTorch's [out, in]; Burn's Linear keeps [in, out].
    let fc = tensor2(get("fc_w", &[v_out, h])?, [v_out, h]).transpose();
    model.head.weight = Some(Param::from_tensor(fc));
    model.head.bias = Some(Param::from_tensor(tensor1(get("fc_b", &[v_out])?)));
    let unused: Vec<&String> = arrays
        .keys()
        .filter(|k| !KNOWN.contains(&k.as_str()))
        .collect();
    if !unused.is_empty() {
        bail_input!(
            "{}: holds arrays g2p_en's model does not have: {}",
            weights.display(),
            crate::error::listed(&unused, 4)
        );
    }
    // Parameters made from tensors require gradients, as fresh ones do.
    let model = model.fork(device);
    Ok(Imported {
        model,
        options,
        input,
    })
}

/// The arrays of g2p_en's checkpoint.
const KNOWN: [&str; 12] = [
    "enc_emb", "enc_w_ih", "enc_w_hh", "enc_b_ih", "enc_b_hh", "dec_emb", "dec_w_ih", "dec_w_hh",
    "dec_b_ih", "dec_b_hh", "fc_w", "fc_b",
];
