//! Backend selection: which of Burn's CPU backends runs training and inference.

use anyhow::bail;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// The two CPU backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum BackendKind {
    /// burn-flex: SIMD + rayon, the fast one.
    Flex,
    /// burn-ndarray: deprecated by Burn 0.22, much slower convolution backward.
    Ndarray,
}

impl BackendKind {
    /// The plain (inference) device.
    pub fn device(self) -> anyhow::Result<Device> {
        match self {
            #[cfg(feature = "flex")]
            BackendKind::Flex => Ok(Device::flex()),
            #[cfg(feature = "ndarray")]
            #[allow(deprecated)]
            BackendKind::Ndarray => Ok(Device::ndarray()),
            #[allow(unreachable_patterns)]
            other => bail!("backend {other:?} was not compiled in (cargo feature)"),
        }
    }
}
