//! Reports, comparisons and quality gates.

mod compare;
mod report;
