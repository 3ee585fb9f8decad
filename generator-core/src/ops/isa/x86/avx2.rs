//! x86-64 AVX2 pieces shared by the host's fast kernels: the run-time check, the
//! requantisation of eight `i32` lanes at once, and the linear layer's kernel. The
//! convolution kernels are in `avx2_conv`.
//!
//! Every function here but [`available`] is compiled with AVX2 enabled
//! (`#[target_feature]`); callers check [`available`] first.

use core::arch::x86_64::{
    __m128i, __m256i, _mm_cvtsi128_si64, _mm_loadl_epi64, _mm_loadu_si128, _mm_packs_epi16,
    _mm_packs_epi32, _mm256_add_epi32, _mm256_blend_epi32, _mm256_castsi256_ps,
    _mm256_castsi256_si128, _mm256_cmpgt_epi32, _mm256_cvtepi8_epi16, _mm256_cvtepu8_epi32,
    _mm256_extract_epi32, _mm256_extracti128_si256, _mm256_hadd_epi32, _mm256_loadu_si256,
    _mm256_madd_epi16, _mm256_max_epi32, _mm256_min_epi32, _mm256_movemask_ps, _mm256_mul_epi32,
    _mm256_permute2x128_si256, _mm256_set_epi32, _mm256_set1_epi32, _mm256_setzero_si256,
    _mm256_sllv_epi32, _mm256_srav_epi32, _mm256_srli_epi64, _mm256_sub_epi32,
};

use crate::ops::requant::{Requant, Rescale};
use crate::{Layer, LayerShape};

/// `i32` lanes per vector: output channels (or pixels) per pass.
pub(crate) const LANES: usize = 8;

/// Whether the CPU runs AVX2: always with `target_feature = "avx2"` at compile time;
/// otherwise asked at run time with the `std` feature (and in this crate's unit
/// tests), and `false` without it.
#[inline]
pub(crate) fn available() -> bool {
    #[cfg(target_feature = "avx2")]
    {
        true
    }
    #[cfg(all(not(target_feature = "avx2"), any(test, feature = "std")))]
    {
        std::is_x86_feature_detected!("avx2")
    }
    #[cfg(all(not(target_feature = "avx2"), not(any(test, feature = "std"))))]
    {
        false
    }
}

/// Eight words from the start of `x` (compiles to one unaligned load).
#[inline]
#[target_feature(enable = "avx2")]
pub(crate) fn load8(x: &[u32]) -> __m256i {
    let x = &x[..LANES];
    _mm256_set_epi32(
        x[7] as i32,
        x[6] as i32,
        x[5] as i32,
        x[4] as i32,
        x[3] as i32,
        x[2] as i32,
        x[1] as i32,
        x[0] as i32,
    )
}

/// The 32 bytes from the start of `b` as one vector (eight little-endian `i32`).
#[inline]
#[target_feature(enable = "avx2")]
fn load32_bytes(b: &[u8]) -> __m256i {
    let b = &b[..32];
    #[allow(unsafe_code)]
    // SAFETY: `b` holds the 32 bytes the unaligned load reads.
    unsafe {
        _mm256_loadu_si256(b.as_ptr().cast::<__m256i>())
    }
}

/// The 16 bytes from `b[at..]`, zero where `b` ends first.
#[inline]
#[target_feature(enable = "avx2")]
fn load16_bytes(b: &[u8], at: usize) -> __m128i {
    if let Some(b) = b.get(at..at + 16) {
        #[allow(unsafe_code)]
        // SAFETY: `b` holds the 16 bytes the unaligned load reads.
        unsafe {
            _mm_loadu_si128(b.as_ptr().cast::<__m128i>())
        }
    } else {
        let mut tmp = [0u8; 16];
        let rest = b.get(at..).unwrap_or(&[]);
        let n = rest.len().min(16);
        tmp[..n].copy_from_slice(&rest[..n]);
        #[allow(unsafe_code)]
        // SAFETY: `tmp` is the 16 bytes the unaligned load reads.
        unsafe {
            _mm_loadu_si128(tmp.as_ptr().cast::<__m128i>())
        }
    }
}

/// The eight `i32` lanes of `v`, in order.
#[inline]
#[target_feature(enable = "avx2")]
pub(crate) fn lanes(v: __m256i) -> [i32; LANES] {
    [
        _mm256_extract_epi32::<0>(v),
        _mm256_extract_epi32::<1>(v),
        _mm256_extract_epi32::<2>(v),
        _mm256_extract_epi32::<3>(v),
        _mm256_extract_epi32::<4>(v),
        _mm256_extract_epi32::<5>(v),
        _mm256_extract_epi32::<6>(v),
        _mm256_extract_epi32::<7>(v),
    ]
}

