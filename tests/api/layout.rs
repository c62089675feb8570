//! The shape of the code (issue 18): the import graph of `src/` has no circle, and the README's
//! "Architecture" names every folder.
//!
//! The graph is derived from the source itself: one node per module file, one edge for each
//! module a file names through a `crate::`, `super::` or `self::` path, or through a child module
//! it declares — outside comments and the `#[cfg(test)]` module. A path that names an item a
//! module only re-exports (`pub use child::Item`) is followed to where the item lives, and the
//! re-export itself is not an edge: it is a name, not a use.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use regex::Regex;

/// One module file: its path (`web::router`), its source without comments and tests, the child
/// modules it declares, and what it re-exports (`Item` → the path it names).
struct Module {
    text: String,
    children: BTreeSet<String>,
    reexports: BTreeMap<String, Vec<String>>,
}

fn modules() -> BTreeMap<String, Module> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(&src).unwrap().with_extension("");
            let mut segs: Vec<String> = rel.iter().map(|s| s.to_string_lossy().into_owned()).collect();
            if segs.last().is_some_and(|s| s == "mod") {
                segs.pop();
            }
            if segs == ["lib"] || segs == ["main"] {
                continue;
            }
            let source = std::fs::read_to_string(&path).unwrap();
            out.insert(segs.join("::"), parse(&source));
        }
    }
    out
}

fn parse(source: &str) -> Module {
    let code = source.split("#[cfg(test)]").next().unwrap_or_default();
    let text: String = code
        .lines()
        .map(|l| match l.find("//") {
            Some(at) if !l[..at].contains('"') => &l[..at],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let child = Regex::new(r"(?m)^\s*(?:pub(?:\([a-z]+\))?\s+)?mod\s+([a-z_0-9]+)\s*;").unwrap();
    let children = child.captures_iter(&text).map(|c| c[1].to_owned()).collect();
    let mut reexports = BTreeMap::new();
    let reexport = Regex::new(r"(?m)^\s*pub(?:\([a-z]+\))?\s+use\s+([^;]+);").unwrap();
    for c in reexport.captures_iter(&text) {
        for path in expand(c[1].trim()) {
            let name = path.rsplit("::").next().unwrap_or_default().to_owned();
            reexports.entry(name).or_insert_with(Vec::new).push(path);
        }
    }
    // The re-exports are names, not uses.
    let text = reexport.replace_all(&text, "").into_owned();
    Module {
        text,
        children,
        reexports,
    }
}

/// `a::{b, c::{d, e}}` → `a::b`, `a::c::d`, `a::c::e` (`self` and `as` handled).
fn expand(tree: &str) -> Vec<String> {
    let tree: String = tree.split_whitespace().collect::<Vec<_>>().join(" ");
    let Some(open) = tree.find('{') else {
        let path = tree.split(" as ").next().unwrap_or_default().trim();
        return vec![path.trim_end_matches("::self").to_owned()];
    };
    let prefix = tree[..open].trim_end_matches("::").to_owned();
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, ch) in inner.char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .flat_map(|p| match p {
            "self" => vec![prefix.clone()],
            p => expand(p).into_iter().map(|e| format!("{prefix}::{e}")).collect(),
        })
        .collect()
}

/// Every path a module's text names, made absolute (`crate::` dropped).
fn paths_of(name: &str, m: &Module) -> Vec<String> {
    let here: Vec<&str> = name.split("::").collect();
    let mut out = Vec::new();
    let start = Regex::new(r"(?:^|[^A-Za-z0-9_:])((?:crate|super|self)(?:::super)*)::").unwrap();
    let children: Vec<&String> = m.children.iter().collect();
    let child_start = (!children.is_empty()).then(|| {
        let names: Vec<&str> = children.iter().map(|c| c.as_str()).collect();
        Regex::new(&format!(r"(?:^|[^A-Za-z0-9_:])(({})::)", names.join("|"))).unwrap()
    });
    let mut found: Vec<(usize, Vec<String>)> = Vec::new();
    for c in start.captures_iter(&m.text) {
        let anchor = c.get(1).unwrap();
        let base: Vec<String> = match anchor.as_str() {
            a if a.starts_with("crate") => Vec::new(),
            a => {
                let ups = a.matches("super").count();
                here[..here.len().saturating_sub(ups)]
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            }
        };
        found.push((anchor.end() + 2, base));
    }
    if let Some(re) = &child_start {
        for c in re.captures_iter(&m.text) {
            let base = here.iter().map(|s| s.to_string()).collect();
            found.push((c.get(1).unwrap().start(), base));
        }
    }
    for (at, base) in found {
        let rest = &m.text[at..];
        let end = path_end(rest);
        for path in expand(&rest[..end]) {
            let mut full = base.clone();
            full.extend(path.split("::").filter(|s| !s.is_empty()).map(str::to_owned));
            out.push(full.join("::"));
        }
    }
    out
}

/// Where a path that starts `rest` ends: after its last segment, or after its closing brace.
fn path_end(rest: &str) -> usize {
    let mut depth = 0;
    for (i, ch) in rest.char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            c if depth == 0 && !(c.is_ascii_alphanumeric() || c == '_' || c == ':') => return i,
            _ => {}
        }
    }
    rest.len()
}

