//! The inputs: GDAL/OGR sources opened with clear errors ([`source`]), rasters and their pixel
//! windows ([`raster`]), the images a run reads and how several are combined ([`items`]), and the
//! features to classify, placed on the images in pixel coordinates ([`features`]).

pub mod features;
pub mod items;
pub mod raster;
pub mod source;
