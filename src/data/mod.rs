//! Labelled image data in memory: loading it, choosing classes, splitting it.

pub mod augment;
pub mod batch;
pub mod cifar;
pub mod classes;
pub mod csv;
pub mod folder;
pub mod idx;
pub mod split;
pub mod text;

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::{Deserialize, Serialize};

pub use augment::Augment;

use crate::bail_input;

/// Fashion-MNIST's class names, in label order.
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
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

/// Images of one size with integer labels, kept as bytes (0–255) until batched. Each image is
/// stored planar (channel after channel, as tensors want them): 1 channel for grayscale, 3 for RGB.
#[derive(Debug, Clone)]
pub struct ImageSet {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// `len() * channels * height * width` pixel values, image after image.
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

    /// Values of one image (`channels * height * width` bytes).
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.pixels[i * n..(i + 1) * n]
    }

    /// Bytes per image.
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// The images at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> ImageSet {
        let mut pixels = Vec::with_capacity(indices.len() * self.image_len());
        for &i in indices {
            pixels.extend_from_slice(self.image(i));
        }
        ImageSet {
            channels: self.channels,
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
        let (keep, labels) = classes::relabel(&self.labels, self.class_names.len(), classes);
        ImageSet {
            labels,
            class_names: classes
                .iter()
                .map(|&c| self.class_names[c].clone())
                .collect(),
            ..self.subset(&keep)
        }
    }

    /// The same images scaled to `height`×`width` (bilinear), or `self` when already that size.
    pub fn resized(self, height: usize, width: usize) -> ImageSet {
        if (self.height, self.width) == (height, width) {
            return self;
        }
        let plane = self.height * self.width;
        let mut pixels = Vec::with_capacity(self.len() * self.channels * height * width);
        for values in self.pixels.chunks_exact(plane) {
            let img =
                image::GrayImage::from_raw(self.width as u32, self.height as u32, values.to_vec())
                    .expect("sizes agree");
            pixels.extend_from_slice(&image::imageops::resize(
                &img,
                width as u32,
                height as u32,
                image::imageops::FilterType::Triangle,
            ));
        }
        ImageSet {
            height,
            width,
            pixels,
            ..self
        }
    }

    /// The same images with `channels` channels: grayscale is repeated into RGB, RGB becomes
    /// its luma (ITU-R 601, as PIL's `convert("L")`).
    pub fn with_channels(self, channels: usize) -> ImageSet {
        if self.channels == channels {
            return self;
        }
        let plane = self.height * self.width;
        let mut pixels = Vec::with_capacity(self.len() * channels * plane);
        for img in self.pixels.chunks_exact(self.image_len()) {
            match (self.channels, channels) {
                (1, c) => (0..c).for_each(|_| pixels.extend_from_slice(img)),
                (3, 1) => pixels.extend((0..plane).map(|i| {
                    let [r, g, b] = [img[i], img[plane + i], img[2 * plane + i]].map(f32::from);
                    (0.299 * r + 0.587 * g + 0.114 * b).round() as u8
                })),
                (from, to) => unreachable!("no conversion from {from} to {to} channels"),
            }
        }
        ImageSet {
            channels,
            pixels,
            ..self
        }
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

/// Which data to train on.
#[derive(Debug, Clone, clap::Args, Serialize, Deserialize)]
pub struct DataSpec {
    /// Dataset: a directory of IDX files (train-images-idx3-ubyte[.gz], t10k-…, e.g.
    /// /usr/share/datasets/fashion-mnist), an image folder (one sub-folder of PNG/JPEG files per
    /// class, optionally under train/ and test/), CIFAR-10 binary batches, or a CSV image file
    /// (e.g. scikit-learn's digits.csv.gz, every 5th row its test split). Images are resized to
    /// the model's input and converted to its channels.
    #[arg(long)]
    pub data: PathBuf,
    /// Classes to train on: indices, ranges or names, e.g. `0-4`, `5,7,9`, `Sandal,Bag`, `all`.
    #[arg(long, default_value = "all")]
    pub classes: String,
    /// Train on only N images of each class (a seeded few-shot draw) [default: all of them].
    #[arg(long, value_name = "N")]
    pub per_class: Option<usize>,
    /// Fraction of the training images held out (seeded) to validate on after every epoch and to
    /// pick the best epoch; 0 keeps the last epoch instead.
    #[arg(long, default_value_t = 0.1, value_name = "F")]
    pub val_fraction: f64,
    /// Skip image files that cannot be decoded (counted in the summary) instead of stopping.
    #[arg(long)]
    #[serde(default)]
    pub skip_bad_images: bool,
    #[command(flatten)]
    #[serde(flatten)]
    pub columns: text::Columns,
}

/// Labelled examples as loaded: images or texts.
#[derive(Debug, Clone)]
pub enum Dataset {
    Images(ImageSet),
    Texts(text::TextSet),
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.labels().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn labels(&self) -> &[usize] {
        match self {
            Dataset::Images(s) => &s.labels,
            Dataset::Texts(s) => &s.labels,
        }
    }

    pub fn class_names(&self) -> &[String] {
        match self {
            Dataset::Images(s) => &s.class_names,
            Dataset::Texts(s) => &s.class_names,
        }
    }

    /// The examples at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        match self {
            Dataset::Images(s) => Dataset::Images(s.subset(indices)),
            Dataset::Texts(s) => Dataset::Texts(s.subset(indices)),
        }
    }

    /// Keep only the examples of `classes` and relabel them 0..classes.len() in that order.
    pub fn restrict_to(&self, classes: &[usize]) -> Dataset {
        match self {
            Dataset::Images(s) => Dataset::Images(s.restrict_to(classes)),
            Dataset::Texts(s) => Dataset::Texts(s.restrict_to(classes)),
        }
    }

    /// Number of examples of each class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.class_names().len()];
        for &l in self.labels() {
            counts[l] += 1;
        }
        counts
    }

    /// The images, for what only images have (normalisation statistics).
    pub fn images(&self) -> Option<&ImageSet> {
        match self {
            Dataset::Images(s) => Some(s),
            Dataset::Texts(_) => None,
        }
    }
}

