//! No file of `src/` imports a file that imports it back, directly or through others
//! (issue 11): the tree reads top-down, main → cli → commands → domain → infrastructure.
//!
//! The graph is derived from the source: every `use` and every path through `crate::`,
//! `super::`, `self::` or a declared child module, resolved to the file that defines the
//! module it names (an item re-exported by a `mod.rs` counts as that `mod.rs`). Lines that
//! start with `//` are comments and not read. Declaring a child (`mod x;`) is not an
//! import. Inline modules are assumed to be the `mod tests {` at the end of a file (the
//! test below checks that assumption too), so `super::` inside one is the file itself.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;

// Compiled once: a debug build compiles a regex slowly.
static INLINE_MOD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*(pub(\([^)]*\))?\s+)?mod\s+(r#)?\w+\s*\{").unwrap());
static DECLARED_MOD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*(pub(\([^)]*\))?\s+)?mod\s+(r#)?(\w+)\s*;").unwrap());
static DEFINED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?m)^\s*(pub(\([^)]*\))?\s+)?(async\s+)?(fn|struct|enum|const|static|trait|type|mod)\s+(r#)?(\w+)").unwrap()
});
static RENAMED: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\s+as\s+\w+").unwrap());
static PATH: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(^|[^\w:])((r#)?[a-z_][a-z0-9_]*(::(r#)?\w+)+)").unwrap());

type ModPath = Vec<String>;

struct SourceFile {
    path: PathBuf,
    module: ModPath,
    text: String,
}

#[test]
fn no_file_imports_a_file_that_imports_it_back() {
    let files = source_files();
    let graph = graph(&files);
    let edges: usize = graph.iter().map(BTreeSet::len).sum();
    assert!(
        files.len() > 50 && edges > 100,
        "the graph looks empty ({} files, {edges} imports): is the parser broken?",
        files.len()
    );
    // The parser must see the imports we know are there, through re-exports too.
    let index = |p: &str| {
        let found = files.iter().position(|f| f.path.ends_with(p));
        found.unwrap_or_else(|| panic!("{p} is not in src/"))
    };
    for (from, to) in [
        ("src/cli/mod.rs", "src/commands/rotate.rs"),
        ("src/commands/rotate.rs", "src/breakglass/batch.rs"),
        ("src/commands/rotate.rs", "src/breakglass/mint/strategy.rs"),
        (
            "src/commands/status/mod.rs",
            "src/breakglass/status/model.rs",
        ),
        (
            "src/breakglass/mint/self_rotation.rs",
            "src/breakglass/mint/steps.rs",
        ),
    ] {
        assert!(
            graph[index(from)].contains(&index(to)),
            "{from} imports {to}"
        );
    }

    let cycles = cycles(&graph);
    let shown: Vec<String> = cycles
        .iter()
        .map(|(separator, files_on)| {
            let names: Vec<String> = files_on
                .iter()
                .map(|&i| files[i].path.display().to_string())
                .collect();
            names.join(separator)
        })
        .collect();
    assert!(shown.is_empty(), "import cycles:\n{}", shown.join("\n"));
}

fn source_files() -> Vec<SourceFile> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths = Vec::new();
    walk(&root.join("src"), &mut paths);
    paths.sort();
    paths
        .into_iter()
        // The binary is its own crate: it reaches the library as `kube_dc::`.
        .filter(|p| !p.ends_with("src/main.rs"))
        .map(|path| {
            let rel = path.strip_prefix(root.join("src")).unwrap();
            let mut module: ModPath = rel
                .with_extension("")
                .iter()
                .map(|s| s.to_string_lossy().into_owned())
                .collect();
            if matches!(module.last().map(String::as_str), Some("mod" | "lib")) {
                module.pop();
            }
            let text = std::fs::read_to_string(&path).unwrap();
            SourceFile {
                path: rel_to(root, &path),
                module,
                text,
            }
        })
        .collect()
}

fn rel_to(root: &Path, path: &Path) -> PathBuf {
    path.strip_prefix(root).unwrap().to_path_buf()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// What a file refers to: `(pub use?, inside mod tests?, path)`.
type Reference = (bool, usize, Vec<String>);

/// The import graph: for each file, the files it imports. A name that a `mod.rs`
/// re-exports (`pub use child::Name`, `pub use child::*`) leads to the file defining it.
fn graph(files: &[SourceFile]) -> Vec<BTreeSet<usize>> {
    let modules: BTreeMap<ModPath, usize> = files
        .iter()
        .enumerate()
        .map(|(i, f)| (f.module.clone(), i))
        .collect();
    let defined: Vec<BTreeSet<String>> = files
        .iter()
        .map(|f| {
            DEFINED
                .captures_iter(&f.text)
                .filter_map(|c| Some(c.get(6)?.as_str().to_string()))
                .collect()
        })
        .collect();
    let refs: Vec<(Vec<String>, Vec<Reference>)> = files.iter().map(references).collect();
    let mut named: BTreeMap<(usize, String), usize> = BTreeMap::new();
    let mut globbed: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, (children, list)) in refs.iter().enumerate() {
        for (_, depth, path) in list
            .iter()
            .filter(|(public, depth, _)| *public && *depth == 0)
        {
            match resolve(&files[i], *depth, children, path, &modules) {
                Some((t, Some(name))) if t != i && name == "*" => {
                    globbed.entry(i).or_default().push(t)
                }
                Some((t, Some(name))) if t != i => {
                    named.insert((i, name), t);
                }
                _ => {}
            }
        }
    }
    let follow = |mut t: usize, name: Option<String>| {
        // `use super::*` imports the parent itself.
        let Some(name) = name.filter(|n| n != "*") else {
            return t;
        };
        for _ in 0..8 {
            if let Some(&next) = named.get(&(t, name.clone())) {
                t = next;
            } else if let (false, Some([only])) = (
                defined[t].contains(&name),
                globbed.get(&t).map(Vec::as_slice),
            ) {
                t = *only;
            } else {
                break;
            }
        }
        t
    };
    refs.iter()
        .enumerate()
        .map(|(i, (children, list))| {
            list.iter()
                .filter_map(|(_, depth, path)| {
                    let (t, name) = resolve(&files[i], *depth, children, path, &modules)?;
                    Some(follow(t, name))
                })
                .filter(|&t| t != i)
                .collect()
        })
        .collect()
}

/// The file's declared child modules and every path it uses.
fn references(file: &SourceFile) -> (Vec<String>, Vec<Reference>) {
    let (inline, declared) = (&*INLINE_MOD, &*DECLARED_MOD);
    let children: Vec<String> = file
        .text
        .lines()
        .filter_map(|l| Some(declared.captures(l)?.get(4)?.as_str().to_string()))
        .collect();
    let mut found = Vec::new();
    let mut depth = 0;
    let code: Vec<&str> = file
        .text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect();
    let mut lines = code.iter();
    while let Some(line) = lines.next() {
        if inline.is_match(line) {
            assert!(
                line.contains("mod tests"),
                "{}: only `mod tests {{` may be inline: {line}",
                file.path.display()
            );
            depth += 1;
            continue;
        }
        let mut statement = line.to_string();
        if is_use(line) {
            while !statement.contains(';') {
                match lines.next() {
                    Some(next) => statement.push_str(next),
                    None => break,
                }
            }
            let body = statement.trim_start();
            let public = body.starts_with("pub");
            let body = body.split_once("use ").map_or(body, |(_, b)| b);
            let body = body.trim_end().trim_end_matches(';');
            found.extend(expand(body).into_iter().map(|p| (public, depth, p)));
            continue;
        }
        let paths = inline_paths(&statement, &children);
        found.extend(paths.into_iter().map(|p| (false, depth, p)));
    }
    (children, found)
}

fn is_use(line: &str) -> bool {
    let l = line.trim_start();
    let l = l
        .strip_prefix("pub(crate) ")
        .or(l.strip_prefix("pub "))
        .unwrap_or(l);
    l.starts_with("use ")
}

/// `a::{b, c::{d, self}}` as `a::b`, `a::c::d`, `a::c`.
fn expand(body: &str) -> Vec<Vec<String>> {
    let body = RENAMED.replace_all(body, "");
    let body: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let mut out = Vec::new();
    expand_into(&[], &body, &mut out);
    out
}

fn expand_into(prefix: &[String], body: &str, out: &mut Vec<Vec<String>>) {
    for part in split_top(body) {
        match part.find('{') {
            Some(open) => {
                let head = part[..open].trim_end_matches("::");
                let inner = &part[open + 1..part.len() - 1];
                let mut p = prefix.to_vec();
                p.extend(segments(head));
                expand_into(&p, inner, out);
            }
            None => {
                let mut p = prefix.to_vec();
                p.extend(
                    segments(part)
                        .into_iter()
                        .filter(|s| s != "self" || prefix.is_empty()),
                );
                out.push(p);
            }
        }
    }
}

/// Splits on the commas that are not inside braces.
fn split_top(body: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in body.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&body[start..]);
    parts.into_iter().filter(|p| !p.is_empty()).collect()
}

