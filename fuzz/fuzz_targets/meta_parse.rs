//! `pretune::checkpoint::Meta::parse`, the `pretune.json` parser and validator, on arbitrary
//! text (invalid UTF-8 is replaced, as a lossy reader would). Must never panic; a rejected file
//! must be an input error; an accepted one must satisfy what `parse` promises.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

/// `PRETUNE_FUZZ_VERBOSE=1` prints each input's outcome (to see what a corpus exercises).
fn verbose() -> bool {
    static V: OnceLock<bool> = OnceLock::new();
    *V.get_or_init(|| std::env::var_os("PRETUNE_FUZZ_VERBOSE").is_some())
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match pretune::checkpoint::Meta::parse(&text) {
        Ok((meta, arch)) => {
            assert_eq!(meta.architecture, arch.name);
            assert!(meta.class_names.len() >= 2);
            if verbose() {
                eprintln!(
                    "ok: {} {} ({} classes)",
                    meta.stage,
                    arch.name,
                    meta.class_names.len()
                );
            }
        }
        Err(e) => {
            assert!(
                pretune::error::is_input_error(&e),
                "bad metadata reported as an internal failure: {e:#}"
            );
            if verbose() {
                eprintln!("{e:#}");
            }
        }
    }
});
