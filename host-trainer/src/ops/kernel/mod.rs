//! The trainer's CPU kernels on plain `f32` slices: the convolution ([`conv`]) and the
//! training-mode batch norm + ReLU ([`norm`]), forward and backward, as the custom Burn
//! operations of [`crate::ops`] call them on burn-flex.
//!
//! One geometry covers every convolution of both networks: the generator's "upsample + 3x3"
//! blocks and final 3x3, and the discriminator's 4x4 stride-2 downsamplers. Tensors are NCHW,
//! contiguous. A plan (`plan.rs`) turns each into stride-1 convolutions: "upsample + 3x3"
//! into four 2x2 convolutions at the input's resolution (one per output phase), a stride-2
//! 4x4 into a 2x2 over the space-to-depth components of the input. Those are computed in
//! place (`in_place.rs`): a few images are zero-padded side by side, and each window tap is
//! one product of the `gemm` crate (`gemm.rs`) reading the padded planes at that tap's
//! offset, so nothing is unfolded (im2col) or folded back (col2im). Other geometries (odd
//! sizes, a kernel that is not a multiple of the stride) unfold each group of images into
//! `[K, N]` column buffers instead (`unfolded.rs`). Both forms share the output handling
//! (`epilogue.rs`: bias, fused activation, and their gradients) and draw their buffers from a
//! per-thread pool (`scratch.rs`). The batch is split into one contiguous range per rayon
//! worker (`batch.rs`); weight and bias gradients are summed over the ranges in range order,
//! so a result depends on the thread count but not on scheduling.

mod act;
mod batch;
pub mod conv;
mod epilogue;
mod gemm;
mod geometry;
mod in_place;
pub mod norm;
mod plan;
mod scratch;
mod unfolded;
