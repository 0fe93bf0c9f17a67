//! GRU and LSTM layers, forward (inference) and forward + backward (training), beside
//! bench/torch_rnn.py (PyTorch's `nn.GRU`/`nn.LSTM`, same shapes, same names, 2 threads).
//! bench/rnn.sh runs both and prints the ratios.
//!
//!   cargo bench --bench rnn; /opt/torch-venv/bin/python bench/torch_rnn.py

#[path = "../src/alloc.rs"]
mod alloc;

use std::time::Instant;

use burn::prelude::*;
use burn::tensor::Distribution;
use pretune::models::rnn::{Cell, RnnConfig};

/// Mean milliseconds of `runs` runs after 2 untimed ones.
fn time(name: &str, runs: usize, mut f: impl FnMut()) {
    for _ in 0..2 {
        f();
    }
    let started = Instant::now();
    for _ in 0..runs {
        f();
    }
    println!(
        "{name:44} {:9.3} ms",
        started.elapsed().as_secs_f64() * 1e3 / runs as f64
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
    // (name, cell, input, hidden, batch, steps): g2p_en's GRU; an AWD-LSTM's middle layer.
    let shapes = [
        ("gru 256, batch 32 x 12 steps", Cell::Gru, 256, 256, 32, 12),
        (
            "lstm 512, batch 32 x 64 steps",
            Cell::Lstm,
            512,
            512,
            32,
            64,
        ),
    ];
    for (name, cell, input, hidden, batch, steps) in shapes {
        let config = RnnConfig {
            cell,
            input,
            hidden,
            layers: 1,
            bidirectional: false,
        };
        let x = Tensor::<3>::random(
            [batch, steps, input],
            Distribution::Normal(0.0, 1.0),
            &infer,
        );
        let rnn = config.init(&infer);
        time(&format!("{name} forward"), 20, || {
            drop(rnn.forward(x.clone(), None, None))
        });
        let rnn = config.init(&train);
        let x = Tensor::<3>::from_data(x.to_data(), &train);
        time(&format!("{name} forward+backward"), 10, || {
            let xx = x.clone().require_grad();
            let (out, _) = rnn.forward(xx.clone(), None, None);
            let g = out.sum().backward();
            drop((xx.grad(&g), rnn.layers[0].forward.weight_hh.grad(&g)));
        });
    }
}
