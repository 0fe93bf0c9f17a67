//! Labelled image data in memory: loading it, choosing classes, splitting it.

pub mod batch;
pub mod classes;
pub mod idx;
pub mod split;

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::bail_input;

/// Fashion-MNIST's class names, in label order.
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
];

/// Which half of a dataset: the training files or the held-out test files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// `train-*` files.
    Train,
    /// `t10k-*` files.
    Test,
}

/// Grayscale images of one size with integer labels, kept as bytes (0–255) until batched.
#[derive(Debug, Clone)]
pub struct ImageSet {
    pub height: usize,
    pub width: usize,
    /// `len() * height * width` pixel values, image after image.
    pub pixels: Vec<u8>,
    /// One label per image: an index into `class_names`.
    pub labels: Vec<usize>,
    pub class_names: Vec<String>,
}

impl ImageSet {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Pixels of one image.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.height * self.width;
        &self.pixels[i * n..(i + 1) * n]
    }

    /// The images at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> ImageSet {
        let mut pixels = Vec::with_capacity(indices.len() * self.height * self.width);
        for &i in indices {
            pixels.extend_from_slice(self.image(i));
        }
        ImageSet {
            height: self.height,
            width: self.width,
            pixels,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            class_names: self.class_names.clone(),
        }
    }

    /// Keep only the images of `classes` (indices into `class_names`) and relabel them
    /// 0..classes.len() in the order given.
    pub fn restrict_to(&self, classes: &[usize]) -> ImageSet {
        let mut new_label = vec![None; self.class_names.len()];
        for (new, &old) in classes.iter().enumerate() {
            new_label[old] = Some(new);
        }
        let keep: Vec<usize> = (0..self.len()).filter(|&i| new_label[self.labels[i]].is_some()).collect();
        let mut out = self.subset(&keep);
        out.labels = keep.iter().map(|&i| new_label[self.labels[i]].unwrap()).collect();
        out.class_names = classes.iter().map(|&c| self.class_names[c].clone()).collect();
        out
    }

    /// Number of images of each class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.class_names.len()];
        for &l in &self.labels {
            counts[l] += 1;
        }
        counts
    }
}

/// Per-channel input normalisation, `x' = (x/255 - mean) / std`, stored in every checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    pub mean: f32,
    pub std: f32,
}

impl Normalization {
    /// Mean and standard deviation of all pixels of `set`, on the 0–1 scale.
    pub fn of(set: &ImageSet) -> Normalization {
        let mut hist = [0u64; 256];
        for &p in &set.pixels {
            hist[p as usize] += 1;
        }
        let n = set.pixels.len().max(1) as f64;
        let mean = hist.iter().enumerate().map(|(v, &c)| v as f64 / 255.0 * c as f64).sum::<f64>() / n;
        let var = hist
            .iter()
            .enumerate()
            .map(|(v, &c)| (v as f64 / 255.0 - mean).powi(2) * c as f64)
            .sum::<f64>()
            / n;
        Normalization { mean: mean as f32, std: (var.sqrt() as f32).max(1e-6) }
    }

    /// Normalised `f32` values of `pixels`, appended to `out`.
    pub fn extend(&self, out: &mut Vec<f32>, pixels: &[u8]) {
        let scale = 1.0 / (255.0 * self.std);
        let shift = self.mean / self.std;
        out.extend(pixels.iter().map(|&p| p as f32 * scale - shift));
    }
}

/// Load the `split` half of an IDX dataset directory (MNIST layout: `train-images-idx3-ubyte[.gz]`,
/// `train-labels-idx1-ubyte[.gz]`, `t10k-…`).
///
/// Class names come from `classes.txt` in the directory (one per line) when present, else
/// Fashion-MNIST's when the path says "fashion", else `0..N`.
pub fn load_idx_dir(dir: &Path, split: Split) -> Result<ImageSet> {
    if !dir.is_dir() {
        bail_input!("{}: not a directory (expected a dataset directory with IDX files such as train-images-idx3-ubyte.gz)", dir.display());
    }
    let prefix = match split {
        Split::Train => "train",
        Split::Test => "t10k",
    };
    let images_path = find_file(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let labels_path = find_file(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    let images = idx::read_idx(&images_path, 3)?;
    let labels = idx::read_idx(&labels_path, 1)?;
    let (n, height, width) = (images.dims[0], images.dims[1], images.dims[2]);
    if labels.dims[0] != n {
        bail_input!(
            "{}: {} labels, but {} holds {n} images: the counts must agree",
            labels_path.display(),
            labels.dims[0],
            images_path.display()
        );
    }
    let labels: Vec<usize> = labels.data.iter().map(|&l| l as usize).collect();
    let num_classes = labels.iter().max().map_or(0, |m| m + 1);
    let class_names = class_names_for(dir, num_classes)?;
    if let Some(bad) = labels.iter().position(|&l| l >= class_names.len()) {
        bail_input!(
            "{}: label {} at position {bad} is out of range: the dataset has {} classes",
            labels_path.display(),
            labels[bad],
            class_names.len()
        );
    }
    Ok(ImageSet { height, width, pixels: images.data, labels, class_names })
}

fn class_names_for(dir: &Path, num_classes: usize) -> Result<Vec<String>> {
    let listed = dir.join("classes.txt");
    if listed.is_file() {
        let text = std::fs::read_to_string(&listed)?;
        let names: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
        if names.len() < num_classes {
            bail_input!("{}: names {} classes, but the labels go up to {}", listed.display(), names.len(), num_classes - 1);
        }
        return Ok(names);
    }
    let looks_fashion = dir.to_string_lossy().to_lowercase().contains("fashion");
    if looks_fashion && num_classes <= FASHION_MNIST_CLASSES.len() {
        return Ok(FASHION_MNIST_CLASSES.iter().map(|s| s.to_string()).collect());
    }
    Ok((0..num_classes).map(|i| i.to_string()).collect())
}

/// `dir/name`, or `dir/name.gz`, whichever exists.
fn find_file(dir: &Path, name: &str) -> Result<PathBuf> {
    for candidate in [dir.join(name), dir.join(format!("{name}.gz"))] {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail_input!("{}: no {name} or {name}.gz in this directory", dir.display())
}
