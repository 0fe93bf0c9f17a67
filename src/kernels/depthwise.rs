//! Depthwise 2-D convolution on the host (groups = input channels = output channels), NCHW in
//! and out, any zero padding (TF-"SAME" pads stride-2 convolutions asymmetrically).
//!
//! Channels are taken 16 at a time and laid channels-last with a zero border, so every kernel
//! tap is one multiply-add across 16 channels with no bounds checks, whatever the image size
//! (7×7 and 3×3 planes included); the loops are compiled for AVX-512 and AVX2 too, chosen at
//! run time. Burn's flex runs a grouped convolution as one small gemm per group.

use std::ops::Range;

use rayon::prelude::*;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::flex::{Flex, FlexTensor};

use super::{contiguous, dims4, tensor, values};

/// Channels computed together: one AVX-512 register of f32.
const LANES: usize = 16;
type Lanes = [f32; LANES];

/// Shapes of one depthwise convolution: input `[batch, channels, height, width]`, weight
/// `[channels, 1, kernel…]`, zero padding `[top, left, bottom, right]`, no dilation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DepthwiseShape {
    pub batch: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 4],
}

impl DepthwiseShape {
    /// Height and width of the output.
    pub fn out(&self) -> [usize; 2] {
        let [ph, pw] = self.padded();
        [
            (ph - self.kernel[0]) / self.stride[0] + 1,
            (pw - self.kernel[1]) / self.stride[1] + 1,
        ]
    }

    /// Height and width with the padding.
    fn padded(&self) -> [usize; 2] {
        let [top, left, bottom, right] = self.padding;
        [self.height + top + bottom, self.width + left + right]
    }

    fn plane(&self) -> usize {
        self.height * self.width
    }

    fn out_plane(&self) -> usize {
        let [oh, ow] = self.out();
        oh * ow
    }

    fn taps(&self) -> usize {
        self.kernel[0] * self.kernel[1]
    }

    fn blocks(&self) -> usize {
        self.channels.div_ceil(LANES)
    }

    /// Blocks per parallel task: enough work (~256k multiply-adds) to pay for the task.
    fn blocks_per_task(&self) -> usize {
        (1 << 18) / (self.out_plane() * self.taps() * LANES).max(1) + 1
    }

    /// Output rows computed together: their input rows, as lanes, fill about 64 KiB, so a
    /// band stays in the core's caches while its taps sweep over it.
    fn band(&self) -> usize {
        let rows_in = (65_536 / (self.padded()[1] * LANES * 4)).max(self.kernel[0]);
        (rows_in - self.kernel[0]) / self.stride[0] + 1
    }

    /// The padded input rows that output rows `rows` read.
    fn input_rows(&self, rows: &Range<usize>) -> Range<usize> {
        rows.start * self.stride[0]..(rows.end - 1) * self.stride[0] + self.kernel[0]
    }

    /// The input as planes, with this shape's padding.
    fn input<'a>(&self, x: &'a [f32]) -> Planes<'a> {
        let [top, left, _, right] = self.padding;
        Planes {
            data: x,
            channels: self.channels,
            size: [self.height, self.width],
            padding: [top, left, right],
        }
    }

    /// The output (or its gradient) as planes, without padding.
    fn output<'a>(&self, y: &'a [f32]) -> Planes<'a> {
        Planes {
            data: y,
            channels: self.channels,
            size: self.out(),
            padding: [0; 3],
        }
    }

    /// The weights (or, for `taps` = 1, the biases) of channels `c0..` as lanes, one per tap.
    fn pack_weights(&self, weight: &[f32], taps: usize, c0: usize) -> Vec<Lanes> {
        let mut packed = vec![[0.0; LANES]; taps];
        for l in 0..LANES.min(self.channels - c0) {
            for (t, p) in packed.iter_mut().enumerate() {
                p[l] = weight[(c0 + l) * taps + t];
            }
        }
        packed
    }
}

/// An NCHW tensor's values, read with a zero border `[top, left, right]`.
struct Planes<'a> {
    data: &'a [f32],
    channels: usize,
    size: [usize; 2],
    padding: [usize; 3],
}

