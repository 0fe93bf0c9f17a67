//! Per-layer times of the seed CNN's train step (batch 64), for finding where flex loses to PyTorch.
use burn::module::Param;
use burn::nn::conv::Conv2dConfig;
use burn::nn::pool::MaxPool2dConfig;
use burn::nn::{LinearConfig, PaddingConfig2d, Relu};
use burn::prelude::*;
use burn::tensor::Distribution;
use std::time::Instant;

fn time<F: FnMut()>(name: &str, mut f: F) {
    for _ in 0..5 {
        f();
    }
    let n = 50;
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    println!(
        "{name:32} {:8.3} ms",
        t.elapsed().as_secs_f64() * 1e3 / n as f64
    );
}

fn main() {
    rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build_global()
        .unwrap();
    let ad = pretune::training_device();
    let plain = ad.clone().without_autodiff();
    let b = 64;
    let conv = |ci, co, d: &Device| {
        Conv2dConfig::new([ci, co], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(d)
    };
    let pool = MaxPool2dConfig::new([2, 2]).init();
    let x1 = Tensor::<4>::random([b, 1, 28, 28], Distribution::Normal(0.0, 1.0), &plain);
    let x2 = Tensor::<4>::random([b, 32, 14, 14], Distribution::Normal(0.0, 1.0), &plain);
    let x3 = Tensor::<4>::random([b, 32, 28, 28], Distribution::Normal(0.0, 1.0), &plain);
    let x4 = Tensor::<2>::random([b, 3136], Distribution::Normal(0.0, 1.0), &plain);
    let c1p = conv(1, 32, &plain);
    let c2p = conv(32, 64, &plain);
    time("conv1 fwd", || {
        pretune::kernels::conv2d(&c1p, x1.clone()).into_data();
    });
    time("conv2 fwd", || {
        pretune::kernels::conv2d(&c2p, x2.clone()).into_data();
    });
    time("pool fwd (32x28x28)", || {
        pretune::kernels::max_pool2d(&pool, x3.clone()).into_data();
    });
    time("relu fwd (32x28x28)", || {
        Relu::new().forward(x3.clone()).into_data();
    });
    let c1 = conv(1, 32, &ad);
    let c2 = conv(32, 64, &ad);
    let fc = LinearConfig::new(3136, 128).init(&ad);
    let a1 = Tensor::<4>::from_data(x1.to_data(), &ad);
    time("conv1 fwd+bwd (w only)", || {
        let g = pretune::kernels::conv2d(&c1, a1.clone()).sum().backward();
        c1.weight.grad(&g).unwrap().into_data();
    });
    time("conv2 fwd+bwd (w + input)", || {
        let x = Tensor::<4>::from_data(x2.to_data(), &ad).require_grad();
        let g = pretune::kernels::conv2d(&c2, x.clone()).sum().backward();
        c2.weight.grad(&g).unwrap().into_data();
        x.grad(&g).unwrap().into_data();
    });
    time("pool fwd+bwd (32x28x28)", || {
        let x = Tensor::<4>::from_data(x3.to_data(), &ad).require_grad();
        let g = pretune::kernels::max_pool2d(&pool, x.clone())
            .sum()
            .backward();
        x.grad(&g).unwrap().into_data();
    });
    time("relu fwd+bwd (32x28x28)", || {
        let x = Tensor::<4>::from_data(x3.to_data(), &ad).require_grad();
        let g = Relu::new().forward(x.clone()).sum().backward();
        x.grad(&g).unwrap().into_data();
    });
    time("from_data+grad only (32x28x28)", || {
        let x = Tensor::<4>::from_data(x3.to_data(), &ad).require_grad();
        let g = x.clone().sum().backward();
        x.grad(&g).unwrap().into_data();
    });
    time("fc1 fwd+bwd (w + input)", || {
        let x = Tensor::<2>::from_data(x4.to_data(), &ad).require_grad();
        let g = fc.forward(x.clone()).sum().backward();
        fc.weight.grad(&g).unwrap().into_data();
        x.grad(&g).unwrap().into_data();
    });
    let _ = Param::from_tensor(Tensor::<1>::zeros([1], &ad));
}
