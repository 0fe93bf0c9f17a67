//! Images in memory: kept as bytes until batched, and the per-channel normalisation that turns
//! them into a model's input.

use serde::{Deserialize, Serialize};

use super::classes;
use crate::models::Interpolation;

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

    /// The same images scaled to `height`×`width`, or `self` when already that size.
    pub fn resized(self, height: usize, width: usize, interpolation: Interpolation) -> ImageSet {
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
                filter(interpolation),
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

/// The `image` crate's filter for `interpolation`: Catmull-Rom is PIL's bicubic (a = −0.5, the
/// kernel widened when shrinking, as PIL and torchvision's `Resize` on PIL images do).
pub fn filter(interpolation: Interpolation) -> image::imageops::FilterType {
    match interpolation {
        Interpolation::Bilinear => image::imageops::FilterType::Triangle,
        Interpolation::Bicubic => image::imageops::FilterType::CatmullRom,
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
