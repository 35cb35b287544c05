//! The images a run reads, as ArcGIS users have them: `--raster` given once or several times,
//! folders of images (optionally recursive, filtered by extension), VRT mosaics and remote
//! sources, combined by the processing mode.
//!
//! * Without features, every image is one object, whatever the mode.
//! * With features and `PROCESS_AS_MOSAICKED_IMAGE` (the default), several images are mosaicked
//!   into one in-memory VRT (GDAL's `gdalbuildvrt`) and processed as one image.
//! * With features and `PROCESS_ITEMS_SEPARATELY`, each image is an item of its own: a feature
//!   is classified on every item it falls on, one row per feature and item. An image service
//!   with a catalog gives its catalog items, each read alone (its footprint, a lock-raster
//!   mosaic rule), with the item's name as `ImageId`.
//!
//! Mode values are Esri's keywords in any case, or the labels its tool shows ("Process all
//! raster items separately").

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use gdal::Dataset;

use crate::bail_input;
use crate::gdal_ffi::srs;
use crate::input::http;
use crate::input::raster::{Raster, RasterGrid};
use crate::input::service;
use crate::input::source;
use crate::input::source::SourceKind;

/// Image file extensions collected from folders by default.
pub const DEFAULT_EXTENSIONS: &[&str] = &[
    "tif", "tiff", "vrt", "img", "jp2", "png", "jpg", "jpeg", "ecw", "sid", "nitf", "ntf",
];

/// `PROCESS_AS_MOSAICKED_IMAGE` or `PROCESS_ITEMS_SEPARATELY` (Esri `processing_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProcessingMode {
    /// All rasters form one mosaic, processed as one image.
    #[default]
    ProcessAsMosaickedImage,
    /// Each raster is processed on its own.
    ProcessItemsSeparately,
}

impl ProcessingMode {
    /// Every mode with its Esri keyword and the label Esri's tool shows.
    pub const ALL: [(ProcessingMode, &'static str, &'static str); 2] = [
        (
            ProcessingMode::ProcessAsMosaickedImage,
            "PROCESS_AS_MOSAICKED_IMAGE",
            "Process as mosaicked image",
        ),
        (
            ProcessingMode::ProcessItemsSeparately,
            "PROCESS_ITEMS_SEPARATELY",
            "Process all raster items separately",
        ),
    ];

    /// The mode `text` names: an Esri keyword in any case, or Esri's label (any case, spaces
    /// or underscores alike); an error listing the valid values otherwise.
    pub fn parse(text: &str) -> Result<ProcessingMode, String> {
        let normal = |t: &str| {
            t.trim()
                .to_ascii_uppercase()
                .replace(['_', '-'], " ")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        };
        let wanted = normal(text);
        ProcessingMode::ALL
            .iter()
            .find(|(_, keyword, label)| normal(keyword) == wanted || normal(label) == wanted)
            .map(|(mode, _, _)| *mode)
            .ok_or_else(|| {
                let valid: Vec<String> = ProcessingMode::ALL
                    .iter()
                    .map(|(_, keyword, label)| format!("{keyword} (\"{label}\")"))
                    .collect();
                format!("not a processing mode; use {}", valid.join(" or "))
            })
    }

    /// Esri's keyword.
    pub fn keyword(self) -> &'static str {
        ProcessingMode::ALL
            .iter()
            .find(|(mode, _, _)| *mode == self)
            .map_or("", |(_, keyword, _)| keyword)
    }
}

impl std::str::FromStr for ProcessingMode {
    type Err = String;

    fn from_str(text: &str) -> Result<ProcessingMode, String> {
        ProcessingMode::parse(text)
    }
}

impl std::fmt::Display for ProcessingMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.keyword())
    }
}

/// One image the features are placed on.
#[derive(Debug, Clone)]
pub struct Item {
    /// GDAL name to open it by (a path, `/vsi...` name or the in-memory mosaic).
    pub name: String,
    /// What its rows' `ImageId` says: the name as given without its secrets, or the name of an
    /// image service's catalog item.
    pub id: String,
    /// Its size, georeferencing and CRS.
    pub grid: RasterGrid,
}

