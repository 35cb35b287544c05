//! Any bytes as a .dlpk: the reader must return Ok or an error, never panic, and never allocate
//! beyond its caps.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = classify_objects::ModelPackage::from_dlpk_bytes("fuzz.dlpk", data);
});
