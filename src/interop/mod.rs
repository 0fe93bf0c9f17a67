//! Weights from and to other tools: PyTorch files ([`torch`], with the [`pickle`] guard),
//! Hugging Face model directories ([`hf`]), NumPy archives ([`npz`]) and g2p_en's
//! pretrained GRU read from one ([`g2p`]), and Whisper speech models of CTranslate2 ([`ct2`])
//! or Hugging Face ([`whisper`]).

pub mod ct2;
pub mod g2p;
pub mod hf;
pub mod npz;
pub mod pickle;
pub mod torch;
pub mod whisper;

use std::path::Path;

use anyhow::Result;
use burn::prelude::Device;

use crate::checkpoint::{self, Checkpoint};

/// A model directory to start from: a pretune checkpoint, a Whisper directory (CTranslate2's,
/// or Hugging Face's), or a Hugging Face BERT directory (`config.json` and no `pretune.json`).
pub fn open_model(dir: &Path, device: &Device) -> Result<Checkpoint> {
    if whisper::is_whisper_dir(dir) {
        return whisper::open(dir, device);
    }
    if !dir.join(checkpoint::META_FILE).is_file() && dir.join("config.json").is_file() {
        return hf::open(dir, device);
    }
    Checkpoint::open(dir)
}
