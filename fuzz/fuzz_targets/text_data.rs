//! The text readers (`data::texts::load`) on arbitrary bytes, as a CSV, a TSV, a JSONL file, a
//! `.txt` corpus and a topic file. Must return `Ok` or an input error, never panic; what loads
//! has as many labels as texts, each naming a class, and no empty text.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pretune::data::{Split, texts};

fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = PathBuf::from(format!("/dev/shm/pretune-fuzz-texts-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("topics")).expect("create the scratch directory");
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let dir = scratch();
    let columns = texts::Columns::default();
    let topic = dir.join("topics").join("topic");
    std::fs::write(&topic, data).expect("write the scratch file");
    let mut paths = vec![dir.join("topics")];
    for ext in ["csv", "tsv", "jsonl", "txt"] {
        let path = dir.join(format!("data.{ext}"));
        std::fs::write(&path, data).expect("write the scratch file");
        paths.push(path);
    }
    for path in paths {
        for split in [Split::Train, Split::Test] {
            match texts::load(&path, split, &columns) {
                Ok(set) => {
                    assert_eq!(set.texts.len(), set.labels.len());
                    assert!(set.labels.iter().all(|&l| l < set.class_names.len()));
                    assert!(set.texts.iter().all(|t| !t.trim().is_empty()));
                }
                Err(e) => assert!(pretune::error::is_input_error(&e), "{e:#}"),
            }
        }
    }
});
