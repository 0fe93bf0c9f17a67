//! Light, label-preserving image augmentation, applied as batches are made.

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
}

/// Shifts of up to ±2 pixels on 28×28 and 32×32 images, proportionally more on larger ones.
fn pad(h: usize) -> i64 {
    (h as i64 / 14).max(2)
}

impl Augment {
    /// Write an augmented copy of the planar `h`×`w` image `src` (any number of channels, all
    /// moved alike) into `dst`.
    pub fn apply(self, src: &[u8], dst: &mut [u8], h: usize, w: usize, rng: &mut StdRng) {
        if self == Augment::None {
            dst.copy_from_slice(src);
            return;
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
}
