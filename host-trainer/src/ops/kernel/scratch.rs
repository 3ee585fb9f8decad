//! A per-thread pool of `f32` buffers, so that the kernels' scratch space is reused from one
//! call to the next.

use std::cell::RefCell;

thread_local! {
    /// Buffers of this thread's earlier kernel calls, kept for the next ones.
    static POOL: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
}

/// A scratch buffer of `len` values whose contents are left over from earlier calls on the same
/// thread (zero only where it grew): every user writes before it reads, or clears it. Taken
/// from and given back to a per-thread pool, so a training step allocates none of its scratch
/// buffers and zeroes only those whose zeros it reads ([`Scratch::zeroed`]; zeroing every
/// buffer was 8% of a step).
pub(super) struct Scratch(Vec<f32>);

impl Scratch {
    pub(super) fn new(len: usize) -> Self {
        let mut v = POOL.with(|p| p.borrow_mut().pop()).unwrap_or_default();
        v.resize(len, 0.0);
        Self(v)
    }

    /// A buffer of `len` zeros.
    pub(super) fn zeroed(len: usize) -> Self {
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