/// The module a path lands in, following re-exports to where the item lives.
fn resolve(path: &str, modules: &BTreeMap<String, Module>, hops: usize) -> Option<String> {
    let segs: Vec<&str> = path.split("::").collect();
    for n in (1..=segs.len()).rev() {
        let name = segs[..n].join("::");
        let Some(m) = modules.get(&name) else {
            continue;
        };
        if let Some(item) = segs.get(n)
            && let Some(targets) = m.reexports.get(*item)
            && hops < 8
        {
            let target = &targets[0];
            let absolute = match target.strip_prefix("crate::") {
                Some(t) => t.to_owned(),
                None => {
                    let t = target.trim_start_matches("self::");
                    let ups = t.matches("super::").count();
                    let parent: Vec<&str> = segs[..n - ups.min(n)].to_vec();
                    format!("{}::{}", parent.join("::"), t.replace("super::", ""))
                }
            };
            return resolve(absolute.trim_start_matches("::"), modules, hops + 1);
        }
        return Some(name);
    }
    None
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules();
    let mut graph = BTreeMap::new();
    for (name, m) in &modules {
        let edges: BTreeSet<String> = paths_of(name, m)
            .iter()
            .filter_map(|p| resolve(p, &modules, 0))
            .filter(|target| target != name)
            .collect();
        graph.insert(name.clone(), edges);
    }
    graph
}

/// The circles of the graph: its strongly connected components of more than one module.
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Tarjan<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, v: &'a str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.out.push(component);
                }
            }
        }
    }
    let mut t = Tarjan {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.out
}

#[test]
fn the_import_graph_of_src_has_no_circle() {
    let graph = graph();
    assert!(graph.len() > 50, "the walk found the modules ({})", graph.len());
    let found = circles(&graph);
    let shown: Vec<String> = found
        .iter()
        .map(|c| {
            let edges: Vec<String> = c
                .iter()
                .flat_map(|m| {
                    graph[m]
                        .iter()
                        .filter(|t| c.contains(t))
                        .map(move |t| format!("{m} -> {t}"))
                })
                .collect();
            format!("{{{}}}: {}", c.join(", "), edges.join("; "))
        })
        .collect();
    assert!(found.is_empty(), "import circles:\n{}", shown.join("\n"));
}

#[test]
fn the_checker_sees_the_uses_a_circle_is_made_of() {
    let m = |src: &str| parse(src);
    let mut modules = BTreeMap::new();
    modules.insert(
        "a".to_owned(),
        m("pub mod b;\npub use b::Thing;\nuse crate::c::{self, d::{E, F}};\n"),
    );
    modules.insert("a::b".to_owned(), m("pub struct Thing;\n// use crate::c::ignored;\n"));
    modules.insert("c".to_owned(), m("pub mod d;\nfn f() { crate::a::Thing; }\n"));
    modules.insert(
        "c::d".to_owned(),
        m("use super::super::a::b::Thing;\n#[cfg(test)]\nmod tests { use crate::c; }\n"),
    );
    let edges = |name: &str| -> BTreeSet<String> {
        paths_of(name, &modules[name])
            .iter()
            .filter_map(|p| resolve(p, &modules, 0))
            .filter(|t| t != name)
            .collect()
    };
    assert_eq!(edges("a"), BTreeSet::from(["c".to_owned(), "c::d".to_owned()]));
    assert_eq!(edges("a::b"), BTreeSet::new(), "comments are not uses");
    assert_eq!(
        edges("c"),
        BTreeSet::from(["a::b".to_owned()]),
        "a re-export is followed"
    );
    assert_eq!(edges("c::d"), BTreeSet::from(["a::b".to_owned()]), "tests are not uses");
    let graph: BTreeMap<String, BTreeSet<String>> = modules.keys().map(|k| (k.clone(), edges(k))).collect();
    assert!(circles(&graph).is_empty());
    let mut with_circle = graph.clone();
    with_circle.get_mut("a::b").unwrap().insert("c".to_owned());
    assert_eq!(circles(&with_circle), [["a::b".to_owned(), "c".to_owned()]]);
}

#[test]
fn the_readme_architecture_names_every_folder_of_src() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let section = readme
        .split("\n## Architecture")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("an Architecture section");
    let mut stack = vec![root.join("src")];
    let mut missing = Vec::new();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                let rel = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                if !section.contains(&format!("{rel}/")) {
                    missing.push(rel);
                }
                stack.push(path);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "folders the README's Architecture does not name: {missing:?}"
    );
}
