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

/// Largest allocation glibc may serve from the heap rather than by `mmap` (its maximum on
/// 64-bit targets): every buffer of a training step is smaller.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const HEAP_ALLOCATION_LIMIT: libc::c_int = 32 << 20;

/// Lets freed tensor buffers be reused by the next training step instead of being handed back
/// to the kernel. By default glibc serves allocations above 128 KiB with `mmap` and unmaps
/// them on free, so every step paid page faults and page zeroing for each activation and
/// gradient buffer it allocated: 1.4 s of system time in a 6 s `bench`, and 1.35x the step
/// time. Called once at start-up by the binary; a no-op off glibc.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: `mallopt` only changes allocator parameters; it is called before any thread is
    // started, and the values are within glibc's documented ranges.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, HEAP_ALLOCATION_LIMIT);
        libc::mallopt(libc::M_TRIM_THRESHOLD, HEAP_ALLOCATION_LIMIT);
    }
}
