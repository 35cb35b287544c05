//! Output formats: any OGR vector driver that writes files, chosen by the output's extension or
//! by `--format`, or our own plain CSV table; and what each format writes besides the output
//! file itself (a Shapefile's sidecars, a GeoPackage's journals), which moves and goes with it.

use std::path::Path;

use anyhow::Result;
use gdal::{DriverManager, Metadata};

use crate::bail_input;
use crate::output::shard::SIDECAR_SUFFIX;

/// Output file formats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// An OGR vector driver, by its GDAL short name.
    Ogr(String),
    /// A plain CSV table (RFC 4180), geometry as WKT when there is one.
    Csv,
}

/// A file that belongs to an output: a suffix that replaces the output's extension (a
/// Shapefile's `.dbf`) or is appended to its whole name (a GeoPackage's `-journal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Companion {
    /// `name.shp` -> `name.dbf`.
    ReplacesExtension(&'static str),
    /// `name.gpkg` -> `name.gpkg-journal`.
    Appended(&'static str),
}

/// The QGIS style file written beside an output (`name.qml`), which QGIS loads as the layer's
/// default style.
pub const STYLE_SIDECAR: Companion = Companion::ReplacesExtension(".qml");

/// Companions that are metadata a user or another program keeps beside the data (ArcGIS's
/// `.shp.xml`, QGIS's `.qmd`): an output that replaces the data without writing them keeps them.
pub const KEPT_METADATA: &[&str] = &[".shp.xml", ".qmd"];

const SHAPEFILE: &[Companion] = &[
    Companion::ReplacesExtension(".shx"),
    Companion::ReplacesExtension(".dbf"),
    Companion::ReplacesExtension(".prj"),
    Companion::ReplacesExtension(".cpg"),
    Companion::ReplacesExtension(".qix"),
    Companion::ReplacesExtension(".sbn"),
    Companion::ReplacesExtension(".sbx"),
    Companion::ReplacesExtension(".shp.xml"),
    Companion::ReplacesExtension(".qmd"),
];
const MAPINFO: &[Companion] = &[
    Companion::ReplacesExtension(".dat"),
    Companion::ReplacesExtension(".map"),
    Companion::ReplacesExtension(".id"),
    Companion::ReplacesExtension(".ind"),
    Companion::ReplacesExtension(".mid"),
];
const CSV: &[Companion] = &[Companion::ReplacesExtension(SIDECAR_SUFFIX)];
const SQLITE: &[Companion] = &[
    Companion::Appended("-journal"),
    Companion::Appended("-wal"),
    Companion::Appended("-shm"),
];

impl Format {
    /// The format an output path asks for by its extension.
    pub fn for_path(path: &Path) -> Result<Format> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        Ok(match ext.as_str() {
            "gpkg" => Format::Ogr("GPKG".into()),
            "geojson" | "json" => Format::Ogr("GeoJSON".into()),
            "fgb" => Format::Ogr("FlatGeobuf".into()),
            "shp" => Format::Ogr("ESRI Shapefile".into()),
            "gdb" => Format::Ogr("OpenFileGDB".into()),
            "csv" => Format::Csv,
            "" => bail_input!(
                "output {} has no extension, so its format is unknown; name it e.g. {}.gpkg (GeoPackage), .gdb (File Geodatabase), .geojson, .fgb, .shp or .csv",
                path.display(),
                path.display()
            ),
            other => bail_input!(
                "output {} has extension .{other}, which classify-objects does not know; use .gpkg, .gdb, .geojson, .fgb, .shp or .csv, or name the format with --format",
                path.display()
            ),
        })
    }

    /// The format `--format` names: `CSV` (ours, geometry as WKT) or any OGR vector driver that
    /// can create files, by its GDAL short name (`GPKG`, `GeoJSON`, `FlatGeobuf`, `ESRI Shapefile`...).
    pub fn named(name: &str) -> Result<Format> {
        match name.to_ascii_lowercase().as_str() {
            "csv" => return Ok(Format::Csv),
            "shp" | "shapefile" => return Ok(Format::Ogr("ESRI Shapefile".into())),
            _ => {}
        }
        let Ok(driver) = DriverManager::get_driver_by_name(name) else {
            bail_input!("--format {name} is not a GDAL driver; use GPKG, GeoJSON, FlatGeobuf, \"ESRI Shapefile\", CSV or another name from `ogrinfo --formats`");
        };
        let capable = |key: &str| {
            driver
                .metadata_item(key, "")
                .is_some_and(|v| v.eq_ignore_ascii_case("YES"))
        };
        if !capable("DCAP_VECTOR") || !capable("DCAP_CREATE") {
            bail_input!("--format {name} cannot create vector files; choose a format marked \"w+\" or \"rw+\" in `ogrinfo --formats`");
        }
        let format = Format::Ogr(driver.short_name());
        if format.extensions().is_empty() {
            bail_input!(
                "--format {name} writes no file (GDAL knows no file extension for it); choose a format that writes files, such as GPKG"
            );
        }
        Ok(format)
    }

    /// The file extensions GDAL gives this format (lower case, without the dot).
    pub fn extensions(&self) -> Vec<String> {
        let Format::Ogr(name) = self else {
            return vec!["csv".into()];
        };
        let Ok(driver) = DriverManager::get_driver_by_name(name) else {
            return Vec::new();
        };
        let listed = driver
            .metadata_item("DMD_EXTENSIONS", "")
            .or_else(|| driver.metadata_item("DMD_EXTENSION", ""))
            .unwrap_or_default();
        listed.split_whitespace().map(|e| e.to_ascii_lowercase()).collect()
    }

    /// Checks that `path` is a name this format writes (its extension is one of the format's),
    /// so that the driver writes exactly the file named, not a folder or a file elsewhere.
    pub fn check_output_name(&self, path: &Path) -> Result<()> {
        let extensions = self.extensions();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        if extensions.iter().any(|e| name.ends_with(&format!(".{e}"))) {
            return Ok(());
        }
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        bail_input!(
            "output {} does not have the extension of the {} format ({}); name it {stem}.{}",
            path.display(),
            self.name(),
            extensions
                .iter()
                .map(|e| format!(".{e}"))
                .collect::<Vec<_>>()
                .join(", "),
            extensions.first().map(String::as_str).unwrap_or("gpkg")
        )
    }

    /// The driver's name, or `CSV`.
    pub fn name(&self) -> &str {
        match self {
            Format::Ogr(name) => name,
            Format::Csv => "CSV",
        }
    }

    /// Whether one file of this format holds several layers (a GeoPackage does).
    pub fn multi_layer(&self) -> bool {
        let Format::Ogr(name) = self else { return false };
        DriverManager::get_driver_by_name(name)
            .ok()
            .and_then(|d| d.metadata_item("DCAP_MULTIPLE_VECTOR_LAYERS", ""))
            .is_some_and(|v| v.eq_ignore_ascii_case("YES"))
    }

    /// Whether the output is a folder rather than a file (a File Geodatabase, `.gdb`, written by
    /// GDAL's OpenFileGDB driver).
    pub fn writes_folder(&self) -> bool {
        matches!(self, Format::Ogr(name) if name == "OpenFileGDB")
    }

    /// Whether this is a GeoPackage.
    pub fn is_gpkg(&self) -> bool {
        matches!(self, Format::Ogr(name) if name == "GPKG")
    }

    /// Most characters of a field name the format keeps (a Shapefile's `.dbf`: 10; the driver
    /// cuts longer names), where it limits them.
    pub fn field_name_limit(&self) -> Option<usize> {
        match self {
            Format::Ogr(name) if name == "ESRI Shapefile" => Some(10),
            _ => None,
        }
    }

    /// The files this format writes besides the output file itself.
    pub fn companions(&self) -> &'static [Companion] {
        match self {
            Format::Ogr(name) if name == "ESRI Shapefile" => SHAPEFILE,
            Format::Ogr(name) if name == "MapInfo File" => MAPINFO,
            Format::Ogr(name) if name == "GPKG" || name == "SQLite" => SQLITE,
            Format::Csv => CSV,
            _ => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_follows_extension() {
        assert_eq!(
            Format::for_path(Path::new("a/b.gpkg")).unwrap(),
            Format::Ogr("GPKG".into())
        );
        assert_eq!(Format::for_path(Path::new("b.CSV")).unwrap(), Format::Csv);
        assert_eq!(
            Format::for_path(Path::new("b.fgb")).unwrap(),
            Format::Ogr("FlatGeobuf".into())
        );
        let gdb = Format::for_path(Path::new("b.gdb")).unwrap();
        assert!(gdb.writes_folder() && gdb.multi_layer() && gdb.check_output_name(Path::new("b.gdb")).is_ok());
        assert!(Format::for_path(Path::new("b.xyz")).is_err());
        assert!(Format::for_path(Path::new("result")).is_err());
    }

    #[test]
    fn output_names_must_carry_the_format_extension() {
        let gpkg = Format::Ogr("GPKG".into());
        assert!(gpkg.check_output_name(Path::new("a/b.GPKG")).is_ok());
        assert!(gpkg.check_output_name(Path::new("result")).is_err());
        let shp = Format::named("ESRI Shapefile").unwrap();
        assert!(shp.check_output_name(Path::new("x.gpkg")).is_err());
        assert!(shp.check_output_name(Path::new("x.shp")).is_ok());
        assert!(Format::named("Memory").is_err());
        assert!(gpkg.multi_layer() && !shp.multi_layer());
    }
}
