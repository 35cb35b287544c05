//! Model packages: arcgis.learn weights, definitions, `inspect`/`pack`, hostile packages.

mod arcgis_learn;
mod commands;
mod definitions;
mod hostile;
mod quantize;
