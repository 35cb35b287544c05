//! Reports, comparisons and quality gates.

mod compare;
mod report;
mod verdict;
