//! The checkpoint directory: `model.safetensors` (weights, no code runs on load),
//! `pretune.json` (everything needed to rebuild and use the model) and, for text and speech models,
//! `tokenizer.json`. Written atomically; each file's sha256 is recorded and checked.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::prelude::*;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use serde::{Deserialize, Serialize};

use crate::data::{DataSpec, ModelInput, TextTokenizer, TrainingData, Validation};
use crate::fs::{sha256_hex, write_atomic};
use crate::models::{self, ArchInfo, Classifier, ModelOptions, Task};
use crate::train::{EpochRecord, FinetuneOptions, Phase, Recipe};
use crate::{bail_input, input_error};

/// Version of the `pretune.json` layout; bumped when a reader of an older version would misread it.
pub const FORMAT_VERSION: u32 = 1;
pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const META_FILE: &str = "pretune.json";

/// The tokenizer's file in a text checkpoint.
pub const TOKENIZER_FILE: &str = "tokenizer.json";

/// Where a fine-tuned model came from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Lineage {
    /// The parent checkpoint directory, as given.
    pub parent: String,
    /// The same, absolute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_absolute: Option<PathBuf>,
    /// sha256 of the parent's `model.safetensors`.
    pub parent_weights_sha256: String,
}

/// Contents of `pretune.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    pub format_version: u32,
    pub pretune_version: String,
    /// `pretrain` or `finetune`.
    pub stage: String,
    pub architecture: String,
    /// What the head predicts: classes, or masked tokens.
    #[serde(default)]
    pub task: Task,
    /// Layout choices beyond the architecture (`--small-input`, inception's auxiliary head).
    #[serde(default)]
    pub model_options: ModelOptions,
    pub class_names: Vec<String>,
    pub input: ModelInput,
    /// The data the model was trained on (none for imported weights).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<DataRecord>,
    /// How it was trained (none for imported weights).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipe: Option<Recipe>,
    /// How the fine-tune was done (`None` for pretraining).
    pub strategy: Option<FinetuneOptions>,
    /// The phases the run went through.
    pub phases: Vec<Phase>,
    /// One entry per epoch.
    pub history: Vec<EpochRecord>,
    /// Epoch whose weights were kept (best validation accuracy, else the last).
    pub best_epoch: usize,
    pub lineage: Option<Lineage>,
    /// sha256 of `model.safetensors`, filled in when saved.
    #[serde(default)]
    pub weights_sha256: String,
    /// sha256 of `tokenizer.json` (text models), filled in when saved.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tokenizer_sha256: String,
}

/// What a training run is, for [`Meta::for_run`].
pub struct Run<'a> {
    /// `pretrain` or `finetune`.
    pub stage: &'a str,
    pub task: Task,
    pub arch: &'a ArchInfo,
    pub model_options: ModelOptions,
    pub input: ModelInput,
    pub data: &'a DataSpec,
    pub sets: &'a TrainingData,
    pub recipe: &'a Recipe,
    pub strategy: Option<FinetuneOptions>,
    pub phases: Vec<Phase>,
    pub lineage: Option<Lineage>,
}

impl Meta {
    /// The metadata of weights imported from elsewhere: no data, recipe or history.
    pub fn imported(
        arch: &ArchInfo,
        model_options: ModelOptions,
        class_names: Vec<String>,
        input: ModelInput,
    ) -> Meta {
        Meta {
            format_version: FORMAT_VERSION,
            pretune_version: env!("CARGO_PKG_VERSION").to_string(),
            stage: "import".into(),
            architecture: arch.name.into(),
            task: Task::Classify,
            model_options,
            class_names,
            input,
            data: None,
            recipe: None,
            strategy: None,
            phases: vec![],
            history: vec![],
            best_epoch: 0,
            lineage: None,
            weights_sha256: String::new(),
            tokenizer_sha256: String::new(),
        }
    }

