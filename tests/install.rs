//! `make install` and `make dist` give a program that works without the clone: installed into a
//! temporary prefix (and staged under DESTDIR), and extracted from the dist tarball elsewhere,
//! with the clone's `.onnxruntime/` hidden, the program finds ONNX Runtime beside itself, says
//! so in `--version`, classifies a fixture, and comes with its completions and manual page;
//! `make uninstall` removes exactly what was installed. A crate of its own: hiding the clone's
//! ONNX Runtime must not disturb other tests.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(path: &str) -> PathBuf {
    root().join("fixtures").join(path)
}

/// Runs a script of the repository with `env`, which must succeed.
fn script(name: &str, args: &[&str], env: &[(&str, &Path)]) {
    let mut command = Command::new(root().join("scripts").join(name));
    command.args(args).env("BIN", env!("CARGO_BIN_EXE_classify-objects"));
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{name} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The clone's ONNX Runtime moved aside while it lives (and put back even if a test fails).
struct Hidden {
    from: PathBuf,
    to: PathBuf,
}

impl Hidden {
    fn ort() -> Hidden {
        let from = root().join(".onnxruntime");
        let to = root().join(".onnxruntime.hidden-by-install-test");
        if !from.exists() && to.exists() {
            // A run that was killed while it hid it.
            fs::rename(&to, &from).unwrap();
        }
        fs::rename(&from, &to).unwrap();
        Hidden { from, to }
    }
}

impl Drop for Hidden {
    fn drop(&mut self) {
        let _ = fs::rename(&self.to, &self.from);
    }
}

/// Runs an installed `program` from `cwd` (not the clone) with no ONNX Runtime hint.
fn run(program: &Path, cwd: &Path, args: &[&str]) -> Output {
    let out = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .env_remove("ORT_DYLIB_PATH")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} {args:?}: {}",
        program.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The installed program finds its ONNX Runtime under `lib` and classifies the synthetic
/// polygons with the labels painted under them.
fn works_from(program: &Path, lib: &Path, cwd: &Path) {
    let version = String::from_utf8(run(program, cwd, &["--version"]).stdout).unwrap();
    let expected = fs::canonicalize(lib.join("libonnxruntime.so")).unwrap();
    assert!(
        version.contains(&format!("ONNX Runtime 1.32.0 ({})", expected.display())),
        "ONNX Runtime found beside the program: {version}"
    );
    let out = cwd.join("classified.csv");
    run(
        program,
        cwd,
        &[
            "-r",
            fixture("synthetic/colors.tif").to_str().unwrap(),
            "-m",
            fixture("synthetic/colors.dlpk").to_str().unwrap(),
            "-f",
            fixture("synthetic/objects.gpkg").to_str().unwrap(),
            "--layer",
            "polygons",
            "-o",
            out.to_str().unwrap(),
        ],
    );
    let text = fs::read_to_string(&out).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let (truth, label) = (
        header.iter().position(|h| *h == "truth").unwrap(),
        header.iter().position(|h| *h == "ClassLabel").unwrap(),
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 16);
    assert!(rows.iter().all(|r| r[truth] == r[label]), "{text}");
}

/// Every file under `dir`, relative to it.
fn files(dir: &Path) -> Vec<String> {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
        for entry in fs::read_dir(dir).into_iter().flatten() {
            let path = entry.unwrap().path();
            if path.is_dir() && !path.is_symlink() {
                walk(&path, base, out);
            } else {
                out.push(path.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn installed_and_extracted_programs_work_without_the_clone() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let prefix = t.join("prefix");
    // Something else already in the prefix stays there through install and uninstall.
    fs::create_dir_all(prefix.join("bin")).unwrap();
    fs::write(prefix.join("bin/other-tool"), b"#!/bin/sh\n").unwrap();
    script("install.sh", &[], &[("PREFIX", &prefix)]);
    let installed = files(&prefix);
    for expected in [
        "bin/classify-objects",
        "lib/classify-objects/libonnxruntime.so",
        "lib/classify-objects/libonnxruntime.so.1.32.0",
        "lib/classify-objects/libonnxruntime_providers_shared.so",
        "share/bash-completion/completions/classify-objects",
        "share/zsh/site-functions/_classify-objects",
        "share/fish/vendor_completions.d/classify-objects.fish",
        "share/man/man1/classify-objects.1",
        "share/classify-objects/export_onnx.py",
        "share/doc/classify-objects/LICENSE",
        "share/doc/classify-objects/third-party/onnxruntime/ThirdPartyNotices.txt",
        "share/doc/classify-objects/third-party/rust-crates.md",
        "share/doc/classify-objects/MANIFEST",
    ] {
        assert!(
            installed.iter().any(|f| f == expected),
            "{expected} installed: {installed:?}"
        );
    }
    let man = fs::read_to_string(prefix.join("share/man/man1/classify-objects.1")).unwrap();
    assert!(man.contains(".TH classify-objects"), "a roff manual page");
    let bash = fs::read_to_string(prefix.join("share/bash-completion/completions/classify-objects")).unwrap();
    assert!(
        bash.contains("--raster") && bash.contains("complete"),
        "a bash completion"
    );
    // Staged under DESTDIR, with the real prefix inside it.
    let stage = t.join("stage");
    script(
        "install.sh",
        &[],
        &[("PREFIX", Path::new("/usr/local")), ("DESTDIR", &stage)],
    );
    assert!(stage.join("usr/local/bin/classify-objects").is_file());
    // The dist tarball, extracted elsewhere.
    let dist = t.join("dist");
    script("dist.sh", &[], &[("OUT", &dist)]);
    let tarballs = files(&dist);
    let [tarball] = tarballs.as_slice() else {
        panic!("one tarball: {tarballs:?}")
    };
    assert!(tarball.starts_with(&format!("classify-objects-{}-linux-", env!("CARGO_PKG_VERSION"))));
    let extracted = t.join("elsewhere");
    fs::create_dir_all(&extracted).unwrap();
    let status = Command::new("tar")
        .args([
            "-xzf",
            dist.join(tarball).to_str().unwrap(),
            "-C",
            extracted.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let top = extracted.join(tarball.trim_end_matches(".tar.gz"));
    for expected in [
        "LICENSE",
        "README",
        "bin/classify-objects",
        "share/man/man1/classify-objects.1",
    ] {
        assert!(top.join(expected).exists(), "{expected} in the tarball");
    }

    let (work_installed, work_extracted) = (t.join("work_installed"), t.join("work_extracted"));
    fs::create_dir_all(&work_installed).unwrap();
    fs::create_dir_all(&work_extracted).unwrap();
    {
        let _hidden = Hidden::ort();
        let installed = prefix.join("bin/classify-objects");
        works_from(&installed, &prefix.join("lib/classify-objects"), &work_installed);
        works_from(
            &top.join("bin/classify-objects"),
            &top.join("lib/classify-objects"),
            &work_extracted,
        );
    }
    // Uninstall removes exactly what was installed.
    script("install.sh", &["--uninstall"], &[("PREFIX", &prefix)]);
    assert_eq!(files(&prefix), vec!["bin/other-tool"]);
}
