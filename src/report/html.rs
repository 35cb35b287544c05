//! `--report report.html`: one self-contained HTML page (no network) with the run summary,
//! class counts, the confusion matrix when a truth field is given, a confidence histogram, and a
//! map preview (PNG embedded) of the raster with the features drawn in their class colours.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use gdal::raster::ResampleAlg;
use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform};
use gdal::vector::LayerAccess;
use gdal::{Dataset, DriverManager};

use crate::input::raster::Raster;
use crate::output::style::ClassColors;
use crate::report::summary::RunSummary;

/// Longest side of the map preview, pixels.
pub const PREVIEW_SIZE: usize = 900;

/// What the report shows.
pub struct ReportInputs<'a> {
    /// The run's summary.
    pub summary: &'a RunSummary,
    /// The written output (read back for labels, confidences and geometries).
    pub output: &'a Path,
    /// Name of the output layer the run wrote.
    pub layer: &'a str,
    /// Name of the label field.
    pub label_field: &'a str,
    /// The raster to preview (the first image).
    pub raster: &'a str,
    /// The model's classes and colours.
    pub colors: &'a ClassColors,
    /// The model package, for the title.
    pub model: &'a str,
}

/// The report page.
pub fn render(inputs: &ReportInputs<'_>) -> Result<String> {
    let rows = read_rows(inputs.output, inputs.layer, inputs.label_field)?;
    let preview = preview_png(inputs, &rows).context("drawing the map preview")?;
    Ok(page(inputs, &rows, preview.as_deref()))
}

/// An output row as the report needs it: label, confidence, geometry (as read).
struct ReportRow {
    label: Option<String>,
    confidence: Option<f64>,
    geometry: Option<gdal::vector::Geometry>,
}

/// The run's layer of the output: `layer`, or the only one (a CSV table).
fn output_layer<'d>(dataset: &'d Dataset, layer: &str) -> Result<gdal::vector::Layer<'d>> {
    Ok(match dataset.layer_by_name(layer) {
        Ok(layer) => layer,
        Err(_) => dataset.layer(0)?,
    })
}

fn read_rows(output: &Path, layer: &str, label_field: &str) -> Result<Vec<ReportRow>> {
    let dataset = Dataset::open(output)?;
    let mut layer = output_layer(&dataset, layer)?;
    let label = layer.defn().field_index(label_field).ok();
    let confidence = layer.defn().field_index(crate::output::CONFIDENCE_FIELD).ok();
    Ok(layer
        .features()
        .map(|f| ReportRow {
            label: label
                .and_then(|i| f.field_as_string(i).ok().flatten())
                .filter(|s| !s.is_empty()),
            confidence: confidence.and_then(|i| f.field_as_double(i).ok().flatten()),
            geometry: f.geometry().filter(|g| !unsafe { g.c_geometry() }.is_null()).cloned(),
        })
        .collect())
}

/// The raster (first three bands, stretched to 0-255) with every row's geometry drawn in its
/// class colour, as PNG bytes; `None` for a table output.
fn preview_png(inputs: &ReportInputs<'_>, rows: &[ReportRow]) -> Result<Option<Vec<u8>>> {
    let raster = Raster::open(inputs.raster)?;
    let grid = &raster.grid;
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
    let dataset = crate::input::source::open(inputs.raster, crate::input::source::SourceKind::Raster)?;
    let mut planes = Vec::new();
    for b in 0..3 {
        let band = dataset.rasterband((b % raster.bands.len()) + 1)?;
        let values = band
            .read_as::<f64>((0, 0), (grid.width, grid.height), (w, h), Some(resampling))?
            .data()
            .to_vec();
        // Byte imagery is shown as it is; other types are stretched to their range.
        let (lo, hi) = if band.band_type() == gdal::raster::GdalDataType::UInt8 {
            (0.0, 255.0)
        } else {
            values
                .iter()
                .copied()
                .filter(|v| v.is_finite())
                .fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)))
        };
        let span = if hi > lo { hi - lo } else { 1.0 };
        planes.push(
            values
                .iter()
                .map(|v| (((v - lo) / span) * 255.0).clamp(0.0, 255.0) as u8)
                .collect::<Vec<u8>>(),
        );
    }
    // Features drawn over it, in the raster's CRS.
    let colors: BTreeMap<&str, [u8; 3]> = inputs.colors.0.iter().map(|(n, c)| (n.as_str(), *c)).collect();
    let output = Dataset::open(inputs.output)?;
    let features_srs = output_layer(&output, inputs.layer)?.spatial_ref();
    let transform = match (features_srs, grid.spatial_ref()) {
        (Some(mut from), Some(to)) => {
            from.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
            Some(CoordTransform::new(&from, &to)?)
        }
        _ => None,
    };
    let mut canvas = Canvas { w, h, planes };
    for row in rows {
        let (Some(geometry), Some(label)) = (&row.geometry, &row.label) else {
            continue;
        };
        let color = colors.get(label.as_str()).copied().unwrap_or([160, 160, 160]);
        let geometry = match &transform {
            Some(t) => match geometry.transform(t) {
                Ok(g) => g,
                Err(_) => continue,
            },
            None => geometry.clone(),
        };
        let Ok(shape) = geometry.to_geo() else { continue };
        let to_px = |x: f64, y: f64| {
            let (c, r) = grid.world_to_pixel(x, y);
            (c / scale, r / scale)
        };
        canvas.draw(&shape, &to_px, color);
    }
    Ok(Some(encode_png(&canvas)?))
}

