//! Streaming generation: the last layers run a few rows at a time, so their full-size
//! maps never exist.
//!
//! The whole-image [`Generator`](crate::Generator) keeps every layer's full output in a
//! ping-pong arena; for the shipped model the largest, `28 x 28 x 8` bytes, is most of
//! it. [`StreamGenerator`] instead runs the leading layers whole and the trailing
//! convolutions (at most two) by rows:
//!
//! - the last layer (`28 x 28 x 1`) writes each output row straight into the caller's
//!   image, which is then mapped through the output table in place;
//! - the layer before it, if it is a convolution too, keeps only a window of the three
//!   output rows that the next image row reads, sliding down one row at a time.
//!
//! For the shipped model the arena shrinks from 9,408 to 3,920 bytes (`7 x 7 x 16`
//! linear output, `14 x 14 x 16` map, and the `3 x 28 x 8` window in the space of the
//! first). Every row comes from [`crate::ops::conv::conv3x3_rows`], which gives the same bytes
//! as the whole-map kernel, so the images are bit-identical to [`Generator`]'s.
//!
//! A layer run by rows would merge its phase weights again on every call; with
//! [`StreamGenerator::with_weight_cache`] they are prepared once, when the generator is
//! made, in a caller-owned buffer of [`StreamGenerator::weight_cache_words`] words
//! (1,060 for the shipped model, 4,240 bytes): the same bytes, fewer instructions. If the
//! buffer holds [`StreamGenerator::SCRATCH_WORDS`] more, the row-by-row calls use them as
//! the kernels' scratch instead of a fresh stack buffer that each call would zero.
//!
//! [`Generator`]: crate::Generator

use crate::generate::{float_input, quantize_network_input, run_ping_pong};
use crate::ops::{activation, conv};
use crate::{Error, IMAGE_SIDE, INPUT_DIM, Image, Layer, LayerShape, Model, Result};

/// Rows of the second-to-last layer's output kept at once: one image row of a 3x3
/// convolution reads three.
pub(crate) const WINDOW_ROWS: usize = 3;

/// How a model is split for streaming.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Plan {
    /// Layers run whole, through the ping-pong regions.
    front: usize,
    /// Bytes of the two ping-pong regions; the window lives in region `front % 2`.
    regions: [usize; 2],
    /// Bytes of one output row of the windowed layer (`0` without one).
    window_row: usize,
}

impl Plan {
    fn new(model: &Model<'_>) -> Plan {
        let layers = model.layers();
        let is_conv = |l: &Layer<'_>| matches!(l.shape(), LayerShape::Conv3x3 { .. });
        // Trailing convolutions that stream: the last writes image rows, the one before
        // it (if any) fills the window.
        let tail = layers
            .iter()
            .rev()
            .take(2)
            .take_while(|l| is_conv(l))
            .count();
        let front = layers.len() - tail;
        let mut regions = [0usize; 2];
        for (i, l) in layers[..front].iter().enumerate() {
            regions[i % 2] = regions[i % 2].max(l.output_len());
        }
        let window_row = if tail == 2 {
            let (_, w, c) = layers[front].shape().output_hwc();
            (w * c) as usize
        } else {
            0
        };
        regions[front % 2] = regions[front % 2].max(WINDOW_ROWS * window_row);
        Plan {
            front,
            regions,
            window_row,
        }
    }
}

/// Generates digits like [`crate::Generator`], bit for bit, in a smaller arena
/// ([`StreamGenerator::arena_bytes`]), by computing the last layers row by row (see the
/// module docs).
#[derive(Debug)]
pub struct StreamGenerator<'m, 'a> {
    model: &'m Model<'m>,
    arena: &'a mut [u8],
    plan: Plan,
    /// Prepared weights of the streamed layers, in order (empty: merged per call).
    cache: &'a [u32],
    /// The kernels' scratch for the streamed layers (empty: each call has its own).
    scratch: &'a mut [u32],
}

impl<'m, 'a> StreamGenerator<'m, 'a> {
    /// Arena bytes [`StreamGenerator::new`] needs for `model` (3,920 for the shipped
    /// model, against [`Model::arena_bytes`] = 9,408 for the whole-image generator).
    pub fn arena_bytes(model: &Model<'_>) -> usize {
        let [a, b] = Plan::new(model).regions;
        a + b
    }

