//! Whisper model directories from other tools, loaded into pretune's Whisper (whose names are
//! Hugging Face's): CTranslate2's (`model.bin`, `config.json` with the suppressed tokens,
//! `tokenizer.json`: what faster-whisper runs) and Hugging Face's
//! `WhisperForConditionalGeneration` (`config.json`, `model.safetensors` or
//! `pytorch_model.bin`, `tokenizer.json`, optionally `generation_config.json`).
//!
//! CTranslate2 fuses projections: a self-attention's `linear_0` is Q, K and V stacked along
//! the output dimension, a cross-attention's `linear_1` is K and V; they are split here. The
//! key projections' biases (zeros in converted files) are dropped: a bias on the keys adds the
//! same number to every score of a query, which softmax ignores.

use std::path::Path;

use anyhow::Result;
use burn::prelude::*;
use burn::store::{ModuleSnapshot, bridge};
use serde_json::Value;

use super::ct2::{self, Ct2Model};
use super::torch;
use crate::checkpoint::{self, Checkpoint, Meta};
use crate::data::{ModelInput, SpeechInput, TextTokenizer};
use crate::fs::sha256_hex;
use crate::models::whisper::WhisperConfig;
use crate::models::{self, Classifier, ModelOptions, Task};
use crate::{bail_input, input_error};

/// A Whisper model as loaded from a directory: the model (its head is the token table), what it
/// reads and writes, and its tokenizer.
pub struct WhisperModel {
    pub model: Classifier,
    pub config: WhisperConfig,
    pub input: SpeechInput,
    pub tokenizer: TextTokenizer,
}

/// Whether `dir` holds a Whisper model of another tool: a CTranslate2 `model.bin`, or a
/// Hugging Face `config.json` whose `model_type` is `whisper`.
pub fn is_whisper_dir(dir: &Path) -> bool {
    if dir.join(checkpoint::META_FILE).is_file() {
        return false;
    }
    dir.join("model.bin").is_file()
        || read_json(&dir.join("config.json")).is_ok_and(|c| c["model_type"] == "whisper")
}

/// Load a CTranslate2 or Hugging Face Whisper directory (see the module's documentation).
pub fn load(dir: &Path, device: &Device) -> Result<WhisperModel> {
    let ct2 = dir.join("model.bin");
    let (config, tensors, settings) = if ct2.is_file() {
        let model = ct2::read_ct2(&ct2).map_err(|e| match e {
            ct2::Ct2Error::Format { .. } => input_error!("{e}"),
            ct2::Ct2Error::Io { .. } => anyhow::Error::new(e),
        })?;
        let config = ct2_config(&model).map_err(|e| input_error!("{}: {e}", ct2.display()))?;
        let tensors =
            ct2_tensors(&model, &config).map_err(|e| input_error!("{}: {e}", ct2.display()))?;
        let settings = read_json(&dir.join("config.json")).unwrap_or(Value::Null);
        (config, tensors, settings)
    } else {
        let (config, tensors) = hf_tensors(dir)?;
        // generation_config.json holds the decoding settings; older exports keep them in config.json.
        let settings = read_json(&dir.join("generation_config.json"))
            .or_else(|_| read_json(&dir.join("config.json")))?;
        (config, tensors, settings)
    };
    let model = build(&config, tensors, device, dir)?;
    let tokenizer_path = dir.join("tokenizer.json");
    let tokenizer = TextTokenizer::from_file(&tokenizer_path, config.max_target_positions)?
        .fit_to(config.vocab_size, &tokenizer_path)?;
    let input = speech_input(&config, &settings, &tokenizer)
        .and_then(|input| input.check(&config).map(|()| input))
        .map_err(|e| input_error!("{}: {e}", dir.display()))?;
    Ok(WhisperModel {
        model,
        config,
        input,
        tokenizer,
    })
}

/// The weights of a Hugging Face Whisper directory alone (no tokenizer needed): its config and
/// the model.
pub fn load_hf_weights(dir: &Path, device: &Device) -> Result<(WhisperConfig, Classifier)> {
    let (config, tensors) = hf_tensors(dir)?;
    let model = build(&config, tensors, device, dir)?;
    Ok((config, model))
}

