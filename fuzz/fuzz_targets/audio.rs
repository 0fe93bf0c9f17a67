//! `pretune::data::audio::fuzz_read_audio`: arbitrary bytes decoded as a `.wav` and as a `.raw`
//! at a rate taken from the data (then resampled to 16 kHz). It must never panic, and audio it
//! accepts must be finite and non-empty; every size a header claims is checked against the
//! bytes present before anything is allocated (libFuzzer's -rss_limit_mb / -malloc_limit_mb
//! catch a reader that trusts one).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| pretune::data::audio::fuzz_read_audio(data));
