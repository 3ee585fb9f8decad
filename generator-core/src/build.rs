//! Host-side model building (work in progress).
