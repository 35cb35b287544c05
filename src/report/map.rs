//! The map preview of `--report`: the raster (its first three bands, stretched) at most
//! [`PREVIEW_SIZE`] pixels on its longest side, with every classified feature drawn over it in
//! its class colour (points as dots, lines as strokes, polygons as outlines, each over a dark
//! halo) and the misclassified ones outlined in [`MISCLASSIFIED_COLOR`] on top. Drawing is
//! tiny-skia's (anti-aliased); reading and resampling the raster is GDAL's.

use anyhow::Result;
use gdal::raster::ResampleAlg;
use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use geo::CoordsIter;
use std::collections::HashMap;

use tiny_skia::{Color, FillRule, Paint, Path, PathBuilder, Pixmap, PixmapPaint, Stroke, Transform};

use crate::input::raster::{Raster, RasterGrid};
use crate::input::source;
use crate::input::source::SourceKind;
use crate::report::picture::Stretches;

/// Longest side of the map preview, pixels.
pub const PREVIEW_SIZE: usize = 900;
/// Outline of misclassified features (with `--truth-field`).
pub const MISCLASSIFIED_COLOR: [u8; 3] = [255, 0, 200];
/// Colour of the halo under features, visible on any background.
pub const HALO_COLOR: [u8; 3] = [20, 20, 20];

/// The preview being drawn.
pub struct MapCanvas {
    pixmap: Pixmap,
    grid: RasterGrid,
    /// Raster pixels per preview pixel.
    scale: f64,
    /// From the features' CRS to the raster's, when they differ.
    transform: Option<CoordTransform>,
    /// Radius of a point's dot, preview pixels.
    radius: f32,
    /// Shapes to outline in the highlight colour once every feature is drawn.
    highlights: Vec<Shape>,
    /// Point markers drawn once and stamped at every point (dots by colour; `None`: the ring of
    /// misclassified points): many points cost a copy each, not a fill.
    markers: HashMap<Option<[u8; 3]>, Pixmap>,
}

/// A shape in preview pixels.
enum Shape {
    Dot(f32, f32),
    Line(Path),
    Area(Path),
}

impl MapCanvas {
    /// The raster `name` as background, its bands stretched by `stretches`; features to come in
    /// the CRS `features_srs` (`None`: the raster's), about `features` of them (dots are smaller
    /// when there are many).
    pub fn new(
        name: &str,
        stretches: &Stretches,
        features_srs: Option<SpatialRef>,
        features: usize,
    ) -> Result<MapCanvas> {
        let raster = Raster::open(name)?;
        let grid = raster.grid.clone();
        // Scaled to PREVIEW_SIZE on its longest side, down (averaging) or up (nearest neighbour).
        let scale = grid.width.max(grid.height) as f64 / PREVIEW_SIZE as f64;
        let resampling = if scale > 1.0 {
            ResampleAlg::Average
        } else {
            ResampleAlg::NearestNeighbour
        };
        let (w, h) = (
            ((grid.width as f64 / scale).round() as usize).max(1),
            ((grid.height as f64 / scale).round() as usize).max(1),
        );
        let dataset = source::open(name, SourceKind::Raster)?;
        let mut pixmap = Pixmap::new(w as u32, h as u32).ok_or_else(|| anyhow::anyhow!("empty map preview"))?;
        let pixels = pixmap.data_mut();
        for channel in 0..3 {
            let number = (channel % raster.bands.len()) + 1;
            let values = dataset.rasterband(number)?.read_as::<f64>(
                (0, 0),
                (grid.width, grid.height),
                (w, h),
                Some(resampling),
            )?;
            let stretch = stretches.band(number);
            for (i, v) in values.data().iter().enumerate() {
                pixels[i * 4 + channel] = stretch.apply(*v);
            }
        }
        for alpha in pixels.iter_mut().skip(3).step_by(4) {
            *alpha = 255;
        }
        let transform = match (features_srs, grid.spatial_ref()) {
            (Some(mut from), Some(to)) => {
                from.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
                (from.to_wkt().ok() != to.to_wkt().ok())
                    .then(|| CoordTransform::new(&from, &to))
                    .transpose()?
            }
            _ => None,
        };
        // Dots about a third of the mean spacing of the features, 1.5 to 4.5 pixels.
        let spacing = ((w * h) as f64 / features.max(1) as f64).sqrt();
        let radius = (spacing / 3.0).clamp(1.5, 4.5) as f32;
        Ok(MapCanvas {
            pixmap,
            grid,
            scale,
            transform,
            radius,
            highlights: Vec::new(),
            markers: HashMap::new(),
        })
    }