/// Lane `g` of the result is the sum of the eight lanes of `v[g]`.
#[inline]
#[target_feature(enable = "avx2")]
pub(crate) fn hsum8(v: &[__m256i; LANES]) -> __m256i {
    // Within each 128-bit half: after two rounds of pairwise sums, lane `g` (of four)
    // holds that half's sum of `v[g]` (resp. `v[4 + g]`).
    let a = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
    let b = _mm256_hadd_epi32(_mm256_hadd_epi32(v[4], v[5]), _mm256_hadd_epi32(v[6], v[7]));
    // Low halves of `a` and `b` plus their high halves.
    _mm256_add_epi32(
        _mm256_permute2x128_si256::<0x20>(a, b),
        _mm256_permute2x128_si256::<0x31>(a, b),
    )
}

/// The requantisation of eight channels, lane by lane: [`Rescale`] in the high-word
/// form when every channel's shift is 33 or more (`vpmuldq` for the products, a
/// per-lane arithmetic shift, then the clamp), else channel by channel.
#[derive(Clone, Copy)]
pub(crate) struct Requant8 {
    /// The accumulators' start values.
    pub bias: __m256i,
    multiplier: __m256i,
    /// The multipliers of the odd lanes, in the low halves of the 64-bit lanes.
    multiplier_odd: __m256i,
    round: __m256i,
    shift: __m256i,
    zero_point: __m256i,
    min: __m256i,
    /// `Some` when a channel's shift is below 33.
    scalar: Option<[Rescale; LANES]>,
}

impl Requant8 {
    /// From eight channels' [`Rescale`] (missing ones map to the zero point).
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(crate) fn new(ps: &[Rescale]) -> Requant8 {
        let ps: [Rescale; LANES] =
            core::array::from_fn(|g| ps.get(g).copied().unwrap_or(Rescale::ZERO));
        let parts = ps.map(|p| p.high_word_parts());
        let part = |k: usize| {
            let v: [u32; LANES] = core::array::from_fn(|g| parts[g].map_or(0, |p| p[k] as u32));
            load8(&v)
        };
        let bias: [u32; LANES] = core::array::from_fn(|g| ps[g].bias as u32);
        let multiplier = part(0);
        Requant8 {
            bias: load8(&bias),
            multiplier,
            multiplier_odd: _mm256_srli_epi64::<32>(multiplier),
            round: part(1),
            shift: part(2),
            zero_point: part(3),
            min: part(4),
            scalar: parts.iter().any(Option::is_none).then_some(ps),
        }
    }

    /// The vector form straight from a layer's parameter vectors (`shift` in
    /// `1..=62`), or `None` if a channel's shift is below 33.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn from_vectors(
        bias: __m256i,
        multiplier: __m256i,
        shift: __m256i,
        zero_point: i8,
        min: i8,
    ) -> Option<Requant8> {
        let low = _mm256_cmpgt_epi32(_mm256_set1_epi32(33), shift);
        if _mm256_movemask_ps(_mm256_castsi256_ps(low)) != 0 {
            return None;
        }
        Some(Requant8 {
            bias,
            multiplier,
            multiplier_odd: _mm256_srli_epi64::<32>(multiplier),
            round: _mm256_sllv_epi32(
                _mm256_set1_epi32(1),
                _mm256_sub_epi32(shift, _mm256_set1_epi32(33)),
            ),
            shift: _mm256_sub_epi32(shift, _mm256_set1_epi32(32)),
            zero_point: _mm256_set1_epi32(i32::from(zero_point)),
            min: _mm256_set1_epi32(i32::from(min)),
            scalar: None,
        })
    }

    /// `Rescale::apply` of each lane of `acc` (which includes the bias), the eight
    /// bytes little-endian.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(crate) fn apply(&self, acc: __m256i) -> u64 {
        if let Some(ps) = &self.scalar {
            return apply_scalar(ps, acc);
        }
        // `floor(acc * multiplier / 2^32)` per lane: the even lanes' products shifted
        // down, the odd lanes' high halves where they are.
        let even = _mm256_mul_epi32(acc, self.multiplier);
        let odd = _mm256_mul_epi32(_mm256_srli_epi64::<32>(acc), self.multiplier_odd);
        let hi = _mm256_blend_epi32::<0b1010_1010>(_mm256_srli_epi64::<32>(even), odd);
        let v = _mm256_srav_epi32(_mm256_add_epi32(hi, self.round), self.shift);
        let v = _mm256_add_epi32(v, self.zero_point);
        let v = _mm256_min_epi32(_mm256_max_epi32(v, self.min), _mm256_set1_epi32(127));
        // Every lane is in -128..=127: the saturating packs are exact.
        let v16 = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
        _mm_cvtsi128_si64(_mm_packs_epi16(v16, v16)) as u64
    }
}

