//! What is written, and that it is never half-written.

mod formats;
mod interruption;
mod options;
mod safety;
mod styles;