    /// Draws a feature in `color`; `misclassified` ones are outlined once all are drawn.
    /// Returns where its centre is on the preview (pixels), when it lies on it. Geometries
    /// that cannot be placed (no 2-D form, failed reprojection) are left out.
    pub fn draw(
        &mut self,
        geometry: &gdal::vector::Geometry,
        color: [u8; 3],
        misclassified: bool,
    ) -> Option<(f32, f32)> {
        use geo::BoundingRect;
        let placed = match &self.transform {
            Some(t) => geometry.transform(t).ok()?.to_geo(),
            None => geometry.to_geo(),
        };
        let shape = placed.ok()?;
        let centre = shape
            .bounding_rect()
            .map(|r| self.to_preview(r.center().x, r.center().y));
        let mut shapes = Vec::new();
        self.shapes(&shape, &mut shapes);
        for shape in shapes {
            self.paint(&shape, color);
            if misclassified {
                self.highlights.push(shape);
            }
        }
        // A feature whose centre is off the preview but that reaches onto it is named at the
        // nearest point of the preview's edge.
        let (w, h) = (self.pixmap.width() as f32, self.pixmap.height() as f32);
        let on_preview = shape.bounding_rect().is_some_and(|r| {
            let (x0, y0) = self.to_preview(r.min().x, r.max().y);
            let (x1, y1) = self.to_preview(r.max().x, r.min().y);
            x0.min(x1) < w && x0.max(x1) >= 0.0 && y0.min(y1) < h && y0.max(y1) >= 0.0
        });
        centre
            .filter(|_| on_preview)
            .map(|(x, y)| (x.clamp(0.0, w - 1.0), y.clamp(0.0, h - 1.0)))
    }

    /// The preview as RGB pixels (row by row): width, height, pixels.
    pub fn finish(mut self) -> (usize, usize, Vec<u8>) {
        let highlights = std::mem::take(&mut self.highlights);
        for shape in &highlights {
            match shape {
                Shape::Dot(x, y) => self.stamp(*x, *y, None),
                Shape::Line(path) | Shape::Area(path) => {
                    self.stroke(path, HALO_COLOR, 255, 5.5);
                    self.stroke(path, MISCLASSIFIED_COLOR, 255, 2.5);
                }
            }
        }
        let (w, h) = (self.pixmap.width() as usize, self.pixmap.height() as usize);
        // Opaque pixels: premultiplied RGBA is plain RGBA.
        let rgb = self
            .pixmap
            .data()
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect();
        (w, h, rgb)
    }

    /// A point of the features' (reprojected) CRS in preview pixels.
    fn to_preview(&self, x: f64, y: f64) -> (f32, f32) {
        let (col, row) = self.grid.world_to_pixel(x, y);
        ((col / self.scale) as f32, (row / self.scale) as f32)
    }

