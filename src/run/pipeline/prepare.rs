//! Stage 1, prepare: the images the features are placed on with their chip rules, the features
//! source (shard, extent, truth field, reprojections), the rows an earlier run wrote (resume), and
//! the output writer with the run's schema.

use anyhow::Result;
use gdal::spatial_ref::SpatialRef;

use crate::bail_input;
use crate::chips::ChipSpec;
use crate::gdal_ffi::srs;
use crate::input::features::FeatureSource;
use crate::input::items::{self, Item};
use crate::input::raster::{Raster, RasterGrid};
use crate::messages;
use crate::model::definition::{LabelMode, ModelDefinition, TrainedCellSize};
use crate::output::resume::{written_record, written_rows, WrittenRow};
use crate::output::shard::ShardRecord;
use crate::output::target::Start;
use crate::output::{Column, OutputSchema, OutputWriter};
use crate::run::fingerprint::RunIdentity;
use crate::run::plan::{ClassifyPlan, FeaturesPlan};

/// What the stages share, made once before any feature is read.
pub struct Prepared {
    /// The images features are placed on.
    pub items: Vec<Item>,
    /// The chip rules on each image.
    pub specs: Vec<ChipSpec>,
    /// The features, opened, filtered, and placed on the images.
    pub source: FeatureSource,
    /// Position of the truth field among the features' fields.
    pub truth: Option<usize>,
    /// Rows an earlier run wrote (`--resume`), in order.
    pub written: Vec<WrittenRow>,
    /// The output's columns.
    pub schema: OutputSchema,
    /// The output writer.
    pub writer: OutputWriter,
    /// What identifies the run, when it records itself (`--shard`, `--resume`).
    pub identity: Option<RunIdentity>,
}

/// Prepares a run over `features`.
pub fn prepare(plan: &ClassifyPlan, features: &FeaturesPlan) -> Result<Prepared> {
    let items = items::for_features(&plan.inputs.rasters, plan.inputs.processing_mode)?;
    let definition = &plan.model.package.definition;
    let specs = chip_specs(plan, &items)?;
    warn_outside_trained_cell_sizes(definition, plan.chips.cell_size, &items);
    // The extent's CRS is the first raster's unless given.
    let extent = plan
        .inputs
        .extent
        .as_ref()
        .map(|e| e.with_default_crs(items[0].grid.srs_wkt.as_deref()));
    let mut source = FeatureSource::open_with(&features.source, &features.query, extent.as_ref())?;
    source.selection.shard = plan.scale_out.shard.map(|s| (s.index, s.count));
    source.extent = extent;
    let truth = plan
        .report
        .truth_field
        .as_ref()
        .map(|name| source.truth_column(name, &features.source))
        .transpose()?;
    // Continuing a run: the rows it wrote are the first rows of this run's output, skipped.
    let output = &plan.output;
    let written = if output.target.start == Start::Resume {
        written_rows(&output.target, &output.format, &output.layer.name, &output.label_field)?
    } else {
        Vec::new()
    };
    for item in &items {
        source.transform_to(&item.grid, &item.name)?;
    }
    let identity = records_itself(plan)
        .then(|| RunIdentity::of(plan, &source_identity(&source)))
        .transpose()?;
    if let Some(identity) = &identity {
        source.content = Some(Default::default());
        if output.target.start == Start::Resume {
            if let Some(recorded) = written_record(&output.target, &output.format, &output.layer.name)? {
                check_same_run(plan, identity, &recorded)?;
            }
        }
    }
    let schema = schema(plan, definition, &source, items.len());
    let mut writer = OutputWriter::create(&output.target, &output.format, &schema, &output.layer, output.style)?;
    if let Some(identity) = &identity {
        writer.record_run(&run_record(plan, identity, RecordCounts::default(), None))?;
    }
    Ok(Prepared {
        items,
        specs,
        source,
        truth,
        written,
        schema,
        writer,
        identity,
    })
}

/// Whether the run records itself in its output (a shard to merge, or a run to resume).
pub fn records_itself(plan: &ClassifyPlan) -> bool {
    plan.scale_out.shard.is_some() || plan.scale_out.resume
}

