//! Imports point one way: from the request's edge (server, routes, pages), through the
//! services that fetch, down to pure building blocks. An import that points back up
//! ties modules into a knot that a newcomer has to read all at once, so this test reads
//! every `use` line (and every inline `crate::…`/`super::…` path) in `src/` and fails on
//! any cycle:
//! - between top-level modules (`registry` → `index` → `registry`);
//! - between files, except a folder's `mod.rs` (or `x.rs` beside `x/`) reaching into its
//!   own children (`mod a;`, `pub use a::Item;`, a field of a child's type): the folder
//!   root assembles its children, and they may take its items (`use super::Client;` for
//!   an `impl Client` block of their own).
//!
//! Known gap: it reads text, not the compiler's name resolution. A path through a
//! re-export is charged to the module that re-exports it, and a macro that expands to a
//! path is not seen. Tests (`#[cfg(test)]` to the end of the file) are left out: they
//! may reach anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// A module path below the crate root: `["registry", "manifests"]`.
type ModPath = Vec<String>;

/// One source file: its module path and the code before its tests.
struct Source {
    module: ModPath,
    code: String,
}

/// The knot issue 21 unties, edge by edge: every import inside a cycle today. The test
/// fails when a new edge joins a knot, and when one of these leaves it (then delete its
/// line), so this list only shrinks.
const KNOWN_MODULE_KNOT: &str = "
body -> download
body -> layer
download -> body
download -> registry
download -> upstream
image -> download
image -> layer
image -> manifest
image -> registry
index -> layer
layer -> body
layer -> download
layer -> index
layer -> registry
layer -> upstream
manifest -> image
registry -> manifest
registry -> upstream
upstream -> registry
";

/// The same at the level of files.
const KNOWN_FILE_KNOT: &str = "
body -> download
body -> layer::save
download -> body
layer::save -> body
pages::layer -> pages::merged
pages::merged -> pages::layer
";

#[test]
fn top_level_modules_import_one_way() {
    let sources = sources();
    let modules: BTreeSet<ModPath> = sources.iter().map(|s| s.module.clone()).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for source in &sources {
        let Some(from) = source.module.first() else { continue };
        graph.entry(from.clone()).or_default();
        for target in references(source, &modules) {
            if let Some(to) = target.first() {
                if to != from {
                    graph.entry(from.clone()).or_default().insert(to.clone());
                }
            }
        }
    }
    let knots = strongly_connected(&graph);
    ratchet("top-level modules", &knots, &graph, KNOWN_MODULE_KNOT);
}

#[test]
fn files_import_one_way() {
    let sources = sources();
    let modules: BTreeSet<ModPath> = sources.iter().map(|s| s.module.clone()).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for source in &sources {
        let from = name(&source.module);
        graph.entry(from.clone()).or_default();
        for target in references(source, &modules) {
            // A folder root assembling its own children is the folder, not a dependency.
            if target.len() == source.module.len() + 1 && target.starts_with(&source.module) {
                continue;
            }
            if target != source.module && !target.is_empty() {
                graph.entry(from.clone()).or_default().insert(name(&target));
            }
        }
    }
    let knots = strongly_connected(&graph);
    ratchet("files", &knots, &graph, KNOWN_FILE_KNOT);
}

#[test]
fn the_reader_sees_groups_super_and_inline_paths() {
    let modules: BTreeSet<ModPath> = [vec![], p("a"), p("a::b"), p("c"), p("d")].into_iter().collect();
    let source = Source {
        module: p("a::b"),
        code: "use crate::{c::X, d::{self, Y}};\nuse super::Z;\nfn f() { crate::c::g(); }\n// crate::d::h\n".into(),
    };
    let found: BTreeSet<ModPath> = references(&source, &modules).into_iter().collect();
    assert_eq!(found, [p("c"), p("d"), p("a")].into_iter().collect());
    let parent = Source { module: p("a"), code: "mod b;\npub use b::Thing;\nuse crate::c;\n".into() };
    let found: BTreeSet<ModPath> = references(&parent, &modules).into_iter().collect();
    assert_eq!(found, [p("a::b"), p("c")].into_iter().collect());

    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("x".to_owned(), ["y".to_owned()].into()),
        ("y".to_owned(), ["x".to_owned()].into()),
        ("z".to_owned(), ["x".to_owned()].into()),
    ]
    .into_iter()
    .collect();
    assert_eq!(strongly_connected(&graph), vec![vec!["x".to_owned(), "y".to_owned()]]);
}