/// A Whisper directory as a checkpoint to fine-tune from or transcribe with.
pub fn open(dir: &Path, device: &Device) -> Result<Checkpoint> {
    let w = load(dir, device)?;
    let arch = models::arch("whisper")?;
    let options = ModelOptions {
        whisper: Some(w.config),
        ..Default::default()
    };
    let mut meta = Meta::imported(arch, options, vec![], ModelInput::Speech(w.input));
    meta.task = Task::Transcribe;
    let weights = checkpoint::serialize(&w.model, &meta)?;
    // The lineage of a fine-tune names the file it started from.
    let source = ["model.bin", "model.safetensors", "pytorch_model.bin"]
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file())
        .expect("load found one");
    let bytes = std::fs::read(&source)
        .map_err(|e| input_error!("{}: cannot read: {e}", source.display()))?;
    Ok(Checkpoint {
        dir: dir.to_path_buf(),
        sha256: sha256_hex(&bytes),
        meta,
        arch,
        tokenizer: Some(w.tokenizer),
        weights,
    })
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| input_error!("{}: cannot read: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| input_error!("{}: not JSON: {e}", path.display()))
}

/// Named tensors in PyTorch's layout and our names (`backbone.` + Hugging Face's name without
/// `model.`, and `head.weight` for the token table).
type Named = Vec<(String, TensorData)>;

/// A model of `config` with `tensors` loaded, every tensor accounted for.
fn build(
    config: &WhisperConfig,
    tensors: Named,
    device: &Device,
    dir: &Path,
) -> Result<Classifier> {
    let arch = models::arch("whisper")?;
    let options = ModelOptions {
        whisper: Some(config.clone()),
        ..Default::default()
    };
    // The seed does not matter: every weight is then loaded.
    let mut model = Classifier::new(arch, &options, config.vocab_size, 0, device);
    let pack: Vec<_> = tensors
        .into_iter()
        .map(|(name, data)| bridge::from_data(data, name, None))
        .collect();
    let result = model.apply(pack, None, Some(models::from_pytorch_layout()), true);
    let shown = dir.display();
    if let Some(err) = result.errors.first() {
        bail_input!("{shown}: {}", models::load_error(err, hf_name, true));
    }
    if !result.missing.is_empty() {
        let names: Vec<String> = result.missing.iter().map(|(p, _)| hf_name(p)).collect();
        bail_input!(
            "{shown}: missing {} tensor(s) of a Whisper model: {}",
            names.len(),
            crate::error::listed(&names, 8)
        );
    }
    if !result.unused.is_empty() {
        let names: Vec<String> = result.unused.iter().map(|p| hf_name(p)).collect();
        bail_input!(
            "{shown}: holds {} tensor(s) that a Whisper model of its config has no place for: {}",
            names.len(),
            crate::error::listed(&names, 8)
        );
    }
    Ok(model)
}

/// Hugging Face's name of one of our tensors.
pub fn hf_name(name: &str) -> String {
    match name.strip_prefix(models::BACKBONE_PREFIX) {
        Some(rest) => format!("model.{rest}"),
        None if name.starts_with("head.") => "model.decoder.embed_tokens.weight".into(),
        None => name.to_string(),
    }
}

/// Our name of a Hugging Face Whisper tensor; `None` for the tied `proj_out`.
fn from_hf_name(key: &str) -> Option<String> {
    let key = key.strip_prefix("model.").unwrap_or(key);
    match key {
        "proj_out.weight" => None,
        "decoder.embed_tokens.weight" => Some("head.weight".into()),
        _ => Some(format!("{}{key}", models::BACKBONE_PREFIX)),
    }
}

