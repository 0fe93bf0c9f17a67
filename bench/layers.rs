//! Per-layer times of the seed CNN's train step (batch 64, 2 threads): where the time of a step
//! goes, layer by layer, beside bench/torch_layers.py (same layers, same shapes). A tool for
//! finding what to optimise next; `PRETUNE_BURN_KERNELS=1` shows Burn's own layers instead of
//! src/kernels.
//!
//!   cargo bench --bench layers; /opt/torch-venv/bin/python bench/torch_layers.py

#[path = "../src/alloc.rs"]
mod alloc;

use std::time::Instant;

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::MaxPool2dConfig;
use burn::nn::{LinearConfig, PaddingConfig2d, Relu};
use burn::prelude::*;
use burn::tensor::Distribution;
use pretune::kernels;

/// Mean milliseconds of 50 runs after 5 untimed ones.
fn time(name: &str, mut f: impl FnMut()) {
    for _ in 0..5 {
        f();
    }
    let started = Instant::now();
    for _ in 0..50 {
        f();
    }
    println!(
        "{name:34} {:8.3} ms",
        started.elapsed().as_secs_f64() * 1e3 / 50.0
    );
}

fn main() {
    alloc::keep_freed_memory(); // as the CLI does
    rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build_global()
        .unwrap();
    let train = pretune::DeviceSpec::Cpu.device().unwrap();
    let infer = train.clone().without_autodiff();
    let conv = |c: [usize; 2], d: &Device| -> Conv2d {
        Conv2dConfig::new(c, [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(d)
    };
    let pool = MaxPool2dConfig::new([2, 2]).init();
    let normal =
        |dims: [usize; 4], d: &Device| Tensor::<4>::random(dims, Distribution::Normal(0.0, 1.0), d);
    let (x1, x2, x3) = (
        normal([64, 1, 28, 28], &infer),
        normal([64, 32, 14, 14], &infer),
        normal([64, 32, 28, 28], &infer),
    );

    // Forward only, as in inference.
    let (c1, c2) = (conv([1, 32], &infer), conv([32, 64], &infer));
    time("conv1 forward", || drop(kernels::conv2d(&c1, x1.clone())));
    time("conv2 forward", || drop(kernels::conv2d(&c2, x2.clone())));
    time("max-pool forward (64x32x28x28)", || {
        drop(kernels::max_pool2d(&pool, x3.clone()))
    });
    time("relu forward (64x32x28x28)", || {
        drop(Relu::new().forward(x3.clone()))
    });

    // Forward + backward, the input's gradient included where the model needs it.
    let (c1, c2) = (conv([1, 32], &train), conv([32, 64], &train));
    let fc = LinearConfig::new(3136, 128).init(&train);
    let tracked = |x: &Tensor<4>| Tensor::<4>::from_data(x.to_data(), &train).require_grad();
    let x1 = Tensor::<4>::from_data(x1.to_data(), &train);
    time("conv1 forward+backward (weights)", || {
        let g = kernels::conv2d(&c1, x1.clone()).sum().backward();
        drop(c1.weight.grad(&g));
    });
    time("conv2 forward+backward", || {
        let x = tracked(&x2);
        let g = kernels::conv2d(&c2, x.clone()).sum().backward();
        drop((c2.weight.grad(&g), x.grad(&g)));
    });
    time("max-pool forward+backward", || {
        let x = tracked(&x3);
        let g = kernels::max_pool2d(&pool, x.clone()).sum().backward();
        drop(x.grad(&g));
    });
    time("relu forward+backward", || {
        let x = tracked(&x3);
        let g = Relu::new().forward(x.clone()).sum().backward();
        drop(x.grad(&g));
    });
    time("(tracked input + sum + backward)", || {
        let x = tracked(&x3);
        let g = x.clone().sum().backward();
        drop(x.grad(&g));
    });
    let x4 = Tensor::<2>::random([64, 3136], Distribution::Normal(0.0, 1.0), &infer);
    time("fc1 forward+backward", || {
        let x = Tensor::<2>::from_data(x4.to_data(), &train).require_grad();
        let g = fc.forward(x.clone()).sum().backward();
        drop((fc.weight.grad(&g), x.grad(&g)));
    });
}
