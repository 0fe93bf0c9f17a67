//! Our own CPU kernels for the layers where Burn's flex backend loses most time to PyTorch:
//! convolution (NCHW im2col + gemm per image, bias folded into the gemm), depthwise convolution
//! (direct, per channel plane, any zero padding), max-pooling (argmax
//! kept for a scatter backward), dropout (a hashed mask, regenerated for the backward), GELU
//! (vectorised erf and exp), softmax (one pass per row instead of five tensors) and AdamW's
//! update (one pass, in place).
//!
//! They are registered through Burn's backend extension (`#[backend_extension]`) for flex, with
//! hand-written backward steps for flex under autodiff. Models call the functions below instead
//! of the layers' `forward`; on any other backend, and for configurations the kernels do not
//! cover (groups other than 1 or one per channel, dilation, asymmetric padding outside depthwise
//! convolutions, ceil mode, other dtypes, softmax over another dimension), those run Burn's own
//! implementation.
//!
//! `PRETUNE_BURN_KERNELS=1` in the environment turns them off, for comparisons.

pub mod adamw;
mod conv;
mod depthwise;
mod dropout;
mod gelu;
mod pool;
mod softmax;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::tensor::FloatTensor;
use burn::backend::{
    Backend, BackendTensor, Dispatch, DispatchTensor, DispatchTensorKind, TensorMetadata,
    backend_extension,
};
use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::nn::{Dropout, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::{DType, Distribution};

use conv::{ConvBackward, conv_shape};
use depthwise::{DepthwiseBackward, depthwise_shape};
use dropout::DropoutBackward;
use pool::{PoolBackward, pool_shape};

#[backend_extension(Flex, Autodiff)]
pub trait CpuKernels: Backend {
    /// `conv2d(x, weight) + bias` for NCHW `x`, one group, no dilation, symmetric padding.
    fn conv2d_nchw(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> FloatTensor<Self>;

    /// Depthwise `conv2d(x, weight) + bias` for NCHW `x` (one group per channel, `weight`
    /// `[channels, 1, kh, kw]`), no dilation, zero padding `[top, left, bottom, right]`.
    fn depthwise_conv2d_nchw(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stride: [usize; 2],
        padding: [usize; 4],
    ) -> FloatTensor<Self>;

    /// Max-pooling of NCHW `x`, no dilation, symmetric padding, output size rounded down.
    fn max_pool2d_nchw(
        x: FloatTensor<Self>,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> FloatTensor<Self>;

    /// Zero each element with probability `prob` (which ones: a function of `seed`), scale the
    /// rest by `1 / (1 - prob)`.
    fn dropout_hashed(x: FloatTensor<Self>, prob: f64, seed: u64, first: u64) -> FloatTensor<Self>;

    /// `x · Φ(x)`, Φ the standard normal's distribution function (GELU's exact form).
    fn gelu_erf(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// Softmax over the last dimension.
    fn softmax_last(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// `conv.forward(x)`, through our kernels where they apply: one group (symmetric padding), or
/// one group per channel (depthwise, any padding, `Same` included).
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let [_, channels, height, width] = x.dims();
    let [top, left, bottom, right] = padding_of(conv, [height, width]);
    let weight = conv.weight.val();
    let [out_channels, group_channels, kh, kw] = weight.dims();
    if conv.dilation != [1, 1]
        || weight.dtype() != DType::F32
        || !applies(&x)
        || height + top + bottom < kh
        || width + left + right < kw
    {
        return conv.forward(x);
    }
    let depthwise = conv.groups == channels && group_channels == 1 && out_channels == channels;
    let plain = conv.groups == 1 && top == bottom && left == right;
    if !(depthwise || plain) {
        return conv.forward(x);
    }
    let bias = match &conv.bias {
        Some(b) => b.val(),
        None => Tensor::zeros([out_channels], &x.device()),
    };
    let (x, weight, bias) = (
        x.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
    );
    Tensor::from_dispatch(if depthwise {
        <Dispatch as CpuKernels>::depthwise_conv2d_nchw(
            x,
            weight,
            bias,
            conv.stride,
            [top, left, bottom, right],
        )
    } else {
        <Dispatch as CpuKernels>::conv2d_nchw(x, weight, bias, conv.stride, [top, left])
    })
}

/// `conv`'s zero padding `[top, left, bottom, right]` for an input of `size`. `Same` is
/// TensorFlow's (and Burn's): the output is `ceil(size / stride)`, the odd pixel of padding
/// goes after.
fn padding_of(conv: &Conv2d, size: [usize; 2]) -> [usize; 4] {
    match conv.padding {
        PaddingConfig2d::Valid => [0; 4],
        PaddingConfig2d::Explicit(top, left, bottom, right) => [top, left, bottom, right],
        PaddingConfig2d::Same => {
            let pad = |i: usize| {
                let (k, s) = (conv.kernel_size[i], conv.stride[i]);
                let total = ((size[i].div_ceil(s).max(1) - 1) * s + k).saturating_sub(size[i]);
                (total / 2, total - total / 2)
            };
            let ((top, bottom), (left, right)) = (pad(0), pad(1));
            [top, left, bottom, right]
        }
    }
}

/// `pool.forward(x)`, through our kernel where it applies.
pub fn max_pool2d(pool: &MaxPool2d, x: Tensor<4>) -> Tensor<4> {
    match symmetric(&pool.padding) {
        Some(padding) if pool.dilation == [1, 1] && !pool.ceil_mode && applies(&x) => {
            Tensor::from_dispatch(<Dispatch as CpuKernels>::max_pool2d_nchw(
                x.into_dispatch(),
                pool.kernel_size,
                pool.stride,
                padding,
            ))
        }
        _ => pool.forward(x),
    }
}

/// `dropout.forward(x)`, through our kernel where it applies. As Burn's, it only acts during
/// training (on an autodiff device, in a layer not switched to evaluation) and with `prob > 0`.
/// The mask's seed is drawn from the device's generator, so a seeded step drops the same
/// elements every time.
pub fn dropout<const D: usize>(dropout: &Dropout, x: Tensor<D>) -> Tensor<D> {
    let device = x.device();
    if !dropout.training.is_enabled() || !device.is_autodiff() || dropout.prob == 0.0 {
        return x;
    }
    if !applies(&x) {
        return dropout.forward(x);
    }
    // Elements are counted from the batch's first example, wherever this process's rows start.
    let rows = x.dims()[0].max(1);
    let first = (BATCH_OFFSET.load(Ordering::Relaxed) * (x.shape().num_elements() / rows)) as u64;
    Tensor::from_dispatch(<Dispatch as CpuKernels>::dropout_hashed(
        x.into_dispatch(),
        dropout.prob,
        mask_seed(&device),
        first,
    ))
}

/// A seed for one dropout mask: the bit patterns of two uniform draws from the device's
/// generator (about 46 random bits; `dropout::apply` mixes it before use), so a seeded step
/// drops the same elements every time.
fn mask_seed(device: &Device) -> u64 {
    let draws: Vec<f32> = Tensor::<1>::random(
        [2],
        Distribution::Default,
        &device.clone().without_autodiff(),
    )
    .into_data()
    .iter::<f32>()
    .collect();
    ((draws[0].to_bits() as u64) << 32 | draws[1].to_bits() as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// A dropout mask of `shape` to multiply by: each element 0 with probability `prob`, else
/// `1 / (1 - prob)`. For the structured dropouts of recurrent networks (AWD-LSTM's): a mask
/// `[B, 1, D]` drops the same units at every step of a sequence, a mask on a weight drops
/// connections. `per_example`: the first axis is the batch's examples, keyed like [`dropout`]'s
/// by their place in the whole batch; otherwise the mask is the same in every process.
pub fn dropout_mask<const D: usize>(
    prob: f64,
    shape: [usize; D],
    per_example: bool,
    device: &Device,
) -> Tensor<D> {
    let ones = Tensor::<D>::ones(shape, device);
    if prob == 0.0 {
        return ones;
    }
    if !applies(&ones) {
        let keep = Tensor::<D>::random(shape, Distribution::Bernoulli(1.0 - prob), device);
        return keep.div_scalar(1.0 - prob);
    }
    let first = if per_example {
        let rows = shape[0].max(1);
        (BATCH_OFFSET.load(Ordering::Relaxed) * (ones.shape().num_elements() / rows)) as u64
    } else {
        0
    };
    Tensor::from_dispatch(<Dispatch as CpuKernels>::dropout_hashed(
        ones.into_dispatch(),
        prob,
        mask_seed(device),
        first,
    ))
}

/// Index, in the whole batch, of the first example of the batch this process computes (its
/// part of a batch split across processes): dropout masks are keyed by the whole batch's
/// element indices, so N processes drop out what one would.
static BATCH_OFFSET: AtomicUsize = AtomicUsize::new(0);

/// Say where the rows the next forward passes compute start in the whole batch.
pub fn set_batch_offset(rows: usize) {
    BATCH_OFFSET.store(rows, Ordering::Relaxed);
}

/// `burn::tensor::activation::gelu(x)`, through our kernel where it applies.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if applies(&x) {
        Tensor::from_dispatch(<Dispatch as CpuKernels>::gelu_erf(x.into_dispatch()))
    } else {
        burn::tensor::activation::gelu(x)
    }
}

/// `burn::tensor::activation::softmax(x, dim)`, through our kernel where it applies (the last
/// dimension).
pub fn softmax<const D: usize>(x: Tensor<D>, dim: usize) -> Tensor<D> {
    if dim + 1 == D && applies(&x) {
        Tensor::from_dispatch(<Dispatch as CpuKernels>::softmax_last(x.into_dispatch()))
    } else {
        burn::tensor::activation::softmax(x, dim)
    }
}

/// Whether [`adamw_step`] runs on these tensors: f32 on flex without autodiff, kernels on.
pub fn adamw_applies<const D: usize>(tensors: &[&Tensor<D>]) -> bool {
    tensors
        .iter()
        .all(|t| applies(t) && !t.device().is_autodiff())
}

/// AdamW's step for one parameter through [`adamw::update`], in place where the tensors are
/// not shared: `param`, `grad` and the moments `m`, `v` (zeros on a first step: `None`), all
/// tensors [`adamw_applies`] to. Returns the new parameter and moments.
pub fn adamw_step<const D: usize>(
    param: Tensor<D>,
    grad: Tensor<D>,
    moments: Option<(Tensor<D>, Tensor<D>)>,
    step: adamw::Step,
) -> (Tensor<D>, Tensor<D>, Tensor<D>) {
    let shape = param.shape();
    let (m, v) = match moments {
        Some((m, v)) => (m, v),
        None => (
            Tensor::zeros(shape.clone(), &param.device()),
            Tensor::zeros(shape, &param.device()),
        ),
    };
    let (mut p, g, mut m, mut v) = (
        writable(flex(param)),
        contiguous(flex(grad)),
        writable(flex(m)),
        writable(flex(v)),
    );
    adamw::update(
        p.storage_mut::<f32>(),
        values(&g),
        m.storage_mut::<f32>(),
        v.storage_mut::<f32>(),
        step,
    );
    (unflex(p), unflex(m), unflex(v))
}

/// The flex tensor under a plain (not autodiff) float tensor on flex.
fn flex<const D: usize>(t: Tensor<D>) -> FlexTensor {
    match t.into_dispatch().kind {
        DispatchTensorKind::Flex(BackendTensor::Float(t)) => t,
        kind => panic!("a float tensor on flex without autodiff, not {kind:?}"),
    }
}

fn unflex<const D: usize>(t: FlexTensor) -> Tensor<D> {
    Tensor::from_dispatch(DispatchTensor {
        kind: DispatchTensorKind::Flex(BackendTensor::Float(t)),
        autodiff: Default::default(),
    })
}

/// The tensor with its values contiguous over its whole buffer (copied when they are not), so
/// that `storage_mut` writes exactly its elements (in place unless shared, then on a copy).
fn writable(t: FlexTensor) -> FlexTensor {
    t.to_contiguous()
}

/// Our kernels run on flex (with or without autodiff), for f32, unless switched off.
fn applies<const D: usize>(x: &Tensor<D>) -> bool {
    static OFF: LazyLock<bool> =
        LazyLock::new(|| std::env::var_os("PRETUNE_BURN_KERNELS").is_some_and(|v| v != "0"));
    !*OFF && x.dtype() == DType::F32 && x.device().without_autodiff() == Device::flex()
}

/// The padding as (rows, columns) when each is the same on both sides (`Same` padding is left
/// to Burn).
fn symmetric(padding: &PaddingConfig2d) -> Option<[usize; 2]> {
    match *padding {
        PaddingConfig2d::Valid => Some([0, 0]),
        PaddingConfig2d::Explicit(top, left, bottom, right) => {
            (top == bottom && left == right).then_some([top, left])
        }
        PaddingConfig2d::Same => None,
    }
}

fn dims4(t: &FlexTensor) -> [usize; 4] {
    t.shape().dims::<4>()
}

/// The tensor with its f32 values contiguous in memory (copied only when they are not).
fn contiguous(t: FlexTensor) -> FlexTensor {
    if t.as_slice::<f32>().is_some() {
        t
    } else {
        t.to_contiguous()
    }
}

fn values(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>()
        .expect("kernel inputs are made contiguous f32 first")
}

fn tensor(values: Vec<f32>, shape: impl Into<Shape>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

impl CpuKernels for Flex {
    fn conv2d_nchw(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> FlexTensor {
        let s = conv_shape(&x, &weight, stride, padding);
        let (x, weight, bias) = (contiguous(x), contiguous(weight), contiguous(bias));
        let out = conv::forward(&s, values(&x), values(&weight), values(&bias));
        let [oh, ow] = s.out();
        tensor(out, [s.batch, s.out_channels, oh, ow])
    }

    fn depthwise_conv2d_nchw(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        stride: [usize; 2],
        padding: [usize; 4],
    ) -> FlexTensor {
        let s = depthwise_shape(&x, &weight, stride, padding);
        let (x, weight, bias) = (contiguous(x), contiguous(weight), contiguous(bias));
        let out = depthwise::forward(&s, values(&x), values(&weight), values(&bias));
        let [oh, ow] = s.out();
        tensor(out, [s.batch, s.channels, oh, ow])
    }

    fn max_pool2d_nchw(
        x: FlexTensor,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> FlexTensor {
        let s = pool_shape(&x, kernel, stride, padding);
        let x = contiguous(x);
        let (out, _) = pool::forward(&s, values(&x), false);
        let [oh, ow] = s.out();
        tensor(out, [s.batch, s.channels, oh, ow])
    }

    fn dropout_hashed(x: FlexTensor, prob: f64, seed: u64, first: u64) -> FlexTensor {
        let x = contiguous(x);
        tensor(dropout::apply(values(&x), prob, seed, first), x.shape())
    }

    fn gelu_erf(x: FlexTensor) -> FlexTensor {
        let x = contiguous(x);
        tensor(gelu::forward(values(&x)), x.shape())
    }

    fn softmax_last(x: FlexTensor) -> FlexTensor {
        let x = contiguous(x);
        let shape = x.shape();
        tensor(
            softmax::forward(values(&x), shape[shape.num_dims() - 1]),
            shape,
        )
    }
}

/// Backward step of a one-input kernel whose input gradient is a function of one tensor kept
/// from the forward pass (GELU's input, softmax's output) and of the output's gradient.
#[derive(Debug)]
struct KeptBackward;

/// The input's gradient from the kept tensor and the output's gradient (both contiguous).
type GradFn = fn(&FlexTensor, &FlexTensor) -> FlexTensor;

impl Backward<Flex, 1> for KeptBackward {
    type State = (FlexTensor, GradFn);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let dy = contiguous(grads.consume::<Flex>(&ops.node));
        let (kept, grad) = ops.state;
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, grad(&kept, &dy));
        }
    }
}

/// `forward(x)` under autodiff, keeping its input (or, with `keep_output`, its output) for
/// `grad`.
fn with_kept<C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<Flex, C>>,
    forward: fn(FlexTensor) -> FlexTensor,
    keep_output: bool,
    grad: GradFn,
) -> FloatTensor<Autodiff<Flex, C>> {
    match KeptBackward
        .prepare::<C>([x.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let x = contiguous(x.into_primitive());
            let y = forward(x.clone());
            let kept = if keep_output { y.clone() } else { x };
            prep.finish((kept, grad), y)
        }
        OpsKind::UnTracked(prep) => prep.finish(forward(x.into_primitive())),
    }
}

impl<C: CheckpointStrategy> CpuKernels for Autodiff<Flex, C> {
    fn softmax_last(x: FloatTensor<Self>) -> FloatTensor<Self> {
        with_kept::<C>(x, Flex::softmax_last, true, softmax::grad)
    }

    fn gelu_erf(x: FloatTensor<Self>) -> FloatTensor<Self> {
        with_kept::<C>(x, Flex::gelu_erf, false, gelu::grad)
    }

    fn dropout_hashed(x: FloatTensor<Self>, prob: f64, seed: u64, first: u64) -> FloatTensor<Self> {
        match DropoutBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(
                (prob, seed, first),
                Flex::dropout_hashed(x.into_primitive(), prob, seed, first),
            ),
            OpsKind::UnTracked(prep) => {
                prep.finish(Flex::dropout_hashed(x.into_primitive(), prob, seed, first))
            }
        }
    }

    fn conv2d_nchw(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> FloatTensor<Self> {
        match ConvBackward
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let x = contiguous(x.primitive().clone());
                let weight = contiguous(weight.primitive().clone());
                let s = conv_shape(&x, &weight, stride, padding);
                let out = Flex::conv2d_nchw(
                    x.clone(),
                    weight.clone(),
                    bias.into_primitive(),
                    stride,
                    padding,
                );
                prep.finish((x, weight, s), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::conv2d_nchw(
                x.into_primitive(),
                weight.into_primitive(),
                bias.into_primitive(),
                stride,
                padding,
            )),
        }
    }

    fn depthwise_conv2d_nchw(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stride: [usize; 2],
        padding: [usize; 4],
    ) -> FloatTensor<Self> {
        match DepthwiseBackward
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let x = contiguous(x.primitive().clone());
                let weight = contiguous(weight.primitive().clone());
                let s = depthwise_shape(&x, &weight, stride, padding);
                let b = bias.into_primitive();
                let out =
                    Flex::depthwise_conv2d_nchw(x.clone(), weight.clone(), b, stride, padding);
                prep.finish((x, weight, s), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::depthwise_conv2d_nchw(
                x.into_primitive(),
                weight.into_primitive(),
                bias.into_primitive(),
                stride,
                padding,
            )),
        }
    }

    fn max_pool2d_nchw(
        x: FloatTensor<Self>,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> FloatTensor<Self> {
        match PoolBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let input = contiguous(x.primitive().clone());
                let s = pool_shape(&input, kernel, stride, padding);
                let (out, argmax) = pool::forward(&s, values(&input), true);
                let [oh, ow] = s.out();
                prep.finish(
                    (Arc::new(argmax), s),
                    tensor(out, [s.batch, s.channels, oh, ow]),
                )
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::max_pool2d_nchw(
                x.into_primitive(),
                kernel,
                stride,
                padding,
            )),
        }
    }
}

#[cfg(test)]
mod tests;
