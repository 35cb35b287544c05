//! The source layout promised by the README's "Architecture" section: the tree it lists is the
//! tree on disk, every folder says what it owns, and no two top-level modules depend on each
//! other in a circle (`cli` on top, `error` at the bottom).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `src/`, relative to it (`run/plan.rs`).
fn source_files() -> BTreeSet<String> {
    fn walk(dir: &Path, base: &Path, out: &mut BTreeSet<String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, base, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.insert(path.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut files = BTreeSet::new();
    walk(&src(), &src(), &mut files);
    files
}

/// The top-level module a file belongs to: its folder, or the file's stem.
fn module_of(file: &str) -> String {
    match file.split_once('/') {
        Some((folder, _)) => folder.to_string(),
        None => file.trim_end_matches(".rs").to_string(),
    }
}

#[test]
fn readme_architecture_lists_the_tree() {
    let readme = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let section = readme
        .split("## Architecture")
        .nth(1)
        .expect("README has an Architecture section");
    let block = section.split("```").nth(1).expect("with a code block listing the tree");
    let mut listed = BTreeSet::new();
    let mut folder = String::new();
    for line in block.lines().filter(|l| !l.trim().is_empty()) {
        let name = line.split_whitespace().next().unwrap();
        if let Some(path) = name.strip_prefix("src/") {
            if let Some(dir) = path.strip_suffix('/') {
                folder = dir.to_string();
                listed.insert(format!("{dir}/mod.rs"));
            } else {
                folder.clear();
                listed.insert(path.to_string());
            }
        } else {
            assert!(line.starts_with(' '), "unexpected line in the tree: {line}");
            assert!(!folder.is_empty(), "{line} is not under a folder");
            listed.insert(format!("{folder}/{name}"));
        }
    }
    listed.insert("lib.rs".into());
    assert_eq!(listed, source_files(), "README's tree and src/ differ");
}

#[test]
fn every_module_says_what_it_owns() {
    for file in source_files() {
        let text = fs::read_to_string(src().join(&file)).unwrap();
        assert!(
            text.starts_with("//!"),
            "src/{file} does not start with a //! doc comment"
        );
    }
}

#[test]
fn top_level_modules_depend_on_each_other_without_a_circle() {
    let files = source_files();
    let modules: BTreeSet<String> = files
        .iter()
        .map(|f| module_of(f))
        .filter(|m| m != "lib" && m != "main")
        .collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let from = module_of(file);
        let text = fs::read_to_string(src().join(file)).unwrap();
        for (i, _) in text.match_indices("crate::") {
            let rest = &text[i + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if modules.contains(&name) && name != from {
                edges.entry(from.clone()).or_default().insert(name);
            }
        }
    }
    assert!(
        edges.get("error").is_none_or(|deps| deps.is_empty()),
        "error must depend on nothing of ours: {:?}",
        edges.get("error")
    );
    for (from, deps) in &edges {
        assert!(
            !deps.contains("cli") || from == "main",
            "{from} depends on cli, which must stay on top"
        );
    }
    // Depth-first search for a cycle.
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if done.contains(node) {
            return;
        }
        if let Some(start) = path.iter().position(|n| n == node) {
            panic!("import circle: {} -> {node}", path[start..].join(" -> "));
        }
        path.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            visit(next, edges, path, done);
        }
        path.pop();
        done.insert(node.to_string());
    }
    let mut done = BTreeSet::new();
    for module in &modules {
        visit(module, &edges, &mut Vec::new(), &mut done);
    }
    // The main flow, as the README draws it.
    for (from, to) in [
        ("cli", "run"),
        ("run", "model"),
        ("run", "input"),
        ("run", "chips"),
        ("run", "infer"),
        ("run", "output"),
    ] {
        assert!(
            edges.get(from).is_some_and(|d| d.contains(to)),
            "{from} is expected to use {to}"
        );
    }
}