/// The training and validation images of a run.
pub struct TrainingData {
    pub train: Dataset,
    pub val: Dataset,
    /// Unreadable images skipped (`--skip-bad-images`).
    pub skipped: usize,
}

impl DataSpec {
    /// Load the `split` half of the data as the model takes it: images of `input`'s shape, or
    /// texts (`input` is `None`). Returns the examples and how many unreadable images were skipped.
    pub fn load_split(&self, split: Split, input: Option<[usize; 3]>) -> Result<(Dataset, usize)> {
        load_dataset(
            &self.data,
            split,
            input,
            self.skip_bad_images,
            &self.columns,
        )
    }

    /// Load the training split, keep the chosen classes, hold out validation, draw the few-shot subset.
    pub fn load(&self, input: Option<[usize; 3]>, seed: u64) -> Result<TrainingData> {
        let args = self;
        if !(0.0..1.0).contains(&args.val_fraction) {
            bail_input!(
                "--val-fraction must be in [0, 1), got {}",
                args.val_fraction
            );
        }
        if args.per_class == Some(0) {
            bail_input!("--per-class must be at least 1");
        }
        let (all, skipped) = self.load_split(Split::Train, input)?;
        let chosen = classes::parse_classes(&args.classes, all.class_names())?;
        let set = all.restrict_to(&chosen);
        let (train_idx, val_idx) = split::holdout(set.len(), args.val_fraction, seed);
        let train_idx = match args.per_class {
            Some(n) => split::per_class(set.labels(), &train_idx, n, seed),
            None => train_idx,
        };
        let train = set.subset(&train_idx);
        if let Some(c) = train.class_counts().iter().position(|&n| n == 0) {
            bail_input!(
                "{}: no training examples of class {} left after the validation split",
                args.data.display(),
                train.class_names()[c]
            );
        }
        Ok(TrainingData {
            train,
            val: set.subset(&val_idx),
            skipped,
        })
    }
}

