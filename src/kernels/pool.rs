//! 2-D max-pooling on the host, NCHW, one (image, channel) plane at a time. Training keeps the
//! position of each window's maximum so the backward pass is a scatter, not a second search.

use rayon::prelude::*;

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::flex::{Flex, FlexTensor};

use super::{contiguous, dims4, tensor, values};

/// Shapes of one max-pool: input `[batch, channels, height, width]`, symmetric padding (never
/// chosen as a maximum), no dilation, output size rounded down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolShape {
    pub batch: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
}

impl PoolShape {
    pub fn out(&self) -> [usize; 2] {
        let size = |i: usize, len: usize| {
            (len + 2 * self.padding[i] - self.kernel[i]) / self.stride[i] + 1
        };
        [size(0, self.height), size(1, self.width)]
    }

    fn planes(&self) -> usize {
        self.batch * self.channels
    }
}

/// Planes per parallel task: enough work per task to amortise rayon's scheduling.
fn planes_per_task(plane_size: usize) -> usize {
    (16 * 1024 / plane_size.max(1)).max(1)
}

/// The pooled planes and, when `with_argmax`, each output's maximum as an index into its input
/// plane (the first one on ties, as PyTorch).
pub fn forward(s: &PoolShape, x: &[f32], with_argmax: bool) -> (Vec<f32>, Vec<u32>) {
    let [oh_len, ow_len] = s.out();
    let (plane, out_plane) = (s.height * s.width, oh_len * ow_len);
    let mut out = vec![0.0f32; s.planes() * out_plane];
    let mut argmax = vec![
        0u32;
        if with_argmax {
            s.planes() * out_plane
        } else {
            0
        }
    ];
    let task = planes_per_task(plane);
    let pool_plane = |x: &[f32], out: &mut [f32], mut argmax: Option<&mut [u32]>| {
        if s.kernel == [2, 2] && s.stride == [2, 2] && s.padding == [0, 0] {
            return pool_2x2(s.width, x, out, argmax, ow_len);
        }
        for oh in 0..oh_len {
            let h0 = (oh * s.stride[0]) as isize - s.padding[0] as isize;
            let (h_lo, h_hi) = (
                h0.max(0) as usize,
                ((h0 + s.kernel[0] as isize) as usize).min(s.height),
            );
            for ow in 0..ow_len {
                let w0 = (ow * s.stride[1]) as isize - s.padding[1] as isize;
                let (w_lo, w_hi) = (
                    w0.max(0) as usize,
                    ((w0 + s.kernel[1] as isize) as usize).min(s.width),
                );
                let (mut best, mut at, mut nan) = (f32::NEG_INFINITY, h_lo * s.width + w_lo, false);
                for h in h_lo..h_hi {
                    for (w, &v) in x[h * s.width + w_lo..h * s.width + w_hi].iter().enumerate() {
                        if v > best {
                            best = v;
                            at = h * s.width + w_lo + w;
                        }
                        // A NaN in the window makes the output NaN, as in PyTorch. (Taking it
                        // inside the comparison above makes the loop 3.5x slower.)
                        nan |= v.is_nan();
                    }
                }
                if nan {
                    best = f32::NAN;
                }
                out[oh * ow_len + ow] = best;
                if let Some(a) = argmax.as_deref_mut() {
                    a[oh * ow_len + ow] = at as u32;
                }
            }
        }
    };
    let planes_in = x.par_chunks(plane * task);
    if with_argmax {
        planes_in
            .zip(out.par_chunks_mut(out_plane * task))
            .zip(argmax.par_chunks_mut(out_plane * task))
            .for_each(|((x, out), argmax)| {
                for ((x, out), argmax) in x
                    .chunks(plane)
                    .zip(out.chunks_mut(out_plane))
                    .zip(argmax.chunks_mut(out_plane))
                {
                    pool_plane(x, out, Some(argmax));
                }
            });
    } else {
        planes_in
            .zip(out.par_chunks_mut(out_plane * task))
            .for_each(|(x, out)| {
                for (x, out) in x.chunks(plane).zip(out.chunks_mut(out_plane)) {
                    pool_plane(x, out, None);
                }
            });
    }
    (out, argmax)
}

