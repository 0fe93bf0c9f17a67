//! 2-D convolution on the host, NCHW in and out: one im2col + gemm per image, images in
//! parallel. Burn's flex convolution converts to channels-last and back around a batched gemm;
//! keeping each image's `[C·kh·kw, H·W]` column matrix in NCHW order makes the output of the
//! gemm the output tensor itself, with the bias as the gemm's initial value.

use rayon::prelude::*;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::flex::{Flex, FlexTensor};

use super::{contiguous, dims4, tensor, values};

/// Shapes of one convolution: input `[batch, channels, height, width]`, weight
/// `[out_channels, channels, kernel…]`, symmetric zero padding, no dilation, one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvShape {
    pub batch: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub out_channels: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
}

impl ConvShape {
    pub fn out(&self) -> [usize; 2] {
        let size = |i: usize, len: usize| {
            (len + 2 * self.padding[i] - self.kernel[i]) / self.stride[i] + 1
        };
        [size(0, self.height), size(1, self.width)]
    }

    /// Rows of the column matrix: one per (channel, kernel row, kernel column).
    fn patch(&self) -> usize {
        self.channels * self.kernel[0] * self.kernel[1]
    }

    /// Columns of the column matrix: one per output position.
    fn positions(&self) -> usize {
        let [h, w] = self.out();
        h * w
    }

