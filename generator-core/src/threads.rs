//! Batches across threads (feature `std`, hosts only): the batch is cut into contiguous
//! chunks (four per thread, so that a thread on a less busy core takes more of them),
//! and each thread runs its own [`Generator`] over its own arena.
//!
//! Image `i` of a batch is always digit `labels[i]` from seed `seed + i` (wrapping), the
//! schedule of [`Generator::generate_batch`], and each image is a function of `(model,
//! digit, seed)` alone, so the bytes do not depend on the thread count.
//!
//! The thread count is an argument; [`default_threads`] gives the usual default: the
//! environment variable [`THREADS_ENV`] (`DGEN_THREADS`) when set, else
//! [`std::thread::available_parallelism`].

use std::ffi::OsStr;
use std::fmt;
use std::num::NonZeroUsize;
use std::sync::Mutex;

use crate::{Error, Generator, IMAGE_PIXELS, Image, MAX_ARENA_BYTES, Model, NUM_CLASSES, Result};

/// The environment variable that sets the default thread count: a whole number from 1
/// to [`MAX_THREADS`].
pub const THREADS_ENV: &str = "DGEN_THREADS";

/// The largest thread count accepted: a sanity bound against typos, far above any core
/// count the host is likely to have.
pub const MAX_THREADS: usize = 1024;

/// A thread count that is not a whole number from 1 to [`MAX_THREADS`]; its message
/// names the value and, when it came from there, the environment variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadsError {
    /// The refused value as given.
    value: String,
    /// Whether it came from [`THREADS_ENV`].
    from_env: bool,
}

impl fmt::Display for ThreadsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.from_env {
            write!(f, "{THREADS_ENV}={:?}: ", self.value)?;
        } else {
            write!(f, "threads {:?}: ", self.value)?;
        }
        write!(
            f,
            "the thread count must be a whole number from 1 to {MAX_THREADS}"
        )
    }
}

impl std::error::Error for ThreadsError {}

/// Checks a thread count given as a number: `1..=MAX_THREADS`.
pub fn check_threads(n: usize) -> core::result::Result<NonZeroUsize, ThreadsError> {
    NonZeroUsize::new(n)
        .filter(|n| n.get() <= MAX_THREADS)
        .ok_or_else(|| ThreadsError {
            value: n.to_string(),
            from_env: false,
        })
}

/// Parses a thread count written in decimal (surrounding spaces allowed): `1..=MAX_THREADS`.
pub fn parse_threads(text: &str) -> core::result::Result<NonZeroUsize, ThreadsError> {
    let refused = || ThreadsError {
        value: text.to_owned(),
        from_env: false,
    };
    let t = text.trim();
    // `usize::from_str` takes a leading `+`; a thread count is plain digits.
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(refused());
    }
    let n: usize = t.parse().map_err(|_| refused())?;
    check_threads(n).map_err(|_| refused())
}

/// The default thread count for a value of [`THREADS_ENV`] (`None`: not set): the
/// value if it is valid, an error naming the variable if not, and the host's
/// [`std::thread::available_parallelism`] (1 if unknown) when it is not set.
pub fn threads_from_env_value(
    value: Option<&OsStr>,
) -> core::result::Result<NonZeroUsize, ThreadsError> {
    match value {
        None => Ok(std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN)),
        Some(v) => {
            let text = v.to_string_lossy();
            parse_threads(&text).map_err(|_| ThreadsError {
                value: text.into_owned(),
                from_env: true,
            })
        }
    }
}

/// The default thread count: [`THREADS_ENV`] if set (an error if it is not a valid
/// count), else [`std::thread::available_parallelism`].
pub fn default_threads() -> core::result::Result<NonZeroUsize, ThreadsError> {
    threads_from_env_value(std::env::var_os(THREADS_ENV).as_deref())
}

/// [`Generator::generate_batch`] on up to `threads` threads: `labels.len()` images into
/// `out[..labels.len()]`, image `i` of digit `labels[i]` from seed `seed + i`
/// (wrapping). The same bytes for every thread count.
///
/// The batch is cut into contiguous chunks (four per thread) that the calling thread
/// and up to `threads - 1` scoped threads take in turn, each thread with its own arena
/// ([`MAX_ARENA_BYTES`] on its stack) and [`Generator`].
/// [`Error::BufferTooSmall`] if `out` is shorter than `labels`,
/// [`Error::InvalidDigit`] (before anything is generated) for a label above 9.
pub fn generate_batch_threads(
    model: &Model<'_>,
    labels: &[u8],
    seed: u32,
    out: &mut [Image],
    threads: NonZeroUsize,
) -> Result<()> {
    let out = out.get_mut(..labels.len()).ok_or(Error::BufferTooSmall)?;
    batch_with(
        model,
        labels,
        seed,
        out,
        1,
        threads,
        |g, digit, seed, img| g.generate(digit, seed, &mut img[0]),
    )
}