impl TrainingData {
    /// One line for the user: classes and image counts.
    pub fn describe(&self) -> String {
        let skipped = match self.skipped {
            0 => String::new(),
            n => format!(" ({n} unreadable images skipped)"),
        };
        let kind = match self.train {
            Dataset::Images(_) => "images",
            Dataset::Texts(_) => "texts",
        };
        format!(
            "{} classes ({}), {} train / {} val {kind}{skipped}",
            self.train.class_names().len(),
            self.train.class_names().join(", "),
            self.train.len(),
            self.val.len()
        )
    }
}

/// Per-channel input normalisation, `x' = (x/255 - mean[c]) / std[c]`, stored in every checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    #[serde(deserialize_with = "one_or_many")]
    pub mean: Vec<f32>,
    #[serde(deserialize_with = "one_or_many")]
    pub std: Vec<f32>,
}

/// torchvision's ImageNet statistics, which models imported from torchvision expect.
pub const IMAGENET: ([f32; 3], [f32; 3]) = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]);

impl Normalization {
    /// Mean and standard deviation of each channel of `set`, on the 0–1 scale.
    pub fn of(set: &ImageSet) -> Normalization {
        let plane = set.height * set.width;
        let mut hist = vec![[0u64; 256]; set.channels];
        for img in set.pixels.chunks_exact(set.image_len().max(1)) {
            for (c, values) in img.chunks_exact(plane).enumerate() {
                for &p in values {
                    hist[c][p as usize] += 1;
                }
            }
        }
        let (mut mean, mut std) = (Vec::new(), Vec::new());
        for hist in &hist {
            let n = hist.iter().sum::<u64>().max(1) as f64;
            let m = hist
                .iter()
                .enumerate()
                .map(|(v, &c)| v as f64 / 255.0 * c as f64)
                .sum::<f64>()
                / n;
            let var = hist
                .iter()
                .enumerate()
                .map(|(v, &c)| (v as f64 / 255.0 - m).powi(2) * c as f64)
                .sum::<f64>()
                / n;
            mean.push(m as f32);
            std.push((var.sqrt() as f32).max(1e-6));
        }
        Normalization { mean, std }
    }

    /// The same statistics for every one of `channels` channels.
    pub fn uniform(channels: usize, mean: f32, std: f32) -> Normalization {
        Normalization {
            mean: vec![mean; channels],
            std: vec![std; channels],
        }
    }

    pub fn channels(&self) -> usize {
        self.mean.len()
    }

    /// One finite mean and one positive, finite std for each of `channels` channels.
    pub fn fits(&self, channels: usize) -> bool {
        self.mean.len() == channels
            && self.std.len() == channels
            && self.mean.iter().all(|m| m.is_finite())
            && self.std.iter().all(|s| s.is_finite() && *s > 0.0)
    }

    /// Normalised `f32` values of one planar image, appended to `out`.
    pub fn extend(&self, out: &mut Vec<f32>, image: &[u8]) {
        let plane = image.len() / self.channels();
        for (c, values) in image.chunks_exact(plane).enumerate() {
            let scale = 1.0 / (255.0 * self.std[c]);
            let shift = self.mean[c] / self.std[c];
            out.extend(values.iter().map(|&p| p as f32 * scale - shift));
        }
    }
}

/// Checkpoints from before per-channel statistics hold one number; read it as one channel.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Vec<f32>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(f32),
        Many(Vec<f32>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(x) => vec![x],
        OneOrMany::Many(v) => v,
    })
}

