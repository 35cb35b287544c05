//! Scale-out: shards, merge and resume.

mod checks;
mod resume;
mod shards;
