//! Scale-out: shards, merge and resume.

mod resume;
mod shards;