/// Load the `split` half of a dataset as `input` (channels, height, width) images: an IDX
/// directory (MNIST layout), a CIFAR-10 binary directory, an image folder (one sub-folder per
/// class) or a CSV image file such as scikit-learn's `digits.csv.gz`. Returns the images and the
/// number of unreadable images skipped (only with `skip_bad_images`; otherwise they are errors).
pub fn load(
    path: &Path,
    split: Split,
    input: [usize; 3],
    skip_bad_images: bool,
) -> Result<(ImageSet, usize)> {
    let [channels, height, width] = input;
    let (set, skipped) = if path.is_dir() {
        if idx_dir_holds(path, split) {
            (load_idx_dir(path, split)?, 0)
        } else if let Some(dir) = cifar::find(path) {
            (cifar::read(&dir, split)?, 0)
        } else {
            folder::read(path, split, input, skip_bad_images)?
        }
    } else if path.is_file() {
        (csv::read_csv_images(path, split)?, 0)
    } else {
        bail_input!(
            "{}: no such dataset (expected a directory of IDX files, CIFAR-10 batches or class \
             sub-folders of images, or a CSV image file)",
            path.display()
        );
    };
    Ok((set.with_channels(channels).resized(height, width), skipped))
}

/// Load the `split` half of a dataset as the model takes it: images of `input`'s shape, or texts
/// (`input` is `None`). Returns the examples and how many unreadable images were skipped.
pub fn load_dataset(
    path: &Path,
    split: Split,
    input: Option<[usize; 3]>,
    skip_bad_images: bool,
    columns: &text::Columns,
) -> Result<(Dataset, usize)> {
    Ok(match input {
        Some(dims) => {
            let (set, skipped) = load(path, split, dims, skip_bad_images)?;
            (Dataset::Images(set), skipped)
        }
        None => (Dataset::Texts(text::load(path, split, columns)?), 0),
    })
}

/// Whether `dir` has the IDX images file of `split`.
fn idx_dir_holds(dir: &Path, split: Split) -> bool {
    let name = format!("{}-images-idx3-ubyte", idx_prefix(split));
    dir.join(&name).is_file() || dir.join(format!("{name}.gz")).is_file()
}

fn idx_prefix(split: Split) -> &'static str {
    match split {
        Split::Train => "train",
        Split::Test => "t10k",
    }
}

/// Load the `split` half of an IDX dataset directory (MNIST layout: `train-images-idx3-ubyte[.gz]`,
/// `train-labels-idx1-ubyte[.gz]`, `t10k-…`).
///
/// Class names come from `classes.txt` in the directory (one per line) when present, else
/// Fashion-MNIST's when the path says "fashion", else `0..N`.
pub fn load_idx_dir(dir: &Path, split: Split) -> Result<ImageSet> {
    if !dir.is_dir() {
        bail_input!(
            "{}: not a directory (expected a dataset directory with IDX files such as train-images-idx3-ubyte.gz)",
            dir.display()
        );
    }
    let prefix = idx_prefix(split);
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
    Ok(ImageSet {
        channels: 1,
        height,
        width,
        pixels: images.data,
        labels,
        class_names,
    })
}

fn class_names_for(dir: &Path, num_classes: usize) -> Result<Vec<String>> {
    let listed = dir.join("classes.txt");
    if listed.is_file() {
        let names = classes::read_names(&listed)?;
        if names.len() < num_classes {
            bail_input!(
                "{}: names {} classes, but the labels go up to {}",
                listed.display(),
                names.len(),
                num_classes - 1
            );
        }
        return Ok(names);
    }
    let looks_fashion = dir.to_string_lossy().to_lowercase().contains("fashion");
    if looks_fashion && num_classes <= FASHION_MNIST_CLASSES.len() {
        return Ok(FASHION_MNIST_CLASSES
            .iter()
            .map(|s| s.to_string())
            .collect());
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
    bail_input!(
        "{}: no {name} or {name}.gz in this directory",
        dir.display()
    )
}
