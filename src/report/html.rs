//! `--report report.html`: one self-contained page (no network, no script) for a person reviewing
//! a run: key figures; the map preview with a legend of the `.emd` class colours and counts
//! (misclassified objects outlined); the gallery of the objects to check first, with their chips;
//! the classes with their confidence distributions and, with a truth field, precision, recall and
//! F1; accuracy, macro F1, Cohen's kappa and the confusion matrix; the confidence histogram; and
//! the run details. The HTML is written through maud's compile-time checked templates (text
//! escaped by it); pictures are PNG `data:` URIs.
//!
//! Its size is bounded whatever the number of objects: the map is at most
//! [`PREVIEW_SIZE`](crate::report::map::PREVIEW_SIZE) pixels a side, the gallery at most
//! [`MAX_CHIPS`](crate::report::gallery::MAX_CHIPS) thumbnails and [`MAX_GALLERY_IMAGE_BYTES`] of
//! pictures, the confusion matrix at most [`MAX_MATRIX_CLASSES`] classes; the rest grows with the
//! number of classes only.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::input::http;
use crate::input::raster::Raster;
use crate::messages;
use crate::model::colors::ClassColors;
use crate::report::charts;
use crate::report::details::{crs_label, RunDetails};
use crate::report::gallery::MAX_CHIPS;
use crate::report::gallery::{Gallery, GalleryEntry, Outline, THUMBNAIL_SIZE};
use crate::report::map::{MapCanvas, MISCLASSIFIED_COLOR};
use crate::report::picture::{self, Stretches};
use crate::report::read_back::{self, OutputContents};
use crate::report::summary::RunSummary;
use crate::report::truth::ClassScores;
use crate::report::truth::Confusion;

/// Most bytes of gallery pictures (as `data:` URIs) on one page; thumbnails past it are listed
/// without their picture.
pub const MAX_GALLERY_IMAGE_BYTES: usize = 6 << 20;
/// Most classes the confusion matrix shows (the full matrix is in `--summary-json`).
pub const MAX_MATRIX_CLASSES: usize = 40;
/// Colour of a class the `.emd` does not list (a label from an earlier run, an empty label).
const UNLISTED_COLOR: [u8; 3] = [160, 160, 160];

/// What the report shows.
pub struct ReportInputs<'a> {
    /// The run's summary (with the gallery, when it was collected).
    pub summary: &'a RunSummary,
    /// How the run was made.
    pub details: &'a RunDetails,
    /// The written output (read back for labels, confidences and geometries).
    pub output: &'a Path,
    /// Name of the output layer the run wrote.
    pub layer: &'a str,
    /// Name of the label field.
    pub label_field: &'a str,
    /// The raster to preview (the first image).
    pub raster: &'a str,
    /// The model's classes and colours, in `.emd` order.
    pub colors: &'a ClassColors,
    /// The run's verdict: its gate and exit status.
    pub verdict: Verdict,
    /// When the run started (UTC, ISO 8601).
    pub started: String,
    /// The warnings the run said (at most [`crate::messages::MAX_KEPT_WARNINGS`]), and how many in all.
    pub warnings: (Vec<String>, usize),
}

/// What the run's gate decided, shown at the top of the page.
#[derive(Debug, Clone, Copy)]
pub struct Verdict {
    /// `--min-accuracy`, when given.
    pub min_accuracy: Option<f64>,
    /// The accuracy measured against `--truth-field`.
    pub accuracy: Option<f64>,
    /// The exit status the run ends with.
    pub exit_status: i32,
}

/// Most features the map names on hover (misclassified ones first).
pub const MAX_MAP_TIPS: usize = 3000;

/// A feature named on the map: where its centre is on the preview, and what names it.
struct Tip {
    x: f32,
    y: f32,
    text: String,
}

/// A gallery object with its picture (`None`: left out by the page size limit).
struct Shown<'g> {
    entry: &'g GalleryEntry,
    picture: Option<String>,
}

