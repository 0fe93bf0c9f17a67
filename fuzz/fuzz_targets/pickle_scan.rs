//! `pretune::interop::pickle::scan`, the allowlist guard run over PyTorch pickles, on
//! arbitrary bytes: it must return `Ok` or `Err(message)`, never panic or loop.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // 1 pickle (a zip's data.pkl) and 5 (the legacy format's leading pickles).
    let _ = pretune::interop::pickle::scan(data, 1);
    let _ = pretune::interop::pickle::scan(data, 5);
});
