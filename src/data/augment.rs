//! Image augmentation, applied as batches are made: light label-preserving shifts and flips,
//! and SimCLR's stronger views (random resized crops, brightness and contrast, blur).

use rand::rngs::StdRng;
use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

/// Which random transformations training images get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Augment {
    /// Images as they are.
    None,
    /// Random crop after zero-padding by 2 pixels (shifts of up to ±2).
    Crop,
    /// Crop, plus a horizontal flip half of the time (for clothes, not for digits or text).
    CropFlip,
    /// A random part of 20–100% of the area, of aspect 3/4–4/3, scaled back to the full size
    /// (torchvision's `RandomResizedCrop(scale=(0.2, 1))`), flipped half of the time.
    ResizedCropFlip,
    /// SimCLR's views (Chen et al. 2020): a resized crop and flip, brightness and contrast
    /// jitter (±40%, 80% of the time), a grey copy of colour images 20% of the time, and on
    /// images of 64 pixels or more a Gaussian blur half of the time (SimCLR leaves it out on
    /// CIFAR's small ones). `pretrain --task contrastive` trains with it by default.
    Simclr,
}

/// Shifts of up to ±2 pixels on 28×28 and 32×32 images, proportionally more on larger ones.
fn pad(h: usize) -> i64 {
    (h as i64 / 14).max(2)
}

impl Augment {
    /// Write an augmented copy of the planar `h`×`w` image `src` (any number of channels, all
    /// moved alike) into `dst`.
    pub fn apply(self, src: &[u8], dst: &mut [u8], h: usize, w: usize, rng: &mut StdRng) {
        match self {
            Augment::None => return dst.copy_from_slice(src),
            Augment::ResizedCropFlip => return resized_crop_flip(src, dst, h, w, rng),
            Augment::Simclr => return simclr(src, dst, h, w, rng),
            Augment::Crop | Augment::CropFlip => {}
        }
        let pad = pad(h);
        let dy = rng.random_range(-pad..=pad);
        let dx = rng.random_range(-pad..=pad);
        let flip = self == Augment::CropFlip && rng.next_u32() & 1 == 1;
        for (src, dst) in src.chunks_exact(h * w).zip(dst.chunks_exact_mut(h * w)) {
            for y in 0..h {
                for x in 0..w {
                    let sx = if flip { w - 1 - x } else { x } as i64 + dx;
                    let sy = y as i64 + dy;
                    let inside = (0..h as i64).contains(&sy) && (0..w as i64).contains(&sx);
                    dst[y * w + x] = if inside {
                        src[sy as usize * w + sx as usize]
                    } else {
                        0
                    };
                }
            }
        }
    }
}

/// A random part of 20–100% of the image's area, of aspect ratio 3/4–4/3 (log-uniform), scaled
/// bilinearly to `h`×`w`, mirrored half of the time. As torchvision, ten draws that do not fit
/// fall back to the whole image.
fn resized_crop_flip(src: &[u8], dst: &mut [u8], h: usize, w: usize, rng: &mut StdRng) {
    let area = (h * w) as f64;
    let (mut ch, mut cw, mut y0, mut x0) = (h as f64, w as f64, 0.0, 0.0);
    for _ in 0..10 {
        let scale = rng.random_range(0.2..1.0);
        let ratio = rng.random_range((0.75f64).ln()..(4.0f64 / 3.0).ln()).exp();
        let (tw, th) = ((area * scale * ratio).sqrt(), (area * scale / ratio).sqrt());
        if tw <= w as f64 && th <= h as f64 {
            (ch, cw) = (th, tw);
            y0 = rng.random_range(0.0..=h as f64 - th);
            x0 = rng.random_range(0.0..=w as f64 - tw);
            break;
        }
    }
    let flip = rng.next_u32() & 1 == 1;
    let (sy, sx) = (ch / h as f64, cw / w as f64);
    for (src, dst) in src.chunks_exact(h * w).zip(dst.chunks_exact_mut(h * w)) {
        for y in 0..h {
            // Pixel centres, as a bilinear resize samples them.
            let fy = (y0 + (y as f64 + 0.5) * sy - 0.5).clamp(0.0, (h - 1) as f64);
            let (y1, ty) = (fy as usize, fy.fract());
            let y2 = (y1 + 1).min(h - 1);
            for x in 0..w {
                let xo = if flip { w - 1 - x } else { x };
                let fx = (x0 + (xo as f64 + 0.5) * sx - 0.5).clamp(0.0, (w - 1) as f64);
                let (x1, tx) = (fx as usize, fx.fract());
                let x2 = (x1 + 1).min(w - 1);
                let p = |y: usize, x: usize| src[y * w + x] as f64;
                let top = p(y1, x1) * (1.0 - tx) + p(y1, x2) * tx;
                let bottom = p(y2, x1) * (1.0 - tx) + p(y2, x2) * tx;
                dst[y * w + x] = (top * (1.0 - ty) + bottom * ty).round() as u8;
            }
        }
    }
}

