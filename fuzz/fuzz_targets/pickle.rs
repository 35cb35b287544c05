//! Any bytes as the `data.pkl` of a `.pth`: the restricted unpickler must return a state_dict or
//! an error, never panic, never run anything, and stay within its caps (depth, values).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = classify_objects::fuzzing::load_state_dict(data, "fuzz.pkl");
});