/// Colour of the halo drawn under features.
const HALO: [u8; 3] = [20, 20, 20];

struct Canvas {
    w: usize,
    h: usize,
    planes: Vec<Vec<u8>>,
}

impl Canvas {
    fn dot(&mut self, x: f64, y: f64, radius: i64, color: [u8; 3]) {
        let (cx, cy) = (x.round() as i64, y.round() as i64);
        for dy in -radius..=radius {
            for dx in -radius..=radius {
                let (px, py) = (cx + dx, cy + dy);
                if px >= 0 && py >= 0 && (px as usize) < self.w && (py as usize) < self.h {
                    for (plane, value) in self.planes.iter_mut().zip(color) {
                        plane[py as usize * self.w + px as usize] = value;
                    }
                }
            }
        }
    }

    fn line(&mut self, a: (f64, f64), b: (f64, f64), radius: i64, color: [u8; 3]) {
        let steps = ((b.0 - a.0).abs().max((b.1 - a.1).abs()).ceil() as usize).clamp(1, 100_000);
        for i in 0..=steps {
            let t = i as f64 / steps as f64;
            self.dot(a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t, radius, color);
        }
    }

    fn draw(&mut self, shape: &geo::Geometry<f64>, to_px: &dyn Fn(f64, f64) -> (f64, f64), color: [u8; 3]) {
        use geo::CoordsIter;
        match shape {
            geo::Geometry::Point(p) => {
                let (x, y) = to_px(p.x(), p.y());
                self.dot(x, y, 5, HALO);
                self.dot(x, y, 3, color);
            }
            geo::Geometry::MultiPoint(mp) => {
                mp.0.iter()
                    .for_each(|p| self.draw(&geo::Geometry::Point(*p), to_px, color))
            }
            geo::Geometry::LineString(l) => self.polyline(l.coords_iter().map(|c| to_px(c.x, c.y)).collect(), color),
            geo::Geometry::MultiLineString(ml) => {
                ml.0.iter()
                    .for_each(|l| self.draw(&geo::Geometry::LineString(l.clone()), to_px, color))
            }
            geo::Geometry::Polygon(p) => {
                self.polyline(p.exterior().coords_iter().map(|c| to_px(c.x, c.y)).collect(), color);
                for hole in p.interiors() {
                    self.polyline(hole.coords_iter().map(|c| to_px(c.x, c.y)).collect(), color);
                }
            }
            geo::Geometry::MultiPolygon(mp) => {
                mp.0.iter()
                    .for_each(|p| self.draw(&geo::Geometry::Polygon(p.clone()), to_px, color))
            }
            geo::Geometry::GeometryCollection(gc) => gc.0.iter().for_each(|g| self.draw(g, to_px, color)),
            _ => {}
        }
    }

    /// A line in `color` over a wider dark halo, visible on any background.
    fn polyline(&mut self, points: Vec<(f64, f64)>, color: [u8; 3]) {
        for (radius, ink) in [(2, HALO), (1, color)] {
            for pair in points.windows(2) {
                self.line(pair[0], pair[1], radius, ink);
            }
        }
    }
}

/// PNG bytes of the canvas, made by GDAL's PNG driver in memory.
fn encode_png(canvas: &Canvas) -> Result<Vec<u8>> {
    let mem = DriverManager::get_driver_by_name("MEM")?;
    let ds = mem.create_with_band_type::<u8, _>("", canvas.w, canvas.h, 3)?;
    for (b, plane) in canvas.planes.iter().enumerate() {
        let mut buffer = gdal::raster::Buffer::new((canvas.w, canvas.h), plane.clone());
        ds.rasterband(b + 1)?.write((0, 0), (canvas.w, canvas.h), &mut buffer)?;
    }
    let name = format!("/vsimem/classify-objects-{}/preview.png", std::process::id());
    let png = DriverManager::get_driver_by_name("PNG")?;
    ds.create_copy(&png, &name, &Default::default())?.close()?;
    let bytes = gdal::vsi::get_vsi_mem_file_bytes_owned(&name)?;
    Ok(bytes)
}

