//! The gallery of `--report`: per class, the objects a reviewer should look at first (with a
//! truth field, the misclassified ones; then the lowest confidences), each with its chip as the
//! model saw it before normalisation, kept as a small thumbnail. It is filled while the run
//! scores its batches, in bounded memory: at most [`Gallery::per_class`] objects per class, each
//! with a thumbnail of at most [`THUMBNAIL_SIZE`] pixels a side.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use anyhow::{Context, Result};
use gdal::raster::{Buffer, ResampleAlg};
use gdal::DriverManager;

use crate::input::raster::RasterGrid;

/// Objects per class when `--report-chips` is not given.
pub const DEFAULT_CHIPS_PER_CLASS: usize = 8;
/// Most objects per class `--report-chips` accepts.
pub const MAX_CHIPS_PER_CLASS: usize = 100;
/// Most objects in the whole gallery: with many classes, fewer per class (at least one).
pub const MAX_CHIPS: usize = 240;
/// Longest side of a thumbnail, in pixels: larger chips are averaged down to it.
pub const THUMBNAIL_SIZE: usize = 96;

/// One object as the gallery shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct GalleryObject {
    /// Position of the object in the input (0-based; for images, among the images).
    pub position: usize,
    /// The input feature id (`SourceOID`), for features.
    pub source_id: Option<i64>,
    /// The image it was classified on, when there are several (or images are the objects).
    pub image_id: Option<String>,
    /// The gallery class it is shown under: its label, or (multi-label) one class of its label
    /// set, or `""` for a multi-label row without a label.
    pub class: String,
    /// Its label as written (multi-label: the set, `Roof;tree`).
    pub label: String,
    /// Probability of `class` (a row without a label: its highest probability).
    pub confidence: f64,
    /// Multi-label: how far `confidence` is from the threshold, which ranks the object instead
    /// of the confidence (nearest first).
    pub margin: Option<f64>,
    /// The class with the second-highest probability, and that probability.
    pub runner_up: Option<(String, f64)>,
    /// The expected class (`--truth-field`), when known.
    pub expected: Option<String>,
    /// Whether the label is not the expected class (matched as the truth comparison matches
    /// truth values: by name or `Value`, as a set for multi-label models).
    pub misclassified: bool,
    /// The feature drawn over its chip, when it is a feature.
    pub outline: Option<Outline>,
    /// The centre of the feature (or image) in the raster's coordinates, as shown.
    pub location: Option<String>,
}

/// The map coordinates of pixel (`col`, `row`) of `grid`, as the gallery shows them: with as
/// many decimals as a tenth of the raster's pixel needs (`None`: a raster without georeferencing).
pub fn location(grid: &RasterGrid, col: f64, row: f64) -> Option<String> {
    if !grid.georeferenced {
        return None;
    }
    let (x, y) = grid.pixel_to_world(col, row);
    let pixel = grid.geo_transform[1].abs().max(grid.geo_transform[5].abs());
    let digits = if pixel > 0.0 {
        (1.0 - pixel.log10()).ceil().clamp(0.0, 9.0) as usize
    } else {
        2
    };
    Some(format!("{x:.digits$}, {y:.digits$}"))
}

/// About the most points of one outline; a feature with more keeps every k-th.
pub const MAX_OUTLINE_POINTS: usize = 4000;

/// A feature as it lies on its chip: paths and centre in fractions of the chip's width and
/// height (0 to 1 across the chip, y down), thinned to what a thumbnail can show.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Outline {
    /// Lines and rings (`true`: closed), each a list of points.
    pub paths: Vec<(Vec<[f32; 2]>, bool)>,
    /// The centre of the feature's envelope.
    pub centre: [f32; 2],
}

impl Outline {
    /// The outline of `geometry` (in chip fractions); points are left to the centre mark.
    /// Coordinates far outside the chip are clamped and points closer than half a thumbnail
    /// pixel to the previous one dropped, so a huge polygon costs a few points; past
    /// [`MAX_OUTLINE_POINTS`] every k-th point is kept.
    pub fn of(geometry: &geo::Geometry<f64>) -> Outline {
        use geo::BoundingRect;
        let centre = geometry
            .bounding_rect()
            .map_or([0.5, 0.5], |r| [r.center().x as f32, r.center().y as f32]);
        let mut paths = Vec::new();
        collect_paths(geometry, &mut paths);
        // More points than a thumbnail can show (a jagged outline): every k-th is kept.
        let total: usize = paths.iter().map(|(p, _)| p.len()).sum();
        if total > MAX_OUTLINE_POINTS {
            let stride = total.div_ceil(MAX_OUTLINE_POINTS);
            for (points, _) in &mut paths {
                let last = points.last().copied();
                let kept: Vec<[f32; 2]> = points.iter().step_by(stride).copied().chain(last).collect();
                *points = kept;
            }
            paths.retain(|(p, _)| p.len() > 1);
        }
        Outline { paths, centre }
    }
}

