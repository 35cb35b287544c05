//! `BlackenAroundFeature`: pixels whose centre lies outside the polygon are set to 0.

use crate::input::raster::PixelWindow;

/// Sets to 0, in every channel, the pixels of `chip` (laid over `window`) whose centre lies
/// outside `polygon` (even-odd rule over all rings; pixel coordinates).
pub fn blacken_outside(polygon: &geo::Geometry<f64>, window: PixelWindow, chip: &mut [f32]) {
    let rings = rings_of(polygon);
    let (w, h) = (window.width, window.height);
    let plane = w * h;
    let mut inside = vec![false; plane];
    let mut crossings: Vec<f64> = Vec::new();
    for j in 0..h {
        let y = window.row as f64 + j as f64 + 0.5;
        crossings.clear();
        for ring in &rings {
            for pair in ring.windows(2) {
                let (a, b) = (pair[0], pair[1]);
                if (a.y <= y) != (b.y <= y) {
                    crossings.push(a.x + (y - a.y) * (b.x - a.x) / (b.y - a.y));
                }
            }
        }
        crossings.sort_by(f64::total_cmp);
        for span in crossings.chunks_exact(2) {
            // Pixel i has its centre at window.col + i + 0.5; keep centres within [x0, x1).
            let first = (span[0] - window.col as f64 - 0.5).ceil().max(0.0) as usize;
            let last = (span[1] - window.col as f64 - 0.5).ceil().clamp(0.0, w as f64) as usize;
            for i in first..last.min(w) {
                inside[j * w + i] = true;
            }
        }
    }
    for channel in chip.chunks_exact_mut(plane) {
        for (v, &keep) in channel.iter_mut().zip(&inside) {
            if !keep {
                *v = 0.0;
            }
        }
    }
}

fn rings_of(geometry: &geo::Geometry<f64>) -> Vec<Vec<geo::Coord<f64>>> {
    let mut rings = Vec::new();
    let mut push_polygon = |p: &geo::Polygon<f64>| {
        rings.push(p.exterior().0.clone());
        for hole in p.interiors() {
            rings.push(hole.0.clone());
        }
    };
    match geometry {
        geo::Geometry::Polygon(p) => push_polygon(p),
        geo::Geometry::MultiPolygon(mp) => mp.0.iter().for_each(push_polygon),
        geo::Geometry::GeometryCollection(gc) => {
            for g in &gc.0 {
                if let geo::Geometry::Polygon(p) = g {
                    push_polygon(p)
                }
            }
        }
        _ => {}
    }
    rings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blackening_keeps_pixel_centres_inside_the_polygon() {
        // Triangle covering the lower-left half of a 4x4 window at (10, 10).
        let triangle = geo::Geometry::Polygon(geo::Polygon::new(
            geo::LineString::from(vec![(10.0, 10.0), (10.0, 14.0), (14.0, 14.0), (10.0, 10.0)]),
            vec![],
        ));
        let window = PixelWindow {
            col: 10,
            row: 10,
            width: 4,
            height: 4,
        };
        let mut chip = vec![1.0; 16];
        blacken_outside(&triangle, window, &mut chip);
        // Row j keeps the pixels whose centre lies left of the diagonal: i < j.
        let kept: Vec<usize> = (0..4)
            .map(|j| chip[j * 4..j * 4 + 4].iter().filter(|&&v| v == 1.0).count())
            .collect();
        assert_eq!(kept, vec![0, 1, 2, 3]);
    }

    #[test]
    fn blackening_respects_holes() {
        let donut = geo::Geometry::Polygon(geo::Polygon::new(
            geo::LineString::from(vec![(0.0, 0.0), (4.0, 0.0), (4.0, 4.0), (0.0, 4.0), (0.0, 0.0)]),
            vec![geo::LineString::from(vec![
                (1.0, 1.0),
                (3.0, 1.0),
                (3.0, 3.0),
                (1.0, 3.0),
                (1.0, 1.0),
            ])],
        ));
        let mut chip = vec![1.0; 16];
        blacken_outside(
            &donut,
            PixelWindow {
                col: 0,
                row: 0,
                width: 4,
                height: 4,
            },
            &mut chip,
        );
        let zeros: Vec<usize> = chip
            .iter()
            .enumerate()
            .filter(|(_, &v)| v == 0.0)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(zeros, vec![5, 6, 9, 10]);
    }
}
