//! Any text as an .emd, and the model arguments resolved against whatever parses.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(definition) = classify_objects::ModelDefinition::parse(text, "fuzz.emd") {
        let _ = classify_objects::fuzzing::resolve_arguments(&definition, &[]);
        let _ = classify_objects::fuzzing::parse_esri_string(text);
    }
});