fn collect_paths(geometry: &geo::Geometry<f64>, out: &mut Vec<(Vec<[f32; 2]>, bool)>) {
    let mut add = |line: &geo::LineString<f64>, closed: bool| {
        let step = 0.5 / THUMBNAIL_SIZE as f32;
        let mut points: Vec<[f32; 2]> = Vec::new();
        for c in line.coords() {
            let p = [(c.x as f32).clamp(-0.5, 1.5), (c.y as f32).clamp(-0.5, 1.5)];
            if points
                .last()
                .is_none_or(|q| (p[0] - q[0]).abs().max((p[1] - q[1]).abs()) >= step)
            {
                points.push(p);
            }
        }
        if points.len() > 1 {
            out.push((points, closed));
        }
    };
    match geometry {
        geo::Geometry::LineString(l) => add(l, false),
        geo::Geometry::MultiLineString(ml) => ml.0.iter().for_each(|l| add(l, false)),
        geo::Geometry::Polygon(p) => std::iter::once(p.exterior())
            .chain(p.interiors())
            .for_each(|r| add(r, true)),
        geo::Geometry::MultiPolygon(mp) => {
            mp.0.iter()
                .flat_map(|p| std::iter::once(p.exterior()).chain(p.interiors()))
                .for_each(|r| add(r, true))
        }
        geo::Geometry::GeometryCollection(gc) => gc.0.iter().for_each(|g| collect_paths(g, out)),
        geo::Geometry::Rect(r) => collect_paths(&geo::Geometry::Polygon(r.to_polygon()), out),
        geo::Geometry::Triangle(t) => collect_paths(&geo::Geometry::Polygon(t.to_polygon()), out),
        geo::Geometry::Line(l) => collect_paths(&geo::Geometry::LineString(geo::LineString::from(*l)), out),
        geo::Geometry::Point(_) | geo::Geometry::MultiPoint(_) => {}
    }
}

impl GalleryObject {
    /// Where it stands among the objects worth checking.
    pub fn rank(&self) -> Rank {
        Rank {
            misclassified: self.misclassified,
            confidence: self.margin.unwrap_or(self.confidence),
            position: self.position,
        }
    }
}

/// Where an object stands in the order of objects worth checking: misclassified first, then the
/// lowest confidence, then input order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rank {
    /// Its label differs from a known expected class.
    pub misclassified: bool,
    /// Probability of its label (multi-label: its distance from the threshold).
    pub confidence: f64,
    /// Position in the input.
    pub position: usize,
}

impl Rank {
    fn order(&self, other: &Rank) -> Ordering {
        (!self.misclassified)
            .cmp(&!other.misclassified)
            .then(self.confidence.total_cmp(&other.confidence))
            .then(self.position.cmp(&other.position))
    }
}

/// A chip reduced for display: one plane (grey) or three (red, green, blue) of raster values.
#[derive(Debug, Clone, PartialEq)]
pub struct Thumbnail {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `width * height` values per plane, row by row.
    pub planes: Vec<Vec<f32>>,
}

impl Thumbnail {
    /// The first three channels (or the first, when there are fewer than three) of a
    /// `channels x height x width` chip, averaged down to [`THUMBNAIL_SIZE`] on its longest side
    /// by GDAL when it is larger.
    pub fn from_chip(chip: &[f32], channels: usize, height: usize, width: usize) -> Result<Thumbnail> {
        let plane = width * height;
        let shown = if channels >= 3 { 3 } else { 1 };
        let planes: Vec<&[f32]> = (0..shown).map(|c| &chip[c * plane..(c + 1) * plane]).collect();
        let longest = width.max(height);
        if longest <= THUMBNAIL_SIZE {
            return Ok(Thumbnail {
                width,
                height,
                planes: planes.iter().map(|p| p.to_vec()).collect(),
            });
        }
        let scale = THUMBNAIL_SIZE as f64 / longest as f64;
        let size = (
            ((width as f64 * scale).round() as usize).max(1),
            ((height as f64 * scale).round() as usize).max(1),
        );
        let reduce = || -> Result<Vec<Vec<f32>>> {
            let memory = DriverManager::get_driver_by_name("MEM")?;
            let dataset = memory.create_with_band_type::<f32, _>("", width, height, shown)?;
            let mut out = Vec::with_capacity(shown);
            for (b, values) in planes.iter().enumerate() {
                let mut band = dataset.rasterband(b + 1)?;
                band.write(
                    (0, 0),
                    (width, height),
                    &mut Buffer::new((width, height), values.to_vec()),
                )?;
                let reduced = band.read_as::<f32>((0, 0), (width, height), size, Some(ResampleAlg::Average))?;
                out.push(reduced.data().to_vec());
            }
            Ok(out)
        };
        Ok(Thumbnail {
            width: size.0,
            height: size.1,
            planes: reduce().context("reducing a chip to a thumbnail")?,
        })
    }
}

