//! A Hugging Face model directory's `config.json` and `tokenizer.json`, the two files that
//! decide what `pretune` allocates and which ids reach the embedding table. The input is split
//! at its first zero byte: the config before it, the tokenizer after. Must never panic; a
//! config that passes `check` describes at most 2^34 parameters; a tokenizer fitted to the
//! config's vocabulary (`fit_to`) only produces ids below it, or says why not.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pretune::data::TextTokenizer;
use pretune::models::bert::BertConfig;

fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| format!("/dev/shm/pretune-fuzz-tokenizer-{}", std::process::id()).into())
}

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let (config, tokenizer) = (&data[..split], data.get(split + 1..).unwrap_or(&[]));
    let vocab = match serde_json::from_slice::<BertConfig>(config) {
        Ok(c) if c.check().is_ok() => {
            assert!(c.parameters() <= 1 << 34);
            c.vocab_size
        }
        _ => 30522,
    };
    let path = scratch();
    std::fs::write(path, tokenizer).expect("write the scratch file");
    match TextTokenizer::from_file(path, 64) {
        Ok(t) => {
            if let Ok(t) = t.fit_to(vocab, path) {
                match t.encode(&["a text, ünïcode and 123", "", "another"]) {
                    Ok(encoded) => {
                        assert!(encoded.ids.iter().all(|&i| (i as usize) < vocab));
                        assert!(encoded.shape[1] <= 64);
                    }
                    Err(e) => assert!(pretune::error::is_input_error(&e), "{e:#}"),
                }
            }
        }
        Err(e) => assert!(pretune::error::is_input_error(&e), "{e:#}"),
    }
});