/// The report page.
pub fn render(inputs: &ReportInputs<'_>) -> Result<String> {
    let raster = Raster::open(inputs.raster)?;
    let gallery = inputs.summary.gallery.as_ref();
    let preview_bands = (0..3).map(|c| c % raster.bands.len() + 1);
    let gallery_bands = gallery.map(|g| g.bands.clone()).unwrap_or_default();
    let stretches = Stretches::of(&raster, preview_bands.chain(gallery_bands.iter().copied()))
        .context("reading the raster's value range for display")?;
    let colors: BTreeMap<&str, [u8; 3]> = inputs.colors.0.iter().map(|(n, c)| (n.as_str(), *c)).collect();
    let multi_label = inputs.details.model.multi_label;
    // A multi-label row is drawn in the colour of its first class.
    let color_of = |label: &str| {
        let first = if multi_label {
            label.split(';').next().unwrap_or("")
        } else {
            label
        };
        colors.get(first).copied().unwrap_or(UNLISTED_COLOR)
    };
    let (mut wrong_tips, mut tips) = (Vec::new(), Vec::new());

    let (features_srs, rows) = read_back::layer_info(inputs.output, inputs.layer)?;
    // An output without a CRS (a CSV table) holds the features' coordinates as they were read.
    let features_srs = features_srs.or_else(|| {
        let wkt = inputs.details.features_crs_wkt.as_deref()?;
        gdal::spatial_ref::SpatialRef::from_wkt(wkt).ok()
    });
    // A raster the preview cannot read (a damaged tile) leaves the page without its map.
    let mut map_problem = None;
    let mut canvas = if raster.grid.georeferenced {
        match MapCanvas::new(inputs.raster, &stretches, features_srs, rows as usize) {
            Ok(canvas) => Some(canvas),
            Err(err) => {
                let reason = messages::shown(&err.to_string());
                messages::warning(format_args!(
                    "the report has no map: the raster could not be read for its preview ({reason})"
                ));
                map_problem = Some(reason);
                None
            }
        }
    } else {
        None
    };
    let contents = read_back::read_back(
        inputs.output,
        inputs.layer,
        inputs.label_field,
        inputs.details.model.multi_label,
        inputs.summary.truth.as_ref().map(|_| &inputs.summary.wrong_rows),
        |geometry, row| {
            let Some(canvas) = canvas.as_mut() else { return };
            let Some((x, y)) = canvas.draw(geometry, color_of(row.label), row.misclassified) else {
                return;
            };
            let kept = if row.misclassified { &mut wrong_tips } else { &mut tips };
            if kept.len() < MAX_MAP_TIPS {
                kept.push(Tip {
                    x,
                    y,
                    text: tip_text(row),
                });
            }
        },
    )
    .with_context(|| format!("reading the output {} back", inputs.output.display()))?;
    wrong_tips.extend(tips);
    wrong_tips.truncate(MAX_MAP_TIPS);
    let tips = wrong_tips;
    let map = match canvas {
        Some(canvas) => {
            let (w, h, rgb) = canvas.finish();
            Some(MapPicture {
                width: w,
                height: h,
                uri: picture::data_uri(&picture::png(w, h, &rgb)?),
                tips,
            })
        }
        None => None,
    };

    let shown = match gallery {
        Some(gallery) => gallery_pictures(inputs, gallery, &stretches)?,
        None => Vec::new(),
    };
    Ok(page(inputs, &contents, (map.as_ref(), map_problem.as_deref()), &shown).into_string())
}

/// Gallery pictures, class after class in `.emd` order (multi-label: rows without a label
/// last), within the page's budget.
fn gallery_pictures<'g>(
    inputs: &ReportInputs<'_>,
    gallery: &'g Gallery,
    stretches: &Stretches,
) -> Result<Vec<(String, Vec<Shown<'g>>)>> {
    let mut shown = Vec::new();
    let mut budget = PictureBudget(MAX_GALLERY_IMAGE_BYTES);
    let no_label = inputs.details.model.multi_label.then(String::new);
    for name in inputs.colors.0.iter().map(|(n, _)| n).chain(no_label.as_ref()) {
        let mut objects = Vec::new();
        for entry in gallery.class(name) {
            let t = &entry.thumbnail;
            let rgb = picture::thumbnail_rgb(t, &gallery.bands, stretches);
            let picture = budget.take(picture::data_uri(&picture::png(t.width, t.height, &rgb)?));
            objects.push(Shown { entry, picture });
        }
        if !objects.is_empty() {
            shown.push((name.clone(), objects));
        }
    }
    Ok(shown)
}

/// The map preview and the features it names on hover.
struct MapPicture {
    width: usize,
    height: usize,
    uri: String,
    tips: Vec<Tip>,
}