fn segments(path: &str) -> Vec<String> {
    path.split("::")
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_start_matches("r#").to_string())
        .collect()
}

/// Paths in code through `crate::`, `super::`, `self::` or a child module of this file.
fn inline_paths(line: &str, children: &[String]) -> Vec<Vec<String>> {
    PATH.captures_iter(line)
        .filter_map(|c| {
            let segs = segments(c.get(2)?.as_str());
            let first = segs.first()?.as_str();
            let known =
                matches!(first, "crate" | "super" | "self") || children.iter().any(|c| c == first);
            known.then_some(segs)
        })
        .collect()
}

/// The file of the module `path` names, and the item it names in it, if any.
fn resolve(
    file: &SourceFile,
    depth: usize,
    children: &[String],
    path: &[String],
    modules: &BTreeMap<ModPath, usize>,
) -> Option<(usize, Option<String>)> {
    let first = path.first()?;
    let (base, rest): (ModPath, &[String]) = match first.as_str() {
        "crate" => (Vec::new(), &path[1..]),
        "self" if depth > 0 => return None,
        "self" => (file.module.clone(), &path[1..]),
        "super" => {
            let supers = path.iter().take_while(|s| *s == "super").count();
            // Inside `mod tests`, the first `super` is this file.
            if supers <= depth || supers - depth > file.module.len() {
                return None;
            }
            let up = supers - depth;
            (
                file.module[..file.module.len() - up].to_vec(),
                &path[supers..],
            )
        }
        child if depth == 0 && children.iter().any(|c| c == child) => (file.module.clone(), path),
        // Another crate (std, serde, ...).
        _ => return None,
    };
    let mut target = None;
    for k in 0..=rest.len() {
        let mut m = base.clone();
        m.extend_from_slice(&rest[..k]);
        if let Some(&i) = modules.get(&m) {
            target = Some((i, rest.get(k).cloned()));
        }
    }
    target
}

