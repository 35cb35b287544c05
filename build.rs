//! Records the git commit the binary is built from (`CLASSIFY_OBJECTS_GIT_COMMIT`, shown in the
//! report's run details), when it is built from a git checkout: outside one (a source tarball,
//! a container build without `.git`) nothing is recorded and the build goes on. The variable can
//! also be set from outside, e.g. by a container build that knows the commit.

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-env-changed=CLASSIFY_OBJECTS_GIT_COMMIT");
    if std::env::var_os("CLASSIFY_OBJECTS_GIT_COMMIT").is_some() {
        return;
    }
    let Some(commit) = git(&["rev-parse", "--short=12", "HEAD"]) else {
        return;
    };
    println!("cargo:rustc-env=CLASSIFY_OBJECTS_GIT_COMMIT={commit}");
    // Built again when HEAD moves: HEAD itself (another branch checked out) and the branch's ref
    // (a new commit), loose or packed. Only files that exist are named: Cargo rebuilds every time
    // for a missing one.
    let mut watched: Vec<PathBuf> = Vec::new();
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        watched.push(PathBuf::from(dir).join("HEAD"));
    }
    if let Some(common) = git(&["rev-parse", "--git-common-dir"]) {
        let common = PathBuf::from(common);
        if let Some(reference) = git(&["symbolic-ref", "-q", "HEAD"]) {
            watched.push(common.join(reference));
        }
        watched.push(common.join("packed-refs"));
    }
    for path in watched.iter().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}