impl Planes<'_> {
    /// Rows `rows` (counted with the top border) of channels `c0..` of image `b`,
    /// channels-last: `[rows][left + width + right]` lanes, zero outside the image and in
    /// lanes past the last channel. Transposed 16 positions at a time, so the planes are read
    /// and the lanes written 64 bytes at a time (lane by lane, packing took a third of the
    /// convolution's time).
    fn pack(&self, b: usize, c0: usize, rows: Range<usize>, buf: &mut Vec<Lanes>) {
        let ([h, w], [top, left, right]) = (self.size, self.padding);
        let pw = left + w + right;
        buf.resize(rows.len() * pw, [0.0; LANES]);
        let n = LANES.min(self.channels - c0);
        let first = (b * self.channels + c0) * h * w;
        // Lanes past `n` stay zero; positions past a short last chunk are never read.
        let mut tile = [[0.0f32; LANES]; LANES];
        for (r, dst) in rows.zip(buf.chunks_exact_mut(pw)) {
            if !(top..top + h).contains(&r) {
                dst.fill([0.0; LANES]);
                continue;
            }
            dst[..left].fill([0.0; LANES]);
            dst[left + w..].fill([0.0; LANES]);
            let row = first + (r - top) * w;
            for (i0, out) in (0..w)
                .step_by(LANES)
                .zip(dst[left..left + w].chunks_mut(LANES))
            {
                for (l, t) in tile[..n].iter_mut().enumerate() {
                    let src = &self.data[row + l * h * w + i0..];
                    match src.first_chunk::<LANES>() {
                        Some(full) if out.len() == LANES => *t = *full,
                        _ => t[..out.len()].copy_from_slice(&src[..out.len()]),
                    }
                }
                for (i, o) in out.iter_mut().enumerate() {
                    *o = std::array::from_fn(|l| tile[l][i]);
                }
            }
        }
    }
}

/// `dst` cut into the runs of one image's block of channels, in order: (image, block, run).
fn block_runs<'a>(
    s: &DepthwiseShape,
    mut dst: &'a mut [f32],
    per_channel: usize,
) -> Vec<(usize, usize, &'a mut [f32])> {
    let mut runs = Vec::with_capacity(s.batch * s.blocks());
    for b in 0..s.batch {
        for k in 0..s.blocks() {
            let n = LANES.min(s.channels - k * LANES);
            let (run, rest) = dst.split_at_mut(n * per_channel);
            runs.push((b, k, run));
            dst = rest;
        }
    }
    runs
}

/// Writes (or, with `add`, adds) `lanes` into each channel's plane of `dst` (planes of `plane`
/// values) from position `at` on: lane `l` into plane `l`, transposed 16 positions at a time.
fn unpack(lanes: &[Lanes], dst: &mut [f32], plane: usize, at: usize, add: bool) {
    let n = dst.len() / plane;
    let mut tile = [[0.0f32; LANES]; LANES];
    for (i0, chunk) in (0..lanes.len()).step_by(LANES).zip(lanes.chunks(LANES)) {
        for (i, v) in chunk.iter().enumerate() {
            for (l, x) in v.iter().enumerate() {
                tile[l][i] = *x;
            }
        }
        for (l, t) in tile[..n].iter().enumerate() {
            let out = &mut dst[l * plane + at + i0..][..chunk.len()];
            match out.first_chunk_mut::<LANES>() {
                Some(full) if !add => *full = *t,
                _ if !add => out.copy_from_slice(&t[..chunk.len()]),
                _ => out.iter_mut().zip(t).for_each(|(o, x)| *o += x),
            }
        }
    }
}