/// What a feature's hover text says: its name, label and confidence.
fn tip_text(row: &read_back::RowView<'_>) -> String {
    let label = if row.label.is_empty() { "no label" } else { row.label };
    let mut text = format!("{}: {label}", row.name);
    if let Some(c) = row.confidence {
        text.push_str(&format!(" {c:.4}"));
    }
    if row.misclassified {
        text.push_str(" (misclassified)");
    }
    text
}

/// Bytes of pictures the page may still take.
struct PictureBudget(usize);

impl PictureBudget {
    /// `picture` if it fits in what is left (which it then uses up), else `None`: once a picture
    /// does not fit, the later ones are left out too, so the pictures shown are the first ones.
    fn take(&mut self, picture: String) -> Option<String> {
        if picture.len() <= self.0 {
            self.0 -= picture.len();
            Some(picture)
        } else {
            self.0 = 0;
            None
        }
    }
}

const STYLE: &str = r#"
* { box-sizing: border-box; }
body { margin: 0; font-family: "DejaVu Sans", "Segoe UI", Roboto, Helvetica, Arial, sans-serif; font-size: 14px; color: #1d232a; background: #eef1f4; }
header { background: #1f3a5f; color: #fff; padding: 18px 32px; }
header h1 { margin: 0 0 4px; font-size: 24px; font-weight: 600; }
header p { margin: 0; color: #d5deea; }
header code { color: #fff; }
main { max-width: 1360px; margin: 0 auto; padding: 8px 24px 32px; }
section { background: #fff; border: 1px solid #d8dde3; border-radius: 6px; padding: 14px 20px 18px; margin: 16px 0; }
h2 { font-size: 18px; margin: 0 0 10px; }
h3 { font-size: 15px; margin: 14px 0 8px; }
p.note { color: #555; margin: 4px 0 10px; }
.figures { display: grid; grid-template-columns: repeat(auto-fit, minmax(132px, 1fr)); gap: 12px; }
.figure { background: #f6f8fa; border: 1px solid #e1e5ea; border-radius: 6px; padding: 10px 14px; }
.figure .value { font-size: 24px; font-weight: 600; }
.figure .name { color: #555; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.map-layout { display: grid; grid-template-columns: minmax(0, auto) 320px; gap: 24px; align-items: start; }
#map { display: block; max-width: 100%; border: 1px solid #888; }
#legend { list-style: none; margin: 0; padding: 0; }
#legend li { display: flex; align-items: center; gap: 8px; padding: 4px 0; border-bottom: 1px solid #eef0f2; }
#legend .count { margin-left: auto; font-variant-numeric: tabular-nums; }
#legend .wrong { color: #a0006f; font-size: 12px; }
.swatch { display: inline-block; width: 16px; height: 16px; border: 1px solid #333; border-radius: 3px; flex: none; vertical-align: -3px; }
.ring { display: inline-block; width: 16px; height: 16px; border: 3px solid var(--misclassified); border-radius: 50%; flex: none; }
table { border-collapse: collapse; margin: 6px 0; }
td, th { border: 1px solid #d5d9de; padding: 4px 9px; text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f3f5f7; font-weight: 600; }
td.l, th.l { text-align: left; }
td svg { display: block; }
#confusion td.hit { font-weight: 700; outline: 2px solid #1f3a5f; outline-offset: -2px; }
.gallery-class { border-top: 1px solid #e6e9ed; padding-top: 6px; }
.chips { display: flex; flex-wrap: wrap; gap: 10px; }
figure.chip { margin: 0; width: 142px; padding: 6px; border: 1px solid #cfd5db; border-radius: 5px; background: #fafbfc; }
figure.chip.misclassified { border: 3px solid var(--misclassified); background: #fff2fb; padding: 4px; }
.map-frame { position: relative; display: inline-block; max-width: 100%; }
svg.map-tips { position: absolute; inset: 0; width: 100%; height: 100%; }
svg.map-tips circle { fill: transparent; stroke: none; }
svg.map-tips circle:hover { stroke: #fff; stroke-width: 1.5; }
#verdict.failed { border-left: 6px solid #b00020; }
#verdict.failed h2 { color: #b00020; }
#verdict.passed { border-left: 6px solid #2e7d32; }
#warnings li { margin: 2px 0; }
.chip-picture { position: relative; width: 128px; height: 128px; }
.chip-picture svg.outline { position: absolute; inset: 0; width: 128px; height: 128px; pointer-events: none; }
figcaption .location { color: #555; font-variant-numeric: tabular-nums; }
figure.chip img, figure.chip .missing { display: block; width: 128px; height: 128px; object-fit: contain; image-rendering: pixelated; background: #d9dde2; }
figure.chip .missing { color: #ccc; font-size: 11px; padding: 8px; }
figcaption { font-size: 11.5px; line-height: 1.35; margin-top: 5px; }
figcaption .oid { font-weight: 600; }
figcaption .expected { color: #a0006f; font-weight: 600; }
#run-details th { width: 230px; }
#run-details td { text-align: left; }
pre.command { white-space: pre-wrap; word-break: break-all; background: #f6f8fa; border: 1px solid #e1e5ea; padding: 8px 10px; margin: 0; font-size: 12.5px; }
"#;

fn rgb([r, g, b]: [u8; 3]) -> String {
    format!("background:rgb({r},{g},{b})")
}

fn fixed(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.digits$}"))
}

fn page(
    inputs: &ReportInputs<'_>,
    contents: &OutputContents,
    (map, map_problem): (Option<&MapPicture>, Option<&str>),
    gallery: &[(String, Vec<Shown<'_>>)],
) -> Markup {
    let s = inputs.summary;
    let d = inputs.details;
    let truth = s.truth.as_ref();
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "classify-objects report: " (d.model.name) }
                style {
                    (PreEscaped(STYLE))
                    @let [r, g, b] = MISCLASSIFIED_COLOR;
                    (PreEscaped(format!(":root {{ --misclassified: rgb({r},{g},{b}); }}")))
                }
            }
            body {
                header {
                    h1 { "classify-objects report" }
                    p { "Model " code { (d.model.name) } " on " code { (http::redact(inputs.raster)) } " → " code { (inputs.output.display()) } }
                }
                main {
                    (verdict_section(inputs))
                    (figures(s, truth))
                    @if let Some(map) = map {
                        section #map-section {
                            h2 { "Map" }
                            div.map-layout {
                                div {
                                    div.map-frame {
                                        img #map alt="map preview: the raster with every feature in its class colour" width=(map.width) height=(map.height) src=(map.uri);
                                        (map_tips(map))
                                    }
                                    p.note {
                                        "The raster " code { (http::redact(inputs.raster)) } " (" (map.width) " × " (map.height) " pixels preview) with the features of the output"
                                        @if d.model.multi_label { ", each in the colour of its first label" }
                                        ". Hover over a feature for its id, label and confidence"
                                        @if map.tips.len() >= MAX_MAP_TIPS { " (the first " (MAX_MAP_TIPS) ", misclassified ones first)" }
                                        "."
                                    }
                                }
                                (legend(inputs, contents))
                            }
                        }
                    } @else {
                        section #legend-section {
                            h2 { "Classes" }
                            @if let Some(problem) = map_problem {
                                p.note #map-problem { "No map: the raster could not be read for its preview (" (problem) ")." }
                            }
                            (legend(inputs, contents))
                        }
                    }
                    (gallery_section(inputs, gallery))
                    (classes_section(inputs, contents))
                    @if let Some(truth) = truth { (accuracy_section(truth)) }
                    section #confidence {
                        h2 { "Confidence" }
                        @if d.model.multi_label {
                            p.note { "A multi-label model: each row's Confidence holds every class's score, so there is no single confidence to plot." }
                        } @else {
                            p.note { "Confidence (probability of the label) of the " (contents.overall.count) " labelled rows of the output, in bins of 0.05." }
                            (charts::histogram(&contents.overall, "histogram"))
                        }
                    }
                    (details_section(inputs, contents))
                }
            }
        }
    }
}

/// The top of the page: whether the run passed its gate and how it ended, when it ran, and
/// every warning it said.
fn verdict_section(inputs: &ReportInputs<'_>) -> Markup {
    let v = inputs.verdict;
    let failed = v.exit_status != 0;
    let (warnings, said) = &inputs.warnings;
    html! {
        section #verdict .failed[failed] .passed[!failed] data-exit-status=(v.exit_status) {
            h2 #verdict-line {
                @match (v.min_accuracy, failed) {
                    (Some(minimum), true) if v.accuracy.is_none() => { "Failed: no row was compared with the truth field, so the run does not reach --min-accuracy " (minimum) " (exit " (v.exit_status) ")" }
                    (Some(minimum), true) => { "Failed: accuracy " (fixed(v.accuracy, 4)) " is below --min-accuracy " (minimum) " (exit " (v.exit_status) ")" }
                    (Some(minimum), false) => { "Passed: accuracy " (fixed(v.accuracy, 4)) " ≥ --min-accuracy " (minimum) " (exit 0)" }
                    (None, true) => { "Failed (exit " (v.exit_status) ")" }
                    (None, false) => { "Finished (exit 0; no --min-accuracy gate)" }
                }
            }
            p.note #run-date {
                "Run started " (inputs.started) " with classify-objects " (inputs.details.version) "."
            }
            @if *said == 0 {
                p.note #warnings-none { "No warnings." }
            } @else {
                h3 { (said) " warning" @if *said > 1 { "s" } }
                ul #warnings {
                    @for w in warnings { li { (w) } }
                    @if *said > warnings.len() { li { "… and " (said - warnings.len()) " more (see the run's standard error)" } }
                }
            }
        }
    }
}

/// The features named on hover over the map: an SVG over the picture, in its pixels.
fn map_tips(map: &MapPicture) -> Markup {
    html! {
        svg.map-tips viewBox=(format!("0 0 {} {}", map.width, map.height)) preserveAspectRatio="none" {
            @for tip in &map.tips {
                circle cx=(format!("{:.1}", tip.x)) cy=(format!("{:.1}", tip.y)) r="6" { title { (tip.text) } }
            }
        }
    }
}

fn figures(s: &RunSummary, truth: Option<&Confusion>) -> Markup {
    let not_classified = s.objects - s.classified;
    html! {
        section #figures {
            div.figures {
                div.figure { div.value { (s.objects) } div.name { "objects" } }
                div.figure { div.value { (s.classified) } div.name { "classified" } }
                div.figure { div.value { (not_classified) } div.name { "not classified" } }
                @if let Some(t) = truth {
                    div.figure #accuracy-figure { div.value { (fixed(t.accuracy(), 4)) } div.name { "accuracy" } }
                    div.figure { div.value { (fixed(t.macro_f1(), 4)) } div.name { "macro F1" } }
                    div.figure { div.value { (fixed(t.kappa(), 4)) } div.name { "Cohen's kappa" } }
                }
                div.figure { div.value { (format!("{:.2} s", s.total_time.as_secs_f64())) } div.name { "wall time" } }
                div.figure { div.value { (format!("{:.1}", s.throughput())) } div.name { "objects per second" } }
            }
            @if !s.problems.is_empty() {
                p.note #statuses {
                    "Not classified or flagged, by Status: "
                    (s.problems.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", "))
                }
            }
        }
    }
}

fn legend(inputs: &ReportInputs<'_>, contents: &OutputContents) -> Markup {
    let labels = &inputs.summary.labels;
    let any_wrong = inputs.summary.truth.is_some();
    html! {
        div {
            h3 { "Legend" }
            ul #legend {
                @for (name, color) in &inputs.colors.0 {
                    @let count = labels.get(name).copied().unwrap_or(0);
                    li.legend-item data-class=(name) data-count=(count) {
                        span.swatch style=(rgb(*color)) {}
                        span.name { (name) }
                        @if let Some(n) = contents.misclassified.get(name) {
                            span.wrong { "(" (n) " misclassified)" }
                        }
                        span.count { (count) }
                    }
                }
                @if inputs.summary.multi_label {
                    li.legend-item #legend-no-label data-class="" data-count=(inputs.summary.no_label) {
                        span.swatch style=(rgb(UNLISTED_COLOR)) {}
                        span.name { "no label" }
                        @if let Some(n) = contents.misclassified.get("") {
                            span.wrong { "(" (n) " misclassified)" }
                        }
                        span.count { (inputs.summary.no_label) }
                    }
                }
                @if any_wrong {
                    li #legend-misclassified {
                        span.ring {}
                        span.name { "misclassified (label ≠ " code { "--truth-field" } ")" }
                        span.count { (contents.misclassified_rows) }
                    }
                }
            }
        }
    }
}

fn gallery_section(inputs: &ReportInputs<'_>, gallery: &[(String, Vec<Shown<'_>>)]) -> Markup {
    let Some(g) = inputs.summary.gallery.as_ref() else {
        return html! {};
    };
    let colors: BTreeMap<&str, [u8; 3]> = inputs.colors.0.iter().map(|(n, c)| (n.as_str(), *c)).collect();
    let truth = inputs.summary.truth.is_some();
    let left_out = gallery
        .iter()
        .flat_map(|(_, o)| o)
        .filter(|o| o.picture.is_none())
        .count();
    html! {
        section #gallery {
            h2 { "Objects to check" }
            p.note {
                "Per class, up to " (g.per_class) " objects "
                @if truth { "most worth checking: misclassified first (outlined), then " }
                @if inputs.summary.multi_label {
                    "whose score for the class is nearest the threshold, nearest first (a row is shown under each of its labels; rows without a label under no label, nearest to having one first)"
                } @else if truth { "the lowest confidence" } @else { "with the lowest confidence, lowest first" }
                ". The feature is drawn over its chip (outline in white, centre as a cross), with the map coordinates of its centre in the raster's CRS. Each chip is shown as the model saw it before normalisation (raster bands "
                (g.bands.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(", "))
                ", at most " (THUMBNAIL_SIZE) " pixels a side)."
                @if g.per_class < g.requested {
                    " (" (g.requested) " per class were asked: the gallery shows at most "
                    (MAX_CHIPS) " objects in all.)"
                }
                @if left_out > 0 {
                    " " (left_out) " chips are listed without their picture: the page keeps its gallery pictures under "
                    (MAX_GALLERY_IMAGE_BYTES >> 20) " MiB."
                }
            }
            @for (class, objects) in gallery {
                @let total = if class.is_empty() { inputs.summary.no_label } else { inputs.summary.labels.get(class).copied().unwrap_or(0) };
                div.gallery-class data-class=(class) {
                    h3 {
                        span.swatch style=(rgb(colors.get(class.as_str()).copied().unwrap_or(UNLISTED_COLOR))) {}
                        " " @if class.is_empty() { "no label" } @else { (class) } " "
                        small { "(" (objects.len()) " of " (total) ")" }
                    }
                    div.chips {
                        @for shown in objects { (chip(shown)) }
                    }
                }
            }
        }
    }
}

