//! What is read: images, features, bands, and inputs that are damaged or do not fit.

mod bands;
mod damaged;
mod images;
mod selection;
