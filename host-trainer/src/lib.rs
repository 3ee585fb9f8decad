//! Library side of `host-trainer`: data, models, training, evaluation and quantization,
//! used by the `host-trainer` binary and by the workspace tests.

pub mod bench;
pub mod conv_kernel;
pub mod data;
pub mod eval;
pub mod fsutil;
pub mod fused;
pub mod model;
pub mod quantize;
pub mod report;
pub mod rng;
pub mod train;
pub mod two_sample;
