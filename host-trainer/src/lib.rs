//! Library side of `host-trainer`: data, models, training, evaluation and quantization,
//! used by the `host-trainer` binary and by the workspace tests.
//!
//! Modules by concern, each importing only from those above it in this list:
//! [`fsutil`], [`data`], [`rng`], [`backend`] and [`tensor`] (leaves); [`model`] (the
//! Burn networks); [`checkpoint`] (run folder, weight files, checkpoint container);
//! [`infer`] (float and int8 generation); [`trainer`] (`Trainer::step`, the per-batch
//! computation); [`report`] (PNG, CSV, plots); [`train`] (the training loop);
//! [`quantize`] (fold and export); [`two_sample`] (the real-vs-generated classifier test);
//! [`eval`] (classifier and metrics); [`bench`](mod@bench).

pub mod backend;
pub mod bench;
pub mod checkpoint;
pub mod conv_kernel;
pub mod data;
pub mod eval;
pub mod fsutil;
pub mod fused;
pub mod infer;
pub mod model;
pub mod norm_kernel;
pub mod quantize;
pub mod report;
pub mod rng;
pub mod tensor;
pub mod train;
pub mod trainer;
pub mod two_sample;