/// An object of the gallery with its thumbnail.
#[derive(Debug, Clone, PartialEq)]
pub struct GalleryEntry {
    /// The object.
    pub object: GalleryObject,
    /// Its chip before normalisation, reduced.
    pub thumbnail: Thumbnail,
}

/// Per class, the objects most worth checking, worst first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Gallery {
    /// Objects per class as asked (`--report-chips`).
    pub requested: usize,
    /// Objects kept per class: as asked, or fewer when the model has so many classes that the
    /// gallery would pass [`MAX_CHIPS`].
    pub per_class: usize,
    /// Raster bands (1-based) of the thumbnails' planes, for their display stretch.
    pub bands: Vec<usize>,
    classes: BTreeMap<String, Vec<GalleryEntry>>,
}

impl Gallery {
    /// An empty gallery keeping `requested` objects per class of a model with `classes` classes.
    pub fn new(requested: usize, classes: usize) -> Gallery {
        Gallery {
            requested,
            per_class: requested.min((MAX_CHIPS / classes.max(1)).max(1)),
            bands: Vec::new(),
            classes: BTreeMap::new(),
        }
    }

    /// Whether an object of class `label` at `rank` would be kept: its class has room, or it
    /// ranks before the last kept. Cheap: asked before the object's thumbnail is made.
    pub fn admits(&self, label: &str, rank: Rank) -> bool {
        if self.per_class == 0 {
            return false;
        }
        match self.classes.get(label) {
            Some(kept) if kept.len() >= self.per_class => kept
                .last()
                .is_some_and(|last| rank.order(&last.object.rank()) == Ordering::Less),
            _ => true,
        }
    }

    /// Keeps `object` with its thumbnail if it [`admits`](Gallery::admits) it, dropping the
    /// object it displaces. `bands` are the raster bands of the thumbnail's planes.
    pub fn insert(&mut self, object: GalleryObject, thumbnail: Thumbnail, bands: &[usize]) {
        let rank = object.rank();
        if !self.admits(&object.class, rank) {
            return;
        }
        if self.bands.is_empty() {
            self.bands = bands.iter().take(thumbnail.planes.len()).copied().collect();
        }
        let kept = self.classes.entry(object.class.clone()).or_default();
        let at = kept.partition_point(|e| e.object.rank().order(&rank) == Ordering::Less);
        kept.insert(at, GalleryEntry { object, thumbnail });
        kept.truncate(self.per_class);
    }

