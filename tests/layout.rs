//! The source layout promised by `ARCHITECTURE.md`: its code map is the tree on disk, every file
//! says what it owns, the top-level modules sit in the layers it draws (each imports only from
//! its own layer or below), no two files import each other in a circle (inside folders too),
//! nothing below `commands/` imports it, and `unsafe` code lives in the GDAL boundary (and in
//! the one place that loads ONNX Runtime's library).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn src() -> PathBuf {
    root().join("src")
}

/// Every `.rs` file under `src/`, relative to it (`run/plan/mod.rs`), with its text.
fn source_files() -> BTreeMap<String, String> {
    fn walk(dir: &Path, base: &Path, out: &mut BTreeMap<String, String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, base, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let name = path.strip_prefix(base).unwrap().display().to_string();
                out.insert(name, fs::read_to_string(&path).unwrap());
            }
        }
    }
    let mut files = BTreeMap::new();
    walk(&src(), &src(), &mut files);
    files
}

/// The top-level layers, lowest first: a module imports only from its own layer or below.
const LAYERS: &[&[&str]] = &[
    &[
        "error",
        "messages",
        "secrets",
        "stop",
        "digest",
        "clock",
        "gdal_ffi",
        "onnx_proto",
    ],
    &["model"],
    &["input", "infer"],
    &["chips", "output"],
    &["report"],
    &["cli"],
    &["run"],
    &["commands"],
];

fn layer_of(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|layer| layer.contains(&module))
        .unwrap_or_else(|| panic!("top-level module {module} is in no layer of ARCHITECTURE.md; add it"))
}

/// The top-level module a file belongs to: its folder, or the file's stem.
fn top_module(file: &str) -> String {
    match file.split_once('/') {
        Some((folder, _)) => folder.to_string(),
        None => file.trim_end_matches(".rs").to_string(),
    }
}

/// The module path of a file: `run/plan/mod.rs` -> [run, plan].
fn module_path(file: &str) -> Vec<String> {
    let mut parts: Vec<String> = file.trim_end_matches(".rs").split('/').map(str::to_string).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    parts
}