    /// The preview shapes of `shape`, collections flattened.
    fn shapes(&self, shape: &geo::Geometry<f64>, out: &mut Vec<Shape>) {
        let ring = |coords: &mut dyn Iterator<Item = geo::Coord<f64>>, builder: &mut PathBuilder, close: bool| {
            for (i, c) in coords.enumerate() {
                let (x, y) = self.to_preview(c.x, c.y);
                if i == 0 {
                    builder.move_to(x, y);
                } else {
                    builder.line_to(x, y);
                }
            }
            if close {
                builder.close();
            }
        };
        match shape {
            geo::Geometry::Point(p) => {
                let (x, y) = self.to_preview(p.x(), p.y());
                out.push(Shape::Dot(x, y));
            }
            geo::Geometry::MultiPoint(mp) => mp.0.iter().for_each(|p| self.shapes(&geo::Geometry::Point(*p), out)),
            geo::Geometry::LineString(l) => {
                let mut builder = PathBuilder::new();
                ring(&mut l.coords_iter(), &mut builder, false);
                out.extend(builder.finish().map(Shape::Line));
            }
            geo::Geometry::MultiLineString(ml) => {
                let mut builder = PathBuilder::new();
                for l in &ml.0 {
                    ring(&mut l.coords_iter(), &mut builder, false);
                }
                out.extend(builder.finish().map(Shape::Line));
            }
            geo::Geometry::Polygon(_) | geo::Geometry::MultiPolygon(_) => {
                let polygons: Vec<&geo::Polygon<f64>> = match shape {
                    geo::Geometry::Polygon(p) => vec![p],
                    geo::Geometry::MultiPolygon(mp) => mp.0.iter().collect(),
                    _ => unreachable!(),
                };
                let mut builder = PathBuilder::new();
                for polygon in polygons {
                    ring(&mut polygon.exterior().coords_iter(), &mut builder, true);
                    for hole in polygon.interiors() {
                        ring(&mut hole.coords_iter(), &mut builder, true);
                    }
                }
                out.extend(builder.finish().map(Shape::Area));
            }
            geo::Geometry::GeometryCollection(gc) => gc.0.iter().for_each(|g| self.shapes(g, out)),
            geo::Geometry::Line(l) => self.shapes(&geo::Geometry::LineString(geo::LineString::from(*l)), out),
            geo::Geometry::Rect(r) => self.shapes(&geo::Geometry::Polygon(r.to_polygon()), out),
            geo::Geometry::Triangle(t) => self.shapes(&geo::Geometry::Polygon(t.to_polygon()), out),
        }
    }

    fn paint(&mut self, shape: &Shape, color: [u8; 3]) {
        match shape {
            Shape::Dot(x, y) => self.stamp(*x, *y, Some(color)),
            // Areas are outlined, not filled: a large polygon would tint the whole map.
            Shape::Line(path) | Shape::Area(path) => {
                self.stroke(path, HALO_COLOR, 255, 5.0);
                self.stroke(path, color, 255, 2.0);
            }
        }
    }

    /// Stamps the marker centred on (x, y): a dot of `color` over a halo, or (`None`) the ring
    /// around a misclassified point.
    fn stamp(&mut self, x: f32, y: f32, color: Option<[u8; 3]>) {
        let r = self.radius;
        let marker = self.markers.entry(color).or_insert_with(|| {
            let size = (2.0 * (2.0 * r + 4.0)).ceil() as u32;
            let c = size as f32 / 2.0;
            let mut marker = Pixmap::new(size, size).expect("a marker of a few pixels");
            let mut circles = |ink: [u8; 3], radii: &[f32]| {
                let mut path = PathBuilder::new();
                for &radius in radii {
                    path.push_circle(c, c, radius);
                }
                if let Some(path) = path.finish() {
                    let paint = solid(ink[0], ink[1], ink[2], 255);
                    marker.fill_path(&path, &paint, FillRule::EvenOdd, Transform::identity(), None);
                }
            };
            match color {
                Some(color) => {
                    circles(HALO_COLOR, &[r + 1.5]);
                    circles(color, &[r]);
                }
                // Rings: even-odd fills of two circles.
                // as wide as the dot's radius (at least 1.5 pixels), in a thin halo.
                None => {
                    let width = r.max(1.5);
                    circles(HALO_COLOR, &[r + 2.0 + width, r + 0.5]);
                    circles(MISCLASSIFIED_COLOR, &[r + 1.5 + width, r + 1.5]);
                }
            }
            marker
        });
        let half = marker.width() as f32 / 2.0;
        self.pixmap.draw_pixmap(
            (x - half).round() as i32,
            (y - half).round() as i32,
            marker.as_ref(),
            &PixmapPaint::default(),
            Transform::identity(),
            None,
        );
    }

    fn stroke(&mut self, path: &Path, [r, g, b]: [u8; 3], alpha: u8, width: f32) {
        let paint = solid(r, g, b, alpha);
        let stroke = Stroke {
            width,
            line_join: tiny_skia::LineJoin::Round,
            line_cap: tiny_skia::LineCap::Round,
            ..Stroke::default()
        };
        self.pixmap
            .stroke_path(path, &paint, &stroke, Transform::identity(), None);
    }
}

fn solid(r: u8, g: u8, b: u8, a: u8) -> Paint<'static> {
    let mut paint = Paint::default();
    paint.set_color(Color::from_rgba8(r, g, b, a));
    paint.anti_alias = true;
    paint
}