    /// The metadata of a checkpoint a training run is about to write: history and hashes are
    /// filled in as it ends.
    pub fn for_run(run: Run) -> Meta {
        Meta {
            format_version: FORMAT_VERSION,
            pretune_version: env!("CARGO_PKG_VERSION").to_string(),
            stage: run.stage.to_string(),
            architecture: run.arch.name.to_string(),
            task: run.task,
            model_options: run.model_options,
            class_names: run.sets.train.class_names().to_vec(),
            input: run.input,
            data: Some(DataRecord {
                spec: run.data.clone(),
                train_examples: run.sets.train.len(),
                val_examples: run.sets.val.len(),
                skipped_images: run.sets.skipped,
                validation: Some(run.sets.validation),
            }),
            recipe: Some(run.recipe.clone()),
            strategy: run.strategy,
            phases: run.phases,
            history: vec![],
            best_epoch: 0,
            lineage: run.lineage,
            weights_sha256: String::new(),
            tokenizer_sha256: String::new(),
        }
    }

    /// Parse and check `pretune.json`: readable, not from a newer pretune, a known architecture
    /// whose input it matches, sane sizes and normalisation, at least 2 classes.
    pub fn parse(text: &str) -> Result<(Meta, &'static ArchInfo)> {
        let meta: Meta = serde_json::from_str(text)
            .map_err(|e| input_error!("not valid pretune metadata: {e}"))?;
        if meta.format_version > FORMAT_VERSION {
            bail_input!(
                "format version {} is newer than this pretune understands ({FORMAT_VERSION}); upgrade pretune",
                meta.format_version
            );
        }
        let arch = models::arch(&meta.architecture)?;
        arch.check(&meta.model_options)?;
        match (&meta.input, arch.input_for(&meta.model_options)) {
            (ModelInput::Image(input), Some([c, h, w])) if !arch.is_seq2seq() => {
                // Exactly the input pretune builds this model for (as every pretune command
                // writes): any other size passed here before, and then the CNN (its fc1 is sized
                // for 28x28) or inception_v3 (below 75x75) panicked in Burn on the first image
                // (found while fuzzing this).
                if input.dims() != [c, h, w] {
                    bail_input!(
                        "input {}x{}x{} does not suit {} (it takes {c}x{h}x{w})",
                        input.channels,
                        input.height,
                        input.width,
                        arch.name,
                    );
                }
                if !input.normalization.fits(input.channels) {
                    bail_input!(
                        "the input normalisation must have one finite mean and one positive std per channel ({})",
                        input.channels
                    );
                }
            }
            (ModelInput::Pairs(p), None) if meta.model_options.seq2seq.is_some() => {
                p.source_vocab.check("source")?;
                p.target_vocab.check("target")?;
                let config = meta.model_options.seq2seq.as_ref().expect("checked above");
                if (p.source_vocab.len(), p.target_vocab.len())
                    != (config.source_vocab, config.target_vocab)
                {
                    bail_input!(
                        "its vocabularies ({} and {} tokens) do not suit its model ({} and {})",
                        p.source_vocab.len(),
                        p.target_vocab.len(),
                        config.source_vocab,
                        config.target_vocab
                    );
                }
            }
            (ModelInput::TextPairs(t), None) if arch.name == models::bert2bert::ARCH => {
                let c = meta.model_options.bert.as_ref().expect("checked above");
                t.check(c.max_position_embeddings)?;
            }
            (ModelInput::Text(t), None) if arch.is_text() => {
                // A recurrent model reads any length; BERT as far as its positions go.
                let positions = match (&meta.model_options.bert, &meta.model_options.lstm) {
                    (Some(c), _) => c.max_position_embeddings,
                    (None, Some(_)) => crate::data::MAX_TEXT_TOKENS,
                    (None, None) => 0,
                };
                if !(2..=positions).contains(&t.max_length) {
                    bail_input!(
                        "max_length {} is not between 2 and {positions}",
                        t.max_length
                    );
                }
            }
            (ModelInput::Speech(speech), None) => {
                let c = meta
                    .model_options
                    .whisper
                    .as_ref()
                    .ok_or_else(|| input_error!("its input does not suit {}", arch.name))?;
                speech.check(c).map_err(|e| input_error!("{e}"))?;
            }
            _ => bail_input!("its input does not suit {}", arch.name),
        }
        match meta.task {
            Task::Classify if meta.class_names.len() < 2 => bail_input!(
                "lists {} classes, expected at least 2",
                meta.class_names.len()
            ),
            Task::Mlm if !arch.is_text() => {
                bail_input!(
                    "masked language modelling needs a text model, not {}",
                    arch.name
                )
            }
            Task::Lm if meta.model_options.lstm.is_none() => {
                bail_input!(
                    "next-token language modelling needs an lstm model, not {}",
                    arch.name
                )
            }
            Task::Seq2seq if !arch.is_seq2seq() => {
                bail_input!("{} is not a sequence-to-sequence model", arch.name)
            }
            Task::Classify | Task::Mlm | Task::Lm if arch.is_seq2seq() => {
                bail_input!("{} is a sequence-to-sequence model", arch.name)
            }
            Task::Transcribe if !arch.is_speech() => {
                bail_input!("transcribing needs a speech model, not {}", arch.name)
            }
            Task::Classify | Task::Mlm | Task::Lm if arch.is_speech() => {
                bail_input!("a speech model transcribes (task \"transcribe\")")
            }
            Task::Contrastive if !matches!(arch.kind, models::ArchKind::Image(_)) => {
                bail_input!(
                    "contrastive learning needs an image model, not {}",
                    arch.name
                )
            }
            _ => {}
        }
        Ok((meta, arch))
    }

