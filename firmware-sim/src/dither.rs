//! Grey to black-and-white conversion for monochrome panels.
//!
//! Everything here works on caller-owned fixed buffers so it runs unchanged on a
//! microcontroller. Grey values follow the generator: 0 is background, 255 is ink, and a
//! pixel that is "on" lights up (an OLED draws ink in white on black).

/// Largest tile side the fixed-size buffers in this module and in [`crate::render`] hold.
pub const MAX_SIDE: usize = generator_core::IMAGE_SIDE;

/// How grey levels become on/off pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dither {
    /// On when the level is at least 128. Crisp strokes, loses soft edges.
    Threshold,
    /// 4x4 Bayer ordered dither: a fixed pattern, stable between frames.
    Bayer,
    /// Floyd-Steinberg error diffusion: best tone reproduction for still images.
    #[default]
    FloydSteinberg,
}

/// 4x4 Bayer index matrix; a level `v` is on when `v >= 16 * m + 8`.
const BAYER4: [[u8; 4]; 4] = [[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]];

/// Converts a `side x side` grey tile (row-major) to on/off pixels in `out`.
///
/// # Panics
/// If `side > MAX_SIDE` or a slice is shorter than `side * side`.
pub fn dither(src: &[u8], side: usize, mode: Dither, out: &mut [bool]) {
    assert!(side <= MAX_SIDE, "tile side {side} exceeds {MAX_SIDE}");
    let n = side * side;
    let (src, out) = (&src[..n], &mut out[..n]);
    match mode {
        Dither::Threshold => {
            for (o, &v) in out.iter_mut().zip(src) {
                *o = v >= 128;
            }
        }
        Dither::Bayer => {
            for (i, (o, &v)) in out.iter_mut().zip(src).enumerate() {
                let m = BAYER4[(i / side) % 4][(i % side) % 4];
                *o = u16::from(v) >= 16 * u16::from(m) + 8;
            }
        }
        Dither::FloydSteinberg => floyd_steinberg(src, side, out),
    }
}

/// Error diffusion with the classic 7/16, 3/16, 5/16, 1/16 weights, raster order.
fn floyd_steinberg(src: &[u8], side: usize, out: &mut [bool]) {
    // Levels plus diffused error stay within -255..=510, well inside i16.
    let mut level = [0i16; MAX_SIDE * MAX_SIDE];
    for (l, &v) in level.iter_mut().zip(src) {
        *l = i16::from(v);
    }
    for y in 0..side {
        for x in 0..side {
            let i = y * side + x;
            let on = level[i] >= 128;
            out[i] = on;
            let error = level[i] - if on { 255 } else { 0 };
            if x + 1 < side {
                level[i + 1] += error * 7 / 16;
            }
            if y + 1 < side {
                if x > 0 {
                    level[i + side - 1] += error * 3 / 16;
                }
                level[i + side] += error * 5 / 16;
                if x + 1 < side {
                    level[i + side + 1] += error / 16;
                }
            }
        }
    }
}

/// Halves a `side x side` tile to `side/2 x side/2` by averaging 2x2 blocks (rounded).
///
/// # Panics
/// If `side` is odd or a slice is too short.
pub fn downsample2(src: &[u8], side: usize, out: &mut [u8]) {
    assert!(side.is_multiple_of(2), "tile side {side} is odd");
    let half = side / 2;
    for y in 0..half {
        for x in 0..half {
            let at = |dx: usize, dy: usize| u16::from(src[(2 * y + dy) * side + 2 * x + dx]);
            let sum = at(0, 0) + at(1, 0) + at(0, 1) + at(1, 1);
            // (sum + 2) / 4 <= 255, so the cast is lossless.
            out[y * half + x] = ((sum + 2) / 4) as u8;
        }
    }
}

/// Packs on/off pixels into the 1-bit-per-pixel, MSB-first, byte-padded rows that
/// `ImageRaw<BinaryColor>` (and an SSD1306 in horizontal mode) expects.
/// Returns the number of bytes written.
pub fn pack_rows(bits: &[bool], width: usize, height: usize, out: &mut [u8]) -> usize {
    let stride = width.div_ceil(8);
    let used = stride * height;
    out[..used].fill(0);
    for y in 0..height {
        for x in 0..width {
            if bits[y * width + x] {
                out[y * stride + x / 8] |= 0x80 >> (x % 8);
            }
        }
    }
    used
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(src: &[u8], side: usize, mode: Dither) -> Vec<bool> {
        let mut out = vec![false; side * side];
        dither(src, side, mode, &mut out);
        out
    }

    #[test]
    fn threshold_splits_at_128() {
        assert_eq!(
            run(&[0, 127, 128, 255], 2, Dither::Threshold),
            [false, false, true, true]
        );
    }

    #[test]
    fn extremes_survive_every_mode() {
        for mode in [Dither::Threshold, Dither::Bayer, Dither::FloydSteinberg] {
            assert!(run(&[0; 16], 4, mode).iter().all(|&b| !b), "{mode:?}");
            assert!(run(&[255; 16], 4, mode).iter().all(|&b| b), "{mode:?}");
        }
    }

    #[test]
    fn mid_grey_lights_about_half() {
        for mode in [Dither::Bayer, Dither::FloydSteinberg] {
            let on = run(&[128; 16 * 16], 16, mode)
                .iter()
                .filter(|&&b| b)
                .count();
            assert!((112..=144).contains(&on), "{mode:?}: {on} of 256 on");
        }
        // Threshold cannot render tone: all or nothing.
        assert!(run(&[127; 16], 4, Dither::Threshold).iter().all(|&b| !b));
    }

    #[test]
    fn bayer_quarter_grey_is_the_matrix() {
        // Level 64 lights exactly the cells with 16m + 8 <= 64, i.e. m <= 3.
        let on = run(&[64; 16], 4, Dither::Bayer);
        let expected: Vec<bool> = BAYER4.iter().flatten().map(|&m| m <= 3).collect();
        assert_eq!(on, expected);
    }

    #[test]
    fn floyd_steinberg_diffuses_to_the_right() {
        // 100 -> off with error +100; right neighbour gets 100*7/16 = 43: 100+43 >= 128.
        assert_eq!(
            run(&[100, 100, 0, 0], 2, Dither::FloydSteinberg),
            [false, true, false, false]
        );
    }

    #[test]
    fn downsample_rounds_the_mean() {
        let src = [0, 255, 10, 20, 1, 2, 30, 40, 9, 9, 0, 0, 9, 9, 0, 1];
        let mut out = [0u8; 4];
        downsample2(&src, 4, &mut out);
        assert_eq!(out, [65, 25, 9, 0]);
    }

    #[test]
    fn packs_msb_first_with_padded_rows() {
        let mut bits = [false; 10 * 2];
        bits[0] = true; // row 0, x 0
        bits[9] = true; // row 0, x 9
        bits[10 + 7] = true; // row 1, x 7
        let mut out = [0xffu8; 6];
        assert_eq!(pack_rows(&bits, 10, 2, &mut out), 4);
        assert_eq!(out, [0x80, 0x40, 0x01, 0x00, 0xff, 0xff]);
    }
}
