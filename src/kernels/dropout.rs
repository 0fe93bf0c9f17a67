//! Dropout whose mask is a hash of (seed, element index) instead of a stored tensor of random
//! draws: generating it costs a few multiplies per element (Burn's flex draws every element
//! through ChaCha, ~11% of MiniLM training), it parallelises without coordination, and the
//! backward pass regenerates the same mask from the seed instead of keeping it in memory.

use rayon::prelude::*;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::flex::Flex;

use super::CpuKernels;

/// Elements per parallel task.
const CHUNK: usize = 1 << 16;

/// SplitMix64's finaliser: a bijective mix of 64 bits (Steele, Lea & Flood, 2014).
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `x` with each element zeroed with probability `prob` and the others scaled by
/// `1 / (1 - prob)`; which elements are zeroed depends on `seed` and the element's index only,
/// counted from `first` (the index of `x`'s first element in the whole batch, when a process
/// computes a part of it).
pub fn apply(x: &[f32], prob: f64, seed: u64, first: u64) -> Vec<f32> {
    // An element is dropped when the high 32 bits of its hash fall below prob · 2³².
    let threshold = (prob * 4_294_967_296.0) as u64;
    let scale = (1.0 / (1.0 - prob)) as f32;
    let seed = mix(seed);
    let mut out = vec![0.0f32; x.len()];
    out.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .enumerate()
        .for_each(|(c, (out, x))| {
            let first = first + (c * CHUNK) as u64;
            for (i, (o, &v)) in out.iter_mut().zip(x).enumerate() {
                let draw = mix(seed ^ (first + i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)) >> 32;
                *o = if draw >= threshold { v * scale } else { 0.0 };
            }
        });
    out
}

/// Backward step of [`CpuKernels::dropout_hashed`]: the same mask applied to the gradient,
/// regenerated from the seed.
#[derive(Debug)]
pub(super) struct DropoutBackward;

impl Backward<Flex, 1> for DropoutBackward {
    type State = (f64, u64, u64);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let (prob, seed, first) = ops.state;
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, Flex::dropout_hashed(dy, prob, seed, first));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_the_asked_fraction_and_keeps_the_mean() {
        let x = vec![1.0f32; 1 << 20];
        for prob in [0.1, 0.5] {
            let y = apply(&x, prob, 42, 0);
            let dropped = y.iter().filter(|&&v| v == 0.0).count() as f64 / x.len() as f64;
            assert!(
                (dropped - prob).abs() < 0.005,
                "p={prob}: dropped {dropped}"
            );
            let mean = y.iter().map(|&v| v as f64).sum::<f64>() / x.len() as f64;
            assert!((mean - 1.0).abs() < 0.01, "p={prob}: mean {mean}");
            let kept = 1.0 / (1.0 - prob) as f32;
            assert!(y.iter().all(|&v| v == 0.0 || v == kept));
        }
    }

    #[test]
    fn the_mask_is_a_function_of_the_seed() {
        let x: Vec<f32> = (0..100_000).map(|i| i as f32 + 1.0).collect();
        assert_eq!(apply(&x, 0.3, 7, 0), apply(&x, 0.3, 7, 0));
        let (a, b) = (apply(&x, 0.3, 7, 0), apply(&x, 0.3, 8, 0));
        let same = a
            .iter()
            .zip(&b)
            .filter(|(a, b)| (**a == 0.0) == (**b == 0.0))
            .count();
        // Independent masks agree on 0.7² + 0.3² = 58% of the elements.
        assert!((same as f64 / x.len() as f64 - 0.58).abs() < 0.01, "{same}");
        // Neighbouring elements are not correlated (the hash, not a stride, decides).
        let pairs = a
            .windows(2)
            .filter(|w| (w[0] == 0.0) && (w[1] == 0.0))
            .count();
        assert!(
            (pairs as f64 / x.len() as f64 - 0.09).abs() < 0.01,
            "{pairs}"
        );
    }

    #[test]
    fn a_part_of_a_batch_gets_the_wholes_mask() {
        // A process computing rows 3.. of a batch drops what one process computing it all does.
        let x: Vec<f32> = (0..10_000).map(|i| i as f32 + 1.0).collect();
        let whole = apply(&x, 0.4, 9, 0);
        assert_eq!(apply(&x[3000..], 0.4, 9, 3000), whole[3000..]);
    }
}
