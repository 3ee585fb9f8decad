//! The shape of one convolution, and its input plane once upsampled and zero-padded.

/// Shape of one convolution: input `[batch, in_ch, in_h, in_w]`, weights
/// `[out_ch, in_ch, k, k]`, optional nearest upsampling of the input by `up` before a
/// convolution with stride `stride` and zero padding `pad`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    /// Images in the batch.
    pub batch: usize,
    /// Input channels.
    pub in_ch: usize,
    /// Input height (before upsampling).
    pub in_h: usize,
    /// Input width (before upsampling).
    pub in_w: usize,
    /// Output channels.
    pub out_ch: usize,
    /// Kernel side.
    pub k: usize,
    /// Stride.
    pub stride: usize,
    /// Zero padding on every side (of the upsampled input).
    pub pad: usize,
    /// Nearest upsampling factor of the input (1: none).
    pub up: usize,
}

impl ConvGeometry {
    /// Output height.
    pub fn out_h(&self) -> usize {
        (self.in_h * self.up + 2 * self.pad - self.k) / self.stride + 1
    }
    /// Output width.
    pub fn out_w(&self) -> usize {
        (self.in_w * self.up + 2 * self.pad - self.k) / self.stride + 1
    }
    /// Weights per output channel (the rows of the unfolded input): `in_ch * k * k`.
    pub(super) fn rows(&self) -> usize {
        self.in_ch * self.k * self.k
    }
    /// Output positions per image.
    pub(super) fn positions(&self) -> usize {
        self.out_h() * self.out_w()
    }
    /// Input values per image.
    pub fn in_len(&self) -> usize {
        self.in_ch * self.in_h * self.in_w
    }
    /// Output values per image.
    pub fn out_len(&self) -> usize {
        self.out_ch * self.positions()
    }
    /// Weight values.
    pub fn weight_len(&self) -> usize {
        self.out_ch * self.rows()
    }
    /// Every size is non-zero and the kernel fits the padded input.
    pub(super) fn check(&self) {
        assert!(
            self.in_ch > 0 && self.out_ch > 0 && self.k > 0 && self.stride > 0 && self.up > 0,
            "degenerate convolution {self:?}"
        );
        assert!(
            self.in_h * self.up + 2 * self.pad >= self.k
                && self.in_w * self.up + 2 * self.pad >= self.k,
            "kernel larger than the padded input {self:?}"
        );
    }
}

/// Side lengths of one padded (and upsampled) input plane.
pub(super) fn padded_dims(geo: &ConvGeometry) -> (usize, usize) {
    (
        geo.in_h * geo.up + 2 * geo.pad,
        geo.in_w * geo.up + 2 * geo.pad,
    )
}

/// Writes one image `[in_ch, in_h, in_w]`, upsampled and zero-padded, into `buf`: channel `c`
/// becomes the `ph x pw` plane at `c * chan_stride` (the border must already be zero).
pub(super) fn pad_image(geo: &ConvGeometry, img: &[f32], buf: &mut [f32], chan_stride: usize) {
    let (ph, pw) = padded_dims(geo);
    let (up, pad) = (geo.up, geo.pad);
    for c in 0..geo.in_ch {
        let plane = &img[c * geo.in_h * geo.in_w..][..geo.in_h * geo.in_w];
        let out = &mut buf[c * chan_stride..][..ph * pw];
        for (y, src) in plane.chunks_exact(geo.in_w).enumerate() {
            for dy in 0..up {
                let row = &mut out[(pad + y * up + dy) * pw + pad..][..geo.in_w * up];
                if up == 1 {
                    row.copy_from_slice(src);
                } else {
                    for (d, &v) in row.chunks_exact_mut(up).zip(src) {
                        d.fill(v);
                    }
                }
            }
        }
    }
}

/// The adjoint of [`pad_image`]: adds each `up x up` block of the padded gradient `buf`
/// (channel `c` at `c * chan_stride`, borders ignored) onto one image gradient `[in_ch, in_h,
/// in_w]`.
pub(super) fn unpad_add(geo: &ConvGeometry, buf: &[f32], img: &mut [f32], chan_stride: usize) {
    let (ph, pw) = padded_dims(geo);
    let (up, pad) = (geo.up, geo.pad);
    for c in 0..geo.in_ch {
        let plane = &mut img[c * geo.in_h * geo.in_w..][..geo.in_h * geo.in_w];
        let src = &buf[c * chan_stride..][..ph * pw];
        for (y, dst) in plane.chunks_exact_mut(geo.in_w).enumerate() {
            for dy in 0..up {
                let row = &src[(pad + y * up + dy) * pw + pad..][..geo.in_w * up];
                if up == 1 {
                    dst.iter_mut().zip(row).for_each(|(d, s)| *d += s);
                } else {
                    for (d, block) in dst.iter_mut().zip(row.chunks_exact(up)) {
                        *d += block.iter().sum::<f32>();
                    }
                }
            }
        }
    }
}
