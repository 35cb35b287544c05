//! The inputs: GDAL/OGR sources opened with clear errors ([`source`]), ArcGIS REST services
//! turned into what GDAL opens ([`service`], their JSON answers read by [`rest`]) with the run's token ([`token`]), rasters and their pixel windows ([`raster`]), the
//! images a run reads and how several are combined ([`items`]), the features to classify, placed
//! on the images in pixel coordinates ([`features`]), the processing extent ([`extent`]), what `--sql` and `--where` may say ([`sql`]), and remote files: HTTP through GDAL
//! ([`http`]), models on a portal ([`portal`]) and packages downloaded once into a cache ([`download`]).

pub mod download;
pub mod extent;
pub mod features;
pub mod http;
pub mod identity;
pub mod items;
pub mod network;
pub mod portal;
pub mod raster;
pub mod rest;
pub mod service;
pub mod source;
pub mod sql;
pub mod token;
pub mod validity;
