//! A Unicode preview of a panel for the terminal.
//!
//! Terminal cells are about twice as tall as wide, so one character covers one column and
//! two rows of pixels (times `step` when the panel is too wide for the terminal).

use embedded_graphics::geometry::{Point, Size};

/// Shades from background to full ink.
const SHADES: [char; 5] = [' ', '░', '▒', '▓', '█'];

/// Smallest horizontal step so that `width` pixels fit in `columns` characters.
pub fn step_for(width: u32, columns: u32) -> u32 {
    width.div_ceil(columns.max(1)).max(1)
}

/// Grey preview: each character shows the mean level of a `step x 2*step` block.
pub fn gray(size: Size, step: u32, level: impl Fn(Point) -> u8) -> String {
    let (w, h) = (step, 2 * step);
    let mut text = String::new();
    for by in (0..size.height).step_by(h as usize) {
        let mut line = String::new();
        for bx in (0..size.width).step_by(w as usize) {
            let (mut sum, mut count) = (0u32, 0u32);
            for y in by..(by + h).min(size.height) {
                for x in bx..(bx + w).min(size.width) {
                    sum += u32::from(level(Point::new(x as i32, y as i32)));
                    count += 1;
                }
            }
            let mean = sum / count;
            line.push(SHADES[(mean as usize * SHADES.len()) / 256]);
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// Monochrome preview with half blocks: exact, one character per two vertical pixels.
pub fn binary(size: Size, on: impl Fn(Point) -> bool) -> String {
    let mut text = String::new();
    for y in (0..size.height as i32).step_by(2) {
        let mut line = String::new();
        for x in 0..size.width as i32 {
            let top = on(Point::new(x, y));
            let bottom = y + 1 < size.height as i32 && on(Point::new(x, y + 1));
            line.push(match (top, bottom) {
                (false, false) => ' ',
                (true, false) => '▀',
                (false, true) => '▄',
                (true, true) => '█',
            });
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gray_maps_levels_to_shades() {
        let levels = [0u8, 60, 120, 180, 255];
        let text = gray(Size::new(5, 2), 1, |p| levels[p.x as usize]);
        assert_eq!(text, " ░▒▓█\n");
    }

    #[test]
    fn gray_averages_blocks() {
        // Rows 0 and 1 of a column average to one character; step 2 averages 2x4 blocks.
        let text = gray(Size::new(2, 3), 1, |p| if p.y == 0 { 255 } else { 0 });
        assert_eq!(text, "▒▒\n\n");
        let text = gray(Size::new(4, 4), 2, |p| if p.x < 2 { 255 } else { 0 });
        assert_eq!(text, "█\n");
        assert_eq!(step_for(320, 200), 2);
        assert_eq!(step_for(128, 200), 1);
    }

    #[test]
    fn binary_uses_half_blocks() {
        let on = |p: Point| matches!((p.x, p.y), (0, 0) | (1, 1) | (2, 0) | (2, 1) | (0, 2));
        assert_eq!(binary(Size::new(3, 3), on), "▀▄█\n▀\n");
    }
}
