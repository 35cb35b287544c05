//! `classify-objects compare A B`: the objects whose label changed between two outputs; exit 0
//! when none did, 1 when some did, 2 on error.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::CompareArgs;
use crate::error::input_error;
use crate::messages::print;
use crate::output::compare;

/// Compares the two outputs and prints the changes as text or JSON.
pub fn run(args: CompareArgs) -> Result<ExitCode> {
    let layers = [args.layer.as_deref(), args.layer2.as_deref().or(args.layer.as_deref())];
    let comparison =
        compare::compare(&args.a, &args.b, &args.label_field, layers).map_err(|e| e.context(input_error("compare")))?;
    if args.json {
        let json = compare::render_json(&comparison, &args.a, &args.b, &args.label_field);
        print(&(serde_json::to_string_pretty(&json)? + "\n"))?;
    } else {
        print(&compare::render_text(&comparison, &args.a, &args.b))?;
    }
    Ok(ExitCode::from(u8::from(comparison.differs())))
}
