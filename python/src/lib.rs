//! `aigcmn._native`: the Rust half of the Python package `aigcmn`.
//!
//! The Python wrapper (`python/aigcmn/__init__.py`) turns tensors, arrays, lists and
//! strings into a `bytes` of labels, a base seed and a thread count; this module runs
//! [`generator_core`] on them across threads (`generator_core::threads`) with the GIL
//! released, writing straight into the returned object, and hands back either the raw
//! images or the floats of [`generator_core::to_signed_unit`] (`p / 127.5 - 1` in `f32`),
//! so the Python side never re-implements the pixel formula.

#![deny(missing_docs)]

use std::num::NonZeroUsize;
use std::time::Instant;

use generator_core::{Generator, IMAGE_PIXELS, Model, NUM_CLASSES, threads};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes};

/// Why a batch could not be generated; turned into `ValueError` at the boundary.
#[derive(Debug)]
enum BatchError {
    /// Label `value` at position `index` is not a digit.
    Label { index: usize, value: u8 },
    /// The core refused (bad model, arena, ...).
    Core(generator_core::Error),
    /// A thread count outside `1..=MAX_THREADS`.
    Threads(threads::ThreadsError),
}

impl From<BatchError> for PyErr {
    fn from(e: BatchError) -> PyErr {
        match e {
            BatchError::Label { index, value } => {
                PyValueError::new_err(format!("label {value} at index {index} is outside 0-9"))
            }
            BatchError::Core(e) => PyValueError::new_err(format!("generator: {e}")),
            BatchError::Threads(e) => PyValueError::new_err(e.to_string()),
        }
    }
}

/// A validated model plus the batch routines. Holds the model file's bytes (or uses the
/// embedded default) and decodes them per batch, which is cheap next to one image.
#[pyclass(module = "aigcmn._native", frozen)]
#[derive(Debug)]
struct Engine {
    /// The `.dgen` bytes; `None` for the model shipped in generator-core.
    model: Option<Vec<u8>>,
}

impl Engine {
    fn bytes(&self) -> &[u8] {
        self.model
            .as_deref()
            .unwrap_or(generator_core::DEFAULT_MODEL)
    }

    fn decode(&self) -> Result<Model<'_>, BatchError> {
        Model::from_bytes(self.bytes()).map_err(BatchError::Core)
    }

    /// Checks the labels (the error names the first bad one) and the thread count.
    fn check(&self, labels: &[u8], threads: usize) -> Result<NonZeroUsize, BatchError> {
        if let Some((index, &value)) = labels
            .iter()
            .enumerate()
            .find(|&(_, &d)| d as usize >= NUM_CLASSES)
        {
            return Err(BatchError::Label { index, value });
        }
        threads::check_threads(threads).map_err(BatchError::Threads)
    }
}

#[pymethods]
impl Engine {
    /// Validates `model` (the bytes of a `.dgen` file; `None` = the shipped model).
    /// Raises `ValueError` naming the problem (bad magic, checksum, shapes, ...).
    #[new]
    #[pyo3(signature = (model=None))]
    fn new(model: Option<Vec<u8>>) -> PyResult<Self> {
        let engine = Engine { model };
        engine.decode()?;
        Ok(engine)
    }

    /// Arena bytes the model needs (scratch memory per generation).
    #[getter]
    fn arena_bytes(&self) -> PyResult<usize> {
        Ok(self.decode()?.arena_bytes())
    }

    /// Size in bytes of the model file.
    #[getter]
    fn model_bytes(&self) -> usize {
        self.bytes().len()
    }

    /// Raw images: `len(labels) * 784` bytes, image `i` from seed `seed + i` (mod 2**32),
    /// row-major, 0 = background, 255 = ink. `labels` holds one byte per digit; the
    /// batch is split across `threads` threads (the bytes do not depend on it).
    fn generate_u8<'py>(
        &self,
        py: Python<'py>,
        labels: &[u8],
        seed: u32,
        threads: usize,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let threads = self.check(labels, threads)?;
        let model = self.decode()?;
        // The new object is not reachable from Python until this returns, so its
        // buffer can be filled with the GIL released.
        PyBytes::new_with(py, labels.len() * IMAGE_PIXELS, |buf| {
            py.detach(|| {
                let (images, _) = buf.as_chunks_mut::<IMAGE_PIXELS>();
                threads::generate_batch_threads(&model, labels, seed, images, threads)
            })
            .map_err(|e| BatchError::Core(e).into())
        })
    }

    /// The same images as float32 `p / 127.5 - 1` (generator-core's `to_signed_unit`),
    /// native byte order, `len(labels) * 784 * 4` bytes in a writable `bytearray`,
    /// converted on the generating threads.
    fn generate_f32<'py>(
        &self,
        py: Python<'py>,
        labels: &[u8],
        seed: u32,
        threads: usize,
    ) -> PyResult<Bound<'py, PyByteArray>> {
        let threads = self.check(labels, threads)?;
        let model = self.decode()?;
        // As in `generate_u8`: filled before Python can see it.
        PyByteArray::new_with(py, labels.len() * IMAGE_PIXELS * 4, |buf| {
            py.detach(|| {
                threads::generate_batch_threads_f32_bytes(&model, labels, seed, buf, threads)
            })
            .map_err(|e| BatchError::Core(e).into())
        })
    }

    /// Benchmark reference: seconds per run of the bare core loop (one arena, one image
    /// buffer, `Generator::generate` per label, no Python objects), `runs` times, GIL
    /// released. Compare with the wall time of `AiGcMn.generator` on the same labels.
    fn core_batch_seconds(
        &self,
        py: Python<'_>,
        labels: &[u8],
        seed: u32,
        runs: usize,
    ) -> PyResult<Vec<f64>> {
        let times = py.detach(|| -> Result<Vec<f64>, BatchError> {
            let model = self.decode()?;
            let mut arena = [0u8; generator_core::MAX_ARENA_BYTES];
            let mut generator = Generator::new(&model, &mut arena).map_err(BatchError::Core)?;
            let mut image = [0u8; IMAGE_PIXELS];
            let mut times = Vec::with_capacity(runs);
            for _ in 0..runs {
                let start = Instant::now();
                for (i, &d) in labels.iter().enumerate() {
                    generator
                        .generate(d, seed.wrapping_add(i as u32), &mut image)
                        .map_err(BatchError::Core)?;
                    std::hint::black_box(&image);
                }
                times.push(start.elapsed().as_secs_f64());
            }
            Ok(times)
        })?;
        Ok(times)
    }
}

/// The default thread count: `DGEN_THREADS` when set, else the host's available
/// parallelism. `ValueError` naming the variable if its value is not a count.
#[pyfunction]
fn default_threads() -> PyResult<usize> {
    threads::default_threads()
        .map(NonZeroUsize::get)
        .map_err(|e| PyValueError::new_err(e.to_string()))
}

/// The compiled half of `aigcmn`.
#[pymodule(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Engine>()?;
    m.add_function(wrap_pyfunction!(default_threads, m)?)?;
    m.add("MAX_THREADS", threads::MAX_THREADS)?;
    m.add("THREADS_ENV", threads::THREADS_ENV)?;
    m.add("IMAGE_SIDE", generator_core::IMAGE_SIDE)?;
    m.add("DEFAULT_MODEL_BYTES", generator_core::DEFAULT_MODEL.len())?;
    Ok(())
}