/// Expands folders among `inputs` into the images they hold, sorted by path for a stable order.
pub fn expand(inputs: &[String], recursive: bool, extensions: &[String]) -> Result<Vec<String>> {
    let wanted: Vec<String> = if extensions.is_empty() {
        DEFAULT_EXTENSIONS.iter().map(|e| e.to_string()).collect()
    } else {
        extensions
            .iter()
            .map(|e| e.trim_start_matches('.').to_ascii_lowercase())
            .collect()
    };
    let mut images = Vec::new();
    for input in inputs {
        let path = Path::new(input);
        if source::is_local_path(input) && path.is_dir() {
            let mut found = Vec::new();
            collect(path, recursive, &wanted, &mut found)?;
            found.sort();
            if found.is_empty() {
                bail_input!(
                    "folder {input} holds no image with extension {}{}; give --extensions or --recursive",
                    wanted.join(", "),
                    if recursive {
                        ""
                    } else {
                        " (subfolders are not searched)"
                    }
                );
            }
            images.extend(found.into_iter().map(|p| p.display().to_string()));
        } else {
            images.push(input.clone());
        }
    }
    Ok(images)
}

fn collect(dir: &Path, recursive: bool, extensions: &[String], found: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("listing folder {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.is_dir() {
            if recursive {
                collect(&path, recursive, extensions, found)?;
            }
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| extensions.contains(&e.to_ascii_lowercase()))
        {
            found.push(path);
        }
    }
    Ok(())
}

/// The items features are placed on: the single image, the mosaic of all images, or every image
/// on its own, by `mode`.
pub fn for_features(images: &[String], mode: ProcessingMode) -> Result<Vec<Item>> {
    let open = |name: &str| {
        Raster::open(name).map(|r| Item {
            name: name.to_string(),
            id: http::redact(name),
            grid: r.grid.clone(),
        })
    };
    match (images, mode) {
        (many, ProcessingMode::ProcessItemsSeparately) => {
            let mut items = Vec::new();
            for name in many {
                match service::catalog_items(name)? {
                    Some(catalog) => {
                        for entry in catalog {
                            let mut item = open(&entry.source)?;
                            item.id = entry.name;
                            items.push(item);
                        }
                    }
                    None => items.push(open(name)?),
                }
            }
            Ok(items)
        }
        ([one], _) => Ok(vec![open(one)?]),
        (many, ProcessingMode::ProcessAsMosaickedImage) => Ok(vec![open(&build_mosaic(many)?)?]),
    }
}

/// Mosaics `images` into an in-memory VRT (any thread can open it by name); returns its name.
fn build_mosaic(images: &[String]) -> Result<String> {
    let rasters = images
        .iter()
        .map(|name| Raster::open(name))
        .collect::<Result<Vec<_>>>()?;
    let first = &rasters[0];
    for raster in &rasters[1..] {
        if raster.bands.len() != first.bands.len() {
            bail_input!(
                "{} has {} band(s) but {} has {}; a mosaic needs the same bands in every image (or use --processing-mode PROCESS_ITEMS_SEPARATELY)",
                raster.name,
                raster.bands.len(),
                first.name,
                first.bands.len()
            );
        }
        let same_crs = match (raster.grid.spatial_ref(), first.grid.spatial_ref()) {
            (Some(a), Some(b)) => a.to_wkt().ok() == b.to_wkt().ok() || srs::same(&a, &b),
            (None, None) => true,
            _ => false,
        };
        if !same_crs {
            bail_input!(
                "{} and {} are in different coordinate reference systems; a mosaic needs one CRS (reproject with gdalwarp first, or use --processing-mode PROCESS_ITEMS_SEPARATELY)",
                raster.name,
                first.name
            );
        }
    }
    let datasets = images
        .iter()
        .map(|name| source::open(name, SourceKind::Raster))
        .collect::<Result<Vec<Dataset>>>()?;
    let name = format!("/vsimem/classify-objects-{}/mosaic.vrt", std::process::id());
    let mosaic = gdal::programs::raster::build_vrt(Some(Path::new(&name)), &datasets, None)
        .with_context(|| format!("building a mosaic of {} images", images.len()))?;
    // Closing writes the VRT so that every worker can open it by name.
    mosaic.close().context("writing the in-memory mosaic")?;
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_keywords_in_any_case_or_esris_labels() {
        for text in [
            "PROCESS_ITEMS_SEPARATELY",
            "process_items_separately",
            "Process all raster items separately",
            "PROCESS ALL RASTER ITEMS SEPARATELY",
        ] {
            assert_eq!(
                ProcessingMode::parse(text),
                Ok(ProcessingMode::ProcessItemsSeparately),
                "{text}"
            );
        }
        assert_eq!(
            ProcessingMode::parse("Process as mosaicked image"),
            Ok(ProcessingMode::ProcessAsMosaickedImage)
        );
        let err = ProcessingMode::parse("separately").unwrap_err();
        assert!(
            err.contains("PROCESS_AS_MOSAICKED_IMAGE") && err.contains("Process all raster items separately"),
            "{err}"
        );
    }
}
