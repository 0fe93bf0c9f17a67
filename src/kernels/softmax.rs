//! Softmax over the last dimension in one pass per row, forward and backward. Burn composes it
//! from max, subtract, exp, sum and divide — five tensors the size of the attention scores, each
//! with its own backward step — and flex's exp is libm's scalar `expf`.

use rayon::prelude::*;

use super::gelu::exp;

use burn::backend::TensorMetadata;
use burn::backend::flex::FlexTensor;

use super::{tensor, values};

/// Rows per parallel task: about 32k elements.
fn rows_per_task(row: usize) -> usize {
    (32 * 1024 / row.max(1)).max(1)
}

/// `softmax(x)` along rows of length `row`.
pub fn forward(x: &[f32], row: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; x.len()];
    let task = rows_per_task(row) * row;
    out.par_chunks_mut(task)
        .zip(x.par_chunks(task))
        .for_each(|(out, x)| {
            for (y, x) in out.chunks_exact_mut(row).zip(x.chunks_exact(row)) {
                let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
                // A row of -inf (everything masked) gives NaN, as PyTorch's softmax.
                let mut sum = 0.0;
                for (y, &v) in y.iter_mut().zip(x) {
                    *y = exp(v - max);
                    sum += *y;
                }
                let inv = 1.0 / sum;
                y.iter_mut().for_each(|y| *y *= inv);
            }
        });
    out
}

/// The input's gradient from the output `y` and its gradient: `y ⊙ (dy − Σ dy ⊙ y)` per row.
pub fn backward(y: &[f32], dy: &[f32], row: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; y.len()];
    let task = rows_per_task(row) * row;
    out.par_chunks_mut(task)
        .zip(y.par_chunks(task).zip(dy.par_chunks(task)))
        .for_each(|(out, (y, dy))| {
            for ((dx, y), dy) in out
                .chunks_exact_mut(row)
                .zip(y.chunks_exact(row))
                .zip(dy.chunks_exact(row))
            {
                let dot: f32 = y.iter().zip(dy).map(|(a, b)| a * b).sum();
                for ((dx, &y), &g) in dx.iter_mut().zip(y).zip(dy) {
                    *dx = y * (g - dot);
                }
            }
        });
    out
}

pub(super) fn grad(y: &FlexTensor, dy: &FlexTensor) -> FlexTensor {
    let shape = y.shape();
    tensor(
        backward(values(y), values(dy), shape[shape.num_dims() - 1]),
        shape,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_sum_to_one_and_match_the_definition() {
        let row = 37;
        let x: Vec<f32> = (0..row * 50)
            .map(|i| ((i * 7919) % 1000) as f32 * 0.02 - 10.0)
            .collect();
        let y = forward(&x, row);
        for (y, x) in y.chunks(row).zip(x.chunks(row)) {
            let sum: f64 = x.iter().map(|&v| (v as f64).exp()).sum();
            for (y, x) in y.iter().zip(x) {
                let exact = (*x as f64).exp() / sum;
                assert!(
                    (*y as f64 - exact).abs() < 1e-6 * (exact + 1e-6),
                    "{y} vs {exact}"
                );
            }
        }
    }

    /// `<dx, v>` equals the finite difference of `<softmax(x), dy>` along `v`.
    #[test]
    fn backward_matches_finite_differences() {
        let row = 9;
        let x: Vec<f32> = (0..row * 4)
            .map(|i| ((i * 31) % 17) as f32 * 0.3 - 2.0)
            .collect();
        let dy: Vec<f32> = (0..x.len()).map(|i| (i % 5) as f32 - 2.0).collect();
        let v: Vec<f32> = (0..x.len())
            .map(|i| ((i * 13) % 7) as f32 * 0.1 - 0.3)
            .collect();
        let dx = backward(&forward(&x, row), &dy, row);
        let loss = |e: f32| -> f64 {
            let shifted: Vec<f32> = x.iter().zip(&v).map(|(x, v)| x + e * v).collect();
            forward(&shifted, row)
                .iter()
                .zip(&dy)
                .map(|(y, g)| (*y as f64) * (*g as f64))
                .sum()
        };
        let numeric = (loss(1e-2) - loss(-1e-2)) / 2e-2;
        let analytic: f64 = dx
            .iter()
            .zip(&v)
            .map(|(a, b)| (*a as f64) * (*b as f64))
            .sum();
        assert!(
            (numeric - analytic).abs() < 1e-3 * (1.0 + analytic.abs()),
            "{numeric} vs {analytic}"
        );
    }
}
