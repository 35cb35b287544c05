//! What is written, and that it is never half-written.

mod concurrent_runs;
mod formats;
mod interruption;
mod options;
mod safety;
mod styles;
