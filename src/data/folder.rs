//! torchvision's ImageFolder layout: one sub-folder per class, named after it, holding PNG or
//! JPEG files of any size. `root/train/` and `root/test/` (or `root/val/`) give the splits when
//! present; otherwise every file whose path hashes to 0 mod 5 is the test split, so the split
//! never depends on a seed or on which other files exist.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::images::filter;
use super::{ImageSet, ImageShape, Split};
use crate::{bail_input, input_error};

/// File extensions read as images (case-insensitive).
const EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];
/// The centre crop keeps this fraction of the resized image's shorter side (timm's `crop_pct`).
const CROP_FRACTION: f64 = 0.875;

/// Read the `split` images of an image folder as `input` images (see [`decode`]). Returns the
/// set and how many unreadable files were skipped.
pub fn read(
    root: &Path,
    split: Split,
    input: ImageShape,
    skip_bad: bool,
) -> Result<(ImageSet, usize)> {
    let (class_root, filter) = split_root(root, split)?;
    let class_names = class_dirs(&split_root(root, Split::Train)?.0)?;
    // One folder is a set of unlabelled images (contrastive pretraining); a classifier
    // refuses fewer than 2 classes later.
    if class_names.is_empty() {
        bail_input!(
            "{}: found no class folder; an image folder needs one sub-folder per class (one \
             for unlabelled images)",
            class_root.display()
        );
    }
    let mut files = Vec::new();
    for (label, name) in class_names.iter().enumerate() {
        for path in image_files(&class_root.join(name))? {
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            if filter.is_none_or(|want_test| in_test_split(&rel) == want_test) {
                files.push((path, label));
            }
        }
    }
    if files.is_empty() {
        bail_input!(
            "{}: no PNG or JPEG images for the {split:?} split",
            class_root.display()
        );
    }
    let decoded: Vec<Option<Vec<u8>>> = files
        .par_iter()
        .map(|(path, _)| match decode(path, input) {
            Ok(pixels) => Ok(Some(pixels)),
            Err(_) if skip_bad => Ok(None),
            Err(e) => Err(e),
        })
        .collect::<Result<_>>()?;
    let (mut pixels, mut labels, mut skipped) = (Vec::new(), Vec::new(), 0);
    for (image, (_, label)) in decoded.into_iter().zip(&files) {
        match image {
            Some(p) => {
                pixels.extend_from_slice(&p);
                labels.push(*label);
            }
            None => skipped += 1,
        }
    }
    let [channels, height, width] = input.dims;
    Ok((
        ImageSet {
            channels,
            height,
            width,
            pixels,
            labels,
            class_names,
        },
        skipped,
    ))
}

/// The folder holding the class folders of `split`, and which hash half to keep
/// (`Some(true)`: test files only) when the split is not given by folders.
fn split_root(root: &Path, split: Split) -> Result<(PathBuf, Option<bool>)> {
    if !root.join("train").is_dir() {
        return Ok((root.to_path_buf(), Some(split == Split::Test)));
    }
    match split {
        Split::Train => Ok((root.join("train"), None)),
        Split::Test => ["test", "val"]
            .iter()
            .map(|d| root.join(d))
            .find(|d| d.is_dir())
            .map(|d| (d, None))
            .ok_or_else(|| {
                input_error!(
                    "{}: has train/ but no test/ or val/ folder to evaluate on",
                    root.display()
                )
            }),
    }
}

/// Whether a file (by its path relative to the root) belongs to the hashed test split.
fn in_test_split(rel: &str) -> bool {
    let digest = Sha256::digest(rel.as_bytes());
    u64::from_le_bytes(digest[..8].try_into().unwrap()) % 5 == 0
}

