//! `pretune embed`: sentence embeddings from a BERT-family model directory.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use burn::prelude::Device;
use pretune::fs::write_atomic;
use pretune::interop::hf;
use pretune::{bail_input, infer, input_error};

#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// A Hugging Face BERT model directory (config.json, model.safetensors, tokenizer.json), e.g.
    /// all-MiniLM-L6-v2 (scripts/minilm.sh unpacks it into models/all-MiniLM-L6-v2).
    #[arg(long)]
    pub model: PathBuf,
    /// Read the texts from this file, one per line.
    #[arg(long, conflicts_with = "texts")]
    pub file: Option<PathBuf>,
    /// Texts to embed.
    #[arg(required_unless_present = "file")]
    pub texts: Vec<String>,
    /// Write JSON lines `{"text": ..., "embedding": [...]}` here [default: standard output].
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Serialize)]
struct Line<'a> {
    text: &'a str,
    embedding: &'a [f32],
}

pub fn run(args: EmbedArgs, device: &Device) -> Result<()> {
    let texts: Vec<String> = match &args.file {
        Some(f) => std::fs::read_to_string(f)
            .map_err(|e| input_error!("{}: cannot read as UTF-8 text: {e}", f.display()))?
            .lines()
            .map(String::from)
            .collect(),
        None => args.texts.clone(),
    };
    if texts.is_empty() {
        bail_input!("no texts to embed");
    }
    let hf = hf::load_hf_dir(&args.model, device)?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let embeddings = infer::embed(&hf.model, &hf.tokenizer, &refs)?;
    let mut out = Vec::new();
    for (text, embedding) in texts.iter().zip(&embeddings) {
        serde_json::to_writer(&mut out, &Line { text, embedding })?;
        out.push(b'\n');
    }
    match &args.out {
        Some(path) => {
            write_atomic(path, &out)?;
            eprintln!(
                "wrote {} embeddings of {} dimensions to {}",
                texts.len(),
                hf.config.hidden_size,
                path.display()
            );
        }
        None => std::io::stdout().write_all(&out)?,
    }
    Ok(())
}