    /// Outputs of the model's head: one per class, or (language modelling, sequence to
    /// sequence) per token of the vocabulary.
    pub fn head_size(&self) -> usize {
        match self.task {
            Task::Classify => self.class_names.len(),
            Task::Mlm | Task::Lm | Task::Transcribe => self.model_options.vocab_size(),
            Task::Contrastive => models::PROJECTION_DIM,
            Task::Seq2seq => self
                .model_options
                .seq2seq
                .as_ref()
                .map_or(self.model_options.vocab_size(), |c| c.target_vocab),
        }
    }
}

/// The training data of a run, as far as it is needed to repeat it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DataRecord {
    #[serde(flatten)]
    pub spec: DataSpec,
    /// Training examples (images or texts).
    #[serde(alias = "train_images")]
    pub train_examples: usize,
    #[serde(alias = "val_images")]
    pub val_examples: usize,
    /// Unreadable images skipped (`--skip-bad-images`).
    #[serde(default)]
    pub skipped_images: usize,
    /// Where the validation examples came from (absent in checkpoints from before it was said).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<Validation>,
}

/// The same safetensors file with its JSON header's keys in sorted order. Burn writes the header
/// from a hash map, so without this two saves of identical weights differ in bytes (and sha256).
fn canonical_safetensors(bytes: Vec<u8>) -> Result<Vec<u8>> {
    let corrupt = || anyhow::anyhow!("serialising the weights: malformed safetensors header");
    let len = u64::from_le_bytes(bytes.get(..8).ok_or_else(corrupt)?.try_into()?) as usize;
    let header = bytes.get(8..8 + len).ok_or_else(corrupt)?;
    // serde_json's map is a BTreeMap: parsing and printing sorts the keys.
    let value: serde_json::Value = serde_json::from_slice(header)?;
    let mut sorted = serde_json::to_vec(&value)?;
    // The data that follows stays 8-byte aligned, as the format recommends.
    sorted.resize(sorted.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + sorted.len() + bytes.len() - 8 - len);
    out.extend_from_slice(&(sorted.len() as u64).to_le_bytes());
    out.extend_from_slice(&sorted);
    out.extend_from_slice(&bytes[8 + len..]);
    Ok(out)
}

