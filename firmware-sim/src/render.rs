//! Drawing digit tiles on any `embedded-graphics` [`DrawTarget`].
//!
//! Nothing here allocates: the same functions can drive the simulator and a real panel
//! (an SSD1306 OLED through [`draw_binary`], a grey-scale TFT through [`draw_gray`]).
//! A tile is a square grey image, row-major, 0 = background, 255 = ink; a tile twice the
//! layout's cell is halved first (28x28 digits on 14-pixel cells of a small OLED).

use embedded_graphics::{
    Drawable,
    draw_target::DrawTarget,
    image::{Image, ImageRaw},
    pixelcolor::{BinaryColor, Gray8},
};

use crate::{
    dither::{self, Dither, MAX_SIDE},
    layout::Layout,
};

/// Copies a `side x side` tile into `out` at the layout's cell size (halving it when the
/// cell is half the tile). Returns the side written.
///
/// # Panics
/// If the cell is neither `side` nor `side / 2`, or `side > MAX_SIDE`.
fn fit_tile(tile: &[u8], side: u32, layout: &Layout, out: &mut [u8; MAX_SIDE * MAX_SIDE]) -> u32 {
    let (n, cell) = (side as usize, layout.cell as usize);
    assert!(n <= MAX_SIDE, "tile side {n} exceeds {MAX_SIDE}");
    if cell == n {
        out[..n * n].copy_from_slice(&tile[..n * n]);
    } else {
        assert!(
            2 * cell == n,
            "cell {cell} is neither the tile side {n} nor half of it"
        );
        dither::downsample2(tile, n, out);
    }
    layout.cell
}

/// Draws grey tiles, one per cell in row-major order; tiles beyond the layout's capacity
/// are not drawn.
pub fn draw_gray<'t, D>(
    target: &mut D,
    layout: &Layout,
    side: u32,
    tiles: impl IntoIterator<Item = &'t [u8]>,
) -> Result<(), D::Error>
where
    D: DrawTarget<Color = Gray8>,
{
    let mut grey = [0u8; MAX_SIDE * MAX_SIDE];
    for (index, tile) in (0..layout.capacity()).zip(tiles) {
        let cell = fit_tile(tile, side, layout, &mut grey);
        let n = (cell * cell) as usize;
        let raw = ImageRaw::<Gray8>::new(&grey[..n], cell);
        Image::new(&raw, layout.position(index)).draw(target)?;
    }
    Ok(())
}

