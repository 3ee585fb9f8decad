//! Matrix products through the `gemm` crate (the one burn-flex uses), on matrices given as
//! strided views into slices, so that a kernel can hand it the padded planes as they lie.

/// A matrix inside a slice: element `(i, j)` is `data[offset + i * rs + j * cs]`.
#[derive(Debug, Clone, Copy)]
pub(super) struct View {
    pub(super) offset: usize,
    pub(super) rs: usize,
    pub(super) cs: usize,
}

impl View {
    /// A row-major matrix with `cols` columns at the start of its slice.
    pub(super) fn rows(cols: usize) -> Self {
        Self {
            offset: 0,
            rs: cols,
            cs: 1,
        }
    }

    /// The transpose of a row-major matrix with `cols` columns.
    pub(super) fn transposed(cols: usize) -> Self {
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
pub(super) fn gemm_views(
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
pub(super) fn matmul(
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
