//! pretune: pretrain a network once, then fine-tune it for a new task with few labels.
//!
//! A model is a [`models::Backbone`] plus a linear head ([`models::Classifier`]); a checkpoint is a
//! directory ([`checkpoint`]); one loop ([`train::fit`]) serves pretraining and fine-tuning.

pub mod checkpoint;
pub mod cli;
pub mod data;
pub mod demo;
pub mod error;
pub mod infer;
pub mod kernels;
pub mod metrics;
pub mod models;
pub mod report;
pub mod text;
pub mod train;

pub use checkpoint::Checkpoint;

/// Training allocates and frees large tensors every step; mimalloc keeps that memory mapped
/// instead of returning it to the kernel each time (measured: about +50% training throughput
/// on the CNN with Burn's flex backend).
/// Not under `cargo fuzz` (`cfg(fuzzing)`): libFuzzer's -malloc_limit_mb and ASan only see
/// allocations made through the system allocator, and those limits are what catch a reader
/// that allocates whatever a file header claims.
#[cfg(not(fuzzing))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Keep freed memory mapped for reuse instead of handing it back to the kernel after mimalloc's
/// default second: a training step frees and reallocates the same large buffers, and each
/// re-fault made the kernel zero fresh 2 MB pages (17% of BERT-Mini training in perf; measured
/// +24% texts/s without purging). Peak memory is unchanged: memory is reused, not added.
pub fn keep_freed_memory() {
    // mimalloc v3's `mi_option_purge_delay` (mimalloc.h); -1 = never purge.
    const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    #[cfg(not(fuzzing))]
    // SAFETY: sets a process-wide option; mimalloc reads it when it considers purging.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1)
    };
}
pub use data::{ImageSet, Normalization};
pub use models::Classifier;
pub use train::{Recipe, fit};

/// The device pretune computes on: Burn's `flex` CPU backend, with autodiff for training.
pub fn training_device() -> burn::prelude::Device {
    burn::prelude::Device::flex().autodiff()
}
