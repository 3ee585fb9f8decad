//! The trainer's convolution kernels on plain `f32` slices: forward, input gradient, weight and
//! bias gradients of a 2-D convolution whose input may first be upsampled 2x (nearest).
//!
//! One geometry covers every convolution of both networks: the generator's "upsample + 3x3"
//! blocks and final 3x3, and the discriminator's 4x4 stride-2 downsamplers. Tensors are NCHW,
//! contiguous. A `Plan` turns each into stride-1 convolutions: "upsample + 3x3" into four
//! 2x2 convolutions at the input's resolution (one per output phase), a stride-2 4x4 into a
//! 2x2 over the space-to-depth components of the input. Those are computed in place
//! (`InPlace`): a few images are zero-padded side by side, and each window tap is one
//! product of the `gemm` crate (the one burn-flex uses) reading the padded planes at that
//! tap's offset, so nothing is unfolded (im2col) or folded back (col2im). Other geometries
//! (odd sizes, a kernel that is not a multiple of the stride) unfold each image into a
//! `[K, N]` column buffer instead. The batch is split into one contiguous range per rayon
//! worker; weight and bias gradients are summed over the ranges in range order, so a result
//! depends on the thread count but not on scheduling.

use std::cell::RefCell;

use rayon::prelude::*;

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
    /// Rows of the unfolded input: `in_ch * k * k`.
    fn rows(&self) -> usize {
        self.in_ch * self.k * self.k
    }
    /// Output positions per image.
    fn positions(&self) -> usize {
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
    fn check(&self) {
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

/// An activation applied to a convolution's output, fused into the same operation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Act {
    /// None: `y = v`.
    Identity,
    /// `y = v` for `v > 0`, else `slope * v` (`slope > 0`).
    LeakyRelu(f32),
    /// `y = tanh(v)`.
    Tanh,
}

impl Act {
    /// `y` of the pre-activation `v`.
    #[inline]
    fn apply(self, v: f32) -> f32 {
        match self {
            Act::Identity => v,
            Act::LeakyRelu(slope) => {
                if v > 0.0 {
                    v
                } else {
                    slope * v
                }
            }
            Act::Tanh => v.tanh(),
        }
    }

    /// Gradient of the pre-activation given the output `y` and its gradient `dy` (every
    /// activation here is monotonic, so `y` determines the derivative).
    #[inline]
    fn grad(self, y: f32, dy: f32) -> f32 {
        match self {
            Act::Identity => dy,
            Act::LeakyRelu(slope) => {
                if y > 0.0 {
                    dy
                } else {
                    slope * dy
                }
            }
            Act::Tanh => dy * (1.0 - y * y),
        }
    }
}

/// A matrix inside a slice: element `(i, j)` is `data[offset + i * rs + j * cs]`.
#[derive(Debug, Clone, Copy)]
struct View {
    offset: usize,
    rs: usize,
    cs: usize,
}

impl View {
    /// A row-major matrix with `cols` columns at the start of its slice.
    fn rows(cols: usize) -> Self {
        Self {
            offset: 0,
            rs: cols,
            cs: 1,
        }
    }

    /// The transpose of a row-major matrix with `cols` columns.
    fn transposed(cols: usize) -> Self {
        Self {
            offset: 0,
            rs: 1,
            cs: cols,
        }
    }

    /// Asserts that an `r x c` matrix of this view lies inside a slice of `len` values.
    fn check(&self, r: usize, c: usize, len: usize) {
        let last = self.offset + (r - 1) * self.rs + (c - 1) * self.cs;
        assert!(
            last < len,
            "matrix view {self:?} of {r}x{c} outside {len} values"
        );
    }
}

/// `c (+)= a * b` for `a: [m, k]`, `b: [k, n]`, `c: [m, n]`, each a [`View`] into its slice.
/// `c`'s view must not map two elements to one place (its strides separate rows and columns).
#[allow(unsafe_code, clippy::too_many_arguments)]
fn gemm_views(
    (m, n, k): (usize, usize, usize),
    a: (&[f32], View),
    b: (&[f32], View),
    c: (&mut [f32], View),
    accumulate: bool,
) {
    let ((a, av), (b, bv), (c, cv)) = (a, b, c);
    if m == 0 || n == 0 {
        return;
    }
    cv.check(m, n, c.len());
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    c[cv.offset + i * cv.rs + j * cv.cs] = 0.0;
                }
            }
        }
        return;
    }
    av.check(m, k, a.len());
    bv.check(k, n, b.len());
    let s = |v: usize| v as isize;
    // SAFETY: the checks above keep the last element each view reaches, and so every element
    // (strides are non-negative), inside its slice. `c` is a unique borrow, so it aliases
    // neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr().add(cv.offset),
            s(cv.cs),
            s(cv.rs),
            accumulate,
            a.as_ptr().add(av.offset),
            s(av.cs),
            s(av.rs),
            b.as_ptr().add(bv.offset),
            s(bv.cs),
            s(bv.rs),
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// `c (+)= a * b` for row-major `a: [m, k]`, `b: [k, n]`, `c: [m, n]`; `a_t` reads `a` as the
/// transpose of a row-major `[k, m]` matrix, `b_t` reads `b` as the transpose of a row-major
/// `[n, k]` matrix.
#[allow(clippy::too_many_arguments)]
fn matmul(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    a_t: bool,
    b: &[f32],
    b_t: bool,
    c: &mut [f32],
    accumulate: bool,
) {
    let av = if a_t {
        View::transposed(m)
    } else {
        View::rows(k)
    };
    let bv = if b_t {
        View::transposed(k)
    } else {
        View::rows(n)
    };
    gemm_views((m, n, k), (a, av), (b, bv), (c, View::rows(n)), accumulate);
}

/// Side lengths of one padded (and upsampled) input plane.
fn padded_dims(geo: &ConvGeometry) -> (usize, usize) {
    (
        geo.in_h * geo.up + 2 * geo.pad,
        geo.in_w * geo.up + 2 * geo.pad,
    )
}

