//! Hugging Face BERT model directories (`config.json`, `model.safetensors` or
//! `pytorch_model.bin`, `tokenizer.json`), loaded name for name into pretune's BERT.

use std::path::{Path, PathBuf};

use anyhow::Result;
use burn::prelude::*;
use burn::store::{ModuleSnapshot, bridge};

use super::torch;
use crate::checkpoint::{self, Checkpoint, Meta};
use crate::data::{ModelInput, TextInput, TextTokenizer};
use crate::fs::sha256_hex;
use crate::models::bert::{self, Bert, BertConfig};
use crate::models::{self, Backbone, Classifier, ModelOptions};
use crate::{bail_input, input_error};

/// A Hugging Face BERT model directory, loaded.
pub struct HfModel {
    pub dir: PathBuf,
    /// The weights file read.
    pub weights: PathBuf,
    pub config: BertConfig,
    pub model: Bert,
    pub tokenizer: TextTokenizer,
    /// Checkpoint tensors the model has no place for (e.g. a masked-LM head).
    pub unused: Vec<String>,
}

/// Load `config.json`, `model.safetensors` (or `pytorch_model.bin`) and `tokenizer.json` from
/// a Hugging Face BertModel directory. The maximum length is `sentence_bert_config.json`'s
/// `max_seq_length` when present (sentence-transformers models), else the position table's size.
pub fn load_hf_dir(dir: &Path, device: &Device) -> Result<HfModel> {
    let config = read_config(dir)?;
    let config_path = dir.join("config.json");
    let weights = ["model.safetensors", "pytorch_model.bin"]
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            input_error!(
                "{}: no model.safetensors or pytorch_model.bin",
                dir.display()
            )
        })?;
    // The config decides how much is allocated: it must not promise more than the file holds
    // (a config of a million layers would otherwise ask for terabytes before any check).
    let file_len = std::fs::metadata(&weights).map_or(0, |m| m.len()) as u128;
    let needed = config.parameters().saturating_mul(2);
    if needed > file_len {
        bail_input!(
            "{}: describes a model of {} parameters (at least {needed} bytes in half precision), \
             but {} holds {file_len} bytes: the config does not belong to these weights",
            config_path.display(),
            config.parameters(),
            weights.display()
        );
    }
    let tensors = torch::read_tensors(&weights)?;
    let mut model = Bert::new(&config, device);
    let pack: Vec<_> = tensors
        .into_iter()
        .filter_map(|(k, data)| {
            bert::from_hf_name(&k).map(|name| bridge::from_data(data, name, None))
        })
        .collect();
    let result = model.apply(pack, None, Some(models::from_pytorch_layout()), true);
    if let Some(err) = result.errors.first() {
        bail_input!(
            "{}: {} (does {} describe these weights?)",
            weights.display(),
            models::load_error(err, bert::to_hf_name, true),
            config_path.display()
        );
    }
    if !result.missing.is_empty() {
        let names: Vec<String> = result
            .missing
            .iter()
            .map(|(p, _)| bert::to_hf_name(p))
            .collect();
        bail_input!(
            "{}: missing {} tensor(s) of a BERT model: {}",
            weights.display(),
            names.len(),
            crate::error::listed(&names, 8)
        );
    }
    // A pooler or a masked-LM head may come along unused; encoder weights left over mean the
    // config describes a smaller model than the file holds (3 of 6 layers, silently).
    let unused: Vec<String> = result.unused.iter().map(|p| bert::to_hf_name(p)).collect();
    let encoder: Vec<&String> = unused
        .iter()
        .filter(|n| n.starts_with("embeddings.") || n.starts_with("encoder."))
        .collect();
    if !encoder.is_empty() {
        bail_input!(
            "{}: holds {} encoder tensor(s) that the model of {} has no place for: {} (does it \
             say the right num_hidden_layers?)",
            weights.display(),
            encoder.len(),
            config_path.display(),
            crate::error::listed(&encoder, 4)
        );
    }
    let tokenizer = read_tokenizer(dir, &config)?;
    Ok(HfModel {
        dir: dir.to_path_buf(),
        weights,
        config,
        model,
        tokenizer,
        unused,
    })
}

/// The checked `config.json` of a Hugging Face BERT directory.
pub fn read_config(dir: &Path) -> Result<BertConfig> {
    let config_path = dir.join("config.json");
    let text = std::fs::read_to_string(&config_path).map_err(|e| {
        input_error!(
            "{}: cannot read ({e}); expected a Hugging Face model directory with config.json, \
             model.safetensors and tokenizer.json",
            config_path.display()
        )
    })?;
    let config: BertConfig = serde_json::from_str(&text)
        .map_err(|e| input_error!("{}: not a BERT config: {e}", config_path.display()))?;
    config
        .check()
        .map_err(|e| input_error!("{}: {e}", config_path.display()))?;
    Ok(config)
}

/// The `tokenizer.json` of a Hugging Face BERT directory, fitted to `config`'s vocabulary.
/// Its maximum length is `sentence_bert_config.json`'s `max_seq_length` when present
/// (sentence-transformers models), else the position table's size.
pub fn read_tokenizer(dir: &Path, config: &BertConfig) -> Result<TextTokenizer> {
    let max_length = std::fs::read_to_string(dir.join("sentence_bert_config.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["max_seq_length"].as_u64())
        .map_or(config.max_position_embeddings, |n| n as usize)
        .min(config.max_position_embeddings);
    let tokenizer_path = dir.join("tokenizer.json");
    TextTokenizer::from_file(&tokenizer_path, max_length)?
        .fit_to(config.vocab_size, &tokenizer_path)
}

/// A Hugging Face BERT directory as a checkpoint to fine-tune from, with a placeholder
/// 2-class head (fine-tuning replaces it).
pub fn open(dir: &Path, device: &Device) -> Result<Checkpoint> {
    let hf = load_hf_dir(dir, device)?;
    let arch = models::arch("bert")?;
    let model_options = ModelOptions {
        bert: Some(hf.config.clone()),
        ..Default::default()
    };
    // A placeholder head, for the checkpoint's shape: fine-tuning replaces it.
    let model = Classifier::with_new_head(
        Backbone::Bert(hf.model),
        hf.config.hidden_size,
        2,
        0,
        device,
    );
    let input = ModelInput::Text(TextInput {
        max_length: hf.tokenizer.max_length,
    });
    let meta = Meta::imported(arch, model_options, vec!["0".into(), "1".into()], input);
    let weights = checkpoint::serialize(&model, &meta)?;
    let file = std::fs::read(&hf.weights)
        .map_err(|e| input_error!("{}: cannot read: {e}", hf.weights.display()))?;
    Ok(Checkpoint {
        dir: dir.to_path_buf(),
        sha256: sha256_hex(&file),
        meta,
        arch,
        tokenizer: Some(hf.tokenizer),
        weights,
    })
}