    /// Objects kept in all.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.classes.values().map(Vec::len).sum()
    }

    /// The objects kept for class `label` (`""`: multi-label rows without a label), worst first.
    pub fn class(&self, label: &str) -> &[GalleryEntry] {
        self.classes.get(label).map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(position: usize, label: &str, confidence: f64, expected: Option<&str>) -> GalleryObject {
        GalleryObject {
            position,
            source_id: Some(position as i64 + 100),
            image_id: None,
            class: label.into(),
            label: label.into(),
            confidence,
            margin: None,
            runner_up: None,
            expected: expected.map(String::from),
            misclassified: expected.is_some_and(|e| e != label),
            outline: None,
            location: None,
        }
    }

    fn thumbnail() -> Thumbnail {
        Thumbnail {
            width: 1,
            height: 1,
            planes: vec![vec![0.0]],
        }
    }

    #[test]
    fn keeps_per_class_the_misclassified_then_the_lowest_confidences() {
        let mut gallery = Gallery::new(3, 2);
        let offered = [
            object(0, "a", 0.90, Some("a")),
            object(1, "a", 0.40, Some("a")),
            object(2, "b", 0.99, Some("a")),
            object(3, "a", 0.95, Some("b")), // misclassified: first, whatever its confidence
            object(4, "a", 0.60, Some("a")),
            object(5, "a", 0.40, Some("a")), // ties with 1: input order
            object(6, "a", 0.30, None),      // no truth: ranked by confidence
            object(7, "b", 0.50, Some("b")),
        ];
        for o in offered.clone() {
            gallery.insert(o, thumbnail(), &[1]);
        }
        let positions = |label: &str| {
            gallery
                .class(label)
                .iter()
                .map(|e| e.object.position)
                .collect::<Vec<_>>()
        };
        assert_eq!(positions("a"), vec![3, 6, 1]);
        assert_eq!(positions("b"), vec![2, 7]);
        assert_eq!(gallery.len(), 5);
        let admits = |o: GalleryObject| gallery.admits(&o.label, o.rank());
        assert!(!admits(object(8, "a", 0.5, Some("a"))));
        assert!(admits(object(8, "a", 0.35, Some("a"))));
        assert!(admits(object(8, "b", 1.0, Some("b"))), "b has room");
        assert!(gallery.class("c").is_empty());
        // The same objects offered in another order give the same gallery.
        let mut reversed = Gallery::new(3, 2);
        for o in offered.into_iter().rev() {
            reversed.insert(o, thumbnail(), &[1]);
        }
        assert_eq!(reversed, gallery);
    }

    #[test]
    fn outlines_keep_what_a_thumbnail_shows() {
        use geo::{polygon, Geometry};
        let square: Geometry<f64> =
            polygon![(x: 0.25, y: 0.25), (x: 0.75, y: 0.25), (x: 0.75, y: 0.75), (x: 0.25, y: 0.75)].into();
        let outline = Outline::of(&square);
        assert_eq!(outline.centre, [0.5, 0.5]);
        assert_eq!(outline.paths.len(), 1);
        assert!(outline.paths[0].1, "a ring is closed");
        assert_eq!(outline.paths[0].0.len(), 5);
        // A ring of 100,000 vertices far beyond the chip: clamped and thinned to a few points.
        let huge: Vec<(f64, f64)> = (0..100_000)
            .map(|i| {
                let a = i as f64 / 100_000.0 * std::f64::consts::TAU;
                (0.5 + 50.0 * a.cos(), 0.5 + 50.0 * a.sin())
            })
            .collect();
        let ring = Geometry::Polygon(geo::Polygon::new(huge.into(), vec![]));
        let thinned = Outline::of(&ring);
        let points: usize = thinned.paths.iter().map(|(p, _)| p.len()).sum();
        assert!((1..=MAX_OUTLINE_POINTS).contains(&points), "{points}");
        assert!(thinned.paths[0]
            .0
            .iter()
            .all(|p| p.iter().all(|v| (-0.5..=1.5).contains(v))));
        // A jagged outline of 20,000 vertices inside the chip keeps every 6th (one path).
        let jagged: Vec<(f64, f64)> = (0..20_000)
            .map(|i| {
                let a = i as f64 / 20_000.0 * std::f64::consts::TAU;
                let r = if i % 2 == 0 { 0.4 } else { 0.3 };
                (0.5 + r * a.cos(), 0.5 + r * a.sin())
            })
            .collect();
        let jagged = Outline::of(&Geometry::Polygon(geo::Polygon::new(jagged.into(), vec![])));
        assert_eq!(jagged.paths.len(), 1);
        let kept = jagged.paths[0].0.len();
        assert!((2000..=MAX_OUTLINE_POINTS + 1).contains(&kept), "{kept}");
        // Points have no outline, only their centre.
        let point: Geometry<f64> = geo::Point::new(0.5, 0.25).into();
        assert_eq!(
            Outline::of(&point),
            Outline {
                paths: vec![],
                centre: [0.5, 0.25]
            }
        );
    }

    #[test]
    fn many_classes_share_the_chip_limit() {
        assert_eq!(Gallery::new(8, 6).per_class, 8);
        assert_eq!(Gallery::new(8, 60).per_class, MAX_CHIPS / 60);
        assert_eq!(Gallery::new(8, 1000).per_class, 1);
        assert_eq!(Gallery::new(0, 6).per_class, 0);
        assert!(!Gallery::new(0, 6).admits("a", object(0, "a", 0.1, None).rank()));
    }

    #[test]
    fn thumbnails_keep_small_chips_and_average_large_ones_down() {
        // 4 channels of 2 x 3: the first three are kept as they are.
        let chip: Vec<f32> = (0..24).map(|v| v as f32).collect();
        let small = Thumbnail::from_chip(&chip, 4, 2, 3).unwrap();
        assert_eq!((small.width, small.height, small.planes.len()), (3, 2, 3));
        assert_eq!(small.planes[2], vec![12.0, 13.0, 14.0, 15.0, 16.0, 17.0]);
        assert_eq!(Thumbnail::from_chip(&chip[..12], 2, 2, 3).unwrap().planes.len(), 1);
        // 192 x 96, left half 10, right half 30: 96 x 48, halves kept apart.
        let (w, h) = (192, 96);
        let plane: Vec<f32> = (0..w * h).map(|i| if i % w < w / 2 { 10.0 } else { 30.0 }).collect();
        let chip: Vec<f32> = [plane.clone(), plane.clone(), plane].concat();
        let large = Thumbnail::from_chip(&chip, 3, h, w).unwrap();
        assert_eq!((large.width, large.height), (THUMBNAIL_SIZE, THUMBNAIL_SIZE / 2));
        let row = &large.planes[0][..large.width];
        assert!(
            row[..48].iter().all(|&v| v == 10.0) && row[48..].iter().all(|&v| v == 30.0),
            "{row:?}"
        );
    }
}
