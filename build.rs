//! Build script: records the git commit the binary is built from (`--version`), or `unknown`
//! outside a git checkout; it never fails the build.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn main() {
    let commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=CLASSIFY_OBJECTS_GIT_COMMIT={commit}");
    // Run again when HEAD moves: the HEAD file, and the branch it points to.
    println!("cargo:rerun-if-changed=build.rs");
    let branch = git(&["symbolic-ref", "-q", "HEAD"]);
    for path in [Some("HEAD".to_string()), branch, Some("packed-refs".into())]
        .into_iter()
        .flatten()
    {
        if let Some(file) = git(&["rev-parse", "--git-path", &path]) {
            if std::path::Path::new(&file).exists() {
                println!("cargo:rerun-if-changed={file}");
            }
        }
    }
}