/// Save `model` and `meta` into the directory `dir` (created if needed). Weights first, then
/// `pretune.json`: a directory with a `pretune.json` always has the weights it describes.
pub fn save(
    dir: &Path,
    model: &Classifier,
    meta: &mut Meta,
    tokenizer: Option<&TextTokenizer>,
) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("{}: cannot create the checkpoint directory", dir.display()))?;
    let bytes = serialize(model, meta)?;
    meta.weights_sha256 = sha256_hex(&bytes);
    write_atomic(&dir.join(WEIGHTS_FILE), &bytes)?;
    if let Some(t) = tokenizer {
        let json = t.to_json()?;
        meta.tokenizer_sha256 = sha256_hex(json.as_bytes());
        write_atomic(&dir.join(TOKENIZER_FILE), json.as_bytes())?;
    }
    write_atomic(
        &dir.join(META_FILE),
        serde_json::to_string_pretty(meta)?.as_bytes(),
    )
}

/// The model's weights as a canonical safetensors file.
pub fn serialize(model: &Classifier, meta: &Meta) -> Result<Vec<u8>> {
    let mut store = SafetensorsStore::from_bytes(None)
        .metadata("pretune_architecture", meta.architecture.clone())
        .metadata("pretune_stage", meta.stage.clone());
    model
        .save_into(&mut store)
        .map_err(|e| anyhow::anyhow!("serialising the weights: {e}"))?;
    let bytes = store
        .get_bytes()
        .map_err(|e| anyhow::anyhow!("serialising the weights: {e}"))?;
    canonical_safetensors(bytes)
}

/// A checkpoint on disk: its metadata and the raw bytes of its weights.
pub struct Checkpoint {
    pub dir: PathBuf,
    pub meta: Meta,
    pub arch: &'static ArchInfo,
    /// Text models: the tokenizer saved with them.
    pub tokenizer: Option<TextTokenizer>,
    /// The weights (safetensors bytes).
    pub weights: Vec<u8>,
    /// sha256 of the weights file as it is on disk.
    pub sha256: String,
}

impl Checkpoint {
    /// Read `dir/pretune.json`, `dir/model.safetensors` and (text models) `dir/tokenizer.json`,
    /// checking the metadata and each file's recorded sha256 as we go. (`pretune` also opens
    /// Hugging Face model directories as parents: see `interop::open_model`.)
    pub fn open(dir: &Path) -> Result<Checkpoint> {
        let shown = dir.display();
        let meta_path = dir.join(META_FILE);
        if !meta_path.is_file() {
            bail_input!(
                "{shown}: not a pretune checkpoint (no {META_FILE}; expected a directory written by `pretune pretrain` or `finetune`)"
            );
        }
        let text = std::fs::read_to_string(&meta_path)
            .with_context(|| format!("{}: cannot read", meta_path.display()))?;
        let (meta, arch) =
            Meta::parse(&text).map_err(|e| input_error!("{}: {e}", meta_path.display()))?;
        let weights_path = dir.join(WEIGHTS_FILE);
        let weights = std::fs::read(&weights_path)
            .with_context(|| format!("{}: cannot read the weights", weights_path.display()))?;
        if !meta.weights_sha256.is_empty() && sha256_hex(&weights) != meta.weights_sha256 {
            bail_input!(
                "{}: the weights do not match the sha256 recorded in {META_FILE}: the file was changed or damaged",
                weights_path.display()
            );
        }
        let max_length = match &meta.input {
            ModelInput::Text(t) => Some(t.max_length),
            ModelInput::Speech(s) => Some(s.prompt.len() + s.max_tokens),
            ModelInput::TextPairs(t) => Some(t.max_source_length),
            ModelInput::Image(_) | ModelInput::Pairs(_) => None,
        };
        let tokenizer = match max_length {
            Some(max_length) => {
                let path = dir.join(TOKENIZER_FILE);
                let bytes = std::fs::read(&path)
                    .with_context(|| format!("{}: cannot read the tokenizer", path.display()))?;
                if !meta.tokenizer_sha256.is_empty() && sha256_hex(&bytes) != meta.tokenizer_sha256
                {
                    bail_input!(
                        "{}: the tokenizer does not match the sha256 recorded in {META_FILE}: the file was changed or damaged",
                        path.display()
                    );
                }
                Some(
                    TextTokenizer::from_file(&path, max_length)?
                        .fit_to(meta.model_options.vocab_size(), &path)?,
                )
            }
            None => None,
        };
        Ok(Checkpoint {
            dir: dir.to_path_buf(),
            meta,
            arch,
            tokenizer,
            sha256: sha256_hex(&weights),
            weights,
        })
    }