/// [`Requant8::apply`] channel by channel, out of line so that the vector form stays
/// small enough to inline into the kernels' loops.
#[cold]
#[inline(never)]
#[target_feature(enable = "avx2")]
fn apply_scalar(ps: &[Rescale; LANES], acc: __m256i) -> u64 {
    let a = lanes(acc);
    u64::from_le_bytes(core::array::from_fn(|g| ps[g].apply(a[g])))
}

/// Most inputs [`linear`] takes (the widened input is four vectors).
const LINEAR_MAX_INPUTS: usize = 64;

/// The linear layer, eight outputs per pass: each output's row against the input
/// widened to `i16` sixteen values per `vpmaddwd`, the eight partial-sum vectors
/// reduced together ([`hsum8`]), then requantised together. Returns `false`, writing
/// nothing, if the input is longer than 64 or the buffers do not fit the layer.
#[target_feature(enable = "avx2")]
pub(crate) fn linear(layer: &Layer<'_>, input: &[u8], output: &mut [u8]) -> bool {
    let n = input.len();
    let fits = matches!(layer.shape(), LayerShape::Linear { inputs, outputs }
        if inputs as usize == n && outputs as usize == output.len());
    if n == 0 || n > LINEAR_MAX_INPUTS || !fits {
        return false;
    }
    let p = layer.params();
    // The input widened, zero past its end, so that a row's last vector may read into
    // the next row's weights: those meet zeros.
    let mut xb = [0u8; LINEAR_MAX_INPUTS];
    xb[..n].copy_from_slice(input);
    let chunks = n.div_ceil(16);
    let x: [__m256i; LINEAR_MAX_INPUTS / 16] =
        core::array::from_fn(|k| _mm256_cvtepi8_epi16(load16_bytes(&xb, 16 * k)));
    let lo = if p.relu { p.out_zero_point } else { i8::MIN };
    let mut groups = output.chunks_exact_mut(LANES);
    let mut o = 0;
    for out8 in &mut groups {
        let sums = match chunks {
            1 => group_sums::<1>(p.weights, o * n, n, &x),
            2 => group_sums::<2>(p.weights, o * n, n, &x),
            3 => group_sums::<3>(p.weights, o * n, n, &x),
            _ => group_sums::<4>(p.weights, o * n, n, &x),
        };
        let (Some(bias), Some(mult), Some(shift)) = (
            p.bias.get(4 * o..4 * o + 32),
            p.multiplier.get(4 * o..4 * o + 32),
            p.shift.get(o..o + LANES),
        ) else {
            return false; // Layer::new checked the lengths
        };
        let bias = load32_bytes(bias);
        let acc = _mm256_add_epi32(hsum8(&sums), bias);
        let mut sh = [0u8; 16];
        sh[..LANES].copy_from_slice(shift);
        #[allow(unsafe_code)]
        // SAFETY: `sh` holds 16 bytes; the load reads its first eight.
        let shift = _mm256_cvtepu8_epi32(unsafe { _mm_loadl_epi64(sh.as_ptr().cast::<__m128i>()) });
        let bytes =
            match Requant8::from_vectors(bias, load32_bytes(mult), shift, p.out_zero_point, lo) {
                Some(rq) => rq.apply(acc).to_le_bytes(),
                None => {
                    let a = lanes(acc);
                    core::array::from_fn(|g| scalar_requant(layer, o + g, a[g]))
                }
            };
        out8.copy_from_slice(&bytes);
        o += LANES;
    }
    for (g, out) in groups.into_remainder().iter_mut().enumerate() {
        let row = (o + g) * n;
        let Some(w) = p.weights.get(row..row + n) else {
            return false;
        };
        let word = |b: &[u8], o: usize| {
            b.get(4 * o..4 * o + 4)
                .map_or(0, |b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        };
        let acc = word(p.bias, o + g) + crate::ops::dot(w, input);
        *out = scalar_requant(layer, o + g, acc);
    }
    true
}

/// The partial sums of the eight outputs whose rows (`n` weights each) start at byte
/// `row0` of `w`: vector `g` holds output `g`'s products with the widened input `x`
/// (`CH` vectors of sixteen), summed in pairs.
#[inline]
#[target_feature(enable = "avx2")]
fn group_sums<const CH: usize>(
    w: &[u8],
    row0: usize,
    n: usize,
    x: &[__m256i; LINEAR_MAX_INPUTS / 16],
) -> [__m256i; LANES] {
    let mut sums = [_mm256_setzero_si256(); LANES];
    // Each row's last vector reads past its end (into the next row, against zeros).
    if let Some(block) = w.get(row0..row0 + (LANES - 1) * n + 16 * CH) {
        for (g, s) in sums.iter_mut().enumerate() {
            for (k, &xk) in x.iter().enumerate().take(CH) {
                let Some(b) = block.get(g * n + 16 * k..g * n + 16 * k + 16) else {
                    continue;
                };
                #[allow(unsafe_code)]
                // SAFETY: `b` holds the 16 bytes the unaligned load reads.
                let v = unsafe { _mm_loadu_si128(b.as_ptr().cast::<__m128i>()) };
                *s = _mm256_add_epi32(*s, _mm256_madd_epi16(_mm256_cvtepi8_epi16(v), xk));
            }
        }
    } else {
        // The last rows of the layer: the bytes past the weights read as zeros.
        for (g, s) in sums.iter_mut().enumerate() {
            for (k, &xk) in x.iter().enumerate().take(CH) {
                let v = load16_bytes(w, row0 + g * n + 16 * k);
                *s = _mm256_add_epi32(*s, _mm256_madd_epi16(_mm256_cvtepi8_epi16(v), xk));
            }
        }
    }
    sums
}

/// `Requant::apply(acc)` of output `o` of `layer`, as a byte.
fn scalar_requant(layer: &Layer<'_>, o: usize, acc: i32) -> u8 {
    let p = layer.params();
    let multiplier = p
        .multiplier
        .get(4 * o..4 * o + 4)
        .map_or(0, |b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let requant = Requant {
        multiplier,
        shift: p.shift.get(o).copied().unwrap_or(1),
        zero_point: p.out_zero_point,
        min: if p.relu { p.out_zero_point } else { i8::MIN },
    };
    requant.apply(acc) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// [`Requant8::apply`] of `acc` built both ways: from eight [`Rescale`]s and (when
    /// every shift is 33 or more) from the parameter vectors, as the linear layer does.
    #[target_feature(enable = "avx2")]
    fn both_ways(acc: [i32; LANES], r: [Requant; LANES]) -> (u64, Option<u64>) {
        let ps = r.map(|r| Rescale::new(0, r));
        let v = load8(&acc.map(|a| a as u32));
        let from_rescale = Requant8::new(&ps).apply(v);
        let (zp, min) = (r[0].zero_point, r[0].min);
        let from_vectors = Requant8::from_vectors(
            _mm256_setzero_si256(),
            load8(&r.map(|r| r.multiplier as u32)),
            load8(&r.map(|r| u32::from(r.shift))),
            zp,
            min,
        )
        .map(|rq| rq.apply(v));
        (from_rescale, from_vectors)
    }

    proptest! {
        /// Both vector forms of the requantisation equal `Requant::apply` lane by
        /// lane, for every shift (below 33 the channel-by-channel fallback runs).
        #[test]
        fn requant8_equals_requant(
            acc in proptest::array::uniform8(prop_oneof![any::<i32>(), -70_000i32..70_000]),
            multiplier in proptest::array::uniform8(prop_oneof![0..=i32::MAX, (1i32 << 30)..=i32::MAX]),
            shift in proptest::array::uniform8(prop_oneof![1u8..=62, 33u8..=45]),
            zero_point in any::<i8>(),
            relu in any::<bool>(),
        ) {
            if !available() {
                return Ok(());
            }
            let min = if relu { zero_point } else { i8::MIN };
            let r: [Requant; LANES] = core::array::from_fn(|g| Requant {
                multiplier: multiplier[g],
                shift: shift[g],
                zero_point,
                min,
            });
            let want: [u8; LANES] = core::array::from_fn(|g| r[g].apply(acc[g]) as u8);
            #[allow(unsafe_code)]
            // SAFETY: `available` confirmed AVX2 just above.
            let (a, b) = unsafe { both_ways(acc, r) };
            prop_assert_eq!(a.to_le_bytes(), want);
            prop_assert_eq!(b.is_some(), shift.iter().all(|&s| s >= 33));
            if let Some(b) = b {
                prop_assert_eq!(b.to_le_bytes(), want);
            }
        }

        /// [`hsum8`] sums each vector's lanes.
        #[test]
        fn hsum8_sums_lanes(v in proptest::array::uniform8(proptest::array::uniform8(-(1i32 << 24)..(1 << 24)))) {
            if !available() {
                return Ok(());
            }
            #[target_feature(enable = "avx2")]
            fn run(v: [[i32; LANES]; LANES]) -> [i32; LANES] {
                lanes(hsum8(&v.map(|v| load8(&v.map(|x| x as u32)))))
            }
            #[allow(unsafe_code)]
            // SAFETY: `available` confirmed AVX2 just above.
            let got = unsafe { run(v) };
            prop_assert_eq!(got, v.map(|v| v.iter().sum::<i32>()));
        }
    }
}