fn chip(shown: &Shown<'_>) -> Markup {
    let o = &shown.entry.object;
    let t = &shown.entry.thumbnail;
    let name = match (o.source_id, &o.image_id) {
        (Some(id), _) => format!("SourceOID {id}"),
        (None, Some(image)) => image.clone(),
        (None, None) => format!("object {}", o.position),
    };
    html! {
        figure.chip.misclassified[o.misclassified]
            data-position=(o.position) data-source-oid=[o.source_id] data-label=(o.label)
            data-confidence=(o.confidence) data-runner-up=[o.runner_up.as_ref().map(|r| &r.0)]
            data-runner-up-confidence=[o.runner_up.as_ref().map(|r| r.1)] data-expected=[o.expected.as_ref()]
            data-misclassified=(o.misclassified) {
            @match &shown.picture {
                Some(uri) => div.chip-picture {
                    img src=(uri) width=(t.width) height=(t.height) alt={"chip of " (name)};
                    @if let Some(outline) = &o.outline { (outline_svg(outline, t.width, t.height)) }
                },
                None => div.missing { "picture left out (page size limit)" },
            }
            figcaption {
                div.oid { (name) }
                @if o.source_id.is_some() { @if let Some(image) = &o.image_id { div { (image) } } }
                @if o.margin.is_some() {
                    @if o.class.is_empty() {
                        div { b { "no label" } " (highest " (format!("{:.4}", o.confidence)) ")" }
                    } @else {
                        div { b { (o.class) } " " (format!("{:.4}", o.confidence)) }
                        @if o.label != o.class { div.labels { "labels " (o.label) } }
                    }
                    @if let Some((class, p)) = &o.runner_up { div { "next " (class) " " (format!("{p:.4}")) } }
                } @else {
                    div { b { (o.label) } " " (format!("{:.4}", o.confidence)) }
                    @if let Some((class, p)) = &o.runner_up { div { "runner-up " (class) " " (format!("{p:.4}")) } }
                }
                @if o.misclassified { @if let Some(e) = &o.expected { div.expected { "expected " (e) } } }
                @if let Some(at) = &o.location { div.location { (at) } }
            }
        }
    }
}