/// The maximum of a 2×2 window read as `[a, b]` over `[c, d]`, and its position 0-3: the first
/// maximum in that order wins ties, and any NaN makes the result NaN (as the general loop).
#[inline(always)]
fn window([a, b]: [f32; 2], [c, d]: [f32; 2]) -> (f32, usize) {
    let (m1, i1) = if b > a { (b, 1) } else { (a, 0) };
    let (m2, i2) = if d > c { (d, 3) } else { (c, 2) };
    let (m, i) = if m2 > m1 { (m2, i2) } else { (m1, i1) };
    let nan = a.is_nan() | b.is_nan() | c.is_nan() | d.is_nan();
    (if nan { f32::NAN } else { m }, i)
}

/// The common 2×2, stride-2, unpadded case of one plane, written so the compiler vectorises
/// it: same results as the general loop, several times faster.
fn pool_2x2(
    width: usize,
    x: &[f32],
    out: &mut [f32],
    mut argmax: Option<&mut [u32]>,
    ow_len: usize,
) {
    for (oh, out) in out.chunks_exact_mut(ow_len).enumerate() {
        let top = x[2 * oh * width..][..2 * ow_len].chunks_exact(2);
        let bottom = x[(2 * oh + 1) * width..][..2 * ow_len].chunks_exact(2);
        let pairs = top
            .zip(bottom)
            .map(|(t, b)| window([t[0], t[1]], [b[0], b[1]]));
        match argmax.as_deref_mut() {
            None => out.iter_mut().zip(pairs).for_each(|(o, (m, _))| *o = m),
            Some(argmax) => {
                let argmax = &mut argmax[oh * ow_len..][..ow_len];
                for (ow, ((o, a), (m, i))) in out.iter_mut().zip(argmax).zip(pairs).enumerate() {
                    *o = m;
                    *a = ((2 * oh + i / 2) * width + 2 * ow + i % 2) as u32;
                }
            }
        }
    }
}

/// The input's gradient: each output's gradient added onto its window's maximum.
pub fn backward(s: &PoolShape, argmax: &[u32], dy: &[f32]) -> Vec<f32> {
    let [oh_len, ow_len] = s.out();
    let (plane, out_plane) = (s.height * s.width, oh_len * ow_len);
    let mut dx = vec![0.0f32; s.planes() * plane];
    let task = planes_per_task(plane);
    dx.par_chunks_mut(plane * task)
        .zip(
            argmax
                .par_chunks(out_plane * task)
                .zip(dy.par_chunks(out_plane * task)),
        )
        .for_each(|(dx, (argmax, dy))| {
            for (dx, (argmax, dy)) in dx
                .chunks_mut(plane)
                .zip(argmax.chunks(out_plane).zip(dy.chunks(out_plane)))
            {
                for (&i, &g) in argmax.iter().zip(dy) {
                    dx[i as usize] += g;
                }
            }
        });
    dx
}

pub(super) fn pool_shape(
    x: &FlexTensor,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
) -> PoolShape {
    let [batch, channels, height, width] = dims4(x);
    PoolShape {
        batch,
        channels,
        height,
        width,
        kernel,
        stride,
        padding,
    }
}

/// Backward step of [`CpuKernels::max_pool2d_nchw`]: where each window's maximum was.
#[derive(Debug)]
pub(super) struct PoolBackward;