/// A Hugging Face directory's config and tensors.
fn hf_tensors(dir: &Path) -> Result<(WhisperConfig, Named)> {
    let config_path = dir.join("config.json");
    let value = read_json(&config_path)?;
    if value["model_type"] != "whisper" {
        bail_input!(
            "{}: model_type is {}, not \"whisper\"",
            config_path.display(),
            value["model_type"]
        );
    }
    let config: WhisperConfig = serde_json::from_value(value.clone())
        .map_err(|e| input_error!("{}: not a Whisper config: {e}", config_path.display()))?;
    config
        .check()
        .map_err(|e| input_error!("{}: {e}", config_path.display()))?;
    for (field, expected) in [("activation_function", "gelu"), ("model_type", "whisper")] {
        if value[field].as_str().is_some_and(|v| v != expected) {
            bail_input!(
                "{}: {field} {} is not supported (only {expected:?})",
                config_path.display(),
                value[field]
            );
        }
    }
    if value["scale_embedding"] == true {
        bail_input!(
            "{}: scale_embedding is not supported",
            config_path.display()
        );
    }
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
    // The config decides how much is allocated: it must not promise more than the file holds.
    let file_len = std::fs::metadata(&weights).map_or(0, |m| m.len()) as u128;
    if config.parameters().saturating_mul(2) > file_len {
        bail_input!(
            "{}: describes {} parameters, more than {} ({file_len} bytes) holds: the config does \
             not belong to these weights",
            config_path.display(),
            config.parameters(),
            weights.display()
        );
    }
    let tensors = torch::read_tensors(&weights)?
        .into_iter()
        .filter_map(|(k, data)| from_hf_name(&k).map(|name| (name, data)))
        .collect();
    Ok((config, tensors))
}

/// A CTranslate2 Whisper's sizes, from its variables' shapes; settings this implementation does
/// not compute (post-norm, another activation, scaled embeddings, quantised weights) refused.
fn ct2_config(m: &Ct2Model) -> Result<WhisperConfig, String> {
    if m.spec != "WhisperSpec" {
        return Err(format!("holds a {:?}, not a WhisperSpec model", m.spec));
    }
    let shape = |name: &str| -> Result<&[usize], String> {
        m.get(name)
            .map(|v| v.shape.as_slice())
            .ok_or_else(|| format!("has no variable {name}"))
    };
    let scalar = |name: &str, default: f32| m.scalar(name).unwrap_or(default);
    for (name, want, what) in [
        ("decoder/pre_norm", 1.0, "post-norm layers"),
        ("decoder/activation", 3.0, "an activation other than GELU"),
        ("decoder/scale_embeddings", 0.0, "scaled embeddings"),
        ("decoder/alibi", 0.0, "ALiBi positions"),
    ] {
        if scalar(name, want) != want {
            return Err(format!(
                "{what} ({name} = {}) are not supported",
                scalar(name, want)
            ));
        }
    }
    if let Some((name, v)) = m.variables.iter().find(|(n, v)| {
        !v.shape.is_empty()
            && !matches!(
                v.dtype,
                ct2::Ct2Dtype::F32 | ct2::Ct2Dtype::F16 | ct2::Ct2Dtype::Bf16
            )
            && !n.ends_with("_scale")
    }) {
        return Err(format!(
            "{name} is {}: quantised models are not supported (convert with --quantization float16)",
            v.dtype
        ));
    }
    let layers = |prefix: &str| {
        (0..)
            .take_while(|i| {
                m.get(&format!("{prefix}/layer_{i}/ffn/linear_0/weight"))
                    .is_some()
            })
            .count()
    };
    let dims2 = |name: &str| -> Result<[usize; 2], String> {
        match shape(name)? {
            [a, b] => Ok([*a, *b]),
            other => Err(format!("{name} has shape {other:?}, expected 2 dimensions")),
        }
    };
    let [vocab, d] = dims2("decoder/embeddings/weight")?;
    let mels = match shape("encoder/conv1/weight")? {
        [_, mels, 3] => *mels,
        other => Err(format!(
            "encoder/conv1/weight has shape {other:?}, expected [d, mels, 3]"
        ))?,
    };
    let heads = |name: &str| -> Result<usize, String> {
        match m.scalar(name) {
            Some(h) if h >= 1.0 && h.fract() == 0.0 => Ok(h as usize),
            _ => Err(format!("{name} is missing or not a positive whole number")),
        }
    };
    let config = WhisperConfig {
        vocab_size: vocab,
        num_mel_bins: mels,
        d_model: d,
        encoder_layers: layers("encoder"),
        encoder_attention_heads: heads("encoder/num_heads")?,
        encoder_ffn_dim: dims2("encoder/layer_0/ffn/linear_0/weight")?[0],
        decoder_layers: layers("decoder"),
        decoder_attention_heads: heads("decoder/num_heads")?,
        decoder_ffn_dim: dims2("decoder/layer_0/ffn/linear_0/weight")?[0],
        max_source_positions: dims2("encoder/position_encodings/encodings")?[0],
        max_target_positions: dims2("decoder/position_encodings/encodings")?[0],
    };
    config.check()?;
    Ok(config)
}

