//! The kernels against Burn's own layers (values and every gradient), and the host kernels
//! against naive definitions and finite differences live beside each kernel.
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

/// Depthwise convolutions (groups = channels) against Burn's grouped convolution: TF-"SAME"
/// padding at stride 2 on an even size (0/1 and 1/2 pads), on an odd size, asymmetric explicit
/// padding, with and without bias; output, input, weight and bias gradients.
#[test]
fn depthwise_matches_burns_grouped_conv_forward_and_backward() {
    let device = Device::flex().autodiff();
    device.seed(11);
    let configs = [
        (6, [3, 3], [2, 2], PaddingConfig2d::Same, false, 12),
        (5, [5, 5], [2, 2], PaddingConfig2d::Same, true, 12),
        (4, [5, 5], [2, 2], PaddingConfig2d::Same, false, 13),
        (3, [3, 3], [1, 1], PaddingConfig2d::Same, true, 9),
        (
            4,
            [7, 7],
            [1, 1],
            PaddingConfig2d::Explicit(3, 3, 3, 3),
            true,
            8,
        ),
        (
            3,
            [3, 5],
            [1, 2],
            PaddingConfig2d::Explicit(0, 2, 2, 1),
            true,
            10,
        ),
    ];
    for (channels, kernel, stride, padding, bias, size) in configs {
        let conv = Conv2dConfig::new([channels, channels], kernel)
            .with_groups(channels)
            .with_stride(stride)
            .with_padding(padding.clone())
            .with_bias(bias)
            .init(&device);
        let x = Tensor::<4>::random(
            [3, channels, size, size + 1],
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
        let case = format!("{channels} channels {kernel:?} stride {stride:?} {padding:?}");
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
    let depthwise = Conv2dConfig::new([3, 3], [3, 3])
        .with_groups(3)
        .with_stride([2, 2])
        .with_padding(PaddingConfig2d::Same)
        .init(&device);
    close(
        "depthwise",
        conv2d(&depthwise, x.clone()),
        depthwise.forward(x.clone()),
    );
    close("max-pool", max_pool2d(&pool, x.clone()), pool.forward(x));
}
