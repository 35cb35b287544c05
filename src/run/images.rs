//! The run without features: every image is one object (clipped to the processing extent when
//! there is one).

use anyhow::Result;
use gdal::spatial_ref::SpatialRef;
use gdal::vector::{Geometry, OGRwkbGeometryType};

use crate::bail_input;
use crate::chips::ChipSpec;
use crate::error;
use crate::gdal_ffi::srs;
use crate::input::features::Problem;
use crate::input::http;
use crate::input::raster::{self, PixelWindow, Raster};
use crate::messages;
use crate::model::definition::LabelMode;
use crate::output::{OutputRow, OutputSchema, OutputWriter};
use crate::report::summary::RunSummary;
use crate::run::interrupt;
use crate::run::plan::ClassifyPlan;
use crate::run::scorer::Reviewed;
use crate::run::scorer::Scorer;

/// The images a run without features classifies, checked once before any is classified.
struct Survey<'a> {
    /// Each image inside the extent with its chip rules and the pixels classified.
    selected: Vec<(&'a String, ChipSpec, PixelWindow)>,
    /// The CRS of the rows' polygons (the first image's), when every image is georeferenced.
    target_wkt: Option<String>,
    /// Whether every image is georeferenced (rows then have polygons).
    georeferenced: bool,
}

/// What classifying one batch of images works with.
struct ImageBatch<'a> {
    plan: &'a ClassifyPlan,
    per_chip: usize,
    target_srs: Option<SpatialRef>,
}

/// No features: every raster is one object, resampled whole to the chip size. Rasters that are
/// all georeferenced give their extents as polygons (in the first raster's CRS); otherwise the
/// output is a table of image ids.
pub fn classify_images(plan: &ClassifyPlan, mut scorer: Scorer<'_>) -> Result<RunSummary> {
    let survey = survey(plan, &scorer)?;
    let schema = image_schema(plan, &scorer, &survey);
    let output = &plan.output;
    let mut writer = OutputWriter::create(&output.target, &output.format, &schema, &output.layer, output.style)?;
    let definition = &plan.model.package.definition;
    let batch = ImageBatch {
        plan,
        per_chip: definition.extract_bands.len() * definition.image_width * definition.image_height,
        target_srs: survey.target_wkt.as_deref().map(SpatialRef::from_wkt).transpose()?,
    };
    let batch_size = plan.model.arguments.batch_size;
    for (g, group) in survey.selected.chunks(batch_size).enumerate() {
        batch.classify(&mut scorer, &mut writer, g * batch_size, group)?;
    }
    let summary = &scorer.summary;
    let unread = summary.problems.get(Problem::ReadFailed.code()).copied().unwrap_or(0);
    if summary.objects > 0 && unread == summary.objects {
        // As a run with features whose pixels could not be read at all: exit 1, nothing written.
        anyhow::bail!(
            "none of the {unread} image(s) could be read ({}; see the warnings above); check that the images are complete and reachable",
            survey.selected.iter().map(|(name, _, _)| name.as_str()).take(5).collect::<Vec<_>>().join(", ")
        );
    }
    writer.finish(None)?;
    scorer.summary.execution_provider = scorer.classifier.execution_provider;
    Ok(scorer.summary)
}

/// A first pass checks every image (bands, georeferencing) without keeping it open, so that a
/// folder of many images never holds more than one batch of datasets; images outside the
/// extent are left out (an extent that overlaps none is an error).
fn survey<'a>(plan: &'a ClassifyPlan, scorer: &Scorer<'_>) -> Result<Survey<'a>> {
    let rasters = &plan.inputs.rasters;
    let mut georeferenced = true;
    let mut target_wkt = None;
    let mut extent = None;
    let mut selected = Vec::with_capacity(rasters.len());
    for (i, name) in rasters.iter().enumerate() {
        let raster = Raster::open_with(name, &plan.inputs.raster_overrides)?;
        let spec = ChipSpec::new(scorer.definition, &raster)?;
        georeferenced &= raster.grid.georeferenced;
        if i == 0 {
            target_wkt = raster.grid.srs_wkt.clone();
            extent = plan
                .inputs
                .extent
                .as_ref()
                .map(|e| e.with_default_crs(raster.grid.srs_wkt.as_deref()));
        }
        // The pixels classified: all of them, or those inside --extent (none: not classified).
        let window = match &extent {
            Some(extent) => extent.pixel_window(&raster.grid, name)?,
            None => Some(whole(&raster)),
        };
        if let Some(window) = window {
            selected.push((name, spec, window));
        }
    }
    if selected.is_empty() {
        bail_input!(
            "--extent does not overlap any image ({}); give an extent inside the images (in the first image's CRS unless --extent-crs says otherwise)",
            rasters.join(", ")
        );
    }
    Ok(Survey {
        selected,
        target_wkt: target_wkt.filter(|_| georeferenced),
        georeferenced,
    })
}

/// The columns of a run without features: the image id, the run's own, and a polygon when every
/// image is georeferenced.
fn image_schema(plan: &ClassifyPlan, scorer: &Scorer<'_>, survey: &Survey<'_>) -> OutputSchema {
    let mut schema = OutputSchema {
        input_fields: Vec::new(),
        label_field: plan.output.label_field.clone(),
        multi_label: scorer.definition.label_mode == LabelMode::MultiLabel,
        with_source_id: false,
        with_image_id: true,
        geometry: survey
            .georeferenced
            .then(|| (OGRwkbGeometryType::wkbPolygon, survey.target_wkt.clone())),
        style: Some(scorer.definition.class_colors()),
        score_fields: Vec::new(),
    };
    if plan.output.all_scores {
        schema.set_score_fields(&scorer.definition.class_names());
    }
    schema
}

