//! The documents stay true to the tree:
//!
//! - `ARCHITECTURE.md` names every source file of the workspace crates by its
//!   repository-relative path (`generator-core/src/stream.rs`), so a new, moved or renamed
//!   file fails here until its line is written.
//! - Every relative link in `README.md`, `CONTRIBUTING.md`, `ARCHITECTURE.md` and
//!   `docs/*.md` points at a file or folder of the repository, and a `#fragment` into a
//!   Markdown file names one of its headings.
//! - Those documents name no path outside the repository (`../` that climbs out of it).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Component, Path, PathBuf};

/// Source folders whose files `ARCHITECTURE.md` must name, with the file extension.
const SOURCE_DIRS: &[(&str, &str)] = &[
    ("generator-core/src", "rs"),
    ("generator-quant/src", "rs"),
    ("host-trainer/src", "rs"),
    ("firmware-sim/src", "rs"),
    ("capi/src", "rs"),
    ("python/src", "rs"),
    ("python/aigcmn", "py"),
    ("web/wasm/src", "rs"),
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the workspace root")
        .to_path_buf()
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Files under `dir` (recursively) whose extension is `ext`, sorted.
fn files_with_ext(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "__pycache__") {
                continue;
            }
            files_with_ext(&path, ext, out);
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
    out.sort();
}

/// `path` relative to the repository root, with `/` separators.
fn relative(path: &Path) -> String {
    let rel = path.strip_prefix(root()).expect("inside the repository");
    let parts: Vec<_> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.join("/")
}

/// Characters that can be part of a path as the documents write it.
fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/')
}

/// Whether `text` contains `path` as a whole path: not as the tail or head of a longer
/// one (`src/ops/avx2.rs` inside `src/ops/conv/avx2.rs` does not count).
fn mentions(text: &str, path: &str) -> bool {
    text.match_indices(path).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let mut after = text[at + path.len()..].chars();
        let ends = match after.next() {
            None => true,
            // A full stop ends a sentence, not the path, unless the path goes on.
            Some('.') => !after.next().is_some_and(is_path_char),
            Some(c) => !is_path_char(c),
        };
        !before.is_some_and(is_path_char) && ends
    })
}

/// The Markdown documents whose links and paths are checked.
fn documents() -> Vec<PathBuf> {
    let root = root();
    let mut docs: Vec<PathBuf> = ["README.md", "CONTRIBUTING.md", "ARCHITECTURE.md"]
        .iter()
        .map(|name| root.join(name))
        .collect();
    files_with_ext(&root.join("docs"), "md", &mut docs);
    docs
}

/// `base` joined with `rel`, `.` and `..` resolved without touching the file system;
/// `None` when `..` climbs above the file system root.
fn normalize(base: &Path, rel: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in base.join(rel).components() {
        match component {
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    Some(out)
}

/// The lines of `text` outside fenced code blocks.
fn prose_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut fenced = false;
    text.lines().filter(move |line| {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            return false;
        }
        !fenced
    })
}

/// GitHub's anchors for the headings of a Markdown text: lower case, punctuation other
/// than `-` and `_` dropped, spaces as `-`, and `-1`, `-2`, ... on repeats.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for line in prose_lines(text) {
        let Some(title) = line.strip_prefix('#') else {
            continue;
        };
        let title = title.trim_start_matches('#');
        if !title.starts_with(' ') {
            continue;
        }
        let slug: String = title
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let mut unique = slug.clone();
        let mut n = 0;
        while seen.contains(&unique) {
            n += 1;
            unique = format!("{slug}-{n}");
        }
        seen.insert(unique);
    }
    seen
}

/// Targets of the inline links and images of a Markdown text (`[text](target)`), outside
/// fenced code blocks, without an optional title.
fn link_targets(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    for line in prose_lines(text) {
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            let target = after[..end].split_whitespace().next().unwrap_or("");
            targets.push(target.trim_matches(|c| c == '<' || c == '>').to_string());
            rest = &after[end..];
        }
    }
    targets
}

#[test]
fn architecture_names_every_source_file() {
    let root = root();
    let architecture = read(&root.join("ARCHITECTURE.md"));
    let mut sources = Vec::new();
    for (dir, ext) in SOURCE_DIRS {
        files_with_ext(&root.join(dir), ext, &mut sources);
    }
    assert!(
        sources.len() > 40,
        "found only {} source files",
        sources.len()
    );
    let missing: Vec<String> = sources
        .iter()
        .map(|p| relative(p))
        .filter(|rel| !mentions(&architecture, rel))
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md does not name these source files; add a line for each to its \
         \"Source files\" tables:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn relative_links_in_the_documents_resolve() {
    let root = root();
    let mut broken = Vec::new();
    let mut checked = 0;
    for doc in documents() {
        let text = read(&doc);
        let dir = doc.parent().expect("a document has a folder");
        for target in link_targets(&text) {
            if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (path, fragment) = match target.split_once('#') {
                Some((path, fragment)) => (path, Some(fragment)),
                None => (target.as_str(), None),
            };
            let file = if path.is_empty() {
                Some(doc.clone())
            } else {
                normalize(dir, path).filter(|p| p.starts_with(&root) && p.exists())
            };
            let Some(file) = file else {
                broken.push(format!(
                    "{}: ({target}) is not a path in the repository",
                    relative(&doc)
                ));
                continue;
            };
            let is_markdown = file.extension().is_some_and(|e| e == "md");
            if let Some(fragment) = fragment.filter(|_| is_markdown)
                && !anchors(&read(&file)).contains(fragment)
            {
                broken.push(format!(
                    "{}: ({target}): {} has no heading with anchor #{fragment}",
                    relative(&doc),
                    relative(&file)
                ));
            }
        }
    }
    assert!(checked > 20, "found only {checked} relative links");
    assert!(
        broken.is_empty(),
        "broken links:\n  {}",
        broken.join("\n  ")
    );
}

#[test]
fn documents_name_no_path_outside_the_repository() {
    let root = root();
    let mut outside = Vec::new();
    for doc in documents() {
        let text = read(&doc);
        let dir = doc.parent().expect("a document has a folder");
        for (at, _) in text.match_indices("../") {
            if text[..at].chars().next_back().is_some_and(is_path_char) {
                continue; // the middle of a longer path, e.g. `a/../b`
            }
            let token: String = text[at..]
                .chars()
                .take_while(|&c| is_path_char(c))
                .collect();
            let inside = normalize(dir, &token).is_some_and(|p| p.starts_with(&root));
            if !inside {
                outside.push(format!("{}: {token}", relative(&doc)));
            }
        }
    }
    assert!(
        outside.is_empty(),
        "the documents refer to paths outside the repository (put what they need in it):\n  {}",
        outside.join("\n  ")
    );
}

#[test]
fn anchors_follow_github() {
    let text = "# Top\n## Training survives `kill -9`\n```sh\n# not a heading\n```\n## Top\n";
    let got = anchors(text);
    let want: BTreeSet<String> = ["top", "training-survives-kill--9", "top-1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(got, want);
    assert!(mentions("see `a/src/lib.rs`.", "a/src/lib.rs"));
    assert!(!mentions("`a/src/ops/conv/avx2.rs`", "src/ops/avx2.rs"));
    assert!(!mentions("`xa/src/lib.rs`", "a/src/lib.rs"));
    assert!(!mentions("`a/src/lib.rs.bak`", "a/src/lib.rs"));
}
