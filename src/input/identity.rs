//! What identifies an input by its content rather than its path, for a run's fingerprint: the
//! same raster by another path is the same input, and a raster replaced in place is another.
//! A local raster is its files (the image, its side files, a VRT's sources, as GDAL lists them),
//! each by size and a sample of its bytes (the first MiB, 32 blocks of 64 KiB spread over it,
//! and the last 64 KiB); a remote one, by its name and what GDAL reports of it.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::digest::Fingerprint;
use crate::input::raster::Raster;

/// Bytes read from the start of each file.
const HEAD: u64 = 1 << 20;
/// Bytes of each sample.
const SAMPLE: u64 = 64 << 10;
/// Samples spread over each file.
const SAMPLES: u64 = 32;

/// Adds the content of raster `raster` (opened as the run reads it) to `print`.
pub fn add_raster(print: &mut Fingerprint, raster: &Raster) {
    let grid = &raster.grid;
    print.add(
        format!(
            "{}x{} {:?} {:?}",
            grid.width, grid.height, grid.geo_transform, grid.srs_wkt
        )
        .as_bytes(),
    );
    let mut files = raster.files();
    files.sort();
    let local: Vec<&String> = files.iter().filter(|f| Path::new(f).is_file()).collect();
    if local.is_empty() {
        // Remote or in memory: its name is all there is to go by (without the credentials that
        // reach it: a renewed token is the same raster).
        print.add(crate::secrets::without_secrets(&raster.name).as_bytes());
    }
    for file in local {
        add_file(print, Path::new(file));
    }
}

/// Adds a file's size and sampled bytes to `print` (its path left out).
fn add_file(print: &mut Fingerprint, path: &Path) {
    let Ok(mut file) = File::open(path) else {
        print.add(b"unreadable");
        return;
    };
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    print.add(&size.to_le_bytes());
    let mut chunk = Vec::new();
    let mut read_at = |offset: u64, len: u64, print: &mut Fingerprint| {
        chunk.clear();
        if file.seek(SeekFrom::Start(offset)).is_ok() {
            let _ = (&mut file).take(len).read_to_end(&mut chunk);
        }
        print.add(&chunk);
    };
    read_at(0, HEAD, print);
    if size > HEAD {
        for k in 0..SAMPLES {
            read_at(HEAD + (size - HEAD) * k / SAMPLES, SAMPLE, print);
        }
        read_at(size.saturating_sub(SAMPLE), SAMPLE, print);
    }
}