impl ImageBatch<'_> {
    /// Cuts, scores and writes one batch of images; `first` is the position of its first image.
    fn classify(
        &self,
        scorer: &mut Scorer<'_>,
        writer: &mut OutputWriter,
        first: usize,
        group: &[(&String, ChipSpec, PixelWindow)],
    ) -> Result<()> {
        interrupt::check()?;
        let rasters = group
            .iter()
            .map(|(name, _, _)| Raster::open_with(name, &self.plan.inputs.raster_overrides))
            .collect::<Result<Vec<_>>>()?;
        let mut chips = vec![0.0; group.len() * self.per_chip];
        let mut read: Vec<Result<(), Problem>> = Vec::with_capacity(group.len());
        for ((raster, (_, spec, window)), slot) in rasters.iter().zip(group).zip(chips.chunks_exact_mut(self.per_chip))
        {
            interrupt::check()?;
            read.push(cut_image(raster, spec, *window, slot)?);
        }
        interrupt::check()?;
        let scores = scorer.score(&chips, group.len())?;
        let classes = scorer.definition.classes.len();
        for (k, (((raster, scores), was_read), (_, spec, window))) in rasters
            .iter()
            .zip(scores.chunks_exact(classes))
            .zip(read)
            .zip(group)
            .enumerate()
        {
            let chip = &chips[k * self.per_chip..(k + 1) * self.per_chip];
            let image = Image {
                raster,
                spec,
                window: *window,
                position: first + k,
            };
            self.write_row(scorer, writer, &image, chip, scores, was_read)?;
        }
        Ok(())
    }

    /// Labels one image from its `scores` and writes its row.
    fn write_row(
        &self,
        scorer: &mut Scorer<'_>,
        writer: &mut OutputWriter,
        image: &Image<'_>,
        chip: &[f32],
        scores: &[f32],
        was_read: Result<(), Problem>,
    ) -> Result<()> {
        let name = &image.raster.name;
        // ImageId: the name as given, without its secrets.
        let id = http::redact(name);
        scorer.summary.objects += 1;
        let labelled = was_read.and_then(|()| scorer.label(scores));
        // --report: the images most worth checking, offered to the gallery.
        if let (Ok((label, _)), true) = (&labelled, scorer.reviewing()) {
            let object = Reviewed {
                position: image.position,
                source_id: None,
                image_id: Some(id.clone()),
                expected: None,
                label,
                shape: None,
                centre: Some((
                    &image.raster.grid,
                    image.window.col as f64 + image.window.width as f64 / 2.0,
                    image.window.row as f64 + image.window.height as f64 / 2.0,
                )),
            };
            scorer.review(image.spec, chip, scores, object)?;
        }
        let all_scores = (self.plan.output.all_scores && labelled.is_ok())
            .then(|| scores.iter().map(|&p| f64::from(p)).collect::<Vec<f64>>());
        let (label, confidence, status) = match labelled {
            Ok((label, confidence)) => (Some(label), Some(confidence), None),
            Err(problem) if self.plan.output.strict => bail_input!(
                "image {name} cannot be classified: {}; run without --strict to write it with a Status",
                problem.code()
            ),
            Err(problem) => {
                *scorer.summary.problems.entry(problem.code()).or_default() += 1;
                (None, None, Some(problem.code()))
            }
        };
        let geometry_wkb = match &self.target_srs {
            Some(target) => Some(extent_in(image.raster, image.window, target)?),
            None => None,
        };
        writer.write(&OutputRow {
            geometry_wkb,
            image_id: Some(id),
            label,
            confidence,
            status,
            scores: all_scores,
            ..OutputRow::default()
        })
    }
}

/// One image of a batch.
struct Image<'a> {
    raster: &'a Raster,
    spec: &'a ChipSpec,
    window: PixelWindow,
    position: usize,
}

/// Cuts an image's chip into `slot`; a damaged image is a row with a status, like a damaged
/// tile under a feature (said as a warning).
fn cut_image(raster: &Raster, spec: &ChipSpec, window: PixelWindow, slot: &mut [f32]) -> Result<Result<(), Problem>> {
    match spec.image_window(raster, window, slot) {
        Ok(()) => Ok(Ok(())),
        // A server that stopped answering ends the run: every later read would wait as long.
        Err(err) if raster::is_unreachable(&err) => Err(err),
        Err(err) => {
            interrupt::check()?;
            messages::warning(format_args!(
                "{}; it is written with Status {}",
                error::one_line(&err),
                Problem::ReadFailed.code()
            ));
            Ok(Err(Problem::ReadFailed))
        }
    }
}

/// The whole of `raster`, as a pixel window.
fn whole(raster: &Raster) -> PixelWindow {
    PixelWindow {
        col: 0,
        row: 0,
        width: raster.grid.width,
        height: raster.grid.height,
    }
}

/// The footprint of `window` of the raster as a WKB polygon in `target`'s CRS.
fn extent_in(raster: &Raster, window: PixelWindow, target: &SpatialRef) -> Result<Vec<u8>> {
    let (c0, r0) = (window.col as f64, window.row as f64);
    let (c1, r1) = (c0 + window.width as f64, r0 + window.height as f64);
    let ring = [(c0, r0), (c1, r0), (c1, r1), (c0, r1), (c0, r0)]
        .iter()
        .map(|&(c, r)| raster.grid.pixel_to_world(c, r))
        .collect::<Vec<_>>();
    let ring = ring
        .iter()
        .map(|(x, y)| format!("{x} {y}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut polygon = Geometry::from_wkt(&format!("POLYGON(({ring}))"))?;
    if let Some(own) = raster.grid.spatial_ref() {
        if let Some(transform) = srs::transform(&own, target)? {
            polygon = polygon.transform(&transform)?;
        }
    }
    Ok(polygon.wkb()?)
}
