//! Classifying features and images: what the model is given and what comes out.

mod chip_rules;
mod features;
mod geometries;
mod locality;
mod model_arguments;
mod real_data;
mod whole_images;