/// SimCLR's view of an image (see [`Augment::Simclr`]).
fn simclr(src: &[u8], dst: &mut [u8], h: usize, w: usize, rng: &mut StdRng) {
    resized_crop_flip(src, dst, h, w, rng);
    let plane = h * w;
    if rng.random_range(0.0..1.0) < 0.8 {
        let brightness = rng.random_range(0.6..1.4);
        let contrast = rng.random_range(0.6..1.4);
        // torchvision: contrast blends with the mean grey level of the (brightened) image.
        let mean = dst.iter().map(|&v| v as f64).sum::<f64>() / dst.len().max(1) as f64;
        let mean = mean * brightness;
        for v in dst.iter_mut() {
            let b = *v as f64 * brightness;
            *v = ((b - mean) * contrast + mean).round().clamp(0.0, 255.0) as u8;
        }
    }
    let channels = dst.len() / plane.max(1);
    if channels == 3 && rng.random_range(0.0..1.0) < 0.2 {
        for i in 0..plane {
            let grey = 0.299 * dst[i] as f64
                + 0.587 * dst[plane + i] as f64
                + 0.114 * dst[2 * plane + i] as f64;
            for c in 0..3 {
                dst[c * plane + i] = grey.round() as u8;
            }
        }
    }
    if h.min(w) >= 64 && rng.random_range(0.0..1.0) < 0.5 {
        blur(dst, h, w, rng.random_range(0.1..2.0));
    }
}

/// A separable Gaussian blur of standard deviation `sigma` over a kernel of about a tenth of
/// the image (SimCLR's), edges repeated.
fn blur(image: &mut [u8], h: usize, w: usize, sigma: f64) {
    let radius = (h.min(w) / 20).max(1) as i64;
    let kernel: Vec<f64> = (-radius..=radius)
        .map(|d| (-(d * d) as f64 / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f64 = kernel.iter().sum();
    let mut row = vec![0.0; h * w];
    for plane in image.chunks_exact_mut(h * w) {
        for y in 0..h {
            for x in 0..w {
                row[y * w + x] = kernel
                    .iter()
                    .zip(-radius..)
                    .map(|(k, d)| {
                        k * plane[y * w + (x as i64 + d).clamp(0, w as i64 - 1) as usize] as f64
                    })
                    .sum::<f64>()
                    / total;
            }
        }
        for y in 0..h {
            for x in 0..w {
                let v = kernel
                    .iter()
                    .zip(-radius..)
                    .map(|(k, d)| k * row[(y as i64 + d).clamp(0, h as i64 - 1) as usize * w + x])
                    .sum::<f64>()
                    / total;
                plane[y * w + x] = v.round().clamp(0.0, 255.0) as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn crop_shifts_and_flip_mirrors() {
        let (h, w) = (6, 6);
        let src: Vec<u8> = (0..36).map(|i| i as u8 + 1).collect();
        let mut rng = StdRng::seed_from_u64(1);
        let mut dst = vec![0; 36];
        Augment::None.apply(&src, &mut dst, h, w, &mut rng);
        assert_eq!(dst, src);
        let mut changed = 0;
        for _ in 0..20 {
            Augment::CropFlip.apply(&src, &mut dst, h, w, &mut rng);
            // Every output pixel is padding or some source pixel; the multiset shifts but stays.
            assert!(dst.iter().all(|&v| v == 0 || src.contains(&v)));
            changed += (dst != src) as usize;
        }
        assert!(changed > 10);
    }

    #[test]
    fn simclr_views_keep_shape_and_repeat_per_seed() {
        for (c, h, w) in [(1, 28, 28), (3, 64, 48)] {
            let n = c * h * w;
            let src: Vec<u8> = (0..n).map(|i| (i * 7 % 251) as u8).collect();
            for augment in [Augment::ResizedCropFlip, Augment::Simclr] {
                let view = |seed| {
                    let mut dst = vec![0; n];
                    augment.apply(&src, &mut dst, h, w, &mut StdRng::seed_from_u64(seed));
                    dst
                };
                assert_eq!(view(3), view(3), "{augment:?}: one seed, one view");
                let differ = (0..10).filter(|&s| view(s) != view(s + 10)).count();
                assert!(differ >= 9, "{augment:?}: views hardly vary ({differ}/10)");
            }
        }
        // A full-area crop of a constant image stays constant, whatever the jitter's mean.
        let flat = vec![100u8; 28 * 28];
        let mut dst = vec![0; 28 * 28];
        Augment::ResizedCropFlip.apply(&flat, &mut dst, 28, 28, &mut StdRng::seed_from_u64(1));
        assert!(dst.iter().all(|&v| v == 100));
    }
}