/// Sorted names of the sub-folders of `dir` (the classes).
fn class_dirs(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in
        std::fs::read_dir(dir).with_context(|| format!("{}: cannot list", dir.display()))?
    {
        let entry = entry?;
        if entry.path().is_dir() && !entry.file_name().to_string_lossy().starts_with('.') {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// Sorted image files directly in `dir` (a missing class folder of a test split has none).
fn image_files(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Ok(vec![]);
    }
    let mut files = Vec::new();
    for entry in
        std::fs::read_dir(dir).with_context(|| format!("{}: cannot list", dir.display()))?
    {
        let path = entry?.path();
        let ext = path.extension().map(|e| e.to_string_lossy().to_lowercase());
        if path.is_file() && ext.is_some_and(|e| EXTENSIONS.contains(&e.as_str())) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Decode one image file into planar bytes of `input`'s shape, as torchvision's
/// `Resize(size / 0.875)` + `CenterCrop(size)` on a PIL image do it: the shorter side scaled to
/// `size / 0.875` and the longer one alike (rounded down), with `input`'s filter, then the
/// centre cut out (its corner rounded half to even). Images of the target size are kept.
pub fn decode(path: &Path, input: ImageShape) -> Result<Vec<u8>> {
    let [channels, height, width] = input.dims;
    let img = image::ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .map_err(|e| input_error!("{}: cannot open: {e}", path.display()))?
        .decode()
        .map_err(|e| {
            input_error!(
                "{}: not a readable image: {e} (expected PNG or JPEG)",
                path.display()
            )
        })?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let img = if (h, w) == (height, width) {
        img
    } else {
        let short = (height.max(width) as f64 / CROP_FRACTION).round() as usize;
        let (rw, rh) = if w <= h {
            (short, short * h / w)
        } else {
            (short * w / h, short)
        };
        let (rw, rh) = (rw.max(width), rh.max(height));
        let corner = |extra: usize| (extra as f64 / 2.0).round_ties_even() as u32;
        img.resize_exact(rw as u32, rh as u32, filter(input.interpolation))
            .crop_imm(
                corner(rw - width),
                corner(rh - height),
                width as u32,
                height as u32,
            )
    };
    Ok(match channels {
        1 => img.to_luma8().into_raw(),
        _ => planar(&img.to_rgb8().into_raw()),
    })
}

/// Interleaved RGB → planar (all reds, all greens, all blues).
pub fn planar(rgb: &[u8]) -> Vec<u8> {
    (0..3)
        .flat_map(|c| rgb.iter().skip(c).step_by(3).copied())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, color: [u8; 3], size: u32) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        image::RgbImage::from_pixel(size, size + 3, image::Rgb(color))
            .save(path)
            .unwrap();
    }

    #[test]
    fn classes_from_folders_split_by_hash_bad_files_named_or_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for i in 0..20 {
            write(&root.join(format!("red/{i}.png")), [200, 0, 0], 40);
            write(&root.join(format!("blue/{i}.jpg")), [0, 0, 200], 20);
        }
        let (train, skipped) = read(root, Split::Train, [3, 16, 16].into(), false).unwrap();
        let (test, _) = read(root, Split::Test, [3, 16, 16].into(), false).unwrap();
        assert_eq!(train.class_names, ["blue", "red"]);
        assert_eq!((train.len() + test.len(), skipped), (40, 0));
        assert!(!test.is_empty() && test.len() < 20);
        // Planar RGB: a red image is all red plane, then zeros.
        let red = train.labels.iter().position(|&l| l == 1).unwrap();
        let img = train.image(red);
        assert!(img[..256].iter().all(|&v| v > 190) && img[256..].iter().all(|&v| v < 10));

        // A broken file that falls in the training half.
        let bad = (0..)
            .map(|i| format!("red/bad{i}.png"))
            .find(|r| !in_test_split(r))
            .unwrap();
        std::fs::write(root.join(&bad), b"not a png").unwrap();
        let err = read(root, Split::Train, [3, 16, 16].into(), false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&bad) && err.contains("not a readable image"),
            "{err}"
        );
        let (set, skipped) = read(root, Split::Train, [1, 16, 16].into(), true).unwrap();
        assert_eq!((set.len(), skipped, set.channels), (train.len(), 1, 1));
    }
}