impl Backward<Flex, 1> for PoolBackward {
    type State = (Arc<Vec<u32>>, PoolShape);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let dy = contiguous(grads.consume::<Flex>(&ops.node));
        let (argmax, s) = ops.state;
        if let Some(node) = node_x {
            let dx = backward(&s, &argmax, values(&dy));
            grads.register::<Flex>(
                node.id,
                tensor(dx, [s.batch, s.channels, s.height, s.width]),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shapes() -> Vec<PoolShape> {
        let s = |batch, channels, height, width, kernel, stride, padding| PoolShape {
            batch,
            channels,
            height,
            width,
            kernel,
            stride,
            padding,
        };
        vec![
            s(2, 3, 8, 8, [2, 2], [2, 2], [0, 0]),
            s(1, 2, 7, 9, [2, 2], [2, 2], [0, 0]),
            s(2, 2, 9, 7, [3, 3], [2, 2], [1, 1]),
            s(1, 1, 5, 6, [3, 2], [1, 2], [1, 0]),
        ]
    }

    fn values(n: usize) -> Vec<f32> {
        // Distinct values 0.01 apart (7919 is prime), so every window has one maximum.
        (0..n).map(|i| ((i * 7919) % n) as f32 * 0.01).collect()
    }

    #[test]
    fn forward_takes_each_windows_maximum() {
        for s in shapes() {
            let x = values(s.planes() * s.height * s.width);
            let (out, argmax) = forward(&s, &x, true);
            let (plain, none) = forward(&s, &x, false);
            assert_eq!(out, plain);
            assert!(none.is_empty());
            let [oh_len, ow_len] = s.out();
            for p in 0..s.planes() {
                for oh in 0..oh_len {
                    for ow in 0..ow_len {
                        let mut best = f32::NEG_INFINITY;
                        for ki in 0..s.kernel[0] {
                            for kj in 0..s.kernel[1] {
                                let h = (oh * s.stride[0] + ki) as isize - s.padding[0] as isize;
                                let w = (ow * s.stride[1] + kj) as isize - s.padding[1] as isize;
                                if h >= 0
                                    && w >= 0
                                    && (h as usize) < s.height
                                    && (w as usize) < s.width
                                {
                                    best = best
                                        .max(x[(p * s.height + h as usize) * s.width + w as usize]);
                                }
                            }
                        }
                        let o = (p * oh_len + oh) * ow_len + ow;
                        assert_eq!(out[o], best, "{s:?}");
                        assert_eq!(
                            x[p * s.height * s.width + argmax[o] as usize],
                            best,
                            "{s:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_nan_in_a_window_gives_nan() {
        let s = PoolShape {
            batch: 1,
            channels: 1,
            height: 2,
            width: 4,
            kernel: [2, 2],
            stride: [2, 2],
            padding: [0, 0],
        };
        let x = [1.0, f32::NAN, 5.0, 6.0, 2.0, 3.0, 7.0, 8.0];
        let (out, _) = forward(&s, &x, true);
        assert!(out[0].is_nan());
        assert_eq!(out[1], 8.0);
        // The general loop (a 2×3 window here) does the same.
        let s = PoolShape {
            kernel: [2, 3],
            stride: [1, 1],
            ..s
        };
        let (out, _) = forward(&s, &x, true);
        assert!(out[0].is_nan() && out[1].is_nan());
    }

    /// With distinct inputs max-pooling is locally linear, so a finite difference in any
    /// direction must equal the analytic gradient's dot product with that direction.
    #[test]
    fn backward_matches_finite_differences() {
        for s in shapes() {
            let x = values(s.planes() * s.height * s.width);
            let (out, argmax) = forward(&s, &x, true);
            let dy: Vec<f32> = (0..out.len()).map(|i| (i % 7) as f32 - 3.0).collect();
            let dx = backward(&s, &argmax, &dy);
            let v: Vec<f32> = (0..x.len()).map(|i| (i % 5) as f32 * 0.1 - 0.2).collect();
            let loss = |e: f32| -> f64 {
                let shifted: Vec<f32> = x.iter().zip(&v).map(|(x, v)| x + e * v).collect();
                forward(&s, &shifted, false)
                    .0
                    .iter()
                    .zip(&dy)
                    .map(|(y, g)| (*y as f64) * (*g as f64))
                    .sum()
            };
            let numeric = (loss(0.01) - loss(-0.01)) / 0.02;
            let analytic: f64 = dx
                .iter()
                .zip(&v)
                .map(|(a, b)| (*a as f64) * (*b as f64))
                .sum();
            assert!(
                (numeric - analytic).abs() < 1e-2 * (1.0 + analytic.abs()),
                "{s:?}: {numeric} vs {analytic}"
            );
        }
    }
}
