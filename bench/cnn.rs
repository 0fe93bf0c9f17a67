//! Throughput of a vision model in pretune (Burn flex): full train steps and inference.
//! `--model cnn` (the seed CNN, 1×28×28) or `--model resnet18` (small-input, 3×32×32).
//! Prints one JSON line; `bench/run.sh` runs it beside `bench/torch_cnn.py` and prints ratios.
//!
//!   cargo bench --bench cnn -- --model cnn --threads 2 --batch 64 --steps 100

#[path = "../src/alloc.rs"]
mod alloc;

use std::time::Instant;

use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::Distribution;
use pretune::models::{self, Classifier, Input};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn model_arg() -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--model")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| "cnn".into())
}

fn main() {
    let name = model_arg();
    let (arch, options) = match name.as_str() {
        "cnn" => (
            models::arch("cnn").unwrap(),
            models::ModelOptions::default(),
        ),
        "resnet18" => (
            models::arch("resnet18").unwrap(),
            models::ModelOptions {
                small_input: true,
                ..Default::default()
            },
        ),
        other => panic!("--model {other}: cnn or resnet18"),
    };
    let [c, h, w] = arch.input_for(&options).expect("an image model");
    let (threads, batch, steps) = (arg("--threads", 2), arg("--batch", 64), arg("--steps", 100));
    let (warmup, infer_batch, infer_steps) = (
        arg("--warmup", 10),
        arg("--infer-batch", 500),
        arg("--infer-steps", 20),
    );
    alloc::keep_freed_memory(); // as the CLI does
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .unwrap();

    let device = pretune::DeviceSpec::Cpu.device().unwrap();
    device.seed(0);
    let mut model = Classifier::new(arch, &options, 10, 0, &device);
    let x = Tensor::<4>::random([batch, c, h, w], Distribution::Normal(0.0, 1.0), &device);
    let y = Tensor::<1, Int>::from_data(
        TensorData::new((0..batch as i64).map(|i| i % 10).collect(), [batch]),
        &device,
    );
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let mut optim = AdamConfig::new().init();
    let mut train_step = |model: Classifier| {
        let loss = loss_fn.forward(model.forward(Input::Images(x.clone())).unwrap(), y.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let model = optim.step(1e-3, model, grads);
        model.head.weight.as_ref().unwrap().val().into_data(); // wait for the step to finish
        model
    };
    for _ in 0..warmup {
        model = train_step(model);
    }
    let started = Instant::now();
    for _ in 0..steps {
        model = train_step(model);
    }
    let train = (steps * batch) as f64 / started.elapsed().as_secs_f64();

    let model = model.valid();
    let plain = device.without_autodiff();
    let xi = Tensor::<4>::random(
        [infer_batch, c, h, w],
        Distribution::Normal(0.0, 1.0),
        &plain,
    );
    for _ in 0..warmup.min(3) {
        model
            .forward(Input::Images(xi.clone()))
            .unwrap()
            .into_data();
    }
    let started = Instant::now();
    for _ in 0..infer_steps {
        model
            .forward(Input::Images(xi.clone()))
            .unwrap()
            .into_data();
    }
    let infer = (infer_steps * infer_batch) as f64 / started.elapsed().as_secs_f64();
    println!(
        "{{\"framework\": \"pretune {} (burn flex)\", \"model\": \"{name}\", \"threads\": {threads}, \"batch\": {batch}, \"train_images_per_s\": {train:.1}, \"infer_images_per_s\": {infer:.1}}}",
        env!("CARGO_PKG_VERSION")
    );
}