    /// Binds a model to an arena of at least [`StreamGenerator::arena_bytes`] bytes
    /// ([`Error::ArenaTooSmall`] otherwise).
    pub fn new(model: &'m Model<'m>, arena: &'a mut [u8]) -> Result<Self> {
        let plan = Plan::new(model);
        if arena.len() < plan.regions[0] + plan.regions[1] {
            return Err(Error::ArenaTooSmall);
        }
        Ok(StreamGenerator {
            model,
            arena,
            plan,
            cache: &[],
            scratch: &mut [],
        })
    }

    /// Words of kernel scratch that [`StreamGenerator::with_weight_cache`] takes from
    /// the end of its buffer when the buffer holds them beyond
    /// [`StreamGenerator::weight_cache_words`] (512 on Arm, 2,048 elsewhere).
    pub const SCRATCH_WORDS: usize = conv::phase::SCRATCH_WORDS;

    /// Words of weight cache [`StreamGenerator::with_weight_cache`] needs for `model`:
    /// the prepared weights ([`conv::prepared_words`]) of the layers run by rows (1,060
    /// for the shipped model).
    pub fn weight_cache_words(model: &Model<'_>) -> usize {
        let front = Plan::new(model).front;
        model.layers()[front..]
            .iter()
            .map(conv::prepared_words)
            .sum()
    }

    /// [`StreamGenerator::new`] with a weight cache of at least
    /// [`StreamGenerator::weight_cache_words`] words ([`Error::ArenaTooSmall`]
    /// otherwise), filled here once so that the row-by-row layers do not merge their
    /// weights on every call; with [`StreamGenerator::SCRATCH_WORDS`] more words, those
    /// are the row-by-row calls' scratch. Generates the same bytes as
    /// [`StreamGenerator::new`].
    pub fn with_weight_cache(
        model: &'m Model<'m>,
        arena: &'a mut [u8],
        cache: &'a mut [u32],
    ) -> Result<Self> {
        let mut generator = Self::new(model, arena)?;
        let need = Self::weight_cache_words(model);
        if cache.len() < need {
            return Err(Error::ArenaTooSmall);
        }
        let (cache, more) = cache.split_at_mut(need);
        let mut rest = &mut cache[..];
        for layer in &model.layers()[generator.plan.front..] {
            let (dst, tail) = rest.split_at_mut(conv::prepared_words(layer));
            if !dst.is_empty() {
                conv::prepare(layer, dst)?;
            }
            rest = tail;
        }
        generator.cache = cache;
        if let Some(scratch) = more.get_mut(..Self::SCRATCH_WORDS) {
            generator.scratch = scratch;
        }
        Ok(generator)
    }

    /// The model this generator runs.
    pub fn model(&self) -> &'m Model<'m> {
        self.model
    }

    /// Generates one image of `digit` (`0..=9`, else [`Error::InvalidDigit`]) from the
    /// noise of `seed`: the same bytes as [`crate::Generator::generate`].
    pub fn generate(&mut self, digit: u8, seed: u32, out: &mut Image) -> Result<()> {
        let input = network_input(self.model, digit, seed)?;
        let plan = self.plan;
        let layers = self.model.layers();
        let (even, odd) = self.arena.split_at_mut(plan.regions[0]);
        let odd = &mut odd[..plan.regions[1]];
        run_ping_pong(&layers[..plan.front], &input, even, odd)?;
        // The front's output is in `even` after an odd number of layers, else in `odd`
        // (or is the network input); the window takes the other region, where layer
        // `front` would have written.
        let (front_out, window): (&[u8], &mut [u8]) = match plan.front {
            0 => (&input, even),
            n if n % 2 == 1 => (even, odd),
            _ => (odd, even),
        };
        let front_len = match plan.front {
            0 => INPUT_DIM,
            n => layers[n - 1].output_len(),
        };
        let front_out = front_out.get(..front_len).ok_or(Error::ArenaTooSmall)?;
        let tail = &layers[plan.front..];
        // Each streamed layer's slice of the cache (empty without one).
        let cached = |i: usize| -> &[u32] {
            let start: usize = tail[..i].iter().map(conv::prepared_words).sum();
            let words = tail.get(i).map_or(0, conv::prepared_words);
            self.cache.get(start..start + words).unwrap_or(&[])
        };
        match tail {
            [] => {
                let result = front_out.get(..out.len()).ok_or(Error::ShapeMismatch)?;
                out.copy_from_slice(result);
            }
            [last] => {
                let last = Streamed {
                    layer: last,
                    prepared: cached(0),
                };
                last.rows(front_out, 0, out, 0..IMAGE_SIDE, self.scratch)?;
            }
            [mid, last] => {
                let mid = Streamed {
                    layer: mid,
                    prepared: cached(0),
                };
                let last = Streamed {
                    layer: last,
                    prepared: cached(1),
                };
                let scratch = &mut *self.scratch;
                stream_two(mid, last, front_out, window, plan.window_row, out, scratch)?;
            }
            _ => return Err(Error::ShapeMismatch),
        }
        activation::apply_lut_in_place(self.model.output_lut(), out);
        Ok(())
    }
}

