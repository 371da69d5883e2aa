//! The layers of ARCHITECTURE.md, kept true: reads every source file of
//! the server and checks what it imports against the rules there.
//!
//! A file's imports are the `crate::…` and `super::…` paths in its code
//! (comments and the unit tests at its end left out: a test may reach
//! anywhere to set up its case). Each names a file of `src/`. Two rules:
//!
//! * a folder imports only from folders ranked below it ([`RANKS`]);
//! * no files import each other in a circle (a `mod.rs` declaring its own
//!   children is containment, not an import).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each top-level module of the library, with its rank: a module may
/// import from those ranked lower, and from itself.
const RANKS: &[(&str, u32)] = &[
    ("main", 11),
    ("daemon", 10),
    ("server", 9),
    ("ops", 8),
    ("publish", 8),
    ("http", 8),
    ("session", 7),
    ("auth", 6),
    ("ils", 5),
    ("protocol", 4),
    ("state", 3),
    ("directory", 2),
    ("throttle", 1),
    ("metrics", 1),
    ("memory", 1),
];

/// The source files of `src/`, by module path (`ops/search`, `ils`).
fn sources() -> BTreeMap<String, String> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(root).unwrap().with_extension("");
                let mut name = rel.to_string_lossy().replace('\\', "/");
                if let Some(parent) = name.strip_suffix("/mod") {
                    name = parent.to_string();
                }
                out.insert(name, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    walk(&root, &root, &mut out);
    out
}

/// A file's code without comments and without its unit tests.
fn code(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with("#[cfg(test)]") {
            break;
        }
        let line = match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        };
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The module paths a file's code names: `crate::a::b::c` and the
/// `super::` and `self::` forms, including every name of a braced list
/// (`use crate::a::{b, c::d}`).
fn named_paths(module: &str, code: &str) -> Vec<Vec<String>> {
    let words: Vec<&str> = module.split('/').collect();
    let mut paths = Vec::new();
    let bytes = code.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &code[i..];
        let start = ["crate::", "super::", "self::"]
            .into_iter()
            .find(|p| rest.starts_with(p));
        let boundary = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        let (Some(prefix), true) = (start, boundary) else {
            i += 1;
            continue;
        };
        let base: Vec<String> = match prefix {
            "crate::" => Vec::new(),
            "super::" => words[..words.len() - 1]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            _ => words.iter().map(|s| s.to_string()).collect(),
        };
        let mut j = i + prefix.len();
        let mut segs = base;
        expand(code, &mut j, &mut segs, &mut paths);
        i = j.max(i + 1);
    }
    paths
}

/// Reads a path at `*j`, after the segments in `segs`, pushing every full
/// path a braced list spells out.
fn expand(code: &str, j: &mut usize, segs: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let b = code.as_bytes();
    loop {
        let s = *j;
        while *j < b.len() && (b[*j].is_ascii_alphanumeric() || b[*j] == b'_') {
            *j += 1;
        }
        if *j > s {
            segs.push(code[s..*j].to_string());
        }
        if code[*j..].starts_with("::{") {
            *j += 3;
            loop {
                while *j < b.len() && b[*j].is_ascii_whitespace() {
                    *j += 1;
                }
                if *j >= b.len() || b[*j] == b'}' {
                    *j += 1;
                    return;
                }
                let mut inner = segs.clone();
                expand(code, j, &mut inner, out);
                while *j < b.len() && (b[*j] == b',' || b[*j].is_ascii_whitespace()) {
                    *j += 1;
                }
            }
        }
        if code[*j..].starts_with("::") && *j > s {
            *j += 2;
            continue;
        }
        out.push(segs.clone());
        return;
    }
}

/// The file a path names: its longest prefix that is a module.
fn resolve(files: &BTreeMap<String, String>, path: &[String]) -> Option<String> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].join("/"))
        .find(|m| files.contains_key(m))
}

fn top(module: &str) -> &str {
    module.split('/').next().unwrap()
}

fn rank(module: &str) -> u32 {
    let top = top(module);
    RANKS
        .iter()
        .find(|(name, _)| *name == top)
        .unwrap_or_else(|| panic!("src/{top} has no rank in tests/layers.rs and ARCHITECTURE.md"))
        .1
}

/// Every import between two files of `src/`, from the first to the
/// second.
fn imports(files: &BTreeMap<String, String>) -> BTreeSet<(String, String)> {
    let mut edges = BTreeSet::new();
    for (module, text) in files {
        for path in named_paths(module, &code(text)) {
            let Some(to) = resolve(files, &path) else {
                continue;
            };
            let containment = module == "lib" || to.starts_with(&format!("{module}/"));
            if to != *module && !containment {
                edges.insert((module.clone(), to));
            }
        }
    }
    edges
}

/// The rule broken by an import, if any.
fn broken(from: &str, to: &str) -> Option<String> {
    if from == "lib" || top(from) == top(to) {
        return None;
    }
    (rank(to) >= rank(from)).then(|| {
        format!(
            "src/{from} imports src/{to}: {} is not below {}",
            top(to),
            top(from)
        )
    })
}

/// A circle of imports, if there is one.
fn circle(edges: &BTreeSet<(String, String)>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeSet<(String, String)>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut found = path[at..].to_vec();
            found.push(node.to_string());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for (_, to) in edges.iter().filter(|(from, _)| from == node) {
            if let Some(found) = visit(to, edges, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for (from, _) in edges {
        if let Some(found) = visit(from, edges, &mut Vec::new(), &mut done) {
            return Some(found);
        }
    }
    None
}

#[test]
fn every_import_runs_down_the_layers() {
    let files = sources();
    let broken: Vec<String> = imports(&files)
        .iter()
        .filter_map(|(from, to)| broken(from, to))
        .collect();
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn no_files_import_each_other_in_a_circle() {
    let files = sources();
    if let Some(found) = circle(&imports(&files)) {
        panic!("import circle: {}", found.join(" -> "));
    }
}

#[test]
fn every_folder_is_ranked_and_the_directory_imports_nothing_above_it() {
    let files = sources();
    for module in files.keys().filter(|m| *m != "lib") {
        rank(module);
    }
    let edges = imports(&files);
    // The checker itself: an import it must see, and one it must refuse.
    assert!(edges.contains(&("ops/compare".into(), "ops/computed".into())));
    assert!(broken("directory/store", "protocol/response").is_some());
    assert!(broken("protocol/decode", "ops/search").is_some());
    assert!(broken("ops/search", "server/connection").is_some());
    assert!(broken("ops/search", "directory/store").is_none());
    let path = named_paths(
        "ops/search",
        "use crate::protocol::{ber::Encoder, LdapResult};",
    );
    assert_eq!(path.len(), 2, "{path:?}");
    assert!(
        circle(&[("a".into(), "b".into()), ("b".into(), "a".into())].into()).is_some(),
        "a circle of two is found"
    );
}