/// The feature over its chip: its outline (white over a dark halo) and a cross at its centre,
/// in the thumbnail's pixels, laid over the picture as the picture is laid out.
fn outline_svg(outline: &Outline, width: usize, height: usize) -> Markup {
    let (w, h) = (width as f32, height as f32);
    let mut d = String::new();
    for (points, closed) in &outline.paths {
        for (i, [x, y]) in points.iter().enumerate() {
            d.push_str(&format!("{}{:.2} {:.2} ", if i == 0 { 'M' } else { 'L' }, x * w, y * h));
        }
        if *closed {
            d.push_str("Z ");
        }
    }
    let [cx, cy] = [outline.centre[0] * w, outline.centre[1] * h];
    let arm = w.max(h) * 0.08;
    let cross = format!(
        "M{:.2} {cy:.2} L{:.2} {cy:.2} M{cx:.2} {:.2} L{cx:.2} {:.2}",
        cx - arm,
        cx + arm,
        cy - arm,
        cy + arm
    );
    html! {
        svg.outline viewBox=(format!("0 0 {width} {height}")) preserveAspectRatio="xMidYMid meet" {
            @for (ink, stroke) in [("#141414", "3"), ("#ffffff", "1.4")] {
                @if !d.is_empty() {
                    path d=(d.trim_end()) fill="none" stroke=(ink) stroke-width=(stroke) vector-effect="non-scaling-stroke" stroke-linejoin="round" {}
                }
                path.centre d=(cross) fill="none" stroke=(ink) stroke-width=(stroke) vector-effect="non-scaling-stroke" {}
            }
        }
    }
}

