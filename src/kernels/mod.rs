//! Our own CPU kernels for the layers where Burn's flex backend loses most time to PyTorch:
//! convolution (NCHW im2col + gemm per image, bias folded into the gemm), max-pooling (argmax
//! kept for a scatter backward), dropout (a hashed mask, regenerated for the backward), GELU
//! (vectorised erf and exp) and softmax (one pass per row instead of five tensors).
//!
//! They are registered through Burn's backend extension (`#[backend_extension]`) for flex, with
//! hand-written backward steps for flex under autodiff. Models call the functions below instead
//! of the layers' `forward`; on any other backend, and for configurations the kernels do not
//! cover (groups, dilation, asymmetric or `Same` padding, ceil mode, other dtypes, softmax over
//! another dimension), those run Burn's own implementation.
//!
//! `PRETUNE_BURN_KERNELS=1` in the environment turns them off, for comparisons.

mod conv;
mod dropout;
mod gelu;
mod pool;
mod softmax;

use std::sync::{Arc, LazyLock};

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, TensorMetadata, backend_extension};
use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::nn::{Dropout, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::{DType, Distribution};

use conv::ConvShape;
use pool::PoolShape;

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

    /// Max-pooling of NCHW `x`, no dilation, symmetric padding, output size rounded down.
    fn max_pool2d_nchw(
        x: FloatTensor<Self>,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> FloatTensor<Self>;

    /// Zero each element with probability `prob` (which ones: a function of `seed`), scale the
    /// rest by `1 / (1 - prob)`.
    fn dropout_hashed(x: FloatTensor<Self>, prob: f64, seed: u64) -> FloatTensor<Self>;

    /// `x · Φ(x)`, Φ the standard normal's distribution function (GELU's exact form).
    fn gelu_erf(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// Softmax over the last dimension.
    fn softmax_last(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// `conv.forward(x)`, through our kernel where it applies.
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let padding = symmetric(&conv.padding);
    let weight = conv.weight.val();
    match padding {
        Some(padding)
            if conv.groups == 1
                && conv.dilation == [1, 1]
                && weight.dtype() == DType::F32
                && applies(&x) =>
        {
            let bias = match &conv.bias {
                Some(b) => b.val(),
                None => Tensor::zeros([weight.dims()[0]], &x.device()),
            };
            Tensor::from_dispatch(<Dispatch as CpuKernels>::conv2d_nchw(
                x.into_dispatch(),
                weight.into_dispatch(),
                bias.into_dispatch(),
                conv.stride,
                padding,
            ))
        }
        _ => conv.forward(x),
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
    // The seed: the bit patterns of two uniform draws from the device's generator (about 46
    // random bits; `dropout::apply` mixes it before use).
    let draws: Vec<f32> =
        Tensor::<1>::random([2], Distribution::Default, &device.without_autodiff())
            .into_data()
            .iter::<f32>()
            .collect();
    let seed = ((draws[0].to_bits() as u64) << 32 | draws[1].to_bits() as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    Tensor::from_dispatch(<Dispatch as CpuKernels>::dropout_hashed(
        x.into_dispatch(),
        dropout.prob,
        seed,
    ))
}

/// `burn::tensor::activation::gelu(x)`, through our kernel where it applies.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    match applies(&x) {
        true => Tensor::from_dispatch(<Dispatch as CpuKernels>::gelu_erf(x.into_dispatch())),
        false => burn::tensor::activation::gelu(x),
    }
}

/// `burn::tensor::activation::softmax(x, dim)`, through our kernel where it applies (the last
/// dimension).
pub fn softmax<const D: usize>(x: Tensor<D>, dim: usize) -> Tensor<D> {
    match dim + 1 == D && applies(&x) {
        true => Tensor::from_dispatch(<Dispatch as CpuKernels>::softmax_last(x.into_dispatch())),
        false => burn::tensor::activation::softmax(x, dim),
    }
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

fn conv_shape(
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

fn pool_shape(
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

    fn dropout_hashed(x: FlexTensor, prob: f64, seed: u64) -> FlexTensor {
        let x = contiguous(x);
        tensor(dropout::apply(values(&x), prob, seed), x.shape())
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

/// Backward step of [`CpuKernels::conv2d_nchw`]: the forward's input and weight are its state.
#[derive(Debug)]
struct ConvBackward;

impl Backward<Flex, 3> for ConvBackward {
    type State = (FlexTensor, FlexTensor, ConvShape);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_weight, node_bias] = ops.parents;
        let dy = contiguous(grads.consume::<Flex>(&ops.node));
        let (x, weight, s) = ops.state;
        let (dx, dw) = conv::backward(
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
            let db = conv::bias_gradient(&s, values(&dy));
            grads.register::<Flex>(node.id, tensor(db, [s.out_channels]));
        }
    }
}

/// Backward step of [`CpuKernels::max_pool2d_nchw`]: where each window's maximum was.
#[derive(Debug)]
struct PoolBackward;

impl Backward<Flex, 1> for PoolBackward {
    type State = (Arc<Vec<u32>>, PoolShape);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let dy = contiguous(grads.consume::<Flex>(&ops.node));
        let (argmax, s) = ops.state;
        if let Some(node) = node_x {
            let dx = pool::backward(&s, &argmax, values(&dy));
            grads.register::<Flex>(
                node.id,
                tensor(dx, [s.batch, s.channels, s.height, s.width]),
            );
        }
    }
}

/// Backward step of [`CpuKernels::dropout_hashed`]: the same mask applied to the gradient,
/// regenerated from the seed.
#[derive(Debug)]
struct DropoutBackward;

impl Backward<Flex, 1> for DropoutBackward {
    type State = (f64, u64);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let (prob, seed) = ops.state;
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, Flex::dropout_hashed(dy, prob, seed));
        }
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

fn gelu_grad(x: &FlexTensor, dy: &FlexTensor) -> FlexTensor {
    tensor(gelu::backward(values(x), values(dy)), x.shape())
}

fn softmax_grad(y: &FlexTensor, dy: &FlexTensor) -> FlexTensor {
    let shape = y.shape();
    tensor(
        softmax::backward(values(y), values(dy), shape[shape.num_dims() - 1]),
        shape,
    )
}

impl<C: CheckpointStrategy> CpuKernels for Autodiff<Flex, C> {
    fn softmax_last(x: FloatTensor<Self>) -> FloatTensor<Self> {
        with_kept::<C>(x, Flex::softmax_last, true, softmax_grad)
    }

    fn gelu_erf(x: FloatTensor<Self>) -> FloatTensor<Self> {
        with_kept::<C>(x, Flex::gelu_erf, false, gelu_grad)
    }

    fn dropout_hashed(x: FloatTensor<Self>, prob: f64, seed: u64) -> FloatTensor<Self> {
        match DropoutBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(
                (prob, seed),
                Flex::dropout_hashed(x.into_primitive(), prob, seed),
            ),
            OpsKind::UnTracked(prep) => {
                prep.finish(Flex::dropout_hashed(x.into_primitive(), prob, seed))
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
mod tests {
    use burn::nn::conv::Conv2dConfig;
    use burn::nn::pool::MaxPool2dConfig;
    use burn::tensor::Distribution;

    use super::*;

    fn close(what: &str, a: Tensor<4>, b: Tensor<4>) {
        assert_eq!(a.dims(), b.dims(), "{what}");
        let a: Vec<f32> = a.into_data().iter::<f32>().collect();
        let b: Vec<f32> = b.into_data().iter::<f32>().collect();
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert!(
                (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
                "{what}[{i}]: ours {x}, Burn's {y}"
            );
        }
    }

    /// A fixed weighting of the output's elements, so `sum(y ⊙ weights)` is a loss whose gradient
    /// reaches every element differently.
    fn weights(dims: [usize; 4], device: &Device) -> Tensor<4> {
        let n = dims.iter().product::<usize>();
        Tensor::from_data(
            TensorData::new((0..n).map(|i| (i % 7) as f32 - 3.0).collect(), dims),
            device,
        )
    }

    /// Output and every gradient of our kernel equal Burn's unfused layer's, through the same
    /// autodiff graph (a random linear loss on the output).
    #[test]
    fn conv_matches_burns_layer_forward_and_backward() {
        let device = Device::flex().autodiff();
        device.seed(7);
        let configs = [
            (
                [3, 8],
                [3, 3],
                [1, 1],
                PaddingConfig2d::Explicit(1, 1, 1, 1),
                true,
            ),
            (
                [4, 6],
                [3, 3],
                [2, 2],
                PaddingConfig2d::Explicit(1, 1, 1, 1),
                false,
            ),
            ([5, 4], [1, 1], [1, 1], PaddingConfig2d::Valid, true),
            (
                [2, 3],
                [7, 5],
                [2, 1],
                PaddingConfig2d::Explicit(3, 2, 3, 2),
                true,
            ),
        ];
        for (channels, kernel, stride, padding, bias) in configs {
            let conv = Conv2dConfig::new(channels, kernel)
                .with_stride(stride)
                .with_padding(padding.clone())
                .with_bias(bias)
                .init(&device);
            let x = Tensor::<4>::random(
                [3, channels[0], 11, 9],
                Distribution::Normal(0.0, 1.0),
                &device,
            );
            let run = |ours: bool| {
                let x = x.clone().detach().require_grad();
                let y = if ours {
                    conv2d(&conv, x.clone())
                } else {
                    conv.forward(x.clone())
                };
                let grads = (y.clone() * weights(y.dims(), &device)).sum().backward();
                let grad_b = conv
                    .bias
                    .as_ref()
                    .map(|b| b.grad(&grads).unwrap().reshape([1, 1, 1, -1]));
                (
                    y.inner(),
                    x.grad(&grads).unwrap(),
                    conv.weight.grad(&grads).unwrap(),
                    grad_b,
                )
            };
            let (theirs, ours) = (run(false), run(true));
            let case = format!("{channels:?} {kernel:?} stride {stride:?} {padding:?}");
            close(&format!("{case} output"), ours.0, theirs.0);
            close(&format!("{case} input gradient"), ours.1, theirs.1);
            close(&format!("{case} weight gradient"), ours.2, theirs.2);
            if let (Some(a), Some(b)) = (ours.3, theirs.3) {
                close(&format!("{case} bias gradient"), a, b);
            }
        }
    }

    #[test]
    fn max_pool_matches_burns_layer_forward_and_backward() {
        let device = Device::flex().autodiff();
        device.seed(3);
        for (kernel, stride, padding) in [
            ([2, 2], [2, 2], 0),
            ([3, 3], [2, 2], 1),
            ([3, 2], [1, 2], 0),
        ] {
            let pool = MaxPool2dConfig::new(kernel)
                .with_strides(stride)
                .with_padding(PaddingConfig2d::Explicit(
                    padding, padding, padding, padding,
                ))
                .init();
            let x = Tensor::<4>::random([2, 3, 9, 8], Distribution::Normal(0.0, 1.0), &device);
            let run = |ours: bool| {
                let x = x.clone().detach().require_grad();
                let y = if ours {
                    max_pool2d(&pool, x.clone())
                } else {
                    pool.forward(x.clone())
                };
                let grads = (y.clone() * weights(y.dims(), &device)).sum().backward();
                (y.inner(), x.grad(&grads).unwrap())
            };
            let (theirs, ours) = (run(false), run(true));
            close(
                &format!("{kernel:?} stride {stride:?} output"),
                ours.0,
                theirs.0,
            );
            close(
                &format!("{kernel:?} stride {stride:?} input gradient"),
                ours.1,
                theirs.1,
            );
        }
    }

    /// The gradient goes through exactly the kept elements, scaled as they were; evaluation is
    /// the identity, as Burn's layer. (That a seeded step drops the same elements again is
    /// checked end to end by the resume tests: the device generator is shared by this binary's
    /// threads.)
    #[test]
    fn dropout_backward_uses_the_forward_mask() {
        let device = Device::flex().autodiff();
        let layer = burn::nn::DropoutConfig::new(0.25).init();
        let x = Tensor::<3>::random([4, 16, 32], Distribution::Uniform(1.0, 2.0), &device);
        let tracked = x.clone().detach().require_grad();
        let y = dropout(&layer, tracked.clone());
        let grads = y.clone().sum().backward();
        let y: Vec<f32> = y.into_data().iter::<f32>().collect();
        let g: Vec<f32> = tracked
            .grad(&grads)
            .unwrap()
            .into_data()
            .iter::<f32>()
            .collect();
        let xs: Vec<f32> = x.to_data().iter::<f32>().collect();
        let dropped = y.iter().filter(|&&v| v == 0.0).count() as f64 / y.len() as f64;
        assert!((dropped - 0.25).abs() < 0.03, "dropped {dropped}");
        for ((y, g), x) in y.iter().zip(&g).zip(&xs) {
            let expected = if *y == 0.0 { 0.0 } else { 1.0 / 0.75 };
            assert!(
                (g - expected).abs() < 1e-6 && (y - g * x).abs() < 1e-5,
                "y {y} g {g} x {x}"
            );
        }
        let plain = Tensor::<3>::from_data(x.to_data(), &Device::flex());
        assert_eq!(
            dropout(&layer, plain.clone()).into_data(),
            plain.into_data()
        );
    }

    /// Output and input gradient of `ours` equal `theirs` (Burn's function) on `x`.
    fn same_as_burns(
        name: &str,
        x: Tensor<4>,
        ours: fn(Tensor<4>) -> Tensor<4>,
        theirs: fn(Tensor<4>) -> Tensor<4>,
    ) {
        let run = |f: fn(Tensor<4>) -> Tensor<4>| {
            let x = x.clone().detach().require_grad();
            let y = f(x.clone());
            let grads = (y.clone() * weights(y.dims(), &x.device()))
                .sum()
                .backward();
            (y.inner(), x.grad(&grads).unwrap())
        };
        let (theirs, ours) = (run(theirs), run(ours));
        close(&format!("{name} output"), ours.0, theirs.0);
        close(&format!("{name} input gradient"), ours.1, theirs.1);
    }

    #[test]
    fn gelu_matches_burns_forward_and_backward() {
        let device = Device::flex().autodiff();
        let x = Tensor::<4>::random([2, 3, 40, 50], Distribution::Normal(0.0, 3.0), &device);
        same_as_burns("gelu", x, gelu, burn::tensor::activation::gelu);
    }

    #[test]
    fn softmax_matches_burns_forward_and_backward() {
        let device = Device::flex().autodiff();
        let x = Tensor::<4>::random([2, 3, 7, 50], Distribution::Normal(0.0, 4.0), &device);
        same_as_burns(
            "softmax",
            x,
            |x| softmax(x, 3),
            |x| burn::tensor::activation::softmax(x, 3),
        );
    }

    /// Inference (flex without autodiff) takes the kernels too, with the same results.
    #[test]
    fn inference_path_matches_burns_layers() {
        let device = Device::flex();
        device.seed(5);
        let conv = Conv2dConfig::new([3, 4], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(&device);
        let pool = MaxPool2dConfig::new([2, 2]).init();
        let x = Tensor::<4>::random([2, 3, 8, 8], Distribution::Normal(0.0, 1.0), &device);
        close("conv", conv2d(&conv, x.clone()), conv.forward(x.clone()));
        close("max-pool", max_pool2d(&pool, x.clone()), pool.forward(x));
    }
}
