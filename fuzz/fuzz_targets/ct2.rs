//! `pretune::interop::ct2::fuzz_read_ct2`: arbitrary bytes parsed as a CTranslate2 `model.bin`.
//! It must never panic or allocate what a header claims; a model it accepts must be
//! self-consistent (every variable's values fill its shape, every alias names a variable).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| pretune::interop::ct2::fuzz_read_ct2(data));