    /// sha256 of the weights file.
    pub fn weights_sha256(&self) -> String {
        self.sha256.clone()
    }

    /// The whole model, as saved.
    pub fn load_model(&self, device: &Device) -> Result<Classifier> {
        // The seed does not matter: every weight is then loaded.
        let mut model = Classifier::new(
            self.arch,
            &self.meta.model_options,
            self.meta.head_size(),
            0,
            device,
        );
        self.apply(&mut model, None)?;
        Ok(model)
    }

    /// A model with this checkpoint's backbone and a fresh head for `num_classes` classes drawn
    /// from `seed` (without inception's auxiliary classifier, which belongs to the old
    /// classes; an encoder–decoder gets a fresh decoder embedding too, which belongs to the
    /// output vocabulary). Returns the model and the names of the tensors that were loaded.
    pub fn load_backbone(
        &self,
        num_classes: usize,
        seed: u64,
        device: &Device,
    ) -> Result<(Classifier, Vec<String>)> {
        let options = self.backbone_options_for(num_classes);
        let mut model = Classifier::new(self.arch, &options, num_classes, seed, device);
        let filter = if options.seq2seq.is_some() {
            format!(
                "^{}Seq2Seq\\.(enc_emb|enc|dec|attend)\\.",
                regex_escape(models::BACKBONE_PREFIX)
            )
        } else {
            format!("^{}", regex_escape(models::BACKBONE_PREFIX))
        };
        let loaded = self.apply(&mut model, Some(&filter))?;
        Ok((model, loaded))
    }

    /// The model options a model built on this backbone with a head of `num_classes` outputs
    /// gets (without inception's auxiliary classifier; an encoder–decoder with that many
    /// output tokens; an LSTM as a classifier).
    pub fn backbone_options_for(&self, num_classes: usize) -> ModelOptions {
        // (A contrastive model's projection head is dropped: the new head is linear.)
        let mut options = ModelOptions {
            aux_logits: false,
            contrastive: None,
            ..self.meta.model_options.clone()
        };
        if let Some(config) = options.seq2seq.as_mut() {
            config.target_vocab = num_classes;
        }
        // A language model's encoder becomes a classifier's (fine-tuning classifies).
        if let Some(config) = options.lstm.as_mut() {
            *config = config.classifier();
        }
        options
    }