fn classes_section(inputs: &ReportInputs<'_>, contents: &OutputContents) -> Markup {
    let s = inputs.summary;
    let scores: BTreeMap<String, ClassScores> = s
        .truth
        .as_ref()
        .map(|t| t.per_class().into_iter().map(|c| (c.class.clone(), c)).collect())
        .unwrap_or_default();
    let truth = s.truth.is_some();
    let classified = s.classified.max(1) as f64;
    html! {
        section #classes-section {
            h2 { "Classes" }
            table #classes {
                tr {
                    th.l { "class" } th { "objects" } th { "share" } th { "mean confidence" } th { "lowest" }
                    th.l { "confidence distribution (0 to 1)" }
                    @if truth { th { "expected" } th { "precision" } th { "recall" } th { "F1" } }
                }
                @if s.multi_label {
                    caption.note { "A multi-label model: a row counts once for each of its labels, so the shares (of the " (s.classified) " classified rows) may add up to more than 100 %." }
                }
                @for (name, color) in &inputs.colors.0 {
                    @let n = s.labels.get(name).copied().unwrap_or(0);
                    @let distribution = contents.per_class.get(name);
                    tr data-class=(name) {
                        td.l { span.swatch style=(rgb(*color)) {} " " (name) }
                        td { (n) }
                        td { (format!("{:.1} %", 100.0 * n as f64 / classified)) }
                        td { (fixed(distribution.and_then(|d| d.mean()), 4)) }
                        td { (fixed(distribution.filter(|d| d.count > 0).map(|d| d.min), 4)) }
                        td.l { @if let Some(d) = distribution { (charts::sparkline(d, *color)) } }
                        @if truth {
                            @let c = scores.get(name);
                            td { (c.map_or(0, |c| c.support)) }
                            td { (fixed(c.and_then(|c| c.precision), 4)) }
                            td { (fixed(c.and_then(|c| c.recall), 4)) }
                            td { (fixed(c.map(|c| c.f1), 4)) }
                        }
                    }
                }
                @if s.multi_label {
                    tr data-class="" #no-label-row {
                        td.l { span.swatch style=(rgb(UNLISTED_COLOR)) {} " no label" }
                        td { (s.no_label) }
                        td { (format!("{:.1} %", 100.0 * s.no_label as f64 / classified)) }
                        td { "-" } td { "-" } td.l {}
                        @if truth { td {} td {} td {} td {} }
                    }
                }
            }
        }
    }
}