/// Writes one image `[in_ch, in_h, in_w]`, upsampled and zero-padded, into `buf`: channel `c`
/// becomes the `ph x pw` plane at `c * chan_stride` (the border must already be zero).
fn pad_image(geo: &ConvGeometry, img: &[f32], buf: &mut [f32], chan_stride: usize) {
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
fn unpad_add(geo: &ConvGeometry, buf: &[f32], img: &mut [f32], chan_stride: usize) {
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

/// One convolution over the padded input plane that produces part of the output: a `k x k`
/// window at `stride`, for `oh x ow` positions whose windows start at padded coordinates
/// `(y0 + oy * stride, x0 + ox * stride)`; position `(oy, ox)` is output pixel
/// `(oy * step + y0, ox * step + x0)`.
#[derive(Debug, Clone, Copy)]
struct Part {
    k: usize,
    stride: usize,
    y0: usize,
    x0: usize,
    oh: usize,
    ow: usize,
    step: usize,
}

impl Part {
    fn positions(&self) -> usize {
        self.oh * self.ow
    }
}

/// How a convolution is computed: as one part (the convolution itself), or, for "nearest 2x
/// upsample + 3x3 convolution with padding 1", as four 2x2 convolutions of the input at its own
/// resolution, one per output phase `(oy % 2, ox % 2)`, whose weights are sums of the 3x3
/// taps that read the same input pixel. The phase form does 4/9 of the multiplications and
/// unfolds 4/9 of the values; its sums are ordered differently, so results agree with the
/// direct form to rounding.
///
/// A convolution at stride `s` whose kernel side and padded input sides are multiples of `s`
/// (the discriminator's 4x4 stride-2 layers) is computed as a stride-1 convolution with a
/// `k/s x k/s` kernel over the `s * s` polyphase components of the padded input (space to
/// depth): component `(a, b)` of channel `c` holds padded pixels `(s * y + a, s * x + b)`.
/// It does the same multiplications; only their order of summation differs.
struct Plan {
    /// Geometry of the padded input plane the parts read.
    padded: ConvGeometry,
    /// Space-to-depth factor `s` (1: none): the parts read `in_ch * s * s` planes of
    /// `ph / s x pw / s`.
    fold: usize,
    parts: Vec<Part>,
    /// Weights of each part, `[out_ch, in_ch * s * s * k * k]`.
    weights: Vec<Vec<f32>>,
}

/// Row (or column) of the 2x2 phase kernel that 3x3 tap `t` falls on, in phase `phase`: the
/// upsampled row `2i + phase - 1 + t` is input row `i - 1 + phase + tap`.
fn phase_tap(phase: usize, t: usize) -> usize {
    (phase + t).div_ceil(2) - phase
}

impl Plan {
    fn new(geo: &ConvGeometry, w: &[f32]) -> Self {
        let (ph, pw) = padded_dims(geo);
        let s = geo.stride;
        let fits = |v: usize| v.is_multiple_of(s);
        if geo.up == 1 && s > 1 && fits(geo.k) && fits(ph) && fits(pw) {
            let k = geo.k / s;
            let part = Part {
                k,
                stride: 1,
                y0: 0,
                x0: 0,
                oh: geo.out_h(),
                ow: geo.out_w(),
                step: 1,
            };
            let table = Self::fold_table(geo);
            let mut folded = vec![0f32; w.len()];
            for (dst, src) in folded
                .chunks_exact_mut(table.len())
                .zip(w.chunks_exact(table.len()))
            {
                table.iter().zip(src).for_each(|(&t, &v)| dst[t] = v);
            }
            return Self {
                padded: *geo,
                fold: s,
                parts: vec![part],
                weights: vec![folded],
            };
        }
        if !(geo.up == 2 && geo.k == 3 && geo.pad == 1 && geo.stride == 1) {
            let part = Part {
                k: geo.k,
                stride: geo.stride,
                y0: 0,
                x0: 0,
                oh: geo.out_h(),
                ow: geo.out_w(),
                step: 1,
            };
            return Self {
                padded: *geo,
                fold: 1,
                parts: vec![part],
                weights: vec![w.to_vec()],
            };
        }
        let padded = ConvGeometry { up: 1, ..*geo };
        let (mut parts, mut weights) = (Vec::new(), Vec::new());
        for (a, b) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
            parts.push(Part {
                k: 2,
                stride: 1,
                y0: a,
                x0: b,
                oh: geo.in_h,
                ow: geo.in_w,
                step: 2,
            });
            let mut pw = vec![0f32; geo.out_ch * geo.in_ch * 4];
            for (oc, taps) in w.chunks_exact(9).enumerate() {
                for (t, &v) in taps.iter().enumerate() {
                    let (ty, tx) = (phase_tap(a, t / 3), phase_tap(b, t % 3));
                    pw[oc * 4 + ty * 2 + tx] += v;
                }
            }
            weights.push(pw);
        }
        Self {
            padded,
            fold: 1,
            parts,
            weights,
        }
    }

    /// Where each tap `ky * k + kx` of a `k x k` kernel goes in the space-to-depth weights of
    /// its `(out, in)` channel pair, `[s, s, k / s, k / s]`: tap `(s * ty + a, s * tx + b)` is
    /// tap `(ty, tx)` of component `(a, b)`. The pair's block keeps its place (`k * k`
    /// values either way).
    fn fold_table(geo: &ConvGeometry) -> Vec<usize> {
        let (s, k) = (geo.stride, geo.k);
        let kf = k / s;
        (0..k * k)
            .map(|t| {
                let (ky, kx) = (t / k, t % k);
                ((ky % s * s + kx % s) * kf + ky / s) * kf + kx / s
            })
            .collect()
    }

    /// Whether the plan is the convolution itself (its output needs no reordering).
    fn is_direct(&self) -> bool {
        self.parts.len() == 1 && self.fold == 1
    }

    /// Input planes the parts read: `in_ch * s * s`.
    fn channels(&self) -> usize {
        self.padded.in_ch * self.fold * self.fold
    }

    /// Rows of a part's unfolded input.
    fn rows(&self, part: &Part) -> usize {
        self.channels() * part.k * part.k
    }

    /// Images unfolded together: enough columns for an efficient product, few enough to stay
    /// in cache.
    fn group(&self) -> usize {
        (2048 / self.parts[0].positions()).clamp(1, 64)
    }

    /// The weight gradient of the convolution from those of the parts.
    fn fold_weight_grads(&self, geo: &ConvGeometry, parts: Vec<Vec<f32>>) -> Vec<f32> {
        if self.is_direct() {
            return parts.into_iter().next().expect("one part");
        }
        let mut dw = vec![0f32; geo.weight_len()];
        if self.fold > 1 {
            let table = Self::fold_table(geo);
            for (dst, src) in dw
                .chunks_exact_mut(table.len())
                .zip(parts[0].chunks_exact(table.len()))
            {
                dst.iter_mut().zip(&table).for_each(|(d, &t)| *d = src[t]);
            }
            return dw;
        }
        for (part, dp) in self.parts.iter().zip(&parts) {
            for (oc, taps) in dw.chunks_exact_mut(9).enumerate() {
                for (t, d) in taps.iter_mut().enumerate() {
                    let (ty, tx) = (phase_tap(part.y0, t / 3), phase_tap(part.x0, t % 3));
                    *d += dp[oc * 4 + ty * 2 + tx];
                }
            }
        }
        dw
    }
}

/// Unfolds images `[g, in_ch, in_h, in_w]` for every part: `cols[p]` becomes `[K_p, g * N_p]`
/// (image j in columns `j*N_p .. (j+1)*N_p`); `buf` holds one padded image and must have
/// zero borders.
fn im2col(plan: &Plan, x: &[f32], g: usize, cols: &mut [Scratch], buf: &mut [f32]) {
    let geo = &plan.padded;
    let (ph, pw) = padded_dims(geo);
    for j in 0..g {
        pad_image(
            geo,
            &x[j * geo.in_len()..(j + 1) * geo.in_len()],
            buf,
            ph * pw,
        );
        for (part, col) in plan.parts.iter().zip(cols.iter_mut()) {
            let (k, s, n) = (part.k, part.stride, part.positions());
            let width = g * n;
            for c in 0..geo.in_ch {
                let plane = &buf[c * ph * pw..][..ph * pw];
                for ky in 0..k {
                    for kx in 0..k {
                        let r = (c * k + ky) * k + kx;
                        let dst = &mut col[r * width + j * n..][..n];
                        for (oy, out_row) in dst.chunks_exact_mut(part.ow).enumerate() {
                            let src = &plane[(part.y0 + oy * s + ky) * pw + part.x0 + kx..];
                            if s == 1 {
                                out_row.copy_from_slice(&src[..part.ow]);
                            } else {
                                for (d, &v) in out_row.iter_mut().zip(src.iter().step_by(s)) {
                                    *d = v;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Folds every part's `cols[p]: [K_p, g * N_p]` back onto images `dx: [g, in_ch, in_h,
/// in_w]`, adding (the adjoint of [`im2col`]); `buf` is scratch for one padded image.
fn col2im(plan: &Plan, cols: &[Scratch], g: usize, dx: &mut [f32], buf: &mut [f32]) {
    let geo = &plan.padded;
    let (ph, pw) = padded_dims(geo);
    for j in 0..g {
        buf.fill(0.0);
        for (part, col) in plan.parts.iter().zip(cols) {
            let (k, s, n) = (part.k, part.stride, part.positions());
            let width = g * n;
            for c in 0..geo.in_ch {
                let plane = &mut buf[c * ph * pw..][..ph * pw];
                for ky in 0..k {
                    for kx in 0..k {
                        let r = (c * k + ky) * k + kx;
                        let src = &col[r * width + j * n..][..n];
                        for (oy, in_row) in src.chunks_exact(part.ow).enumerate() {
                            let dst = &mut plane[(part.y0 + oy * s + ky) * pw + part.x0 + kx..];
                            if s == 1 {
                                dst[..part.ow]
                                    .iter_mut()
                                    .zip(in_row)
                                    .for_each(|(d, v)| *d += v);
                            } else {
                                for (d, &v) in dst.iter_mut().step_by(s).zip(in_row) {
                                    *d += v;
                                }
                            }
                        }
                    }
                }
            }
        }
        unpad_add(
            geo,
            buf,
            &mut dx[j * geo.in_len()..(j + 1) * geo.in_len()],
            ph * pw,
        );
    }
}

/// Splits `batch` images into one contiguous range per worker thread.
fn ranges(batch: usize) -> Vec<(usize, usize)> {
    let parts = rayon::current_num_threads().clamp(1, batch.max(1));
    let (base, extra) = (batch / parts, batch % parts);
    let mut start = 0;
    (0..parts)
        .map(|p| {
            let len = base + usize::from(p < extra);
            let r = (start, start + len);
            start += len;
            r
        })
        .collect()
}

/// Splits a batch buffer (`per_image` values per image) into one slice per range of
/// [`ranges`].
fn split_by_ranges<'a>(
    mut rest: &'a mut [f32],
    ranges: &[(usize, usize)],
    per_image: usize,
) -> Vec<&'a mut [f32]> {
    ranges
        .iter()
        .map(|&(a, b)| {
            let (head, tail) = std::mem::take(&mut rest).split_at_mut((b - a) * per_image);
            rest = tail;
            head
        })
        .collect()
}

thread_local! {
    /// Buffers of this thread's earlier kernel calls, kept for the next ones.
    static POOL: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
}

/// A scratch buffer of `len` values whose contents are left over from earlier calls on the same
/// thread (zero only where it grew): every user writes before it reads, or clears it. Taken
/// from and given back to a per-thread pool, so a training step neither allocates nor zeroes
/// its unfold buffers (zeroing them was 8% of a step).
struct Scratch(Vec<f32>);

impl Scratch {
    fn new(len: usize) -> Self {
        let mut v = POOL.with(|p| p.borrow_mut().pop()).unwrap_or_default();
        v.resize(len, 0.0);
        Self(v)
    }

    /// A buffer of `len` zeros.
    fn zeroed(len: usize) -> Self {
        let mut s = Self::new(len);
        s.0.fill(0.0);
        s
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let v = std::mem::take(&mut self.0);
        POOL.with(|p| p.borrow_mut().push(v));
    }
}

impl std::ops::Deref for Scratch {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        &self.0
    }
}

impl std::ops::DerefMut for Scratch {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.0
    }
}

/// Scratch for each part's unfolded group, `[K_p, group * N_p]` (contents unspecified).
fn part_buffers(plan: &Plan) -> Vec<Scratch> {
    let group = plan.group();
    plan.parts
        .iter()
        .map(|p| Scratch::new(plan.rows(p) * group * p.positions()))
        .collect()
}

/// Scratch for one part's `[out_ch, group * N_p]` product (the largest part's size; contents
/// unspecified).
fn product_buffer(plan: &Plan, out_ch: usize) -> Scratch {
    let n = plan.parts.iter().map(Part::positions).max().unwrap_or(0);
    Scratch::new(out_ch * plan.group() * n)
}

/// Where a product buffer keeps output position `(oy, ox)` of a part, for output channel `o`
/// of image `j` of a group: at `o * chan + j * image + oy * row + ox`.
#[derive(Debug, Clone, Copy)]
struct Layout {
    chan: usize,
    image: usize,
    row: usize,
}

impl Layout {
    /// The unfold form's `[out_ch, g * N_p]` product.
    fn unfolded(part: &Part, g: usize) -> Self {
        Self {
            chan: g * part.positions(),
            image: part.positions(),
            row: part.ow,
        }
    }

    /// Start of row `oy` of output channel `o` of image `j`.
    fn at(&self, o: usize, j: usize, oy: usize) -> usize {
        o * self.chan + j * self.image + oy * self.row
    }
}

/// The in-place form of a plan whose parts all slide their windows at stride 1. The padded
/// planes of a group of images sit channel by channel: channel `c` of image `j` is the
/// `ph x pw` plane at `c * chan + j * plane` (`chan = group * plane`). Output position
/// `(oy, ox)` of image `j` is column `q = j * plane + oy * pw + ox`, and window tap `(ty, tx)`
/// of a part reads `buf[c * chan + q + shift]`, `shift = (y0 + ty) * pw + x0 + tx`: the unfolded
/// matrix of one tap is the buffer itself at offset `shift`, rows `chan` apart, so nothing is
/// unfolded or folded back. The columns between output positions (the padding columns and
/// rows) are computed and thrown away in the forward and carry zero gradient in the backward;
/// they cost `plane / (oh * ow)` times the multiplications of the unfold form (1.15x to 1.65x
/// for the generator's layers), far less than unfolding each value 4 or 9 times did.
#[derive(Debug, Clone, Copy)]
struct InPlace {
    pw: usize,
    plane: usize,
    chan: usize,
}

impl InPlace {
    fn new(plan: &Plan) -> Self {
        let (ph, pw) = padded_dims(&plan.padded);
        let (ph, pw) = (ph / plan.fold, pw / plan.fold);
        Self {
            pw,
            plane: ph * pw,
            chan: plan.group() * ph * pw,
        }
    }

    fn layout(&self) -> Layout {
        Layout {
            chan: self.chan,
            image: self.plane,
            row: self.pw,
        }
    }

    /// Columns a part computes for `g` images: up to the last output position.
    fn columns(&self, part: &Part, g: usize) -> usize {
        (g - 1) * self.plane + (part.oh - 1) * self.pw + part.ow
    }

    /// Offset of window tap `t` (row-major in the `k x k` window) of a part.
    fn shift(&self, part: &Part, t: usize) -> usize {
        (part.y0 + t / part.k) * self.pw + part.x0 + t % part.k
    }

    /// Writes `g` images `[in_ch, in_h, in_w]`, padded, into `buf` (zero borders).
    fn pad(&self, plan: &Plan, x: &[f32], g: usize, buf: &mut [f32]) {
        let geo = &plan.padded;
        for j in 0..g {
            let img = &x[j * geo.in_len()..(j + 1) * geo.in_len()];
            let dst = &mut buf[j * self.plane..];
            if plan.fold == 1 {
                pad_image(geo, img, dst, self.chan);
            } else {
                self.each_folded_row(plan, |i, at, n| {
                    let src = img[i..].iter().step_by(plan.fold);
                    dst[at..at + n]
                        .iter_mut()
                        .zip(src)
                        .for_each(|(d, &v)| *d = v);
                });
            }
        }
    }

    /// The adjoint of [`pad`](Self::pad) for one image: adds its padded gradient at
    /// `buf` (borders ignored) onto `img`.
    fn unpad_add(&self, plan: &Plan, buf: &[f32], img: &mut [f32]) {
        if plan.fold == 1 {
            unpad_add(&plan.padded, buf, img, self.chan);
        } else {
            self.each_folded_row(plan, |i, at, n| {
                let dst = img[i..].iter_mut().step_by(plan.fold);
                dst.zip(&buf[at..at + n]).for_each(|(d, &v)| *d += v);
            });
        }
    }

    /// Calls `f(i, at, n)` for each run of `n` input values `i, i + s, ..` of one image `[in_ch,
    /// in_h, in_w]` (one input row, one component) that lands contiguously at `at, at + 1, ..`
    /// in the space-to-depth planes of that image.
    fn each_folded_row(&self, plan: &Plan, mut f: impl FnMut(usize, usize, usize)) {
        let (geo, s) = (&plan.padded, plan.fold);
        for c in 0..geo.in_ch {
            for y in 0..geo.in_h {
                let (py, row) = (y + geo.pad, (c * geo.in_h + y) * geo.in_w);
                let first = ((c * s + py % s) * s) * self.chan + py / s * self.pw;
                // Column px = x + pad lands in component px % s at px / s: step through the
                // row once per component.
                for b in 0..s {
                    let x0 = (b + s - geo.pad % s) % s;
                    if x0 < geo.in_w {
                        let at = first + b * self.chan + (x0 + geo.pad) / s;
                        f(row + x0, at, (geo.in_w - x0).div_ceil(s));
                    }
                }
            }
        }
    }
}

impl Plan {
    /// Whether every part slides its window at stride 1, so the in-place form applies.
    fn in_place(&self) -> bool {
        self.parts.iter().all(|p| p.stride == 1)
    }
}

/// Writes a part's product (`layout`) for `g` images into their output planes, adding the bias
/// and applying the activation.
#[allow(clippy::too_many_arguments)]
fn scatter_output(
    geo: &ConvGeometry,
    part: &Part,
    prod: &[f32],
    layout: Layout,
    g: usize,
    bias: Option<&[f32]>,
    act: Act,
    out: &mut [f32],
) {
    let (ow_full, n_full) = (geo.out_w(), geo.positions());
    // One copy of the loops per activation, so the inner loop has no branch on it.
    let mut rows = |f: &RowWriter<'_>| {
        for j in 0..g {
            for o in 0..geo.out_ch {
                let b = bias.map_or(0.0, |b| b[o]);
                let plane = &mut out[j * geo.out_len() + o * n_full..][..n_full];
                for oy in 0..part.oh {
                    let row = &prod[layout.at(o, j, oy)..][..part.ow];
                    let at = (oy * part.step + part.y0) * ow_full + part.x0;
                    f(&mut plane[at..], part.step, row, b);
                }
            }
        }
    };
    match act {
        Act::Identity => rows(&|d, s, r, b| write_row(d, s, r, |v| v + b)),
        Act::LeakyRelu(k) => {
            rows(&|d, s, r, b| write_row(d, s, r, |v| Act::LeakyRelu(k).apply(v + b)))
        }
        Act::Tanh => rows(&|d, s, r, b| write_row(d, s, r, |v| (v + b).tanh())),
    }
}

/// Writes one row of a part's output: `(destination, step, product row, bias)`.
type RowWriter<'a> = dyn Fn(&mut [f32], usize, &[f32], f32) + 'a;

/// `dst[i * step] = f(row[i])`; contiguous when `step` is 1.
#[inline(always)]
fn write_row(dst: &mut [f32], step: usize, row: &[f32], f: impl Fn(f32) -> f32) {
    if step == 1 {
        dst[..row.len()]
            .iter_mut()
            .zip(row)
            .for_each(|(d, &v)| *d = f(v));
    } else {
        let dst = dst.iter_mut().step_by(step);
        dst.zip(row).for_each(|(d, &v)| *d = f(v));
    }
}

/// The adjoint of [`scatter_output`] (without the activation): copies a part's positions of
/// the output gradient `dprod` (`[out_ch, g * N]`, full resolution) into `dst` (`layout`).
fn gather_output_grad(
    geo: &ConvGeometry,
    part: &Part,
    dprod: &[f32],
    g: usize,
    layout: Layout,
    dst: &mut [f32],
) {
    let (ow_full, n_full) = (geo.out_w(), geo.positions());
    for o in 0..geo.out_ch {
        for j in 0..g {
            let src = &dprod[o * g * n_full + j * n_full..][..n_full];
            for oy in 0..part.oh {
                let at = (oy * part.step + part.y0) * ow_full + part.x0;
                let s = src[at..].iter().step_by(part.step);
                let row = &mut dst[layout.at(o, j, oy)..][..part.ow];
                row.iter_mut().zip(s).for_each(|(d, &v)| *d = v);
            }
        }
    }
}

/// Forward: `y = act(conv(up(x), w) + bias)`, `x: [batch, in_ch, in_h, in_w]`, `w: [out_ch,
/// in_ch, k, k]`, `bias: [out_ch]` (or none) -> `[batch, out_ch, out_h, out_w]`.
pub fn forward(
    geo: &ConvGeometry,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    act: Act,
) -> Vec<f32> {
    geo.check();
    assert_eq!(x.len(), geo.batch * geo.in_len(), "input size");
    assert_eq!(w.len(), geo.weight_len(), "weight size");
    let plan = Plan::new(geo, w);
    let mut y = vec![0f32; geo.batch * geo.out_len()];
    let ranges = ranges(geo.batch);
    let chunks = split_by_ranges(&mut y, &ranges, geo.out_len());
    let firsts = ranges.iter().map(|&(a, _)| a).collect::<Vec<_>>();
    firsts.into_par_iter().zip(chunks).for_each(|(first, out)| {
        let xs = &x[first * geo.in_len()..][..out.len() / geo.out_len() * geo.in_len()];
        if plan.in_place() {
            forward_in_place(&plan, geo, xs, bias, act, out);
        } else {
            forward_unfolded(&plan, geo, xs, bias, act, out);
        }
    });
    y
}

/// [`forward`] of the images `x` into `out` by the in-place form ([`InPlace`]).
fn forward_in_place(
    plan: &Plan,
    geo: &ConvGeometry,
    x: &[f32],
    bias: Option<&[f32]>,
    act: Act,
    out: &mut [f32],
) {
    let ip = InPlace::new(plan);
    let mut buf = Scratch::zeroed(plan.channels() * ip.chan);
    let mut prod = Scratch::new(geo.out_ch * ip.chan);
    let (images, group) = (out.len() / geo.out_len(), plan.group());
    let mut i = 0;
    while i < images {
        let g = group.min(images - i);
        ip.pad(plan, &x[i * geo.in_len()..], g, &mut buf);
        for (part, pw) in plan.parts.iter().zip(&plan.weights) {
            let (kk, n) = (part.k * part.k, ip.columns(part, g));
            let rows = plan.rows(part);
            for t in 0..kk {
                // prod[o, q] (+)= sum_c w[o, c, t] * buf[c, q + shift]
                let wv = View {
                    offset: t,
                    rs: rows,
                    cs: kk,
                };
                let xv = View {
                    offset: ip.shift(part, t),
                    rs: ip.chan,
                    cs: 1,
                };
                let pv = View {
                    offset: 0,
                    rs: ip.chan,
                    cs: 1,
                };
                gemm_views(
                    (geo.out_ch, n, plan.channels()),
                    (pw, wv),
                    (&buf, xv),
                    (&mut prod, pv),
                    t > 0,
                );
            }
            let dst = &mut out[i * geo.out_len()..];
            scatter_output(geo, part, &prod, ip.layout(), g, bias, act, dst);
        }
        i += g;
    }
}

/// [`forward`] of the images `x` into `out` by unfolding them ([`im2col`]).
fn forward_unfolded(
    plan: &Plan,
    geo: &ConvGeometry,
    x: &[f32],
    bias: Option<&[f32]>,
    act: Act,
    out: &mut [f32],
) {
    let mut cols = part_buffers(plan);
    let mut prod = product_buffer(plan, geo.out_ch);
    let (ph, pw) = padded_dims(&plan.padded);
    let mut buf = Scratch::zeroed(geo.in_ch * ph * pw);
    let (images, group) = (out.len() / geo.out_len(), plan.group());
    let mut i = 0;
    while i < images {
        let g = group.min(images - i);
        let xs = &x[i * geo.in_len()..(i + g) * geo.in_len()];
        im2col(plan, xs, g, &mut cols, &mut buf);
        for ((part, pw), col) in plan.parts.iter().zip(&plan.weights).zip(&cols) {
            let (n, kk) = (part.positions(), plan.rows(part));
            matmul(
                geo.out_ch,
                g * n,
                kk,
                pw,
                false,
                col,
                false,
                &mut prod,
                false,
            );
            let layout = Layout::unfolded(part, g);
            let dst = &mut out[i * geo.out_len()..];
            scatter_output(geo, part, &prod, layout, g, bias, act, dst);
        }
        i += g;
    }
}

/// What [`backward`] is given: the forward's input, weights, output and activation, and the
/// output gradient.
#[derive(Debug, Clone, Copy)]
pub struct BackwardInputs<'a> {
    /// Input `[batch, in_ch, in_h, in_w]`.
    pub x: &'a [f32],
    /// Weights `[out_ch, in_ch, k, k]`.
    pub w: &'a [f32],
    /// The forward's output (after the activation); read only when `act` is not
    /// [`Act::Identity`].
    pub y: &'a [f32],
    /// The activation of the forward.
    pub act: Act,
    /// Gradient of the output.
    pub dy: &'a [f32],
}

/// Gradients computed by [`backward`].
#[derive(Debug, Clone, PartialEq)]
pub struct Grads {
    /// Input gradient, when asked for.
    pub dx: Option<Vec<f32>>,
    /// Weight gradient, when asked for.
    pub dw: Option<Vec<f32>>,
    /// Bias gradient, with the weight gradient.
    pub db: Option<Vec<f32>>,
}

/// One range of images of a [`backward`] call: the images `first..end`, and the part of the
/// input gradient they fill, when asked for.
struct Range<'a> {
    first: usize,
    end: usize,
    dx: Option<&'a mut [f32]>,
}

/// Per-range sums of a [`backward`] call: each part's weight gradient and the bias gradient.
type Partial = (Vec<Vec<f32>>, Vec<f32>);

/// Gradients of [`forward`]: `dx` only when `want_dx`, `dw` and `db` only when `want_dw` (the
/// unfold of the input is needed for those alone).
pub fn backward(
    geo: &ConvGeometry,
    inputs: BackwardInputs<'_>,
    want_dx: bool,
    want_dw: bool,
) -> Grads {
    let BackwardInputs { x, w, y, act, dy } = inputs;
    geo.check();
    assert_eq!(x.len(), geo.batch * geo.in_len(), "input size");
    assert_eq!(w.len(), geo.weight_len(), "weight size");
    assert_eq!(dy.len(), geo.batch * geo.out_len(), "output gradient size");
    if act != Act::Identity {
        assert_eq!(y.len(), dy.len(), "output size");
    }
    let plan = Plan::new(geo, w);
    let mut dx = want_dx.then(|| vec![0f32; geo.batch * geo.in_len()]);
    let ranges = ranges(geo.batch);
    let dx_chunks: Vec<Option<&mut [f32]>> = match dx.as_mut() {
        Some(dx) => split_by_ranges(dx, &ranges, geo.in_len())
            .into_iter()
            .map(Some)
            .collect(),
        None => ranges.iter().map(|_| None).collect(),
    };
    let partials: Vec<Partial> = ranges
        .par_iter()
        .zip(dx_chunks.into_par_iter())
        .map(|(&(first, end), dx)| {
            let range = Range { first, end, dx };
            if plan.in_place() {
                backward_in_place(&plan, geo, &inputs, range, want_dw)
            } else {
                backward_unfolded(&plan, geo, &inputs, range, want_dw)
            }
        })
        .collect();
    if !want_dw {
        return Grads {
            dx,
            dw: None,
            db: None,
        };
    }
    let (mut dws, mut db) = zero_partial(&plan, geo);
    for (pws, pb) in partials {
        for (acc, pw) in dws.iter_mut().zip(&pws) {
            acc.iter_mut().zip(pw).for_each(|(a, b)| *a += b);
        }
        db.iter_mut().zip(&pb).for_each(|(a, b)| *a += b);
    }
    Grads {
        dx,
        dw: Some(plan.fold_weight_grads(geo, dws)),
        db: Some(db),
    }
}

/// Gradient of the pre-activation output of images `i..i + g` into `dprod` (`[out_ch, g * N]`),
/// adding its sums to the bias gradient `db`.
fn pre_activation_grad(
    geo: &ConvGeometry,
    inputs: &BackwardInputs<'_>,
    i: usize,
    g: usize,
    dprod: &mut [f32],
    db: &mut [f32],
) {
    let (act, n_full) = (inputs.act, geo.positions());
    for j in 0..g {
        for o in 0..geo.out_ch {
            let at = (i + j) * geo.out_len() + o * n_full;
            let dst = &mut dprod[o * g * n_full + j * n_full..][..n_full];
            let dy = &inputs.dy[at..at + n_full];
            let y = &inputs.y[at.min(inputs.y.len())..];
            match act {
                Act::Identity => dst.copy_from_slice(dy),
                Act::LeakyRelu(k) => grad_row(dst, dy, y, |yv, dv| Act::LeakyRelu(k).grad(yv, dv)),
                Act::Tanh => grad_row(dst, dy, y, |yv, dv| Act::Tanh.grad(yv, dv)),
            }
            db[o] += lane_sum(dst);
        }
    }
}

/// `dst[i] = f(y[i], dy[i])`.
#[inline(always)]
fn grad_row(dst: &mut [f32], dy: &[f32], y: &[f32], f: impl Fn(f32, f32) -> f32) {
    let y = &y[..dst.len()];
    dst.iter_mut()
        .zip(dy)
        .zip(y)
        .for_each(|((d, &dv), &yv)| *d = f(yv, dv));
}

/// The sum of `v` in eight interleaved partial sums (a fixed order the compiler can
/// vectorise).
fn lane_sum(v: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = v.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        acc.iter_mut().zip(c).for_each(|(a, &x)| *a += x);
    }
    acc.iter().sum::<f32>() + tail
}

/// Zeroed per-part weight gradients and bias gradient of one range.
fn zero_partial(plan: &Plan, geo: &ConvGeometry) -> Partial {
    let dws = plan.weights.iter().map(|w| vec![0f32; w.len()]).collect();
    (dws, vec![0f32; geo.out_ch])
}

/// [`backward`] of one range of images by the in-place form ([`InPlace`]).
fn backward_in_place(
    plan: &Plan,
    geo: &ConvGeometry,
    inputs: &BackwardInputs<'_>,
    mut range: Range<'_>,
    want_dw: bool,
) -> Partial {
    let (mut dws, mut db) = zero_partial(plan, geo);
    let ip = InPlace::new(plan);
    let group = plan.group();
    let mut dprod = Scratch::new(geo.out_ch * group * geo.positions());
    // Zero between output positions, and every part writes the same positions.
    let mut dpart = Scratch::zeroed(geo.out_ch * ip.chan);
    let mut buf = Scratch::zeroed(plan.channels() * ip.chan);
    let mut dbuf = Scratch::new(plan.channels() * ip.chan);
    let dv = View {
        offset: 0,
        rs: ip.chan,
        cs: 1,
    };
    let mut i = range.first;
    while i < range.end {
        let g = group.min(range.end - i);
        pre_activation_grad(geo, inputs, i, g, &mut dprod, &mut db);
        if want_dw {
            ip.pad(plan, &inputs.x[i * geo.in_len()..], g, &mut buf);
        }
        if range.dx.is_some() {
            dbuf.fill(0.0);
        }
        for (p, part) in plan.parts.iter().enumerate() {
            let (kk, n, rows) = (part.k * part.k, ip.columns(part, g), plan.rows(part));
            gather_output_grad(geo, part, &dprod, g, ip.layout(), &mut dpart);
            for t in 0..kk {
                let shift = ip.shift(part, t);
                // Weight taps w[o, c, t] and the tap's unfolded input, read in place.
                let wv = View {
                    offset: t,
                    rs: rows,
                    cs: kk,
                };
                let xv = View {
                    offset: shift,
                    rs: ip.chan,
                    cs: 1,
                };
                if want_dw {
                    // dw[o, c, t] += sum_q dy[o, q] * buf[c, q + shift]
                    let xt = View {
                        offset: shift,
                        rs: 1,
                        cs: ip.chan,
                    };
                    gemm_views(
                        (geo.out_ch, plan.channels(), n),
                        (&dpart, dv),
                        (&buf, xt),
                        (&mut dws[p], wv),
                        true,
                    );
                }
                if range.dx.is_some() {
                    // dbuf[c, q + shift] += sum_o w[o, c, t] * dy[o, q]
                    let wt = View {
                        offset: t,
                        rs: kk,
                        cs: rows,
                    };
                    gemm_views(
                        (plan.channels(), n, geo.out_ch),
                        (&plan.weights[p], wt),
                        (&dpart, dv),
                        (&mut dbuf, xv),
                        true,
                    );
                }
            }
        }
        if let Some(dx) = range.dx.as_deref_mut() {
            for j in 0..g {
                let img = &mut dx[(i - range.first + j) * geo.in_len()..][..geo.in_len()];
                ip.unpad_add(plan, &dbuf[j * ip.plane..], img);
            }
        }
        i += g;
    }
    (dws, db)
}

/// [`backward`] of one range of images by unfolding them ([`im2col`], [`col2im`]).
fn backward_unfolded(
    plan: &Plan,
    geo: &ConvGeometry,
    inputs: &BackwardInputs<'_>,
    mut range: Range<'_>,
    want_dw: bool,
) -> Partial {
    let (mut dws, mut db) = zero_partial(plan, geo);
    let group = plan.group();
    let mut cols = part_buffers(plan);
    let mut dprod = Scratch::new(geo.out_ch * group * geo.positions());
    let mut dpart = product_buffer(plan, geo.out_ch);
    let (ph, pw) = padded_dims(&plan.padded);
    let mut buf = Scratch::zeroed(geo.in_ch * ph * pw);
    let mut dbuf = Scratch::new(geo.in_ch * ph * pw);
    let mut i = range.first;
    while i < range.end {
        let g = group.min(range.end - i);
        pre_activation_grad(geo, inputs, i, g, &mut dprod, &mut db);
        if want_dw {
            let xs = &inputs.x[i * geo.in_len()..(i + g) * geo.in_len()];
            im2col(plan, xs, g, &mut cols, &mut buf);
        }
        for (p, part) in plan.parts.iter().enumerate() {
            let (n, kk) = (part.positions(), plan.rows(part));
            // This part's output gradient, [out_ch, g * N_p].
            let dp: &[f32] = if plan.is_direct() {
                &dprod
            } else {
                gather_output_grad(geo, part, &dprod, g, Layout::unfolded(part, g), &mut dpart);
                &dpart
            };
            if want_dw {
                // dW_p += dY_p [out_ch, gN_p] * col_p^T [gN_p, K_p]
                matmul(
                    geo.out_ch,
                    kk,
                    g * n,
                    dp,
                    false,
                    &cols[p],
                    true,
                    &mut dws[p],
                    true,
                );
            }
            if range.dx.is_some() {
                // dcol_p [K_p, gN_p] = W_p^T [K_p, out_ch] * dY_p [out_ch, gN_p]
                let wp = &plan.weights[p];
                matmul(
                    kk,
                    g * n,
                    geo.out_ch,
                    wp,
                    true,
                    dp,
                    false,
                    &mut cols[p],
                    false,
                );
            }
        }
        if let Some(dx) = range.dx.as_deref_mut() {
            let off = (i - range.first) * geo.in_len();
            col2im(
                plan,
                &cols,
                g,
                &mut dx[off..off + g * geo.in_len()],
                &mut dbuf,
            );
        }
        i += g;
    }
    (dws, db)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct definition of the convolution, for checking the kernels.
    fn naive(geo: &ConvGeometry, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
        let (oh, ow) = (geo.out_h(), geo.out_w());
        let (vh, vw) = (geo.in_h * geo.up, geo.in_w * geo.up);
        let mut y = vec![0f32; geo.batch * geo.out_len()];
        for b in 0..geo.batch {
            for o in 0..geo.out_ch {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut s = bias.map_or(0.0, |b| b[o]);
                        for c in 0..geo.in_ch {
                            for ky in 0..geo.k {
                                for kx in 0..geo.k {
                                    let yy = (oy * geo.stride + ky) as isize - geo.pad as isize;
                                    let xx = (ox * geo.stride + kx) as isize - geo.pad as isize;
                                    if yy < 0 || xx < 0 || yy >= vh as isize || xx >= vw as isize {
                                        continue;
                                    }
                                    let (iy, ix) = (yy as usize / geo.up, xx as usize / geo.up);
                                    s += w[((o * geo.in_ch + c) * geo.k + ky) * geo.k + kx]
                                        * x[((b * geo.in_ch + c) * geo.in_h + iy) * geo.in_w + ix];
                                }
                            }
                        }
                        y[((b * geo.out_ch + o) * oh + oy) * ow + ox] = s;
                    }
                }
            }
        }
        y
    }

    fn values(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(12345);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    fn geometries() -> Vec<ConvGeometry> {
        let g = |batch, in_ch, in_h, out_ch, k, stride, pad, up| ConvGeometry {
            batch,
            in_ch,
            in_h,
            in_w: in_h,
            out_ch,
            k,
            stride,
            pad,
            up,
        };
        vec![
            g(3, 2, 4, 3, 3, 1, 1, 2),  // generator block, small
            g(5, 3, 5, 2, 3, 1, 1, 1),  // plain 3x3
            g(4, 1, 8, 3, 4, 2, 1, 1),  // discriminator downsampler
            g(2, 3, 6, 4, 4, 2, 1, 1),  // second downsampler
            g(3, 2, 7, 3, 3, 2, 1, 1),  // stride 2, odd kernel: the unfold form
            g(2, 2, 5, 3, 3, 1, 0, 1),  // no padding
            g(70, 2, 7, 2, 3, 1, 1, 2), // more images than one group
            g(70, 1, 8, 2, 4, 2, 1, 1), // the same, space to depth
        ]
    }

    #[test]
    fn forward_matches_the_definition() {
        for (i, geo) in geometries().into_iter().enumerate() {
            let x = values(geo.batch * geo.in_len(), i as u32);
            let w = values(geo.weight_len(), 100 + i as u32);
            let b = values(geo.out_ch, 200 + i as u32);
            let got = forward(&geo, &x, &w, Some(&b), Act::Identity);
            let want = naive(&geo, &x, &w, Some(&b));
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-4, "{geo:?}: {g} vs {w}");
            }
        }
    }

    /// Gradients against the adjoint identity <conv(x), dy> = <x, dx> = <w, dw>, checked
    /// elementwise by central differences of the (linear) forward map.
    #[test]
    fn gradients_match_finite_differences() {
        for (i, geo) in geometries().into_iter().enumerate() {
            let x = values(geo.batch * geo.in_len(), i as u32);
            let w = values(geo.weight_len(), 100 + i as u32);
            let dy = values(geo.batch * geo.out_len(), 300 + i as u32);
            let inputs = BackwardInputs {
                x: &x,
                w: &w,
                y: &[],
                act: Act::Identity,
                dy: &dy,
            };
            let grads = backward(&geo, inputs, true, true);
            let (dx, dw, db) = (grads.dx.unwrap(), grads.dw.unwrap(), grads.db.unwrap());
            let loss = |x: &[f32], w: &[f32], b: &[f32]| -> f64 {
                forward(&geo, x, w, Some(b), Act::Identity)
                    .iter()
                    .zip(&dy)
                    .map(|(a, b)| *a as f64 * *b as f64)
                    .sum()
            };
            let zero_b = vec![0f32; geo.out_ch];
            // The loss is linear in each argument, so a unit step gives the exact derivative.
            for idx in [0, x.len() / 2, x.len() - 1] {
                let mut xp = x.clone();
                xp[idx] += 1.0;
                let d = loss(&xp, &w, &zero_b) - loss(&x, &w, &zero_b);
                assert!((d - dx[idx] as f64).abs() < 1e-3, "{geo:?} dx[{idx}]");
            }
            for idx in 0..w.len() {
                let mut wp = w.clone();
                wp[idx] += 1.0;
                let d = loss(&x, &wp, &zero_b) - loss(&x, &w, &zero_b);
                assert!((d - dw[idx] as f64).abs() < 1e-3, "{geo:?} dw[{idx}]");
            }
            for o in 0..geo.out_ch {
                let want: f32 = dy[..]
                    .chunks(geo.out_len())
                    .map(|img| {
                        img[o * geo.out_h() * geo.out_w()..][..geo.out_h() * geo.out_w()]
                            .iter()
                            .sum::<f32>()
                    })
                    .sum();
                assert!((want - db[o]).abs() < 1e-3, "{geo:?} db[{o}]");
            }
        }
    }
}
