//! Any bytes as a `.pth` (torch zip): zip records, pickle, storage slices and CRC checks, then
//! architecture detection on whatever reads; Ok or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let bytes = data.to_vec();
    if let Ok(sd) = classify_objects::fuzzing::read_pth(bytes, "fuzz.pth") {
        let _ = classify_objects::fuzzing::detect_network(&sd, "fuzz.pth");
    }
});