/// Standard base64 (RFC 4648) of `bytes`.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n =
            (chunk[0] as u32) << 16 | (*chunk.get(1).unwrap_or(&0) as u32) << 8 | *chunk.get(2).unwrap_or(&0) as u32;
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page(inputs: &ReportInputs<'_>, rows: &[ReportRow], preview: Option<&[u8]>) -> String {
    let s = inputs.summary;
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>classify-objects report</title><style>\
         body{{font-family:sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse;margin:1em 0}}\
         td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}th{{background:#f3f3f3}}td.l,th.l{{text-align:left}}\
         .swatch{{display:inline-block;width:0.9em;height:0.9em;border:1px solid #333;margin-right:0.4em}}</style></head><body>\
         <h1>classify-objects report</h1><p>Model <code>{}</code> on <code>{}</code>, output <code>{}</code>.</p>",
        escape(inputs.model),
        escape(inputs.raster),
        escape(&inputs.output.display().to_string())
    );
    let _ = write!(
        html,
        "<h2>Run</h2><table><tr><th class=\"l\">objects</th><td>{}</td></tr><tr><th class=\"l\">classified</th><td>{}</td></tr>\
         <tr><th class=\"l\">execution provider</th><td>{}</td></tr><tr><th class=\"l\">seconds</th><td>{:.2}</td></tr>\
         <tr><th class=\"l\">objects per second</th><td>{:.1}</td></tr>",
        s.objects,
        s.classified,
        s.execution_provider,
        s.total_time.as_secs_f64(),
        s.throughput()
    );
    for (status, n) in &s.problems {
        let _ = write!(
            html,
            "<tr><th class=\"l\">status {}</th><td>{n}</td></tr>",
            escape(status)
        );
    }
    html.push_str("</table>");

    html.push_str("<h2>Classes</h2><table id=\"classes\"><tr><th class=\"l\">class</th><th>objects</th></tr>");
    for (name, color) in &inputs.colors.0 {
        let n = s.labels.get(name).copied().unwrap_or(0);
        let _ = write!(
            html,
            "<tr><td class=\"l\"><span class=\"swatch\" style=\"background:rgb({},{},{})\"></span>{}</td><td>{n}</td></tr>",
            color[0],
            color[1],
            color[2],
            escape(name)
        );
    }
    html.push_str("</table>");

    if let Some(truth) = &s.truth {
        let classes = truth.classes();
        let _ = write!(
            html,
            "<h2>Against the truth field</h2><p>Accuracy <b>{}</b> over {} rows.</p><table id=\"confusion\"><tr><th class=\"l\">expected \\ predicted</th>",
            truth.accuracy().map_or("-".into(), |a| format!("{a:.4}")),
            truth.total()
        );
        for p in &classes {
            let _ = write!(html, "<th>{}</th>", escape(p));
        }
        html.push_str("</tr>");
        for e in &classes {
            let _ = write!(html, "<tr><th class=\"l\">{}</th>", escape(e));
            for p in &classes {
                let _ = write!(html, "<td>{}</td>", truth.count(e, p));
            }
            html.push_str("</tr>");
        }
        html.push_str("</table>");
    }

    // Confidence histogram: ten bins over 0..1, as inline SVG.
    let mut bins = [0usize; 10];
    for c in rows.iter().filter_map(|r| r.confidence) {
        bins[((c * 10.0).floor() as usize).min(9)] += 1;
    }
    let top = bins.iter().copied().max().unwrap_or(0).max(1);
    html.push_str("<h2>Confidence</h2><svg id=\"histogram\" width=\"520\" height=\"230\" role=\"img\">");
    for (i, n) in bins.iter().enumerate() {
        let height = 180.0 * *n as f64 / top as f64;
        let _ = write!(
            html,
            "<rect x=\"{}\" y=\"{:.1}\" width=\"44\" height=\"{height:.1}\" fill=\"rgb(70,130,180)\"><title>{:.1}-{:.1}: {n}</title></rect>\
             <text x=\"{}\" y=\"225\" font-size=\"11\">{:.1}</text>",
            10 + i * 50,
            200.0 - height,
            i as f64 / 10.0,
            (i + 1) as f64 / 10.0,
            12 + i * 50,
            i as f64 / 10.0
        );
    }
    html.push_str("</svg>");

    if let Some(png) = preview {
        let _ = write!(
            html,
            "<h2>Map</h2><img id=\"map\" alt=\"map preview\" src=\"data:image/png;base64,{}\">",
            base64(png)
        );
    }
    html.push_str("</body></html>\n");
    html
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(super::base64(input.as_bytes()), expected);
        }
    }
}