fn accuracy_section(truth: &Confusion) -> Markup {
    let classes = truth.classes();
    let shown = classes.len() <= MAX_MATRIX_CLASSES;
    html! {
        section #accuracy {
            h2 { "Against the truth field" }
            p #accuracy-line {
                "Accuracy " b { (fixed(truth.accuracy(), 4)) } ", macro F1 " b { (fixed(truth.macro_f1(), 4)) }
                ", Cohen's kappa " b { (fixed(truth.kappa(), 4)) } " over " (truth.total()) " compared rows."
            }
            @if shown {
                table #confusion {
                    tr { th.l { "expected \\ predicted" } @for p in &classes { th { (p) } } }
                    @for e in &classes {
                        @let row: usize = classes.iter().map(|p| truth.count(e, p)).sum();
                        tr {
                            th.l { (e) }
                            @for p in &classes {
                                @let n = truth.count(e, p);
                                @let share = n as f64 / row.max(1) as f64;
                                td.hit[e == p && n > 0] style=(format!("background:rgba(31,119,180,{:.2})", share * 0.6)) { (n) }
                            }
                        }
                    }
                }
            } @else {
                p.note { (classes.len()) " classes: the confusion matrix is in --summary-json (more than " (MAX_MATRIX_CLASSES) " are not drawn here)." }
            }
        }
    }
}

