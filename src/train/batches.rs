//! The order of an epoch's examples, and seeds that derive from (seed, epoch, step) alone, so
//! that a resumed run repeats the uninterrupted one exactly.

use burn::prelude::*;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// Mini-batches of one epoch: a shuffled order, cut into batches. With example `lengths`,
/// examples are grouped by length within windows of 50 batches and the batches shuffled (Hugging
/// Face's `group_by_length`): batches pad little, and still differ from epoch to epoch.
pub fn epoch_batches(
    n: usize,
    lengths: Option<&[usize]>,
    batch_size: usize,
    rng: &mut StdRng,
) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(rng);
    let Some(lengths) = lengths else {
        return order.chunks(batch_size).map(<[usize]>::to_vec).collect();
    };
    let mut batches: Vec<Vec<usize>> = Vec::with_capacity(n.div_ceil(batch_size));
    for window in order.chunks_mut(batch_size * 50) {
        window.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
        batches.extend(window.chunks(batch_size).map(<[usize]>::to_vec));
    }
    batches.shuffle(rng);
    batches
}

/// A seed for one (run seed, epoch, step): independent streams without carrying RNG state.
pub fn mix(seed: u64, epoch: u64, step: u64) -> u64 {
    // splitmix64 over the three values.
    let mut z = seed ^ 0x5EED_0003;
    for v in [epoch, step] {
        z = z.wrapping_add(v).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
    }
    z
}

/// `indices` as an index tensor.
pub fn index_tensor(indices: &[usize], device: &Device) -> Tensor<1, Int> {
    Tensor::from_data(
        TensorData::new(indices.iter().map(|&i| i as i64).collect(), [indices.len()]),
        device,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn length_grouped_batches_cover_every_example_once_and_pad_less() {
        let lengths: Vec<usize> = (0..1000).map(|i| (i * 7919) % 300 + 1).collect();
        let padded = |batches: &[Vec<usize>]| -> usize {
            batches
                .iter()
                .map(|b| b.len() * b.iter().map(|&i| lengths[i]).max().unwrap())
                .sum()
        };
        let rng = || StdRng::seed_from_u64(7);
        let grouped = epoch_batches(1000, Some(&lengths), 32, &mut rng());
        let plain = epoch_batches(1000, None, 32, &mut rng());
        let mut seen: Vec<usize> = grouped.iter().flatten().copied().collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..1000).collect::<Vec<_>>());
        assert!(grouped.iter().all(|b| b.len() <= 32));
        // Grouped batches pad almost nothing; random ones pad near the longest in each batch.
        let real: usize = lengths.iter().sum();
        assert!(padded(&grouped) < real * 11 / 10, "{}", padded(&grouped));
        assert!(padded(&plain) > real * 3 / 2, "{}", padded(&plain));
        // Different epochs see different batches.
        assert_ne!(
            grouped,
            epoch_batches(1000, Some(&lengths), 32, &mut StdRng::seed_from_u64(8))
        );
    }
}