/// Compiles `body` (an `#[inline(always)]` function) into `name` three times — for AVX-512,
/// AVX2 and the baseline — and calls the best the CPU runs. Multiplies and adds stay separate
/// (no FMA), so every variant gives the same bits.
macro_rules! multiversion {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) = $body:ident) => {
        $(#[$doc])*
        fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                fn avx512($($arg: $ty),*) {
                    $body($($arg),*)
                }
                #[target_feature(enable = "avx2")]
                fn avx2($($arg: $ty),*) {
                    $body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has the features the function was compiled for.
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: as above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}

multiversion! {
    /// One band of output rows of one block of channels: `out[position] = bias + Σ taps w · x`,
    /// `xp` the band's padded input rows.
    fn forward_lanes(s: &DepthwiseShape, xp: &[Lanes], w: &[Lanes], bias: &Lanes, out: &mut [Lanes])
        = forward_lanes_body
}

#[inline(always)]
fn forward_lanes_body(
    s: &DepthwiseShape,
    xp: &[Lanes],
    w: &[Lanes],
    bias: &Lanes,
    out: &mut [Lanes],
) {
    let ([_, ow_len], [kh, kw], [sh, sw]) = (s.out(), s.kernel, s.stride);
    let pw = s.padded()[1];
    for (oh, row) in out.chunks_exact_mut(ow_len).enumerate() {
        for (ow, o) in row.iter_mut().enumerate() {
            let mut acc = *bias;
            for ki in 0..kh {
                let taps = &xp[(oh * sh + ki) * pw + ow * sw..][..kw];
                for (v, wv) in taps.iter().zip(&w[ki * kw..][..kw]) {
                    for l in 0..LANES {
                        acc[l] += wv[l] * v[l];
                    }
                }
            }
            *o = acc;
        }
    }
}

/// The output rows in bands of `s.band()`.
fn bands(s: &DepthwiseShape) -> impl Iterator<Item = Range<usize>> {
    let (rows, band) = (s.out()[0], s.band());
    (0..rows)
        .step_by(band)
        .map(move |r| r..(r + band).min(rows))
}

/// `depthwise_conv2d(x, weight) + bias`, `[batch, channels, out_h, out_w]`.
pub fn forward(s: &DepthwiseShape, x: &[f32], weight: &[f32], bias: &[f32]) -> Vec<f32> {
    let (out_plane, ow) = (s.out_plane(), s.out()[1]);
    let mut y = vec![0.0; s.batch * s.channels * out_plane];
    block_runs(s, &mut y, out_plane)
        .into_par_iter()
        .with_min_len(s.blocks_per_task())
        .for_each_init(
            || (Vec::new(), Vec::new()),
            |(xp, out), (b, k, y)| {
                let c0 = k * LANES;
                let w = s.pack_weights(weight, s.taps(), c0);
                let bias = s.pack_weights(bias, 1, c0)[0];
                for rows in bands(s) {
                    s.input(x).pack(b, c0, s.input_rows(&rows), xp);
                    // Every position is written: no need to clear.
                    out.resize(rows.len() * ow, [0.0; LANES]);
                    out.truncate(rows.len() * ow);
                    forward_lanes(s, xp, &w, &bias, out);
                    unpack(out, y, out_plane, rows.start * ow, false);
                }
            },
        );
    y
}

multiversion! {
    /// One band of output rows of one block of channels: the weight's (and bias's) gradient
    /// added into `dw` (`db`), and the input's, on the band's padded input rows, into `dxp` if
    /// given.
    fn backward_lanes(
        s: &DepthwiseShape,
        xp: &[Lanes],
        w: &[Lanes],
        dy: &[Lanes],
        dw: &mut [Lanes],
        db: &mut Lanes,
        dxp: Option<&mut [Lanes]>
    ) = backward_lanes_body
}

#[inline(always)]
fn backward_lanes_body(
    s: &DepthwiseShape,
    xp: &[Lanes],
    w: &[Lanes],
    dy: &[Lanes],
    dw: &mut [Lanes],
    db: &mut Lanes,
    mut dxp: Option<&mut [Lanes]>,
) {
    let ([_, ow_len], [kh, kw], [sh, sw]) = (s.out(), s.kernel, s.stride);
    let pw = s.padded()[1];
    for (oh, row) in dy.chunks_exact(ow_len).enumerate() {
        for (ow, g) in row.iter().enumerate() {
            for l in 0..LANES {
                db[l] += g[l];
            }
            for ki in 0..kh {
                let at = (oh * sh + ki) * pw + ow * sw;
                let taps = &mut dw[ki * kw..][..kw];
                for (t, v) in taps.iter_mut().zip(&xp[at..][..kw]) {
                    for l in 0..LANES {
                        t[l] += g[l] * v[l];
                    }
                }
                if let Some(dxp) = dxp.as_deref_mut() {
                    for (d, wv) in dxp[at..][..kw].iter_mut().zip(&w[ki * kw..][..kw]) {
                        for l in 0..LANES {
                            d[l] += wv[l] * g[l];
                        }
                    }
                }
            }
        }
    }
}

/// Scratch of one backward task: packed input rows, output-gradient rows, input-gradient rows.
type Scratch = (Vec<Lanes>, Vec<Lanes>, Vec<Lanes>);

/// Gradients of [`forward`]'s input (if `want_input`), weight and bias given the output's
/// gradient `dy`. Each image's block sums its own positions, and the images' sums are added
/// in image order: the result does not depend on the thread count (a resumed run repeats the
/// uninterrupted one bit for bit).
pub fn backward(
    s: &DepthwiseShape,
    x: &[f32],
    weight: &[f32],
    dy: &[f32],
    want_input: bool,
) -> (Option<Vec<f32>>, Vec<f32>, Vec<f32>) {
    let (plane, taps) = (s.plane(), s.taps());
    let [top, left, ..] = s.padding;
    let pw = s.padded()[1];
    let mut dx = want_input.then(|| vec![0.0f32; s.batch * s.channels * plane]);
    // Tasks: every (image, block), with the run of dx it adds to when that is wanted.
    let runs: Vec<(usize, usize, Option<&mut [f32]>)> = match dx.as_deref_mut() {
        Some(dx) => block_runs(s, dx, plane)
            .into_iter()
            .map(|(b, k, run)| (b, k, Some(run)))
            .collect(),
        None => (0..s.batch * s.blocks())
            .map(|i| (i / s.blocks(), i % s.blocks(), None))
            .collect(),
    };
    let task = |(xp, dyp, dxp): &mut Scratch,
                (b, k, mut dx): (usize, usize, Option<&mut [f32]>)| {
        let c0 = k * LANES;
        let w = s.pack_weights(weight, taps, c0);
        let (mut dw, mut db) = (vec![[0.0; LANES]; taps], [0.0; LANES]);
        for rows in bands(s) {
            let inputs = s.input_rows(&rows);
            s.input(x).pack(b, c0, inputs.clone(), xp);
            s.output(dy).pack(b, c0, rows.clone(), dyp);
            let Some(dx) = dx.as_deref_mut() else {
                backward_lanes(s, xp, &w, dyp, &mut dw, &mut db, None);
                continue;
            };
            dxp.clear();
            dxp.resize(inputs.len() * pw, [0.0; LANES]);
            backward_lanes(s, xp, &w, dyp, &mut dw, &mut db, Some(dxp));
            // The rows inside the image, without the border, added (bands overlap by the
            // kernel's height).
            for r in inputs.start.max(top)..inputs.end.min(top + s.height) {
                let lanes = &dxp[(r - inputs.start) * pw + left..][..s.width];
                unpack(lanes, dx, plane, (r - top) * s.width, true);
            }
        }
        (dw, db)
    };
    let partial: Vec<(Vec<Lanes>, Lanes)> = runs
        .into_par_iter()
        .with_min_len(s.blocks_per_task())
        .map_init(Scratch::default, task)
        .collect();
    let (mut dw, mut db) = (vec![0.0f64; s.channels * taps], vec![0.0f64; s.channels]);
    for (i, (pdw, pdb)) in partial.iter().enumerate() {
        let c0 = (i % s.blocks()) * LANES;
        for l in 0..LANES.min(s.channels - c0) {
            db[c0 + l] += pdb[l] as f64;
            for (t, g) in pdw.iter().enumerate() {
                dw[(c0 + l) * taps + t] += g[l] as f64;
            }
        }
    }
    let single = |v: Vec<f64>| v.into_iter().map(|g| g as f32).collect();
    (dx, single(dw), single(db))
}

pub(super) fn depthwise_shape(
    x: &FlexTensor,
    weight: &FlexTensor,
    stride: [usize; 2],
    padding: [usize; 4],
) -> DepthwiseShape {
    let [batch, channels, height, width] = dims4(x);
    let [_, _, kh, kw] = dims4(weight);
    DepthwiseShape {
        batch,
        channels,
        height,
        width,
        kernel: [kh, kw],
        stride,
        padding,
    }
}

/// Backward step of [`super::CpuKernels::depthwise_conv2d_nchw`]: the forward's input and
/// weight are its state.
#[derive(Debug)]
pub(super) struct DepthwiseBackward;

impl Backward<Flex, 3> for DepthwiseBackward {
    type State = (FlexTensor, FlexTensor, DepthwiseShape);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_weight, node_bias] = ops.parents;
        let dy = contiguous(grads.consume::<Flex>(&ops.node));
        let (x, weight, s) = ops.state;
        let (dx, dw, db) = backward(
            &s,
            values(&x),
            values(&weight),
            values(&dy),
            node_x.is_some(),
        );
        if let (Some(node), Some(dx)) = (node_x, dx) {
            grads.register::<Flex>(node.id, tensor(dx, dims4(&x)));
        }
        if let Some(node) = node_weight {
            grads.register::<Flex>(node.id, tensor(dw, dims4(&weight)));
        }
        if let Some(node) = node_bias {
            grads.register::<Flex>(node.id, tensor(db, [s.channels]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, one multiply-add at a time.
    fn naive(s: &DepthwiseShape, x: &[f32], w: &[f32], bias: &[f32]) -> Vec<f32> {
        let [oh_len, ow_len] = s.out();
        let [kh, kw] = s.kernel;
        let mut out = Vec::new();
        for p in 0..s.batch * s.channels {
            let c = p % s.channels;
            for oh in 0..oh_len {
                for ow in 0..ow_len {
                    let mut acc = bias[c];
                    for ki in 0..kh {
                        for kj in 0..kw {
                            let ih = (oh * s.stride[0] + ki) as isize - s.padding[0] as isize;
                            let iw = (ow * s.stride[1] + kj) as isize - s.padding[1] as isize;
                            if (0..s.height as isize).contains(&ih)
                                && (0..s.width as isize).contains(&iw)
                            {
                                acc += x[(p * s.height + ih as usize) * s.width + iw as usize]
                                    * w[(c * kh + ki) * kw + kj];
                            }
                        }
                    }
                    out.push(acc);
                }
            }
        }
        out
    }

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| (((i as u32).wrapping_mul(2654435761) ^ seed) % 1000) as f32 / 500.0 - 1.0)
            .collect()
    }

    /// Stride 1 and 2, odd and even sizes, TF-"SAME"'s asymmetric pads, a kernel wider than
    /// the padded image is tall, no padding at all, more channels than one block, and rows so
    /// wide that each band holds one or two output rows (bands overlap in the input).
    fn shapes() -> Vec<DepthwiseShape> {
        let s = |batch, channels, height, width, kernel, stride, padding| DepthwiseShape {
            batch,
            channels,
            height,
            width,
            kernel,
            stride,
            padding,
        };
        vec![
            s(2, 3, 7, 6, [3, 3], [1, 1], [1, 1, 1, 1]),
            s(2, 2, 8, 8, [3, 3], [2, 2], [0, 0, 1, 1]),
            s(1, 3, 8, 10, [5, 5], [2, 2], [1, 1, 2, 2]),
            s(3, 2, 9, 7, [5, 5], [2, 2], [2, 2, 2, 2]),
            s(2, 2, 5, 5, [7, 7], [1, 1], [3, 3, 3, 3]),
            s(1, 4, 6, 9, [3, 5], [1, 2], [0, 2, 2, 1]),
            s(2, 1, 4, 4, [3, 3], [1, 1], [0, 0, 0, 0]),
            s(2, 19, 5, 6, [3, 3], [1, 1], [1, 1, 1, 1]),
            s(1, 2, 7, 1100, [3, 3], [2, 2], [0, 0, 1, 1]),
            s(1, 3, 6, 1030, [5, 5], [1, 1], [2, 2, 2, 2]),
        ]
    }

    #[test]
    fn forward_matches_the_definition() {
        for s in shapes() {
            let x = values(s.batch * s.channels * s.plane(), 1);
            let w = values(s.channels * s.taps(), 2);
            let bias = values(s.channels, 3);
            let (fast, slow) = (forward(&s, &x, &w, &bias), naive(&s, &x, &w, &bias));
            assert_eq!(fast.len(), slow.len(), "{s:?}");
            for (a, b) in fast.iter().zip(&slow) {
                assert!((a - b).abs() < 1e-5, "{s:?}: {a} vs {b}");
            }
        }
    }

    /// Each gradient is checked as a directional derivative of the loss `sum(dy ⊙ conv(x))`:
    /// `<grad, v>` must equal `(L(p + εv) − L(p − εv)) / 2ε` for a fixed direction `v`.
    #[test]
    fn gradients_match_finite_differences() {
        let loss = |s: &DepthwiseShape, x: &[f32], w: &[f32], b: &[f32], dy: &[f32]| -> f64 {
            forward(s, x, w, b)
                .iter()
                .zip(dy)
                .map(|(y, g)| (*y as f64) * (*g as f64))
                .sum()
        };
        let dot = |a: &[f32], b: &[f32]| -> f64 {
            a.iter()
                .zip(b)
                .map(|(a, b)| (*a as f64) * (*b as f64))
                .sum()
        };
        let shift = |p: &[f32], v: &[f32], e: f32| -> Vec<f32> {
            p.iter().zip(v).map(|(p, v)| p + e * v).collect()
        };
        let eps = 1e-2;
        for s in shapes() {
            let x = values(s.batch * s.channels * s.plane(), 1);
            let w = values(s.channels * s.taps(), 2);
            let b = values(s.channels, 3);
            let dy = values(s.batch * s.channels * s.out_plane(), 4);
            let (dx, dw, db) = backward(&s, &x, &w, &dy, true);
            let dx = dx.unwrap();
            let check = |name: &str, analytic: f64, plus: f64, minus: f64| {
                let numeric = (plus - minus) / (2.0 * eps as f64);
                assert!(
                    (analytic - numeric).abs() <= 1e-2 * (1.0 + numeric.abs()),
                    "{s:?} d{name}: analytic {analytic} vs numeric {numeric}"
                );
            };
            let v = values(x.len(), 5);
            let (xp, xm) = (shift(&x, &v, eps), shift(&x, &v, -eps));
            check(
                "x",
                dot(&dx, &v),
                loss(&s, &xp, &w, &b, &dy),
                loss(&s, &xm, &w, &b, &dy),
            );
            let v = values(w.len(), 6);
            let (wp, wm) = (shift(&w, &v, eps), shift(&w, &v, -eps));
            check(
                "w",
                dot(&dw, &v),
                loss(&s, &x, &wp, &b, &dy),
                loss(&s, &x, &wm, &b, &dy),
            );
            let v = values(b.len(), 7);
            let (bp, bm) = (shift(&b, &v, eps), shift(&b, &v, -eps));
            check(
                "b",
                dot(&db, &v),
                loss(&s, &x, &w, &bp, &dy),
                loss(&s, &x, &w, &bm, &dy),
            );
            // Without the input gradient, the weight gradient is the same.
            let (none, dw2, _) = backward(&s, &x, &w, &dy, false);
            assert!(none.is_none());
            assert_eq!(dw, dw2, "{s:?}");
        }
    }

    /// The same bits whatever the thread count: each channel adds its images up in order.
    #[test]
    fn gradients_do_not_depend_on_the_thread_count() {
        let s = DepthwiseShape {
            batch: 5,
            channels: 7,
            height: 12,
            width: 11,
            kernel: [5, 5],
            stride: [2, 2],
            padding: [1, 1, 2, 2],
        };
        let x = values(s.batch * s.channels * s.plane(), 1);
        let w = values(s.channels * s.taps(), 2);
        let dy = values(s.batch * s.channels * s.out_plane(), 4);
        let run = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| backward(&s, &x, &w, &dy, true))
        };
        assert_eq!(run(1), run(3));
    }
}
