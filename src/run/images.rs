//! The run without features: every image is one object (clipped to the processing extent when
//! there is one).

use anyhow::Result;
use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use gdal::vector::{Geometry, OGRwkbGeometryType};

use crate::bail_input;
use crate::chips::ChipSpec;
use crate::input::features::Problem;
use crate::input::raster::{PixelWindow, Raster};
use crate::model::definition::LabelMode;
use crate::output::{OutputRow, OutputSchema, OutputWriter};
use crate::report::summary::RunSummary;
use crate::run::plan::ClassifyPlan;
use crate::run::scorer::Scorer;

/// No features: every raster is one object, resampled whole to the chip size. Rasters that are
/// all georeferenced give their extents as polygons (in the first raster's CRS); otherwise the
/// output is a table of image ids.
pub fn classify_images(plan: &ClassifyPlan, mut scorer: Scorer<'_>) -> Result<RunSummary> {
    // A first pass checks every image (bands, georeferencing) without keeping it open, so that a
    // folder of many images never holds more than one batch of datasets.
    let overrides = &plan.inputs.raster_overrides;
    let mut all_georeferenced = true;
    let mut target_wkt = None;
    let mut specs = Vec::with_capacity(plan.inputs.rasters.len());
    // The pixels of each image that are classified: all of them, or those inside --extent
    // (`None`: the image is outside it, and not classified).
    let mut windows = Vec::with_capacity(plan.inputs.rasters.len());
    let mut extent = None;
    for (i, name) in plan.inputs.rasters.iter().enumerate() {
        let raster = Raster::open_with(name, overrides)?;
        specs.push(ChipSpec::new(scorer.definition, &raster)?);
        all_georeferenced &= raster.grid.georeferenced;
        if i == 0 {
            target_wkt = raster.grid.srs_wkt.clone();
            extent = plan
                .inputs
                .extent
                .as_ref()
                .map(|e| e.with_default_crs(raster.grid.srs_wkt.as_deref()));
        }
        windows.push(match &extent {
            Some(extent) => extent.pixel_window(&raster.grid, name)?,
            None => Some(whole(&raster)),
        });
    }
    // Images outside the extent are not classified (nor written), as features outside it.
    let selected: Vec<(&String, ChipSpec, PixelWindow)> = plan
        .inputs
        .rasters
        .iter()
        .zip(specs)
        .zip(windows)
        .filter_map(|((name, spec), window)| window.map(|w| (name, spec, w)))
        .collect();
    if selected.is_empty() {
        bail_input!(
            "--extent does not overlap any image ({}); give an extent inside the images (in the first image's CRS unless --extent-crs says otherwise)",
            plan.inputs.rasters.join(", ")
        );
    }
    let target_wkt = target_wkt.filter(|_| all_georeferenced);
    let mut schema = OutputSchema {
        input_fields: Vec::new(),
        label_field: plan.output.label_field.clone(),
        multi_label: scorer.definition.label_mode == LabelMode::MultiLabel,
        with_source_id: false,
        with_image_id: true,
        geometry: all_georeferenced.then(|| (OGRwkbGeometryType::wkbPolygon, target_wkt.clone())),
        style: Some(scorer.definition.class_colors()),
        score_fields: Vec::new(),
    };
    if plan.output.all_scores {
        schema.set_score_fields(&scorer.definition.class_names());
    }
    let mut writer = OutputWriter::create(
        &plan.output.target,
        &plan.output.format,
        &schema,
        &plan.output.layer,
        plan.output.style,
    )?;
    let target_srs = target_wkt.as_deref().map(SpatialRef::from_wkt).transpose()?;

    let batch_size = plan.model.arguments.batch_size;
    let per_chip = plan.model.package.definition.extract_bands.len()
        * plan.model.package.definition.image_width
        * plan.model.package.definition.image_height;
    for (g, group) in selected.chunks(batch_size).enumerate() {
        crate::run::interrupt::check()?;
        let rasters = group
            .iter()
            .map(|(name, _, _)| Raster::open_with(name, overrides))
            .collect::<Result<Vec<_>>>()?;
        let mut chips = vec![0.0; group.len() * per_chip];
        let mut read: Vec<Result<(), Problem>> = Vec::with_capacity(group.len());
        for ((raster, (_, spec, window)), slot) in rasters.iter().zip(group).zip(chips.chunks_exact_mut(per_chip)) {
            crate::run::interrupt::check()?;
            match spec.image_window(raster, *window, slot) {
                Ok(()) => read.push(Ok(())),
                // A damaged image is a row with a status, like a damaged tile under a feature.
                Err(err) => {
                    crate::run::interrupt::check()?;
                    crate::messages::warning(format_args!(
                        "{}; it is written with Status {}",
                        crate::error::one_line(&err),
                        Problem::ReadFailed.code()
                    ));
                    read.push(Err(Problem::ReadFailed));
                }
            }
        }
        crate::run::interrupt::check()?;
        let scores = scorer.score(&chips, group.len())?;
        let classes = scorer.definition.classes.len();
        for (k, (((raster, scores), was_read), (_, spec, window))) in rasters
            .iter()
            .zip(scores.chunks_exact(classes))
            .zip(read)
            .zip(group)
            .enumerate()
        {
            scorer.summary.objects += 1;
            let labelled = was_read.and_then(|()| scorer.label(scores));
            // --report: the images most worth checking, offered to the gallery.
            if labelled.is_ok() && scorer.reviewing() {
                let object = crate::run::scorer::Reviewed {
                    position: g * batch_size + k,
                    source_id: None,
                    image_id: Some(raster.name.clone()),
                    expected: None,
                };
                scorer.review(spec, &chips[k * per_chip..(k + 1) * per_chip], scores, object)?;
            }
            let all_scores = (plan.output.all_scores && labelled.is_ok())
                .then(|| scores.iter().map(|&p| f64::from(p)).collect::<Vec<f64>>());
            let (label, confidence, status) = match labelled {
                Ok((label, confidence)) => (Some(label), Some(confidence), None),
                Err(problem) => {
                    if plan.output.strict {
                        bail_input!(
                            "image {} cannot be classified: {}; run without --strict to write it with a Status",
                            raster.name,
                            problem.code()
                        );
                    }
                    *scorer.summary.problems.entry(problem.code()).or_default() += 1;
                    (None, None, Some(problem.code()))
                }
            };
            let geometry_wkb = match &target_srs {
                Some(target) => Some(extent_in(raster, *window, target)?),
                None => None,
            };
            writer.write(&OutputRow {
                geometry_wkb,
                image_id: Some(raster.name.clone()),
                label,
                confidence,
                status,
                scores: all_scores,
                ..OutputRow::default()
            })?;
        }
    }
    writer.finish(None)?;
    scorer.summary.execution_provider = scorer.classifier.execution_provider;
    Ok(scorer.summary)
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
    // `grid.spatial_ref()` is already in x/y order; the target gets the same.
    if let Some(own) = raster.grid.spatial_ref() {
        let mut target = target.clone();
        target.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
        if own.to_wkt().ok() != target.to_wkt().ok() {
            polygon = polygon.transform(&CoordTransform::new(&own, &target)?)?;
        }
    }
    Ok(polygon.wkb()?)
}