/// CTranslate2's variables under our names, fused projections split (PyTorch layout).
fn ct2_tensors(m: &Ct2Model, c: &WhisperConfig) -> Result<Named, String> {
    let d = c.d_model;
    let var = |name: &str| m.get(name).ok_or_else(|| format!("has no variable {name}"));
    // Rows `part * d .. (part + 1) * d` of a fused [k * d, …] variable.
    let rows = |name: &str, part: usize, of: usize| -> Result<TensorData, String> {
        let v = var(name)?;
        let width: usize = v.shape[1..].iter().product();
        if v.shape.first() != Some(&(of * d)) {
            return Err(format!(
                "{name} has shape {:?}; expected {} rows",
                v.shape,
                of * d
            ));
        }
        let mut shape = v.shape.clone();
        shape[0] = d;
        Ok(TensorData::new(
            v.data[part * d * width..(part + 1) * d * width].to_vec(),
            shape,
        ))
    };
    let whole = |name: &str| -> Result<TensorData, String> {
        let v = var(name)?;
        Ok(TensorData::new(v.data.clone(), v.shape.clone()))
    };
    let mut out: Named = Vec::new();
    let mut put = |ours: String, data: TensorData| {
        out.push((format!("{}{ours}", models::BACKBONE_PREFIX), data))
    };
    let norm =
        |put: &mut dyn FnMut(String, TensorData), ours: &str, theirs: &str| -> Result<(), String> {
            put(format!("{ours}.weight"), whole(&format!("{theirs}/gamma"))?);
            put(format!("{ours}.bias"), whole(&format!("{theirs}/beta"))?);
            Ok(())
        };
    let linear =
        |put: &mut dyn FnMut(String, TensorData), ours: &str, theirs: &str| -> Result<(), String> {
            put(
                format!("{ours}.weight"),
                whole(&format!("{theirs}/weight"))?,
            );
            put(format!("{ours}.bias"), whole(&format!("{theirs}/bias"))?);
            Ok(())
        };
    // q, k, v from one fused variable (k's bias dropped).
    let fused = |put: &mut dyn FnMut(String, TensorData),
                 ours: &str,
                 theirs: &str,
                 parts: &[(&str, usize)],
                 of: usize|
     -> Result<(), String> {
        for &(proj, part) in parts {
            put(
                format!("{ours}.{proj}.weight"),
                rows(&format!("{theirs}/weight"), part, of)?,
            );
            if proj != "k_proj" {
                put(
                    format!("{ours}.{proj}.bias"),
                    rows(&format!("{theirs}/bias"), part, of)?,
                );
            }
        }
        Ok(())
    };
    // Every layer's self-attention and feed-forward block, encoder's and decoder's alike.
    let self_attention =
        |put: &mut dyn FnMut(String, TensorData), ours: &str, theirs: &str| -> Result<(), String> {
            let qkv = [("q_proj", 0), ("k_proj", 1), ("v_proj", 2)];
            let attn = format!("{theirs}/self_attention");
            fused(
                put,
                &format!("{ours}.self_attn"),
                &format!("{attn}/linear_0"),
                &qkv,
                3,
            )?;
            linear(
                put,
                &format!("{ours}.self_attn.out_proj"),
                &format!("{attn}/linear_1"),
            )?;
            norm(
                put,
                &format!("{ours}.self_attn_layer_norm"),
                &format!("{attn}/layer_norm"),
            )
        };
    let feed_forward =
        |put: &mut dyn FnMut(String, TensorData), ours: &str, theirs: &str| -> Result<(), String> {
            linear(
                put,
                &format!("{ours}.fc1"),
                &format!("{theirs}/ffn/linear_0"),
            )?;
            linear(
                put,
                &format!("{ours}.fc2"),
                &format!("{theirs}/ffn/linear_1"),
            )?;
            norm(
                put,
                &format!("{ours}.final_layer_norm"),
                &format!("{theirs}/ffn/layer_norm"),
            )
        };
    for conv in ["conv1", "conv2"] {
        linear(
            &mut put,
            &format!("encoder.{conv}"),
            &format!("encoder/{conv}"),
        )?;
    }
    put(
        "encoder.embed_positions.weight".into(),
        whole("encoder/position_encodings/encodings")?,
    );
    for i in 0..c.encoder_layers {
        let (ours, theirs) = (format!("encoder.layers.{i}"), format!("encoder/layer_{i}"));
        self_attention(&mut put, &ours, &theirs)?;
        feed_forward(&mut put, &ours, &theirs)?;
    }
    norm(&mut put, "encoder.layer_norm", "encoder/layer_norm")?;
    put(
        "decoder.embed_positions.weight".into(),
        whole("decoder/position_encodings/encodings")?,
    );
    for i in 0..c.decoder_layers {
        let (ours, theirs) = (format!("decoder.layers.{i}"), format!("decoder/layer_{i}"));
        self_attention(&mut put, &ours, &theirs)?;
        linear(
            &mut put,
            &format!("{ours}.encoder_attn.q_proj"),
            &format!("{theirs}/attention/linear_0"),
        )?;
        fused(
            &mut put,
            &format!("{ours}.encoder_attn"),
            &format!("{theirs}/attention/linear_1"),
            &[("k_proj", 0), ("v_proj", 1)],
            2,
        )?;
        linear(
            &mut put,
            &format!("{ours}.encoder_attn.out_proj"),
            &format!("{theirs}/attention/linear_2"),
        )?;
        norm(
            &mut put,
            &format!("{ours}.encoder_attn_layer_norm"),
            &format!("{theirs}/attention/layer_norm"),
        )?;
        feed_forward(&mut put, &ours, &theirs)?;
    }
    norm(&mut put, "decoder.layer_norm", "decoder/layer_norm")?;
    out.push(("head.weight".into(), whole("decoder/embeddings/weight")?));
    Ok(out)
}

