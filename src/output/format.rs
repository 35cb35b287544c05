//! Output formats: any OGR vector driver that writes files, chosen by the output's extension or
//! by `--format`, or our own plain CSV table.

use std::path::Path;

use anyhow::Result;
use gdal::DriverManager;

use crate::bail_input;

/// Output file formats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// An OGR vector driver, by its GDAL short name.
    Ogr(String),
    /// A plain CSV table (RFC 4180), geometry as WKT when there is one.
    Csv,
}

impl Format {
    /// The format an output path asks for by its extension (GeoPackage when unsure).
    pub fn for_path(path: &Path) -> Result<Format> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        Ok(match ext.as_str() {
            "gpkg" | "" => Format::Ogr("GPKG".into()),
            "geojson" | "json" => Format::Ogr("GeoJSON".into()),
            "fgb" => Format::Ogr("FlatGeobuf".into()),
            "shp" => Format::Ogr("ESRI Shapefile".into()),
            "csv" => Format::Csv,
            other => bail_input!(
                "output {} has extension .{other}, which classify-objects does not know; use .gpkg (default), .geojson, .fgb, .shp or .csv, or name the format with --format",
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
        use gdal::Metadata;
        let capable = |key: &str| {
            driver
                .metadata_item(key, "")
                .is_some_and(|v| v.eq_ignore_ascii_case("YES"))
        };
        if !capable("DCAP_VECTOR") || !capable("DCAP_CREATE") {
            bail_input!("--format {name} cannot create vector files; choose a format marked \"w+\" or \"rw+\" in `ogrinfo --formats`");
        }
        Ok(Format::Ogr(driver.short_name()))
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
        assert!(Format::for_path(Path::new("b.xyz")).is_err());
    }
}