    fn image(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// A 1×1 kernel at stride 1 without padding reads each image as its own column matrix.
    fn pointwise(&self) -> bool {
        self.kernel == [1, 1] && self.stride == [1, 1] && self.padding == [0, 0]
    }
}

/// For each output column `ow` of one kernel column `kj` at stride 1: the input column is
/// `ow + kj - pad`; returns the `ow` range whose input column lies inside `[0, width)`.
fn valid_columns(kj: usize, pad: usize, width: usize, out_width: usize) -> (usize, usize) {
    let lo = pad.saturating_sub(kj).min(out_width);
    let hi = (width + pad).saturating_sub(kj).min(out_width).max(lo);
    (lo, hi)
}

/// Fill `col` (`[patch, positions]`) with the patches of one image.
fn im2col(s: &ConvShape, image: &[f32], col: &mut [f32]) {
    let [oh_len, ow_len] = s.out();
    let [kh, kw] = s.kernel;
    let [sh, sw] = s.stride;
    let [ph, pw] = s.padding;
    let (h, w) = (s.height, s.width);
    for c in 0..s.channels {
        let plane = &image[c * h * w..][..h * w];
        for ki in 0..kh {
            for kj in 0..kw {
                let row =
                    &mut col[((c * kh + ki) * kw + kj) * oh_len * ow_len..][..oh_len * ow_len];
                for (oh, dst) in row.chunks_exact_mut(ow_len).enumerate() {
                    let ih = (oh * sh + ki) as isize - ph as isize;
                    if ih < 0 || ih >= h as isize {
                        dst.fill(0.0);
                        continue;
                    }
                    let src = &plane[ih as usize * w..][..w];
                    if sw == 1 {
                        let (lo, hi) = valid_columns(kj, pw, w, ow_len);
                        dst[..lo].fill(0.0);
                        dst[lo..hi].copy_from_slice(&src[lo + kj - pw..hi + kj - pw]);
                        dst[hi..].fill(0.0);
                    } else {
                        for (ow, d) in dst.iter_mut().enumerate() {
                            let iw = (ow * sw + kj) as isize - pw as isize;
                            *d = if iw >= 0 && iw < w as isize {
                                src[iw as usize]
                            } else {
                                0.0
                            };
                        }
                    }
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: add each column-matrix entry back onto the input pixel it was
/// read from. `image` must start zeroed.
fn col2im(s: &ConvShape, col: &[f32], image: &mut [f32]) {
    let [oh_len, ow_len] = s.out();
    let [kh, kw] = s.kernel;
    let [sh, sw] = s.stride;
    let [ph, pw] = s.padding;
    let (h, w) = (s.height, s.width);
    for c in 0..s.channels {
        let plane = &mut image[c * h * w..][..h * w];
        for ki in 0..kh {
            for kj in 0..kw {
                let row = &col[((c * kh + ki) * kw + kj) * oh_len * ow_len..][..oh_len * ow_len];
                for (oh, src) in row.chunks_exact(ow_len).enumerate() {
                    let ih = (oh * sh + ki) as isize - ph as isize;
                    if ih < 0 || ih >= h as isize {
                        continue;
                    }
                    let dst = &mut plane[ih as usize * w..][..w];
                    if sw == 1 {
                        let (lo, hi) = valid_columns(kj, pw, w, ow_len);
                        for (d, v) in dst[lo + kj - pw..hi + kj - pw].iter_mut().zip(&src[lo..hi]) {
                            *d += v;
                        }
                    } else {
                        for (ow, v) in src.iter().enumerate() {
                            let iw = (ow * sw + kj) as isize - pw as isize;
                            if iw >= 0 && iw < w as isize {
                                dst[iw as usize] += v;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A row-major matrix view for [`matmul`]: element (i, j) at `ptr[i * row + j * col]`.
#[derive(Clone, Copy)]
struct View {
    ptr: *const f32,
    row: isize,
    col: isize,
}

fn rows(ptr: *const f32, width: usize) -> View {
    View {
        ptr,
        row: width as isize,
        col: 1,
    }
}

/// The transpose of a row-major `[_, width]` matrix.
fn transposed(ptr: *const f32, width: usize) -> View {
    View {
        ptr,
        row: 1,
        col: width as isize,
    }
}

/// `dst[m, n] (+)= lhs[m, k] · rhs[k, n]`, `dst` row-major; `accumulate` keeps what `dst` holds.
fn matmul(
    [m, n, k]: [usize; 3],
    dst: &mut [f32],
    accumulate: bool,
    lhs: View,
    rhs: View,
    parallel: bool,
) {
    debug_assert!(dst.len() >= m * n);
    let parallelism = if parallel {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: `dst` holds m×n elements (asserted by the callers' slicing); `lhs` and `rhs` point
    // into slices their callers sized for m×k and k×n elements at the given strides.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.ptr,
            lhs.col,
            lhs.row,
            rhs.ptr,
            rhs.col,
            rhs.row,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// The column matrix of image `b`: the image itself under a 1×1 kernel, else filled into `buf`.
fn columns<'a>(s: &ConvShape, x: &'a [f32], b: usize, buf: &'a mut [f32]) -> &'a [f32] {
    let image = &x[b * s.image()..][..s.image()];
    if s.pointwise() {
        return image;
    }
    im2col(s, image, buf);
    buf
}

/// Run `f(image index, image's output chunk, scratch)` for every image: images in parallel
/// when there are enough of them to keep the threads busy, otherwise one at a time with a
/// parallel gemm inside (`f`'s last argument says which).
fn per_image<F>(out: &mut [f32], chunk: usize, scratch: usize, f: F)
where
    F: Fn(usize, &mut [f32], &mut Vec<f32>, bool) + Sync,
{
    let batch = out.len() / chunk.max(1);
    if batch >= rayon::current_num_threads() {
        out.par_chunks_mut(chunk)
            .enumerate()
            .for_each_init(|| vec![0.0; scratch], |buf, (b, o)| f(b, o, buf, false));
    } else {
        let mut buf = vec![0.0; scratch];
        for (b, o) in out.chunks_mut(chunk).enumerate() {
            f(b, o, &mut buf, true);
        }
    }
}

/// `conv2d(x, weight) + bias`, `[batch, out_channels, out_h, out_w]`.
pub fn forward(s: &ConvShape, x: &[f32], weight: &[f32], bias: &[f32]) -> Vec<f32> {
    let (patch, positions) = (s.patch(), s.positions());
    let mut out = vec![0.0; s.batch * s.out_channels * positions];
    let scratch = if s.pointwise() { 0 } else { patch * positions };
    per_image(
        &mut out,
        s.out_channels * positions,
        scratch,
        |b, out, col, parallel| {
            for (row, &v) in out.chunks_exact_mut(positions).zip(bias) {
                row.fill(v);
            }
            let col = columns(s, x, b, col);
            matmul(
                [s.out_channels, positions, patch],
                out,
                true,
                rows(weight.as_ptr(), patch),
                rows(col.as_ptr(), positions),
                parallel,
            );
        },
    );
    out
}

/// The bias's gradient given the output's gradient `dy`: its sum per output channel.
pub fn bias_gradient(s: &ConvShape, dy: &[f32]) -> Vec<f32> {
    let positions = s.positions();
    let mut bias = vec![0.0f32; s.out_channels];
    for image in dy.chunks_exact(s.out_channels * positions) {
        for (g, row) in bias.iter_mut().zip(image.chunks_exact(positions)) {
            *g += row.iter().sum::<f32>();
        }
    }
    bias
}

/// Gradients of [`forward`]'s input (if `want_input`) and weight given the output's gradient
/// `dy`.
pub fn backward(
    s: &ConvShape,
    x: &[f32],
    weight: &[f32],
    dy: &[f32],
    want_input: bool,
) -> (Option<Vec<f32>>, Vec<f32>) {
    let (patch, positions) = (s.patch(), s.positions());
    let out_image = s.out_channels * positions;

    // One image: its weight gradient into `dw`, and its input gradient into `dx` when asked.
    // `scratch` holds the image's column matrix, then its gradient.
    let image =
        |b: usize, dx: Option<&mut [f32]>, dw: &mut [f32], scratch: &mut [f32], parallel: bool| {
            let (col, dcol) = scratch.split_at_mut(scratch.len() / 2);
            let dy_b = &dy[b * out_image..][..out_image];
            let col = columns(s, x, b, col);
            // dW[o, p] += dy[o, n] · col[p, n]
            matmul(
                [s.out_channels, patch, positions],
                dw,
                true,
                rows(dy_b.as_ptr(), positions),
                transposed(col.as_ptr(), positions),
                parallel,
            );
            if let Some(dx) = dx {
                // dcol[p, n] = W[o, p] · dy[o, n], then scattered back onto the image.
                let target: &mut [f32] = if s.pointwise() { dx } else { dcol };
                matmul(
                    [patch, positions, s.out_channels],
                    target,
                    false,
                    transposed(weight.as_ptr(), patch),
                    rows(dy_b.as_ptr(), positions),
                    parallel,
                );
                if !s.pointwise() {
                    dx.fill(0.0);
                    col2im(s, dcol, dx);
                }
            }
        };

    // Images are cut into at most GROUPS runs, each summing its weight gradient in image order,
    // and the runs' sums are added in run order: the result depends on the batch size only, not
    // on the thread count or on how rayon schedules the runs (a resumed run must repeat the
    // uninterrupted one bit for bit).
    const GROUPS: usize = 8;
    let per_group = s.batch.div_ceil(GROUPS.min(s.batch).max(1));
    let groups = s.batch.div_ceil(per_group);
    let parallel_gemm = groups < rayon::current_num_threads();
    let scratch = if s.pointwise() {
        0
    } else {
        2 * patch * positions
    };
    let run = |g: usize, mut dx: Option<&mut [f32]>| {
        let (mut dw, mut col) = (vec![0.0; s.out_channels * patch], vec![0.0; scratch]);
        for b in g * per_group..((g + 1) * per_group).min(s.batch) {
            let dx_b = dx
                .as_deref_mut()
                .map(|dx| &mut dx[(b - g * per_group) * s.image()..][..s.image()]);
            image(b, dx_b, &mut dw, &mut col, parallel_gemm);
        }
        dw
    };
    let mut dx = want_input.then(|| vec![0.0f32; s.batch * s.image()]);
    let partial: Vec<Vec<f32>> = match &mut dx {
        Some(dx) => dx
            .par_chunks_mut(per_group * s.image())
            .enumerate()
            .map(|(g, dx)| run(g, Some(dx)))
            .collect(),
        None => (0..groups).into_par_iter().map(|g| run(g, None)).collect(),
    };
    let mut partial = partial.into_iter();
    let mut dw = partial
        .next()
        .unwrap_or_else(|| vec![0.0; s.out_channels * patch]);
    for p in partial {
        dw.iter_mut().zip(p).for_each(|(a, b)| *a += b);
    }
    (dx, dw)
}

pub(super) fn conv_shape(
    x: &FlexTensor,
    weight: &FlexTensor,
    stride: [usize; 2],
    padding: [usize; 2],
) -> ConvShape {
    let [batch, channels, height, width] = dims4(x);
    let [out_channels, _, kh, kw] = dims4(weight);
    ConvShape {
        batch,
        channels,
        height,
        width,
        out_channels,
        kernel: [kh, kw],
        stride,
        padding,
    }
}

/// Backward step of [`CpuKernels::conv2d_nchw`]: the forward's input and weight are its state.
#[derive(Debug)]
pub(super) struct ConvBackward;

impl Backward<Flex, 3> for ConvBackward {
    type State = (FlexTensor, FlexTensor, ConvShape);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_weight, node_bias] = ops.parents;
        let dy = contiguous(grads.consume::<Flex>(&ops.node));
        let (x, weight, s) = ops.state;
        let (dx, dw) = backward(
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
        // Bias-free convolutions pass an untracked zero bias: no gradient to sum.
        if let Some(node) = node_bias {
            let db = bias_gradient(&s, values(&dy));
            grads.register::<Flex>(node.id, tensor(db, [s.out_channels]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, one multiply-add at a time.
    fn naive(s: &ConvShape, x: &[f32], w: &[f32], bias: &[f32]) -> Vec<f32> {
        let [oh_len, ow_len] = s.out();
        let [kh, kw] = s.kernel;
        let mut out = vec![0.0; s.batch * s.out_channels * oh_len * ow_len];
        for b in 0..s.batch {
            for o in 0..s.out_channels {
                for oh in 0..oh_len {
                    for ow in 0..ow_len {
                        let mut acc = bias[o];
                        for c in 0..s.channels {
                            for ki in 0..kh {
                                for kj in 0..kw {
                                    let ih =
                                        (oh * s.stride[0] + ki) as isize - s.padding[0] as isize;
                                    let iw =
                                        (ow * s.stride[1] + kj) as isize - s.padding[1] as isize;
                                    if ih >= 0
                                        && iw >= 0
                                        && (ih as usize) < s.height
                                        && (iw as usize) < s.width
                                    {
                                        acc += x[((b * s.channels + c) * s.height + ih as usize)
                                            * s.width
                                            + iw as usize]
                                            * w[((o * s.channels + c) * kh + ki) * kw + kj];
                                    }
                                }
                            }
                        }
                        out[((b * s.out_channels + o) * oh_len + oh) * ow_len + ow] = acc;
                    }
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

    fn shapes() -> Vec<ConvShape> {
        let s = |batch, channels, height, width, out_channels, kernel, stride, padding| ConvShape {
            batch,
            channels,
            height,
            width,
            out_channels,
            kernel,
            stride,
            padding,
        };
        vec![
            s(3, 2, 7, 6, 4, [3, 3], [1, 1], [1, 1]),
            s(1, 3, 9, 8, 5, [3, 3], [2, 2], [1, 1]),
            s(4, 3, 5, 5, 2, [1, 1], [1, 1], [0, 0]),
            s(2, 2, 6, 7, 3, [1, 1], [2, 2], [0, 0]),
            s(2, 1, 11, 10, 3, [7, 5], [2, 3], [3, 2]),
            s(2, 2, 4, 4, 2, [5, 5], [1, 1], [2, 2]),
        ]
    }

    #[test]
    fn forward_matches_the_definition() {
        for s in shapes() {
            let x = values(s.batch * s.image(), 1);
            let w = values(s.out_channels * s.patch(), 2);
            let bias = values(s.out_channels, 3);
            let (fast, slow) = (forward(&s, &x, &w, &bias), naive(&s, &x, &w, &bias));
            assert_eq!(fast.len(), slow.len(), "{s:?}");
            for (a, b) in fast.iter().zip(&slow) {
                assert!((a - b).abs() < 1e-4, "{s:?}: {a} vs {b}");
            }
        }
    }

    /// Each gradient is checked as a directional derivative: for the loss `sum(dy ⊙ conv(x))`,
    /// `<grad, v>` must equal `(L(p + εv) − L(p − εv)) / 2ε` for a random direction `v`.
    #[test]
    fn gradients_match_finite_differences() {
        let loss = |s: &ConvShape, x: &[f32], w: &[f32], b: &[f32], dy: &[f32]| -> f64 {
            forward(s, x, w, b)
                .iter()
                .zip(dy)
                .map(|(y, g)| (*y as f64) * (*g as f64))
                .sum()
        };
        let dot = |a: &[f32], b: &[f32]| {
            a.iter()
                .zip(b)
                .map(|(a, b)| (*a as f64) * (*b as f64))
                .sum::<f64>()
        };
        let shift = |p: &[f32], v: &[f32], e: f32| {
            p.iter().zip(v).map(|(p, v)| p + e * v).collect::<Vec<_>>()
        };
        let eps = 1e-2;
        for s in shapes() {
            let x = values(s.batch * s.image(), 1);
            let w = values(s.out_channels * s.patch(), 2);
            let b = values(s.out_channels, 3);
            let dy = values(s.batch * s.out_channels * s.positions(), 4);
            let (dx, dw) = backward(&s, &x, &w, &dy, true);
            let db = bias_gradient(&s, &dy);
            let dx = dx.unwrap();
            let check = |name: &str, analytic: f64, plus: f64, minus: f64| {
                let numeric = (plus - minus) / (2.0 * eps as f64);
                assert!(
                    (analytic - numeric).abs() <= 1e-2 * (1.0 + numeric.abs()),
                    "{s:?} d{name}: analytic {analytic} vs numeric {numeric}"
                );
            };
            let v = values(x.len(), 5);
            check(
                "x",
                dot(&dx, &v),
                loss(&s, &shift(&x, &v, eps), &w, &b, &dy),
                loss(&s, &shift(&x, &v, -eps), &w, &b, &dy),
            );
            let v = values(w.len(), 6);
            check(
                "w",
                dot(&dw, &v),
                loss(&s, &x, &shift(&w, &v, eps), &b, &dy),
                loss(&s, &x, &shift(&w, &v, -eps), &b, &dy),
            );
            let v = values(b.len(), 7);
            check(
                "b",
                dot(&db, &v),
                loss(&s, &x, &w, &shift(&b, &v, eps), &dy),
                loss(&s, &x, &w, &shift(&b, &v, -eps), &dy),
            );
            // Without the input gradient, the weight gradient is the same.
            let (none, dw2) = backward(&s, &x, &w, &dy, false);
            assert!(none.is_none());
            assert_eq!(dw, dw2, "{s:?}");
        }
    }
}