/// The code of `text` without comments, string and character literals, and unit tests.
fn code_only(text: &str) -> String {
    let text = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => text,
    };
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('#') || next == Some('"')) && !chars[i.saturating_sub(1)].is_alphanumeric()
        {
            // A raw string: r"…", r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= chars.len() {
                    break;
                }
                if chars[j] == '"' && (0..hashes).all(|k| chars.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            out.push_str("\"\"");
            i += 1;
        } else if c == '\'' {
            // A character literal ('x', '\n', '\u{..}'), or a lifetime ('a).
            if next == Some('\\') {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                out.push(c);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Every path `code` names from `start` on (`crate::a::b`, `super::x::{y, z::W}`): one list of
/// segments per path named, braces expanded.
fn paths_at(code: &str, start: usize) -> Vec<Vec<String>> {
    fn ident(s: &[u8], mut i: usize) -> (String, usize) {
        let begin = i;
        while i < s.len() && (s[i].is_ascii_alphanumeric() || s[i] == b'_') {
            i += 1;
        }
        (String::from_utf8_lossy(&s[begin..i]).into_owned(), i)
    }
    fn skip_space(s: &[u8], mut i: usize) -> usize {
        while i < s.len() && s[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    }
    /// Parses `seg::seg::{…}` from `i`; returns the paths and where it stopped.
    fn path(s: &[u8], i: usize, prefix: Vec<String>) -> (Vec<Vec<String>>, usize) {
        let mut segs = prefix;
        let mut i = skip_space(s, i);
        loop {
            if i < s.len() && s[i] == b'{' {
                let mut all = Vec::new();
                i += 1;
                loop {
                    i = skip_space(s, i);
                    if i >= s.len() || s[i] == b'}' {
                        return (all, i + 1);
                    }
                    let (found, j) = path(s, i, segs.clone());
                    all.extend(found);
                    i = skip_space(s, j);
                    // `as Name`
                    if s[i..].starts_with(b"as ") {
                        let (_, j) = ident(s, skip_space(s, i + 3));
                        i = skip_space(s, j);
                    }
                    if i < s.len() && s[i] == b',' {
                        i += 1;
                    }
                }
            }
            let (name, j) = ident(s, i);
            if name.is_empty() {
                return (vec![segs], i);
            }
            if name != "self" || segs.is_empty() {
                segs.push(name);
            }
            i = j;
            if s[i..].starts_with(b"::") {
                i = skip_space(s, i + 2);
            } else {
                return (vec![segs], i);
            }
        }
    }
    path(code.as_bytes(), start, Vec::new()).0
}

/// The file a module path names: the deepest existing file along it.
fn resolve(segments: &[String], files: &BTreeMap<String, String>) -> Option<String> {
    (1..=segments.len()).rev().find_map(|n| {
        let base = segments[..n].join("/");
        [format!("{base}.rs"), format!("{base}/mod.rs")]
            .into_iter()
            .find(|candidate| files.contains_key(candidate))
    })
}

/// Which files each file imports (by `use` or by a path in its code).
fn import_graph(files: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph = BTreeMap::new();
    for (file, text) in files {
        if file == "main.rs" {
            continue;
        }
        let me = module_path(file);
        let code = code_only(text);
        let children: BTreeSet<String> = code
            .lines()
            .filter_map(|l| {
                let l = l.trim().trim_start_matches("pub ").trim_start_matches("pub(crate) ");
                l.strip_prefix("mod ")
                    .and_then(|r| r.strip_suffix(';'))
                    .map(str::to_string)
            })
            .collect();
        let bytes = code.as_bytes();
        let mut targets = BTreeSet::new();
        let mut i = 0;
        while i < bytes.len() {
            let boundary =
                i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_' || bytes[i - 1] == b':');
            if !boundary {
                i += 1;
                continue;
            }
            let rest = &code[i..];
            let word: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let is_path = rest[word.len()..].starts_with("::");
            let rooted = matches!(word.as_str(), "crate" | "super" | "self") || children.contains(&word);
            if word.is_empty() || !is_path || !rooted {
                i += word.len().max(1);
                continue;
            }
            for path in paths_at(&code, i) {
                let mut segments: Vec<String> = match path.first().map(String::as_str) {
                    Some("crate") => path[1..].to_vec(),
                    Some("super") => {
                        let ups = path.iter().take_while(|s| *s == "super").count();
                        let mut base = me.clone();
                        base.truncate(base.len().saturating_sub(ups));
                        base.extend(path[ups..].iter().cloned());
                        base
                    }
                    Some("self") => me.iter().chain(&path[1..]).cloned().collect(),
                    _ => me.iter().chain(&path).cloned().collect(),
                };
                segments.retain(|s| !s.is_empty());
                if let Some(target) = resolve(&segments, files).filter(|t| t != file && t != "lib.rs") {
                    targets.insert(target);
                }
            }
            i += word.len();
        }
        graph.insert(file.clone(), targets);
    }
    graph
}

/// The circles of the graph (strongly connected parts of more than one file).
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    fn reaches(graph: &BTreeMap<String, BTreeSet<String>>, from: &str, to: &str) -> bool {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.to_string()];
        while let Some(node) = stack.pop() {
            for next in graph.get(&node).into_iter().flatten() {
                if next == to {
                    return true;
                }
                if seen.insert(next.clone()) {
                    stack.push(next.clone());
                }
            }
        }
        false
    }
    let mut found: Vec<Vec<String>> = Vec::new();
    for (from, targets) in graph {
        for to in targets {
            if from < to && reaches(graph, to, from) {
                found.push(vec![from.clone(), to.clone()]);
            }
        }
    }
    found
}

#[test]
fn the_code_map_lists_the_tree() {
    let text = fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md exists");
    let section = text
        .split("## Code map")
        .nth(1)
        .expect("ARCHITECTURE.md has a Code map section");
    let block = section.split("```").nth(1).expect("with a code block listing the tree");
    let mut listed = BTreeSet::new();
    let mut folders: Vec<(usize, String)> = Vec::new();
    for line in block.lines().filter(|l| !l.trim().is_empty()) {
        let indent = line.len() - line.trim_start().len();
        let name = line.split_whitespace().next().unwrap();
        while folders.last().is_some_and(|(depth, _)| *depth >= indent) {
            folders.pop();
        }
        let parent = folders.last().map(|(_, f)| f.clone());
        let full = match (&parent, name.strip_prefix("src/")) {
            (_, Some(path)) => path.to_string(),
            (Some(parent), None) => format!("{parent}/{name}"),
            (None, None) => panic!("{line} is not under a folder of the code map"),
        };
        match full.strip_suffix('/') {
            Some(dir) => {
                listed.insert(format!("{dir}/mod.rs"));
                folders.push((indent, dir.to_string()));
            }
            None => {
                listed.insert(full);
            }
        }
    }
    listed.insert("lib.rs".into());
    let on_disk: BTreeSet<String> = source_files().into_keys().collect();
    assert_eq!(listed, on_disk, "ARCHITECTURE.md's code map and src/ differ");
    let readme = fs::read_to_string(root().join("README.md")).unwrap();
    assert!(readme.contains("ARCHITECTURE.md"), "README points to ARCHITECTURE.md");
}

#[test]
fn every_file_says_what_it_owns() {
    for (file, text) in source_files() {
        assert!(
            text.starts_with("//!"),
            "src/{file} does not start with a //! doc comment"
        );
    }
}

#[test]
fn no_two_files_import_each_other_in_a_circle() {
    let graph = import_graph(&source_files());
    let found = circles(&graph);
    assert!(found.is_empty(), "import circles between files: {found:?}");
}

#[test]
fn modules_import_only_from_their_layer_or_below() {
    let graph = import_graph(&source_files());
    let mut wrong = Vec::new();
    for (from, targets) in &graph {
        let from_module = top_module(from);
        if from_module == "lib" {
            continue;
        }
        for to in targets {
            let to_module = top_module(to);
            if to_module != from_module && layer_of(&to_module) > layer_of(&from_module) {
                wrong.push(format!("{from} -> {to}"));
            }
        }
    }
    assert!(wrong.is_empty(), "imports that go up a layer: {wrong:#?}");
    // The layers are the ones ARCHITECTURE.md draws.
    let text = fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    for layer in LAYERS {
        let line = layer.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ");
        assert!(text.contains(&line), "ARCHITECTURE.md draws the layer {line}");
    }
}

#[test]
fn the_main_flow_goes_through_the_layers() {
    let graph = import_graph(&source_files());
    let uses = |from: &str, to: &str| {
        graph
            .iter()
            .any(|(f, targets)| top_module(f) == from && targets.iter().any(|t| top_module(t) == to))
    };
    for (from, to) in [
        ("commands", "run"),
        ("run", "cli"),
        ("run", "model"),
        ("run", "input"),
        ("run", "chips"),
        ("run", "infer"),
        ("run", "output"),
        ("run", "report"),
    ] {
        assert!(uses(from, to), "{from} is expected to use {to}");
    }
}

#[test]
fn unsafe_code_lives_at_the_boundaries() {
    for (file, text) in source_files() {
        let code = code_only(&text);
        let allowed = file.starts_with("gdal_ffi/") || file == "infer/runtime.rs";
        assert!(
            allowed || !code.contains("unsafe"),
            "src/{file} holds unsafe code; GDAL calls belong in src/gdal_ffi/"
        );
        assert!(
            allowed || !code.contains("gdal_sys::"),
            "src/{file} calls GDAL's C API; that belongs in src/gdal_ffi/"
        );
    }
}

#[test]
fn the_import_reader_sees_what_it_should() {
    // The reader itself, on a made-up file: comments, strings and braces.
    let code = code_only(
        "use super::{a::B, c};\n// crate::x::y\nlet s = \"crate::z\"; crate::m::n(); 'a'; r#\"crate::q\"#;\n",
    );
    let starts: Vec<usize> = ["super::", "crate::m"].iter().map(|p| code.find(p).unwrap()).collect();
    assert_eq!(
        paths_at(&code, starts[0]),
        vec![vec!["super", "a", "B"], vec!["super", "c"]]
    );
    assert_eq!(paths_at(&code, starts[1]), vec![vec!["crate", "m", "n"]]);
    assert!(!code.contains("crate::x") && !code.contains("crate::z") && !code.contains("crate::q"));
}