fn details_section(inputs: &ReportInputs<'_>, contents: &OutputContents) -> Markup {
    let s = inputs.summary;
    let d = inputs.details;
    let m = &d.model;
    let rows: Vec<(&str, &str, String)> = vec![
        ("version", "classify-objects", d.version.clone()),
        ("gdal", "GDAL", d.gdal_version.clone()),
        ("onnxruntime", "ONNX Runtime", d.onnx_runtime_version.clone()),
        ("model", "model", m.path.clone()),
        ("model-name", "model name", m.name.clone()),
        ("model-kind", "model kind", m.kind.clone()),
        ("classes", "classes", m.classes.to_string()),
        (
            "chip-size",
            "chip size",
            format!("{} x {} pixels", m.chip_size.0, m.chip_size.1),
        ),
        ("bands", "bands", m.bands.clone()),
        ("batch-size", "batch size", s.batch_size.to_string()),
        (
            "tta",
            "test-time augmentation",
            if d.test_time_augmentation { "on" } else { "off" }.into(),
        ),
        ("device", "device", d.device.clone()),
        (
            "provider",
            "execution provider",
            format!("{}{}", s.execution_provider, if s.int8 { " (int8 model)" } else { "" }),
        ),
        ("threads", "chip-reading threads", s.threads.to_string()),
        (
            "intra-op-threads",
            "ONNX Runtime intra-op threads",
            match s.intra_op_threads {
                0 => "ONNX Runtime's default".to_string(),
                n => n.to_string(),
            },
        ),
        ("wall-time", "wall time", format!("{:.2} s", s.total_time.as_secs_f64())),
        ("throughput", "objects per second", format!("{:.1}", s.throughput())),
        (
            "inference-time",
            "inference time",
            format!("{:.2} s", s.inference_time.as_secs_f64()),
        ),
        (
            "peak-memory",
            "peak memory",
            s.peak_rss_bytes
                .map_or("-".into(), |b| format!("{:.0} MiB", b as f64 / (1 << 20) as f64)),
        ),
    ];
    html! {
        section #run-details {
            h2 { "Run details" }
            table {
                @for (key, name, value) in &rows {
                    tr data-key=(key) { th.l { (name) } td { (value) } }
                }
                @for input in &d.inputs {
                    tr data-key="input" { th.l { (input.role) } td { code { (input.name) } " — " (input.crs) } }
                }
                @if d.more_rasters > 0 {
                    tr data-key="input" { th.l { "raster" } td { "and " (d.more_rasters) " more" } }
                }
                tr data-key="output" {
                    th.l { "output" }
                    td {
                        code { (inputs.output.display()) } " (layer " code { (inputs.layer) } ", " (contents.rows) " rows) — "
                        (contents.crs_wkt.as_deref().map(crs_label).unwrap_or_else(|| "no CRS".into()))
                    }
                }
                tr data-key="command-line" { th.l { "command line" } td { pre.command { (d.command_line) } } }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pictures_past_the_budget_are_left_out_in_page_order() {
        let mut budget = PictureBudget(10);
        let taken: Vec<Option<String>> = ["aaaa", "bbbb", "ccc", "d"]
            .into_iter()
            .map(|p| budget.take(p.to_string()))
            .collect();
        assert_eq!(taken, vec![Some("aaaa".into()), Some("bbbb".into()), None, None]);
    }
}