    /// Copy the saved tensors (those matching `filter`, if any) into `model`, failing with a
    /// clear message on any missing tensor or shape mismatch.
    fn apply(&self, model: &mut Classifier, filter: Option<&str>) -> Result<Vec<String>> {
        let file = self.dir.join(WEIGHTS_FILE);
        let mut store = SafetensorsStore::from_bytes(Some(self.weights.clone()))
            .validate(false)
            .allow_partial(true);
        if let Some(f) = filter {
            store = store.with_regex(f);
        }
        let result = model.load_from(&mut store).map_err(|e| {
            input_error!("{}: not a readable safetensors file: {e}", file.display())
        })?;
        if let Some(err) = result.errors.first() {
            bail_input!(
                "{}: does not fit the {} architecture: {}",
                file.display(),
                self.arch.name,
                models::load_error(err, str::to_string, false)
            );
        }
        // Tensors outside the filter were not asked for (a tied language model has no head
        // weight for a classifier's head to miss; a projection head is left behind).
        let wanted = filter.map(|f| regex::Regex::new(f).expect("our filters are valid regexes"));
        let unused: Vec<String> = result
            .unused
            .iter()
            .filter(|p| wanted.as_ref().is_none_or(|w| w.is_match(p)))
            .cloned()
            .collect();
        if !unused.is_empty() {
            bail_input!(
                "{}: holds {} tensor(s) the {} architecture does not have: {}",
                file.display(),
                unused.len(),
                self.arch.name,
                crate::error::listed(&unused, 8)
            );
        }
        let missing: Vec<&str> = result
            .missing
            .iter()
            .map(|(p, _)| p.as_str())
            .filter(|p| wanted.as_ref().is_none_or(|r| r.is_match(p)))
            .collect();
        if !missing.is_empty() {
            let names = missing;
            bail_input!(
                "{}: missing {} tensor(s) of the {} architecture: {}",
                file.display(),
                names.len(),
                self.arch.name,
                crate::error::listed(&names, 8)
            );
        }
        Ok(result.applied)
    }
}

/// Escape regex metacharacters (our prefixes only contain `.`).
fn regex_escape(s: &str) -> String {
    s.replace('.', r"\.")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `pretune.json` of `pretune import --arch cnn` (seed_net.safetensors), compacted.
    const CNN: &str = r#"{"format_version":1,"pretune_version":"0.1.0","stage":"import","architecture":"cnn","model_options":{"small_input":false,"aux_logits":false},"class_names":["0","1"],"input":{"channels":1,"height":28,"width":28,"normalization":{"mean":[0.1307],"std":[0.3081]}},"strategy":null,"phases":[],"history":[],"best_epoch":0,"lineage":null}"#;

    #[test]
    fn input_must_be_the_architectures_own() {
        let (meta, arch) = Meta::parse(CNN).unwrap();
        assert_eq!((meta.input.dims(), arch.name), (Some([1, 28, 28]), "cnn"));
        // A CNN checkpoint claiming 32x32 inputs (fuzz/corpus/meta_parse/regress_cnn_32x32.json):
        // accepted before, then `pretune predict` panicked in burn-nn's Linear
        // ("axis 1 expected 3136, got 4096").
        for (h, w) in [(32, 32), (28, 1), (1, 28)] {
            let text = CNN.replace(
                r#""height":28,"width":28"#,
                &format!(r#""height":{h},"width":{w}"#),
            );
            let err = Meta::parse(&text).unwrap_err();
            assert!(crate::error::is_input_error(&err), "{err:#}");
            let msg = format!("{err:#}");
            assert!(
                msg.contains("does not suit cnn (it takes 1x28x28)"),
                "{msg}"
            );
        }
        // resnet18 takes 3x224x224, or 3x32x32 with --small-input.
        let resnet = CNN
            .replace(r#""cnn""#, r#""resnet18""#)
            .replace(r#""channels":1"#, r#""channels":3"#)
            .replace(
                r#""mean":[0.1307],"std":[0.3081]"#,
                r#""mean":[0,0,0],"std":[1,1,1]"#,
            );
        let sized = |small: bool, side: usize| {
            resnet
                .replace(
                    r#""small_input":false"#,
                    &format!(r#""small_input":{small}"#),
                )
                .replace(
                    r#""height":28,"width":28"#,
                    &format!(r#""height":{side},"width":{side}"#),
                )
        };
        assert!(Meta::parse(&sized(false, 224)).is_ok());
        assert!(Meta::parse(&sized(true, 32)).is_ok());
        assert!(Meta::parse(&sized(false, 32)).is_err());
        assert!(Meta::parse(&sized(true, 224)).is_err());
    }
}
