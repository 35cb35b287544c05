//! What a run did and how well: the [`summary`] (counts, timings, memory; the summary line and
//! `--summary-json`), the comparison with a truth field ([`truth`]), and the HTML page of
//! `--report` ([`html`]).

pub mod html;
pub mod summary;
pub mod truth;
