//! Where digit tiles go on a panel: a grid of square cells separated by gaps.

use embedded_graphics::geometry::{Point, Size};

/// A grid of `columns x rows` square cells of `cell` pixels, `gap` pixels apart, whose
/// top-left cell starts at `origin`. Tiles are placed row-major.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Cells per row.
    pub columns: u32,
    /// Rows of cells.
    pub rows: u32,
    /// Side of one cell in pixels.
    pub cell: u32,
    /// Pixels between neighbouring cells.
    pub gap: u32,
    /// Top-left corner of the first cell.
    pub origin: Point,
}

impl Layout {
    /// A grid with a margin of `gap / 2` all round, so a display of [`Layout::panel_size`]
    /// fits it exactly (every tile framed by the same border).
    pub fn fitted(columns: u32, rows: u32, cell: u32, gap: u32) -> Self {
        let margin = (gap / 2) as i32;
        Self {
            columns,
            rows,
            cell,
            gap,
            origin: Point::new(margin, margin),
        }
    }

    /// Lays out `tiles` cells on a fixed `panel`, trying each cell side of `cells` (largest
    /// first) and wrapping rows; the grid is centred. `None` if even the smallest does not fit.
    pub fn on_panel(panel: Size, tiles: u32, cells: &[(u32, u32)]) -> Option<Self> {
        cells.iter().find_map(|&(cell, gap)| {
            let fit = |extent: u32| (extent + gap) / (cell + gap);
            let columns = fit(panel.width).min(tiles);
            if columns == 0 {
                return None;
            }
            let rows = tiles.div_ceil(columns);
            if rows > fit(panel.height) {
                return None;
            }
            let used = Self {
                columns,
                rows,
                cell,
                gap,
                origin: Point::zero(),
            }
            .grid_size();
            let origin = Point::new(
                ((panel.width - used.width) / 2) as i32,
                ((panel.height - used.height) / 2) as i32,
            );
            Some(Self {
                origin,
                ..Self::fitted(columns, rows, cell, gap)
            })
        })
    }

    /// Size of the cells and the gaps between them (no margins).
    pub fn grid_size(&self) -> Size {
        let extent = |n: u32| n * self.cell + n.saturating_sub(1) * self.gap;
        Size::new(extent(self.columns), extent(self.rows))
    }

    /// Size of a panel that holds the grid with its margins on every side.
    pub fn panel_size(&self) -> Size {
        let grid = self.grid_size();
        let margin = 2 * self.origin.x.max(0) as u32;
        let margin_y = 2 * self.origin.y.max(0) as u32;
        Size::new(grid.width + margin, grid.height + margin_y)
    }

    /// Number of cells.
    pub fn capacity(&self) -> u32 {
        self.columns * self.rows
    }

    /// Top-left corner of the `index`-th cell (row-major).
    pub fn position(&self, index: u32) -> Point {
        let pitch = (self.cell + self.gap) as i32;
        let (column, row) = ((index % self.columns) as i32, (index / self.columns) as i32);
        self.origin + Point::new(column * pitch, row * pitch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fitted_grid_has_uniform_border() {
        let layout = Layout::fitted(3, 2, 28, 4);
        assert_eq!(layout.panel_size(), Size::new(3 * 32, 2 * 32));
        assert_eq!(layout.position(0), Point::new(2, 2));
        assert_eq!(layout.position(4), Point::new(2 + 32, 2 + 32));
    }

    #[test]
    fn panel_layout_shrinks_then_gives_up() {
        let oled = Size::new(128, 64);
        let cells = [(28, 4), (14, 2)];
        let one = Layout::on_panel(oled, 1, &cells).unwrap();
        assert_eq!((one.columns, one.rows, one.cell), (1, 1, 28));
        assert_eq!(one.position(0), Point::new(50, 18));
        let eight = Layout::on_panel(oled, 8, &cells).unwrap();
        assert_eq!((eight.columns, eight.rows, eight.cell), (4, 2, 28));
        let ten = Layout::on_panel(oled, 10, &cells).unwrap();
        assert_eq!((ten.columns, ten.rows, ten.cell), (8, 2, 14));
        assert_eq!(Layout::on_panel(oled, 33, &cells), None);
    }
}
