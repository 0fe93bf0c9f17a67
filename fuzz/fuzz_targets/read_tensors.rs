//! `pretune::interop::torch::read_tensors` (safetensors, or a torch.save zip / legacy pickle
//! after the pickle guard) on arbitrary bytes. Must return `Ok` or an input error, never panic,
//! and never allocate more than the file can justify.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| format!("/dev/shm/pretune-fuzz-tensors-{}", std::process::id()).into())
}

/// `PRETUNE_FUZZ_VERBOSE=1` prints each input's outcome (to see what a corpus exercises).
fn verbose() -> bool {
    static V: OnceLock<bool> = OnceLock::new();
    *V.get_or_init(|| std::env::var_os("PRETUNE_FUZZ_VERBOSE").is_some())
}

fuzz_target!(|data: &[u8]| {
    let path = scratch();
    std::fs::write(path, data).expect("write the scratch file");
    match pretune::interop::torch::read_tensors(path) {
        Ok(tensors) => {
            assert!(!tensors.is_empty());
            if verbose() {
                let shapes: Vec<_> = tensors
                    .iter()
                    .map(|(k, t)| (k, t.shape().to_vec()))
                    .collect();
                eprintln!("ok: {shapes:?}");
            }
        }
        Err(e) => {
            assert!(
                pretune::error::is_input_error(&e),
                "bad weights file reported as an internal failure: {e:#}"
            );
            if verbose() {
                eprintln!("{e:#}");
            }
        }
    }
});
