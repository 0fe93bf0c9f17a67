//! The other workloads of the PyTorch comparison (bench/workloads.sh runs them beside
//! bench/torch_workloads.py):
//!
//! - `minilm`: all-MiniLM-L6-v2 forward + backward (mean pooling, a 5-class head, cross-entropy),
//!   batch 16 × 128 tokens;
//! - `adamw`: one AdamW update of MiniLM's 22.7M parameters;
//! - `load`: reading the 60,000 Fashion-MNIST training images and labels (gzip IDX).
//!
//! Prints one JSON line per workload: {"framework", "workload", "per_second", "unit"}.
//!
//!   cargo bench --bench workloads -- --workload minilm --threads 2 --steps 5

#[path = "../src/alloc.rs"]
mod alloc;

use std::path::Path;
use std::time::Instant;

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::LinearConfig;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use pretune::data::{self, Split};
use pretune::models::bert::mean_pool;

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.into())
}

/// Mean seconds of `steps` runs of `f` after `warmup` untimed ones.
fn seconds(warmup: usize, steps: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..warmup {
        f();
    }
    let started = Instant::now();
    for _ in 0..steps {
        f();
    }
    started.elapsed().as_secs_f64() / steps as f64
}

fn report(workload: &str, per_second: f64, unit: &str) {
    println!(
        "{{\"framework\": \"pretune {} (burn flex)\", \"workload\": \"{workload}\", \"per_second\": {per_second:.2}, \"unit\": \"{unit}\"}}",
        env!("CARGO_PKG_VERSION")
    );
}

/// Gradients for every parameter (a small multiple of its value), to time the update alone.
struct FakeGrads(GradientsParams);

impl ModuleVisitor for FakeGrads {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0
            .register(param.id, param.val().inner().mul_scalar(1e-3));
    }
}

fn main() {
    let workload = arg("--workload", "minilm");
    let threads: usize = arg("--threads", "2").parse().unwrap();
    let steps: usize = arg("--steps", "5").parse().unwrap();
    let model_dir = arg("--model", "models/all-MiniLM-L6-v2");
    alloc::keep_freed_memory(); // as the CLI does
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .unwrap();
    let device = pretune::DeviceSpec::Cpu.device().unwrap();
    device.seed(0);
    match workload.as_str() {
        "minilm" => {
            let (batch, tokens) = (16, 128);
            let bert = pretune::interop::hf::load_hf_dir(Path::new(&model_dir), &device)
                .unwrap_or_else(|e| panic!("{e:#} (scripts/minilm.sh fetches MiniLM)"))
                .model;
            let head = LinearConfig::new(384, 5).init(&device);
            let ids: Vec<i64> = (0..batch * tokens)
                .map(|i| 1000 + (i as i64 * 7919) % 20000)
                .collect();
            let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [batch, tokens]), &device);
            let types = ids.zeros_like();
            let mask = Tensor::<2>::ones([batch, tokens], &device);
            let labels = Tensor::<1, Int>::from_data(
                TensorData::new((0..batch as i64).map(|i| i % 5).collect(), [batch]),
                &device,
            );
            let loss_fn = CrossEntropyLossConfig::new().init(&device);
            let s = seconds(1, steps, || {
                let hidden = bert.forward(ids.clone(), types.clone(), mask.clone());
                let logits = head.forward(mean_pool(hidden, mask.clone()));
                let grads = loss_fn.forward(logits, labels.clone()).backward();
                let g = GradientsParams::from_grads(grads, &bert);
                assert!(!g.is_empty());
            });
            report("minilm fwd+bwd 16x128", batch as f64 / s, "texts/s");
        }
        "adamw" => {
            let bert = pretune::interop::hf::load_hf_dir(Path::new(&model_dir), &device)
                .unwrap_or_else(|e| panic!("{e:#} (scripts/minilm.sh fetches MiniLM)"))
                .model;
            let params = bert.num_params();
            // What pretune trains with: Burn's AdamW, its update fused into one pass
            // (`PRETUNE_BURN_KERNELS=1` times Burn's own).
            let mut optim = ModuleOptimizer::from(pretune::train::FusedAdamW::new(0.01));
            let mut model = Some(bert);
            let s = seconds(2, steps, || {
                let m = model.take().unwrap();
                let mut grads = FakeGrads(GradientsParams::new());
                m.visit(&mut grads);
                // flex computes eagerly: the update is done when `step` returns.
                model = Some(optim.step(1e-4, m, grads.0));
            });
            report(
                &format!("adamw update {:.1}M params", params as f64 / 1e6),
                1.0 / s,
                "updates/s",
            );
        }
        "load" => {
            let dir = arg("--data", "/usr/share/datasets/fashion-mnist");
            let mut n = 0;
            let s = seconds(1, steps, || {
                n = data::idx::load_idx_dir(Path::new(&dir), Split::Train)
                    .unwrap()
                    .len();
            });
            report(
                &format!("load fashion-mnist train ({n})"),
                1.0 / s,
                "loads/s",
            );
        }
        other => panic!("--workload {other}: minilm, adamw or load"),
    }
}