/// Draws tiles on a monochrome panel, converting each with `mode`; ink is
/// [`BinaryColor::On`]. Tiles beyond the layout's capacity are not drawn.
pub fn draw_binary<'t, D>(
    target: &mut D,
    layout: &Layout,
    side: u32,
    tiles: impl IntoIterator<Item = &'t [u8]>,
    mode: Dither,
) -> Result<(), D::Error>
where
    D: DrawTarget<Color = BinaryColor>,
{
    let mut grey = [0u8; MAX_SIDE * MAX_SIDE];
    let mut bits = [false; MAX_SIDE * MAX_SIDE];
    let mut packed = [0u8; MAX_SIDE.div_ceil(8) * MAX_SIDE];
    for (index, tile) in (0..layout.capacity()).zip(tiles) {
        let cell = fit_tile(tile, side, layout, &mut grey);
        let n = cell as usize;
        dither::dither(&grey, n, mode, &mut bits);
        let used = dither::pack_rows(&bits, n, n, &mut packed);
        let raw = ImageRaw::<BinaryColor>::new(&packed[..used], cell);
        Image::new(&raw, layout.position(index)).draw(target)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use embedded_graphics::{geometry::Point, mock_display::MockDisplay};

    use super::*;

    /// A 4x4 "digit": a vertical stroke with soft edges.
    const STROKE: [u8; 16] = [
        0x00, 0x88, 0xff, 0x00, //
        0x00, 0x88, 0xff, 0x00, //
        0x00, 0x88, 0xff, 0x00, //
        0x00, 0x88, 0xff, 0x00, //
    ];
    /// A 4x4 full-ink block.
    const BLOCK: [u8; 16] = [0xff; 16];

    #[test]
    fn gray_tiles_land_in_their_cells() {
        let mut display = MockDisplay::<Gray8>::new();
        let layout = Layout::fitted(2, 1, 4, 2);
        draw_gray(&mut display, &layout, 4, [&STROKE[..], &BLOCK[..]]).unwrap();
        display.assert_pattern(&[
            "           ",
            " 08F0  FFFF",
            " 08F0  FFFF",
            " 08F0  FFFF",
            " 08F0  FFFF",
        ]);
    }

    #[test]
    fn gray_tiles_are_halved_on_half_cells() {
        let mut display = MockDisplay::<Gray8>::new();
        let layout = Layout {
            origin: Point::zero(),
            ..Layout::fitted(1, 1, 2, 0)
        };
        draw_gray(&mut display, &layout, 4, [&STROKE[..]]).unwrap();
        // (0 + 0x88 + 0 + 0x88 + 2) / 4 = 0x44 and (0xff + 0 + 0xff + 0 + 2) / 4 = 0x80.
        let mut expected = MockDisplay::new();
        for y in 0..2 {
            expected.set_pixel(Point::new(0, y), Some(Gray8::new(0x44)));
            expected.set_pixel(Point::new(1, y), Some(Gray8::new(0x80)));
        }
        display.assert_eq(&expected);
    }

    #[test]
    fn binary_threshold_keeps_strong_ink_only() {
        let mut display = MockDisplay::<BinaryColor>::new();
        let layout = Layout::fitted(2, 1, 4, 2);
        let tiles = [&STROKE[..], &BLOCK[..]];
        draw_binary(&mut display, &layout, 4, tiles, Dither::Threshold).unwrap();
        display.assert_pattern(&[
            "           ",
            " .##.  ####",
            " .##.  ####",
            " .##.  ####",
            " .##.  ####",
        ]);
    }

    #[test]
    fn binary_bayer_half_tones_the_soft_column() {
        let mut display = MockDisplay::<BinaryColor>::new();
        let layout = Layout {
            origin: Point::zero(),
            ..Layout::fitted(1, 1, 4, 0)
        };
        draw_binary(&mut display, &layout, 4, [&STROKE[..]], Dither::Bayer).unwrap();
        // Column 1 is 0x88 = 136: on where 16m + 8 <= 136, i.e. Bayer m <= 8 in column 1
        // (m = 8, 4, 11, 7 down the column).
        display.assert_pattern(&[
            ".##.", //
            ".##.", //
            "..#.", //
            ".##.", //
        ]);
    }

    #[test]
    fn binary_floyd_steinberg_diffuses_error() {
        let mut display = MockDisplay::<BinaryColor>::new();
        let layout = Layout {
            origin: Point::zero(),
            ..Layout::fitted(1, 1, 4, 0)
        };
        let grey = [0x60u8; 16];
        draw_binary(
            &mut display,
            &layout,
            4,
            [&grey[..]],
            Dither::FloydSteinberg,
        )
        .unwrap();
        let mut bits = [false; 16];
        dither::dither(&grey, 4, Dither::FloydSteinberg, &mut bits);
        let on = bits.iter().filter(|&&b| b).count();
        // 0x60 = 96 is 38% grey, about 6 of 16 pixels (error leaving the right and bottom
        // edges is lost); the panel shows exactly the pixels the dither chose.
        assert!((5..=7).contains(&on), "{on} of 16 on");
        for (i, &b) in bits.iter().enumerate() {
            let p = Point::new((i % 4) as i32, (i / 4) as i32);
            assert_eq!(display.get_pixel(p), Some(BinaryColor::from(b)), "{p:?}");
        }
    }

    #[test]
    fn tiles_beyond_capacity_are_skipped() {
        let mut display = MockDisplay::<Gray8>::new();
        let layout = Layout::fitted(1, 1, 4, 0);
        draw_gray(&mut display, &layout, 4, [&BLOCK[..], &BLOCK[..]]).unwrap();
        assert_eq!(display.affected_area().size.width, 4);
    }
}
