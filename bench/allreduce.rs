//! The cost of the gradient all-reduce of data-parallel training: one `parallel::sum_f32` of
//! each model's gradient size, as the training loop does it (one flat buffer per step).
//!
//!     cargo build --release --features mpi --bench allreduce
//!     mpirun --allow-run-as-root --oversubscribe -np 2 target/release/deps/allreduce-<hash> \
//!         [--rounds 20]
//!
//! Prints one JSON line per model (rank 0): bytes, milliseconds per all-reduce (median), and
//! the bandwidth it reached.

#[path = "../src/alloc.rs"]
mod alloc;

use std::time::Instant;

use pretune::parallel;

/// Trainable parameters of the models the README's scaling model covers.
const MODELS: [(&str, usize); 4] = [
    ("cnn", 421_642),
    ("resnet18", 11_689_512),
    ("resnet50", 25_557_032),
    ("all-MiniLM-L6-v2", 22_713_216),
];

fn main() {
    alloc::keep_freed_memory();
    let rounds: usize = std::env::args()
        .skip_while(|a| a != "--rounds")
        .nth(1)
        .map_or(20, |r| r.parse().expect("--rounds N"));
    let _job = parallel::init().expect("an MPI job");
    let place = parallel::place();
    for (name, params) in MODELS {
        let mut buffer = vec![1.0f32; params];
        parallel::sum_f32(&mut buffer); // warm-up: connections, pages
        let mut times: Vec<f64> = (0..rounds)
            .map(|_| {
                let started = Instant::now();
                parallel::sum_f32(&mut buffer);
                started.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        times.sort_by(f64::total_cmp);
        let ms = times[rounds / 2];
        let bytes = params * 4;
        if parallel::is_root() {
            println!(
                "{{\"model\": \"{name}\", \"ranks\": {}, \"bytes\": {bytes}, \"ms\": {ms:.2}, \"gb_per_s\": {:.2}}}",
                place.size,
                bytes as f64 / ms / 1e6
            );
        }
    }
}
