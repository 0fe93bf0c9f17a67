//! Times of depthwise convolutions (groups = channels, bias-free) in the shapes of
//! EfficientNet-Lite0's 16 MBConv blocks at 224x224 and 96x96 input, batch 32, 2 threads
//! (`THREADS=N` for another count):
//! pretune's kernel (or Burn's grouped convolution with `PRETUNE_BURN_KERNELS=1`), beside
//! bench/torch_depthwise.py (same shapes, same table). The padding is TF-"SAME", as in the
//! model (PyTorch's side pads k//2 all round: the same output size and work).
//!
//!   cargo bench --bench depthwise; /opt/torch-venv/bin/python bench/torch_depthwise.py
//!   (bench/depthwise.sh runs both, alternating)

#[path = "../src/alloc.rs"]
mod alloc;

use std::collections::BTreeMap;
use std::time::Instant;

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2dConfig;
use burn::prelude::*;
use burn::tensor::Distribution;
use pretune::kernels;

/// (channels, kernel, stride, input size at 224) of Lite0's depthwise convolutions, blocks 0..15.
const LITE0_DEPTHWISE: [(usize, usize, usize, usize); 16] = [
    (32, 3, 1, 112),
    (96, 3, 2, 112),
    (144, 3, 1, 56),
    (144, 5, 2, 56),
    (240, 5, 1, 28),
    (240, 3, 2, 28),
    (480, 3, 1, 14),
    (480, 3, 1, 14),
    (480, 5, 1, 14),
    (672, 5, 1, 14),
    (672, 5, 1, 14),
    (672, 5, 2, 14),
    (1152, 5, 1, 7),
    (1152, 5, 1, 7),
    (1152, 5, 1, 7),
    (1152, 3, 1, 7),
];

/// Mean milliseconds over as many runs as fit in half a second (at least 3), after 2 untimed.
fn timed(mut f: impl FnMut()) -> f64 {
    f();
    f();
    let (started, mut runs) = (Instant::now(), 0);
    while runs < 3 || started.elapsed().as_secs_f64() < 0.5 {
        f();
        runs += 1;
    }
    started.elapsed().as_secs_f64() * 1e3 / runs as f64
}

fn main() {
    alloc::keep_freed_memory(); // as the CLI does
    let threads: usize = std::env::var("THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(2);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .unwrap();
    let train = pretune::DeviceSpec::Cpu.device().unwrap();
    let infer = train.clone().without_autodiff();
    let batch = 32;
    let which = match std::env::var_os("PRETUNE_BURN_KERNELS") {
        Some(v) if v != "0" => "Burn's grouped conv2d",
        _ => "pretune's depthwise kernel",
    };
    println!("{which}, {threads} threads, batch {batch}, float32, NCHW");
    for res in [224, 96] {
        println!(
            "{:>4} {:>5} {:>2} {:>2} {:>8} {:>8} {:>9} {:>11}  blocks",
            "res", "C", "k", "s", "in HxW", "out HxW", "fwd ms", "fwd+bwd ms"
        );
        let mut shapes: BTreeMap<(usize, usize, usize, usize), Vec<usize>> = BTreeMap::new();
        for (block, &(c, k, s, size)) in LITE0_DEPTHWISE.iter().enumerate() {
            shapes
                .entry((c, k, s, size * res / 224))
                .or_default()
                .push(block);
        }
        let mut shapes: Vec<_> = shapes.into_iter().collect();
        shapes.sort_by_key(|(_, blocks)| blocks[0]);
        let (mut total_f, mut total_b) = (0.0, 0.0);
        for ((c, k, s, size), blocks) in shapes {
            let conv = |d: &Device| {
                Conv2dConfig::new([c, c], [k, k])
                    .with_groups(c)
                    .with_stride([s, s])
                    .with_padding(PaddingConfig2d::Same)
                    .with_bias(false)
                    .init(d)
            };
            let x = Tensor::<4>::random(
                [batch, c, size, size],
                Distribution::Normal(0.0, 1.0),
                &infer,
            );
            let conv_infer = conv(&infer);
            let out = kernels::conv2d(&conv_infer, x.clone()).dims()[3];
            let tf = timed(|| drop(kernels::conv2d(&conv_infer, x.clone())));
            let conv_train = conv(&train);
            let xt = Tensor::<4>::from_data(x.to_data(), &train);
            let tb = timed(|| {
                let x = xt.clone().require_grad();
                let g = kernels::conv2d(&conv_train, x.clone()).sum().backward();
                drop((conv_train.weight.grad(&g), x.grad(&g)));
            });
            total_f += tf * blocks.len() as f64;
            total_b += tb * blocks.len() as f64;
            let list: Vec<String> = blocks.iter().map(usize::to_string).collect();
            println!(
                "{res:>4} {c:>5} {k:>2} {s:>2} {:>8} {:>8} {tf:>9.2} {tb:>11.2}  {}",
                format!("{size}x{size}"),
                format!("{out}x{out}"),
                list.join(",")
            );
        }
        println!(
            "{res:>4} {:>38} {total_f:>9.2} {total_b:>11.2}\n",
            "all 16 depthwise convs of one Lite0 pass"
        );
    }
}
