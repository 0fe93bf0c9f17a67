//! The sequence-pair readers (`data::pairs::load`) on arbitrary bytes, as a TSV, a CSV, a JSONL
//! file, a gzipped TSV and a CMUdict `.dict`. Must return `Ok` or an input error, never panic;
//! what loads has a target for every source, none empty, none past the length bounds.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pretune::data::pairs::{self, MAX_SOURCE, MAX_TARGET, PairColumns};
use pretune::data::Split;

fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = PathBuf::from(format!("/dev/shm/pretune-fuzz-pairs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the scratch directory");
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let dir = scratch();
    let columns = PairColumns::default();
    for name in ["data.tsv", "data.csv", "data.jsonl", "data.tsv.gz", "data.dict"] {
        let path = dir.join(name);
        std::fs::write(&path, data).expect("write the scratch file");
        for split in [Split::Train, Split::Test] {
            match pairs::load(&path, split, &columns) {
                Ok(set) => {
                    assert_eq!(set.sources.len(), set.targets.len());
                    for (s, t) in set.sources.iter().zip(&set.targets) {
                        assert!(!s.is_empty() && !t.trim().is_empty());
                        assert!(s.chars().count() <= MAX_SOURCE);
                        assert!(t.split_whitespace().count() <= MAX_TARGET);
                    }
                }
                Err(e) => assert!(pretune::error::is_input_error(&e), "{e:#}"),
            }
        }
    }
});
