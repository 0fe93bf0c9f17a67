//! pretune: pretrain a network once, then fine-tune it for a new task with few labels.
//!
//! A model is a [`models::Backbone`] plus a linear head ([`models::Classifier`]); a checkpoint is a
//! directory ([`checkpoint`]); one loop ([`train::fit`]) serves pretraining and fine-tuning.
//!
//! Modules from the bottom up; a module only uses those above it in this list:
//! [`error`] and [`fs`] (helpers), [`generate`] (greedy and beam search over any step-wise
//! decoder), [`parallel`] (the processes of a run), [`device`], [`kernels`] (our CPU kernels),
//! [`models`] (architectures), [`data`] (readers, splits, examples and batches), [`metrics`],
//! [`infer`] (running a model), [`train`] (the loop, its observers, optimizers and resume state),
//! [`transcribe`] (speech to text, and a speech run's examples),
//! [`checkpoint`] (the directory format), [`interop`] (PyTorch and Hugging Face files).
//! The `pretune` binary adds the command line, the demos and their reports on top.

pub mod error;
pub mod fs;
pub mod generate;
pub mod parallel;

pub mod device;
pub mod kernels;
pub mod models;

pub mod data;
pub mod infer;
pub mod metrics;

pub mod train;
pub mod transcribe;

pub mod checkpoint;
pub mod interop;

pub use checkpoint::Checkpoint;
pub use data::{ImageSet, Normalization};
pub use device::DeviceSpec;
pub use models::Classifier;
pub use train::{Recipe, fit};