/// The shard `(index, count)` of the run; a run without `--shard` is shard 0 of 1.
fn shard_of(plan: &ClassifyPlan) -> (usize, usize) {
    plan.scale_out.shard.map_or((0, 1), |s| (s.index, s.count))
}

/// What a finished run counted, for its record.
#[derive(Debug, Default)]
pub struct RecordCounts {
    /// Features in the whole input (after the filters).
    pub features: u64,
    /// Rows written.
    pub rows: u64,
    /// Rows per feature, when some feature has other than one.
    pub row_counts: Option<Vec<u32>>,
    /// The features' content fingerprint.
    pub features_content: Option<String>,
}

/// The record of the run `identity` identifies, with `counts` (zero at its start) and its
/// QGIS style.
pub fn run_record(
    plan: &ClassifyPlan,
    identity: &RunIdentity,
    counts: RecordCounts,
    qml: Option<String>,
) -> ShardRecord {
    let (index, count) = shard_of(plan);
    ShardRecord {
        index,
        count,
        features: counts.features,
        rows: counts.rows,
        row_counts: counts.row_counts,
        fingerprint: identity.fingerprint(),
        layer: plan.output.layer.given.then(|| plan.output.layer.name.clone()),
        label_field: plan.output.label_field.clone(),
        style: plan.output.style,
        qml,
        parts: Some(identity.parts.clone()),
        features_content: counts.features_content,
    }
}

/// Refuses to continue an output another run wrote: another shard of the job, or other inputs
/// or options.
fn check_same_run(plan: &ClassifyPlan, identity: &RunIdentity, recorded: &ShardRecord) -> Result<()> {
    let shown = plan.output.shown();
    let (index, count) = shard_of(plan);
    if (recorded.index, recorded.count) != (index, count) {
        let this = match plan.scale_out.shard {
            Some(_) => format!("shard {index}/{count}"),
            None => "a run without --shard".to_string(),
        };
        bail_input!(
            "output {shown} was written by shard {}/{} of a run, but this run is {this}: rerun that task with --shard {}/{} (N is the job's shard count, not the tasks run now), or pass --overwrite to start over",
            recorded.index,
            recorded.count,
            recorded.index,
            recorded.count
        );
    }
    let differences = recorded
        .parts
        .as_ref()
        .map(|parts| identity.differences(parts))
        .unwrap_or_default();
    if !differences.is_empty() {
        bail_input!(
            "output {shown} was written by a run with {}: --resume continues only the run that wrote it (same inputs and options); pass --overwrite to start over",
            differences.join(" and ")
        );
    }
    Ok(())
}

/// The chip rules on each image, at `--cell-size` when given.
fn chip_specs(plan: &ClassifyPlan, items: &[Item]) -> Result<Vec<ChipSpec>> {
    let definition = &plan.model.package.definition;
    items
        .iter()
        .map(|item| {
            let raster = Raster::open_with(&item.name, &plan.inputs.raster_overrides)?;
            let spec = ChipSpec::new(definition, &raster)?;
            Ok(match plan.chips.cell_size {
                Some(cell) => {
                    check_cell_size(cell, &raster.grid, &spec, &item.name)?;
                    spec.at_cell_size(cell, raster.grid.cell_size(), plan.chips.resampling)
                }
                None => spec,
            })
        })
        .collect()
}

/// Refuses a `--cell-size` whose chips would cover more than the whole raster `name` (and more
/// than a chip at its own cell size), or less than a thousandth of its pixel: every chip would
/// be the same.
fn check_cell_size(cell: f64, grid: &RasterGrid, spec: &ChipSpec, name: &str) -> Result<()> {
    let native = grid.cell_size();
    let smallest = native.0.min(native.1) / 1000.0;
    let whole_raster =
        (grid.width as f64 * native.0 / spec.width as f64).max(grid.height as f64 * native.1 / spec.height as f64);
    let largest = whole_raster.max(native.0.max(native.1));
    if !(smallest..=largest).contains(&cell) {
        bail_input!(
            "--cell-size {} does not fit raster {name}: give a size from {} (a thousandth of its pixel) to {} (a {}x{} chip covering the whole raster), in the raster's units",
            short_number(cell),
            short_number(smallest),
            short_number(largest),
            spec.width,
            spec.height
        );
    }
    Ok(())
}