/// The quantised network input for `(digit, seed)`. Out of line, so that the float
/// noise and its temporaries (about 0.4 KB) are off the stack while the layers run: on
/// the smallest boards the stack is most of the RAM left.
#[inline(never)]
fn network_input(model: &Model<'_>, digit: u8, seed: u32) -> Result<[u8; INPUT_DIM]> {
    let x = float_input(digit, seed)?;
    let mut input = [0u8; INPUT_DIM];
    quantize_network_input(model, &x, &mut input);
    Ok(input)
}

/// A layer run by rows, with its prepared weights (empty: merged per call).
#[derive(Clone, Copy)]
struct Streamed<'l, 'm> {
    layer: &'l Layer<'m>,
    prepared: &'l [u32],
}

impl Streamed<'_, '_> {
    /// [`conv::conv3x3_rows`], from the prepared weights if there are any, in
    /// `scratch` if it is not empty (at least [`StreamGenerator::SCRATCH_WORDS`]).
    fn rows(
        &self,
        input: &[u8],
        in_first: usize,
        output: &mut [u8],
        rows: core::ops::Range<usize>,
        scratch: &mut [u32],
    ) -> Result<()> {
        if !scratch.is_empty() {
            let prepared = (!self.prepared.is_empty()).then_some(self.prepared);
            let kernel = crate::ops::select::select(self.layer);
            conv::run(
                kernel,
                self.layer,
                prepared,
                Some(scratch),
                input,
                in_first,
                output,
                rows,
            )
            .map(drop)
        } else if self.prepared.is_empty() {
            conv::conv3x3_rows(self.layer, input, in_first, output, rows)
        } else {
            conv::conv3x3_rows_prepared(self.layer, self.prepared, input, in_first, output, rows)
        }
    }
}

/// Runs `mid` and `last` by rows: `mid`'s output lives in a window of at most
/// [`WINDOW_ROWS`] rows of `row` bytes, `last` writes one image row per step.
fn stream_two(
    mid: Streamed<'_, '_>,
    last: Streamed<'_, '_>,
    input: &[u8],
    window: &mut [u8],
    row: usize,
    out: &mut Image,
    scratch: &mut [u32],
) -> Result<()> {
    let LayerShape::Conv3x3 { upsample, .. } = last.layer.shape() else {
        return Err(Error::ShapeMismatch);
    };
    let up = usize::from(upsample);
    let (mid_h, _, _) = mid.layer.shape().output_hwc();
    let mid_h = mid_h as usize;
    let out_row = out.len() / IMAGE_SIDE;
    // The window holds `mid` output rows `lo..hi`.
    let (mut lo, mut hi) = (0, 0);
    for (y, dst) in out.chunks_exact_mut(out_row).enumerate() {
        let centre = y >> up;
        let need = centre.saturating_sub(1)..(centre + 2).min(mid_h);
        if need.start >= hi {
            (lo, hi) = (need.start, need.start);
        } else if need.start > lo {
            window.copy_within((need.start - lo) * row..(hi - lo) * row, 0);
            lo = need.start;
        }
        if need.end > hi {
            let fresh = window
                .get_mut((hi - lo) * row..(need.end - lo) * row)
                .ok_or(Error::ArenaTooSmall)?;
            mid.rows(input, 0, fresh, hi..need.end, scratch)?;
            hi = need.end;
        }
        last.rows(&window[..(hi - lo) * row], lo, dst, y..y + 1, scratch)?;
    }
    Ok(())
}