/// [`generate_batch_threads`] writing each image as the floats of
/// [`crate::to_signed_unit`] (`p / 127.5 - 1`, `f32`), `IMAGE_PIXELS` values per image
/// in native byte order (4 bytes each) into `out` (at least `labels.len() * 784 * 4`
/// bytes, any alignment; [`Error::BufferTooSmall`] otherwise): the conversion runs on
/// the threads too.
pub fn generate_batch_threads_f32_bytes(
    model: &Model<'_>,
    labels: &[u8],
    seed: u32,
    out: &mut [u8],
    threads: NonZeroUsize,
) -> Result<()> {
    let per_image = IMAGE_PIXELS * 4;
    let needed = labels
        .len()
        .checked_mul(per_image)
        .ok_or(Error::BufferTooSmall)?;
    let out = out.get_mut(..needed).ok_or(Error::BufferTooSmall)?;
    batch_with(
        model,
        labels,
        seed,
        out,
        per_image,
        threads,
        |g, digit, seed, dst| {
            let mut img: Image = [0; IMAGE_PIXELS];
            g.generate(digit, seed, &mut img)?;
            for (&p, d) in img.iter().zip(dst.chunks_exact_mut(4)) {
                d.copy_from_slice(&crate::pixel_to_signed_unit(p).to_ne_bytes());
            }
            Ok(())
        },
    )
}

/// Chunks per thread: a thread that finishes early (its core was less busy) takes
/// another chunk, so a core shared with another process does not hold the batch up.
const CHUNKS_PER_THREAD: usize = 4;

/// The batch driver: `out` holds `per_image` items per label (exactly), cut into
/// contiguous chunks of whole images; `each(generator, digit, seed, items)` fills one
/// image's items. Labels are checked before any work.
///
/// The calling thread and up to `threads - 1` scoped threads take chunks from a shared
/// list until it is empty, each with its own [`Generator`] and arena; which thread runs
/// a chunk does not change its bytes. A thread that cannot be started is not needed
/// (the others take its chunks), so this does not panic on that either.
fn batch_with<T: Send>(
    model: &Model<'_>,
    labels: &[u8],
    seed: u32,
    out: &mut [T],
    per_image: usize,
    threads: NonZeroUsize,
    each: impl Fn(&mut Generator<'_, '_>, u8, u32, &mut [T]) -> Result<()> + Sync,
) -> Result<()> {
    if labels.iter().any(|&d| d as usize >= NUM_CLASSES) {
        return Err(Error::InvalidDigit);
    }
    if labels.is_empty() || per_image == 0 {
        return Ok(());
    }
    debug_assert_eq!(out.len(), labels.len() * per_image);
    let threads = threads.get().min(labels.len());
    let chunk = labels
        .len()
        .div_ceil(threads.saturating_mul(CHUNKS_PER_THREAD))
        .max(1);
    // `(first image, its labels, its items)`, taken from the end.
    let jobs: Vec<(usize, &[u8], &mut [T])> = labels
        .chunks(chunk)
        .zip(out.chunks_mut(chunk * per_image))
        .enumerate()
        .map(|(i, (l, o))| (i * chunk, l, o))
        .rev()
        .collect();
    let jobs = Mutex::new(jobs);
    let work = || -> Result<()> {
        let mut arena = [0u8; MAX_ARENA_BYTES];
        let mut g = Generator::new(model, &mut arena)?;
        let mut result = Ok(());
        // Nothing panics while the lock is held, so it cannot be poisoned.
        while let Some((first, labels, out)) = jobs.lock().map_or(None, |mut j| j.pop()) {
            for (k, (&digit, items)) in labels
                .iter()
                .zip(out.chunks_exact_mut(per_image))
                .enumerate()
            {
                let s = seed.wrapping_add((first + k) as u32);
                result = result.and_then(|()| each(&mut g, digit, s, items));
            }
        }
        result
    };
    if threads == 1 {
        return work();
    }
    std::thread::scope(|s| {
        let work = &work;
        let handles: Vec<_> = (1..threads)
            .filter_map(|_| std::thread::Builder::new().spawn_scoped(s, work).ok())
            .collect();
        let mut result = work();
        for h in handles {
            // A panic in a worker is re-raised here, as the single-thread loop would.
            let r = h.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            result = result.and(r);
        }
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_checked() {
        assert_eq!(parse_threads("1").map(NonZeroUsize::get), Ok(1));
        assert_eq!(parse_threads(" 3\n").map(NonZeroUsize::get), Ok(3));
        assert_eq!(parse_threads("1024").map(NonZeroUsize::get), Ok(1024));
        for bad in [
            "",
            " ",
            "0",
            "-1",
            "+2",
            "1025",
            "two",
            "1.5",
            "99999999999999999999999",
        ] {
            let e = parse_threads(bad).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("threads {bad:?}: the thread count must be a whole number from 1 to 1024")
            );
        }
        assert!(check_threads(0).is_err());
        assert!(check_threads(MAX_THREADS + 1).is_err());
        assert_eq!(check_threads(2).map(NonZeroUsize::get), Ok(2));
    }

    #[test]
    fn environment_value() {
        let host = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        assert_eq!(
            threads_from_env_value(None).map(NonZeroUsize::get),
            Ok(host)
        );
        assert_eq!(
            threads_from_env_value(Some(OsStr::new("2"))).map(NonZeroUsize::get),
            Ok(2)
        );
        let e = threads_from_env_value(Some(OsStr::new("all"))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "DGEN_THREADS=\"all\": the thread count must be a whole number from 1 to 1024"
        );
        assert!(threads_from_env_value(Some(OsStr::new("0"))).is_err());
    }
}
