//! `pretune::data::idx::read_idx` on arbitrary bytes, raw or gzip, as rank 1 and rank 3.
//! It must return `Ok` or an input error, never panic, and never allocate more than the file
//! can justify (libFuzzer's default -rss_limit_mb=2048 / -malloc_limit_mb catch that).
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| format!("/dev/shm/pretune-fuzz-idx-{}", std::process::id()).into())
}

/// `PRETUNE_FUZZ_VERBOSE=1` prints each input's outcome (to see what a corpus exercises).
fn verbose() -> bool {
    static V: OnceLock<bool> = OnceLock::new();
    *V.get_or_init(|| std::env::var_os("PRETUNE_FUZZ_VERBOSE").is_some())
}

fuzz_target!(|data: &[u8]| {
    let path = scratch();
    std::fs::write(path, data).expect("write the scratch file");
    for rank in [1, 3] {
        match pretune::data::idx::read_idx(path, rank) {
            Ok(a) => {
                assert_eq!(a.dims.len(), rank);
                assert_eq!(a.dims.iter().product::<usize>(), a.data.len());
                if verbose() {
                    eprintln!("rank {rank}: ok, dims {:?}", a.dims);
                }
            }
            Err(e) => {
                assert!(
                    pretune::error::is_input_error(&e),
                    "bad input reported as an internal failure: {e:#}"
                );
                if verbose() {
                    eprintln!("rank {rank}: {e:#}");
                }
            }
        }
    }
});