/// How the model writes a transcript: the prompt from the tokenizer's special tokens
/// (English, no timestamps), the suppressed tokens from `settings` (CTranslate2's
/// `config.json`, or Hugging Face's generation config), at most half the decoder's positions.
fn speech_input(
    c: &WhisperConfig,
    settings: &Value,
    tokenizer: &TextTokenizer,
) -> Result<SpeechInput, String> {
    let token = |t: &str| {
        tokenizer
            .token_id(t)
            .ok_or_else(|| format!("the tokenizer has no {t} token"))
    };
    // A multilingual model (51,865 tokens or more, as OpenAI tells them) also needs the
    // language and the task.
    let mut prompt = vec![token("<|startoftranscript|>")?];
    if c.vocab_size >= 51_865 {
        prompt.extend([token("<|en|>")?, token("<|transcribe|>")?]);
    }
    prompt.push(token("<|notimestamps|>")?);
    let ids = |keys: &[&str]| -> Result<Vec<u32>, String> {
        let Some(list) = keys.iter().find_map(|k| settings[*k].as_array()) else {
            return Ok(Vec::new());
        };
        list.iter()
            .map(|v| match v.as_u64() {
                Some(id) if (id as usize) < c.vocab_size => Ok(id as u32),
                _ => Err(format!(
                    "{} lists {v}, not a token of the vocabulary",
                    keys[0]
                )),
            })
            .collect()
    };
    Ok(SpeechInput {
        frames: c.frames(),
        prompt,
        end: token("<|endoftext|>")?,
        suppress: ids(&["suppress_ids", "suppress_tokens"])?,
        suppress_first: ids(&["suppress_ids_begin", "begin_suppress_tokens"])?,
        max_tokens: c.max_target_positions / 2,
    })
}