/// Fails on any edge inside a knot that is not on the `known` list, and on any listed edge
/// that is no longer in a knot (so the list only shrinks, and is empty when the house is
/// in order).
fn ratchet(what: &str, knots: &[Vec<String>], graph: &BTreeMap<String, BTreeSet<String>>, known: &str) {
    let known: BTreeSet<(String, String)> =
        known.lines().filter_map(|l| l.trim().split_once(" -> ")).map(|(a, b)| (a.to_owned(), b.to_owned())).collect();
    let mut inside = BTreeSet::new();
    for knot in knots {
        for from in knot {
            for to in graph.get(from).into_iter().flatten().filter(|t| knot.contains(t)) {
                inside.insert((from.clone(), to.clone()));
            }
        }
    }
    let new: Vec<_> = inside.difference(&known).map(|(a, b)| format!("    {a} -> {b}")).collect();
    let gone: Vec<_> = known.difference(&inside).map(|(a, b)| format!("    {a} -> {b}")).collect();
    assert!(
        new.is_empty() && gone.is_empty(),
        "{what}: imports tie new knots:\n{}\nno longer in a knot (take them off the known list):\n{}\n\nall knots:\n{}",
        new.join("\n"),
        gone.join("\n"),
        describe(knots, graph)
    );
}

fn p(path: &str) -> ModPath {
    path.split("::").map(str::to_owned).collect()
}

fn name(module: &ModPath) -> String {
    if module.is_empty() {
        "crate".to_owned()
    } else {
        module.join("::")
    }
}

/// Every library source file (not `main.rs`: the binary sits above everything).
fn sources() -> Vec<Source> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&root, &mut files);
    files
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "rs") && !f.ends_with("main.rs"))
        .map(|file| {
            let relative = file.strip_prefix(&root).unwrap();
            let mut module: ModPath =
                relative.with_extension("").iter().map(|c| c.to_string_lossy().into_owned()).collect();
            if module.last().is_some_and(|m| m == "mod" || m == "lib") {
                module.pop();
            }
            let text = fs::read_to_string(&file).unwrap();
            Source { module, code: before_tests(&text) }
        })
        .collect()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// The code above the first `#[cfg(test)]`, comments and strings blanked.
