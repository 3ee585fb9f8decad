//! `memcpy` and `memmove` for `lm3s811evb`, a word at a time when both pointers allow it,
//! else a byte at a time: 0.2 KB of flash instead of the 2.3 KB of the speed-tuned
//! versions in `compiler_builtins` (which defines them weak, so these take their place
//! and its `__aeabi_memcpy*` / `__aeabi_memmove*` call them). The copies they serve are
//! short: convolution taps of 8 or 16 bytes, a window row of 224.
//!
//! Each loop goes through `read_volatile` / `write_volatile`, so that LLVM cannot
//! recognise it as a copy and turn it back into a call of the function it is in.

use core::ptr::{read_volatile, write_volatile};

/// Copies `n` bytes from `src` to `dst`, first to last; with `dst <= src` this is also
/// correct for overlapping ranges.
///
/// # Safety
///
/// `src` must be valid for `n` bytes of reads and `dst` for `n` bytes of writes.
unsafe fn forward(dst: *mut u8, src: *const u8, n: usize) {
    let mut i = 0;
    if (dst as usize | src as usize).is_multiple_of(4) {
        while i + 4 <= n {
            // SAFETY: `i + 4 <= n` and both pointers are word-aligned (the caller's
            // ranges, checked alignment).
            unsafe {
                let word = read_volatile(src.add(i).cast::<u32>());
                write_volatile(dst.add(i).cast::<u32>(), word);
            }
            i += 4;
        }
    }
    while i < n {
        // SAFETY: `i < n`, within the caller's ranges.
        unsafe { write_volatile(dst.add(i), read_volatile(src.add(i))) };
        i += 1;
    }
}

/// Copies `n` bytes from `src` to `dst`, last to first: correct for overlapping ranges
/// with `dst > src`.
///
/// # Safety
///
/// As [`forward`].
unsafe fn backward(dst: *mut u8, src: *const u8, n: usize) {
    let mut i = n;
    while i > 0 {
        i -= 1;
        // SAFETY: `i < n`, within the caller's ranges.
        unsafe { write_volatile(dst.add(i), read_volatile(src.add(i))) };
    }
}

/// The Arm EABI's `memcpy` (what LLVM calls for a copy on this target).
///
/// # Safety
///
/// `src` valid for `n` bytes of reads, `dst` for `n` bytes of writes, not overlapping.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __aeabi_memcpy(dst: *mut u8, src: *const u8, n: usize) {
    // SAFETY: the caller's contract.
    unsafe { forward(dst, src, n) };
}

/// [`__aeabi_memcpy`] for word-aligned pointers (the EABI's promise, checked anyway).
///
/// # Safety
///
/// As [`__aeabi_memcpy`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __aeabi_memcpy4(dst: *mut u8, src: *const u8, n: usize) {
    // SAFETY: the caller's contract.
    unsafe { forward(dst, src, n) };
}

/// [`__aeabi_memcpy`] for 8-byte-aligned pointers.
///
/// # Safety
///
/// As [`__aeabi_memcpy`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __aeabi_memcpy8(dst: *mut u8, src: *const u8, n: usize) {
    // SAFETY: the caller's contract.
    unsafe { forward(dst, src, n) };
}

/// The Arm EABI's `memmove`.
///
/// # Safety
///
/// `src` valid for `n` bytes of reads, `dst` for `n` bytes of writes; they may overlap.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __aeabi_memmove(dst: *mut u8, src: *const u8, n: usize) {
    // SAFETY: the caller's contract; the direction keeps every byte read before it is
    // overwritten.
    unsafe {
        if (dst as usize) <= (src as usize) {
            forward(dst, src, n);
        } else {
            backward(dst, src, n);
        }
    }
}

/// The Arm EABI's `memset` (note the order: length before value).
///
/// # Safety
///
/// `dst` valid for `n` bytes of writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __aeabi_memset(dst: *mut u8, n: usize, value: i32) {
    for i in 0..n {
        // SAFETY: `i < n`, within the caller's range.
        unsafe { write_volatile(dst.add(i), value as u8) };
    }
}

/// [`__aeabi_memset`] for word-aligned pointers.
///
/// # Safety
///
/// As [`__aeabi_memset`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __aeabi_memset4(dst: *mut u8, n: usize, value: i32) {
    // SAFETY: the caller's contract.
    unsafe { __aeabi_memset(dst, n, value) };
}

/// The Arm EABI's zero fill.
///
/// # Safety
///
/// As [`__aeabi_memset`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __aeabi_memclr(dst: *mut u8, n: usize) {
    // SAFETY: the caller's contract.
    unsafe { __aeabi_memset(dst, n, 0) };
}

/// [`__aeabi_memclr`] for word-aligned pointers.
///
/// # Safety
///
/// As [`__aeabi_memset`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __aeabi_memclr4(dst: *mut u8, n: usize) {
    // SAFETY: the caller's contract.
    unsafe { __aeabi_memset(dst, n, 0) };
}
