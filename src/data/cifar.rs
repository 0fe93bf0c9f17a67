//! The CIFAR-10 binary format (`cifar-10-batches-bin`): records of one label byte and a
//! 3×32×32 planar RGB image; `data_batch_1..5.bin` train, `test_batch.bin` test.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::{ImageSet, Split};
use crate::bail_input;

const SIDE: usize = 32;
const RECORD: usize = 1 + 3 * SIDE * SIDE;
const CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// The CIFAR-10 batch directory at or directly under `dir` (the archive unpacks into
/// `cifar-10-batches-bin/`), if there is one.
pub fn find(dir: &Path) -> Option<PathBuf> {
    [dir.to_path_buf(), dir.join("cifar-10-batches-bin")]
        .into_iter()
        .find(|d| d.join("data_batch_1.bin").is_file() || d.join("test_batch.bin").is_file())
}

/// Read the `split` batches of a CIFAR-10 directory.
pub fn read(dir: &Path, split: Split) -> Result<ImageSet> {
    let files: Vec<PathBuf> = match split {
        Split::Train => (1..=5)
            .map(|i| dir.join(format!("data_batch_{i}.bin")))
            .filter(|p| p.is_file())
            .collect(),
        Split::Test => vec![dir.join("test_batch.bin")],
    };
    if files.is_empty() || !files[0].is_file() {
        bail_input!(
            "{}: no CIFAR-10 {} batches (expected {})",
            dir.display(),
            if split == Split::Train {
                "training"
            } else {
                "test"
            },
            if split == Split::Train {
                "data_batch_1.bin … data_batch_5.bin"
            } else {
                "test_batch.bin"
            }
        );
    }
    let class_names = class_names(dir)?;
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for file in &files {
        let bytes =
            std::fs::read(file).with_context(|| format!("{}: cannot read", file.display()))?;
        if bytes.is_empty() || bytes.len() % RECORD != 0 {
            bail_input!(
                "{}: {} bytes is not a whole number of CIFAR-10 records ({RECORD} bytes each): truncated or not a CIFAR-10 batch",
                file.display(),
                bytes.len()
            );
        }
        for (i, record) in bytes.chunks_exact(RECORD).enumerate() {
            let label = record[0] as usize;
            if label >= class_names.len() {
                bail_input!(
                    "{}: record {i} has label {label}, but there are {} classes",
                    file.display(),
                    class_names.len()
                );
            }
            labels.push(label);
            pixels.extend_from_slice(&record[1..]);
        }
    }
    Ok(ImageSet {
        channels: 3,
        height: SIDE,
        width: SIDE,
        pixels,
        labels,
        class_names,
    })
}

/// Names from `batches.meta.txt` (one per line), else CIFAR-10's own.
fn class_names(dir: &Path) -> Result<Vec<String>> {
    let listed = dir.join("batches.meta.txt");
    if !listed.is_file() {
        return Ok(CLASSES.iter().map(|s| s.to_string()).collect());
    }
    let names = super::classes::read_names(&listed)?;
    if names.len() < 2 {
        bail_input!(
            "{}: lists {} class names, expected at least 2",
            listed.display(),
            names.len()
        );
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_records_and_rejects_truncated_batches() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = Vec::new();
        for label in [3u8, 7] {
            bytes.push(label);
            bytes.extend((0..RECORD - 1).map(|i| (i % 251) as u8));
        }
        std::fs::write(dir.path().join("data_batch_1.bin"), &bytes).unwrap();
        let set = read(&find(dir.path()).unwrap(), Split::Train).unwrap();
        assert_eq!(
            (set.len(), set.channels, set.labels.clone()),
            (2, 3, vec![3, 7])
        );
        assert_eq!(set.class_names[3], "cat");
        assert_eq!(set.image(1)[SIDE * SIDE], ((SIDE * SIDE) % 251) as u8);

        std::fs::write(dir.path().join("data_batch_1.bin"), &bytes[..RECORD + 5]).unwrap();
        let err = read(dir.path(), Split::Train).unwrap_err().to_string();
        assert!(
            err.contains("data_batch_1.bin") && err.contains("truncated"),
            "{err}"
        );
        let err = read(dir.path(), Split::Test).unwrap_err().to_string();
        assert!(err.contains("test_batch.bin"), "{err}");
    }
}
