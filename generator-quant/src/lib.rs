#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod calibration;
pub mod float;
pub mod quantize;

pub use calibration::Calibration;
pub use float::{FloatGenerator, FloatLayer, logit_to_pixel};
pub use quantize::{ActivationQuant, QuantizeError, quantize};
