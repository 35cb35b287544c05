//! What a run did and how well: the [`summary`] (counts, timings, memory; the summary line and
//! `--summary-json`), the comparison with a truth field ([`truth`]), and the HTML page of
//! `--report` ([`html`]) with what it draws on: the [`gallery`] of objects to check (collected
//! during the run), the run [`details`], the output [`read_back`], the [`map`] preview, the
//! [`charts`] and the embedded [`picture`]s.

pub mod charts;
pub mod details;
pub mod gallery;
pub mod html;
pub mod map;
pub mod picture;
pub mod read_back;
pub mod summary;
pub mod truth;
