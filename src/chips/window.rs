//! Which raster pixels a chip is cut from.

use geo::MapCoords;

use crate::input::features::PixelShape;
use crate::input::raster::PixelWindow;

/// A feature's shape in the grid of chips cut at another cell size: raster pixel coordinates
/// divided by `scale` (raster pixels per chip pixel).
pub fn in_chip_grid(shape: &PixelShape, scale: (f64, f64)) -> PixelShape {
    let (kx, ky) = scale;
    let [x0, y0, x1, y1] = shape.envelope;
    PixelShape {
        envelope: [x0 / kx, y0 / ky, x1 / kx, y1 / ky],
        geometry: shape.geometry.map_coords(|c| geo::Coord {
            x: c.x / kx,
            y: c.y / ky,
        }),
        is_point: shape.is_point,
        is_polygon: shape.is_polygon,
    }
}

/// The fixed chip window for an envelope: top-left at `floor(cx - W/2), floor(cy - H/2)`.
pub fn fixed_window(envelope: [f64; 4], width: usize, height: usize) -> PixelWindow {
    let cx = (envelope[0] + envelope[2]) / 2.0;
    let cy = (envelope[1] + envelope[3]) / 2.0;
    PixelWindow {
        col: (cx - width as f64 / 2.0).floor() as isize,
        row: (cy - height as f64 / 2.0).floor() as isize,
        width,
        height,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_window_follows_the_floor_rule() {
        // Envelope centre (10.5, 20.25), 8x4 chip: col floor(6.5) = 6, row floor(18.25) = 18.
        let w = fixed_window([10.0, 20.0, 11.0, 20.5], 8, 4);
        assert_eq!(
            w,
            PixelWindow {
                col: 6,
                row: 18,
                width: 8,
                height: 4
            }
        );
        // A point at a pixel corner: centre (3, 3), 4x4 chip starts at (1, 1).
        assert_eq!(fixed_window([3.0, 3.0, 3.0, 3.0], 4, 4).col, 1);
        // Negative coordinates floor downwards.
        assert_eq!(fixed_window([-0.2, -0.2, -0.2, -0.2], 2, 2).col, -2);
    }
}