/// `x` with about six significant digits.
fn short_number(x: f64) -> String {
    if x != 0.0 && !(1e-4..1e9).contains(&x.abs()) {
        let text = format!("{x:.5e}");
        let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
        let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
        return format!("{mantissa}e{exponent}");
    }
    let text = format!("{x:.*}", (5 - x.abs().log10().floor() as i64).clamp(0, 12) as usize);
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// The features' layer, columns, geometry type and CRS, as a shard's fingerprint takes them.
fn source_identity(source: &FeatureSource) -> String {
    format!(
        "{}|{:?}|{}|{:?}",
        source.layer_name,
        source
            .fields
            .iter()
            .map(|f| (&f.name, f.field_type))
            .collect::<Vec<_>>(),
        source.geometry_type,
        source.srs_wkt
    )
}

/// The output's columns: the features' own, then the run's.
fn schema(plan: &ClassifyPlan, definition: &ModelDefinition, source: &FeatureSource, items: usize) -> OutputSchema {
    let mut schema = OutputSchema {
        input_fields: source
            .fields
            .iter()
            .map(|f| Column {
                name: f.name.clone(),
                field_type: f.field_type,
                width: f.width,
                precision: f.precision,
            })
            .collect(),
        label_field: plan.output.label_field.clone(),
        multi_label: definition.label_mode == LabelMode::MultiLabel,
        with_source_id: true,
        with_image_id: items > 1,
        geometry: Some((source.geometry_type, source.srs_wkt.clone())),
        style: Some(definition.class_colors()),
        score_fields: Vec::new(),
    };
    if plan.output.all_scores {
        schema.set_score_fields(&definition.class_names());
    }
    schema.resolve_clashes(plan.output.format.field_name_limit());
    schema
}

/// One warning line when the cell size chips are cut at is outside the `.emd`'s `MinCellSize` ..
/// `MaxCellSize` (the model was trained at other resolutions). Both are compared in the raster's
/// units: the trained sizes are converted from their own spatial reference at the centre of the
/// first image (a size in metres is about 0.000009 degrees near the equator), and the advice
/// names a `--cell-size` in the raster's units.
fn warn_outside_trained_cell_sizes(definition: &ModelDefinition, cell_size: Option<f64>, items: &[Item]) {
    let grid = &items[0].grid;
    let effective = cell_size.unwrap_or_else(|| grid.cell_size().0);
    let (min, max) = definition.cell_size_range;
    let convert = |trained: Option<TrainedCellSize>| trained.map(|t| (t, in_raster_units(t, grid)));
    let (min, max) = (convert(min), convert(max));
    // A size in an unknown or unrelated spatial reference cannot be compared: nothing said.
    if [min, max].iter().flatten().any(|(_, converted)| converted.is_none()) {
        return;
    }
    let value = |bound: Option<(TrainedCellSize, Option<f64>)>| bound.and_then(|(_, c)| c);
    let (low, high) = (value(min), value(max));
    let below = low.filter(|&m| effective < m * 0.999);
    let above = high.filter(|&m| effective > m * 1.001);
    let Some(advice) = below.or(above) else {
        return;
    };
    let mut trained: Vec<String> = [min, max]
        .iter()
        .flatten()
        .map(|(t, _)| match t.wkid {
            Some(wkid) => format!("{} in EPSG:{wkid}", short_number(t.size)),
            None => short_number(t.size),
        })
        .collect();
    trained.dedup();
    let trained = trained.join(" to ");
    let range = match (low, high) {
        (Some(a), Some(b)) if (a - b).abs() <= a * 1e-6 => short_number(a),
        (Some(a), Some(b)) => format!("{} to {}", short_number(a), short_number(b)),
        (Some(a), None) => format!("at least {}", short_number(a)),
        (None, Some(b)) => format!("at most {}", short_number(b)),
        (None, None) => String::new(),
    };
    messages::warning(format_args!(
        "chips are cut at a cell size of {} in the raster's units but the model was trained for {range} in those units (MinCellSize/MaxCellSize: {trained}); results may be poor: cut chips at the trained size with --cell-size {}",
        short_number(effective),
        short_number(advice)
    ));
}

/// `trained` in the units of `grid`'s CRS at the centre of the grid: itself when it names no
/// spatial reference or the raster's, `None` when either cannot be related to the other. A
/// projected CRS whose area of use does not hold the raster (a model trained in UTM zone 33
/// used on imagery in zone 18) says nothing of the distortion there: its size is taken as a
/// ground length in its linear unit.
fn in_raster_units(trained: TrainedCellSize, grid: &RasterGrid) -> Option<f64> {
    let Some(wkid) = trained.wkid else {
        return Some(trained.size);
    };
    let raster = grid.spatial_ref()?;
    let mut own = SpatialRef::from_epsg(wkid)
        .or_else(|_| SpatialRef::from_definition(&format!("ESRI:{wkid}")))
        .ok()?;
    own.set_axis_mapping_strategy(gdal::spatial_ref::AxisMappingStrategy::TraditionalGisOrder);
    if srs::same(&own, &raster) {
        return Some(trained.size);
    }
    let (col, row) = (grid.width as f64 / 2.0, grid.height as f64 / 2.0);
    let (cx, cy) = grid.pixel_to_world(col, row);
    let centre = [cx, cy];
    if own.is_projected() {
        if let Some((_, lat)) = lon_lat(&raster, centre).filter(|&(lon, lat)| !within_area_of_use(&own, lon, lat)) {
            return ground_length_in_raster_units(trained.size * own.linear_units(), &raster, lat);
        }
    }
    let to_own = srs::transform(&raster, &own).ok()??;
    let back = srs::transform(&own, &raster).ok()??;
    let (mut x, mut y) = ([centre[0]], [centre[1]]);
    to_own.transform_coords(&mut x, &mut y, &mut []).ok()?;
    // One trained cell east and one north of the centre, back in the raster's CRS.
    let (mut xs, mut ys) = ([x[0] + trained.size, x[0]], [y[0], y[0] + trained.size]);
    back.transform_coords(&mut xs, &mut ys, &mut []).ok()?;
    let east = (xs[0] - centre[0]).hypot(ys[0] - centre[1]);
    let north = (xs[1] - centre[0]).hypot(ys[1] - centre[1]);
    let size = (east + north) / 2.0;
    (size.is_finite() && size > 0.0).then_some(size)
}

/// Longitude and latitude (degrees) of `point` in `srs`.
fn lon_lat(srs: &SpatialRef, point: [f64; 2]) -> Option<(f64, f64)> {
    let wgs84 = SpatialRef::from_epsg(4326).ok()?;
    let (mut x, mut y) = ([point[0]], [point[1]]);
    if let Some(to_degrees) = srs::transform(srs, &wgs84).ok()? {
        to_degrees.transform_coords(&mut x, &mut y, &mut []).ok()?;
    }
    Some((x[0], y[0]))
}

/// Whether (`lon`, `lat`) lies in the area of use of `srs` (one that declares none holds all).
fn within_area_of_use(srs: &SpatialRef, lon: f64, lat: f64) -> bool {
    let Some(area) = srs.area_of_use() else {
        return true;
    };
    let (west, east) = (area.west_lon_degree, area.east_lon_degree);
    let lon_in = if west <= east {
        (west..=east).contains(&lon)
    } else {
        lon >= west || lon <= east
    };
    lon_in && (area.south_lat_degree..=area.north_lat_degree).contains(&lat)
}

/// A ground length of `metres` in the units of `raster` at latitude `lat`: its linear unit, or
/// (a geographic CRS) the mean of the degrees of latitude and of longitude it spans there.
fn ground_length_in_raster_units(metres: f64, raster: &SpatialRef, lat: f64) -> Option<f64> {
    let size = if raster.is_geographic() {
        let radius = raster.semi_major().ok()?;
        let radians = (metres / radius + metres / (radius * lat.to_radians().cos())) / 2.0;
        radians / raster.angular_units()
    } else {
        metres / raster.linear_units()
    };
    (size.is_finite() && size > 0.0).then_some(size)
}
