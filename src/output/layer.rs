//! How the output layer is named and created: its name, GDAL's layer and dataset creation
//! options, and the CRS its geometries are written in.

/// How the output layer is named and created.
#[derive(Debug, Clone, Default)]
pub struct LayerSettings {
    /// Layer name.
    pub name: String,
    /// Layer creation options (`KEY=VALUE`, as `ogr2ogr -lco`).
    pub creation_options: Vec<String>,
    /// Dataset creation options (`KEY=VALUE`, as `ogr2ogr -dsco`), for a new output.
    pub dataset_options: Vec<String>,
    /// Whether the name was given (`--layer-name`) rather than taken from the output's name.
    pub given: bool,
    /// The CRS (WKT) the geometries are written in (`--t-srs`); `None`: the rows' own.
    pub target_srs: Option<String>,
}