fn before_tests(text: &str) -> String {
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    code.lines()
        .map(|line| match line.find("//") {
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The modules a file refers to: its `mod` lines, its `use` lines and inline paths.
fn references(source: &Source, modules: &BTreeSet<ModPath>) -> Vec<ModPath> {
    let mut out = Vec::new();
    let code = &source.code;
    // `mod child;` declarations.
    for line in code.lines() {
        let line = line.trim();
        let rest = line
            .strip_prefix("pub mod ")
            .or_else(|| line.strip_prefix("mod "))
            .or_else(|| line.strip_prefix("pub(crate) mod "));
        if let Some(child) = rest.and_then(|r| r.strip_suffix(';')) {
            let mut target = source.module.clone();
            target.push(child.trim().to_owned());
            out.push(target);
        }
    }
    // `use` statements, groups expanded.
    let mut rest = code.as_str();
    while let Some(at) = find_use(rest) {
        let start = &rest[at..];
        let body_start = start.find("use ").unwrap() + 4;
        let end = start.find(';').unwrap_or(start.len());
        for path in expand(start[body_start..end].trim()) {
            if let Some(target) = resolve(&source.module, &path, modules) {
                out.push(target);
            }
        }
        rest = &start[end.min(start.len())..];
    }
    // Inline paths in code: `crate::a::b(…)`, `super::c::D`.
    for keyword in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(at) = code[from..].find(keyword) {
            let begin = from + at;
            let before = code[..begin].chars().last();
            from = begin + keyword.len();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let path: String =
                code[begin..].chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
            let segments: Vec<String> = path.split("::").filter(|s| !s.is_empty()).map(str::to_owned).collect();
            if let Some(target) = resolve(&source.module, &segments, modules) {
                out.push(target);
            }
        }
    }
    // The crate root (`crate::{…}` read as a path) is everyone's parent, not a module.
    out.retain(|target| !target.is_empty());
    out
}

/// The next `use ` that starts a statement.
fn find_use(code: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = code[from..].find("use ") {
        let begin = from + at;
        let before = code[..begin].chars().last();
        if before.is_none_or(|c| c.is_whitespace() || c == ';' || c == '{' || c == '}') {
            return Some(begin);
        }
        from = begin + 4;
    }
    None
}

/// `a::{b, c::{self, D}}` as `[a,b]`, `[a,c]`, `[a,c,D]`; `as` renames dropped.
fn expand(tree: &str) -> Vec<Vec<String>> {
    let tree: String = tree.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = Vec::new();
    expand_into(&[], &tree, &mut out);
    out
}

fn expand_into(prefix: &[String], tree: &str, out: &mut Vec<Vec<String>>) {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let head = tree[..open].trim_end_matches("::").trim();
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let mut base = prefix.to_vec();
        base.extend(head.split("::").filter(|s| !s.is_empty()).map(|s| s.trim().to_owned()));
        for part in split_top(inner) {
            if part.trim() == "self" {
                out.push(base.clone());
            } else if !part.trim().is_empty() {
                expand_into(&base, part, out);
            }
        }
    } else {
        let path = tree.split(" as ").next().unwrap_or(tree);
        let mut full = prefix.to_vec();
        full.extend(path.split("::").filter(|s| !s.is_empty()).map(|s| s.trim().to_owned()));
        out.push(full);
    }
}

/// Splits on commas outside braces.
fn split_top(text: &str) -> Vec<&str> {
    let (mut depth, mut start, mut parts) = (0, 0, Vec::new());
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// The deepest module file a path names, from `module`'s point of view; `None` for
/// paths outside the crate (`std::…`, other crates) and a module's own items.
fn resolve(module: &ModPath, path: &[String], modules: &BTreeSet<ModPath>) -> Option<ModPath> {
    match path.first().map(String::as_str) {
        Some("crate") => deepest(Vec::new(), &path[1..], modules),
        Some("super") => {
            let mut base = module.clone();
            let mut supers = path.iter().take_while(|s| *s == "super").count();
            while supers > 0 {
                base.pop()?;
                supers -= 1;
            }
            let rest: Vec<String> = path.iter().skip_while(|s| *s == "super").cloned().collect();
            deepest(base, &rest, modules)
        }
        Some("self") => deepest(module.clone(), &path[1..], modules),
        // A child named directly (`use child::Item;` in its parent).
        Some(first) => {
            let mut child = module.clone();
            child.push(first.to_owned());
            if modules.contains(&child) {
                deepest(module.clone(), path, modules)
            } else {
                None
            }
        }
        None => None,
    }
}

fn deepest(mut base: ModPath, rest: &[String], modules: &BTreeSet<ModPath>) -> Option<ModPath> {
    for segment in rest {
        base.push(segment.clone());
        if !modules.contains(&base) {
            base.pop();
            break;
        }
    }
    Some(base)
}

/// Tarjan's strongly connected components of more than one node, each sorted.
fn strongly_connected(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        let edges: Vec<&'a str> = s.graph.get(v).map(|e| e.iter().map(String::as_str).collect()).unwrap_or_default();
        for w in edges {
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out.sort();
    s.out
}

/// Each knot with the edges inside it, for the failure message.
fn describe(knots: &[Vec<String>], graph: &BTreeMap<String, BTreeSet<String>>) -> String {
    let mut text = String::new();
    for knot in knots {
        text.push_str(&format!("- {}\n", knot.join(", ")));
        for from in knot {
            for to in graph.get(from).into_iter().flatten().filter(|t| knot.contains(t)) {
                text.push_str(&format!("    {from} -> {to}\n"));
            }
        }
    }
    text
}
