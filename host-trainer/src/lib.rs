//! Library side of `host-trainer`: data, models, training, evaluation and quantization,
//! used by the `host-trainer` binary and by the workspace tests.
//!
//! Modules by concern, each importing only from those above it in this list:
//! [`fsutil`], [`data`], [`rng`], [`backend`] and [`tensor`] (leaves); [`ops`] (the Burn
//! custom operations and their CPU kernels); [`model`] (the Burn networks); [`checkpoint`]
//! (run folder, weight files, checkpoint container); [`infer`] (float and int8 generation);
//! [`report`] (PNG, CSV, plots); [`train`] (`Trainer::step`, the per-batch computation, and
//! the training loop); [`quantize`] (fold and export); [`two_sample`] (the real-vs-generated
//! classifier test); [`eval`] (classifier and metrics); [`bench`](mod@bench); [`run`]
//! (the whole `run` job: new or resumed run, training, evaluation, export).

pub mod backend;
pub mod bench;
pub mod checkpoint;
pub mod data;
pub mod eval;
pub mod fsutil;
pub mod infer;
pub mod model;
pub mod ops;
pub mod quantize;
pub mod report;
pub mod rng;
pub mod run;
pub mod tensor;
pub mod train;
pub mod two_sample;
