//! Integer kernels (work in progress).