/// One cycle for every group of files that reach each other (a strongly connected
/// component), each as the files on it, from the group's first file; then, when the group
/// is larger than that cycle, all of its files.
fn cycles(graph: &[BTreeSet<usize>]) -> Vec<(&'static str, Vec<usize>)> {
    let reach: Vec<BTreeSet<usize>> = (0..graph.len()).map(|i| reachable(graph, i)).collect();
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for start in 0..graph.len() {
        if seen.contains(&start) || !reach[start].contains(&start) {
            continue;
        }
        let group: Vec<usize> = (0..graph.len())
            .filter(|&j| reach[start].contains(&j) && reach[j].contains(&start))
            .collect();
        seen.extend(group.iter().copied());
        if let Some(path) = path_back(graph, start) {
            if group.len() + 1 > path.len() {
                out.push((", ", group));
            }
            out.push((" -> ", path));
        }
    }
    out
}

/// Every file `start` imports directly or through others.
fn reachable(graph: &[BTreeSet<usize>], start: usize) -> BTreeSet<usize> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![start];
    while let Some(node) = todo.pop() {
        for &next in &graph[node] {
            if seen.insert(next) {
                todo.push(next);
            }
        }
    }
    seen
}

/// A shortest path from `start` back to itself, by breadth-first search.
fn path_back(graph: &[BTreeSet<usize>], start: usize) -> Option<Vec<usize>> {
    let mut came_from: BTreeMap<usize, usize> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(node) = queue.pop_front() {
        for &next in &graph[node] {
            if next == start {
                let mut path = vec![node];
                let mut at = node;
                while at != start {
                    at = came_from[&at];
                    path.push(at);
                }
                path.reverse();
                path.push(start);
                return Some(path);
            }
            if !came_from.contains_key(&next) && next != start {
                came_from.insert(next, node);
                queue.push_back(next);
            }
        }
    }
    None
}
