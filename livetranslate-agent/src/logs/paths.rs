//! The paths provider: which files the inputs name right now (their globs, less their
//! excludes), and which matched paths cannot be tailed (directories, FIFOs, sockets, device
//! files) and why. Evaluated again every `discover_interval`, so new files are picked up.
//!
//! Globs are Promtail's: `*`, `?` and `[...]` within one path component, `**` across any
//! number of directories, `{a,b}` alternatives. `**` walks the real directory tree: a
//! symbolic link to a directory is followed once, and never into a directory already being
//! walked (a link to `..` or to `/` cannot make it loop), so every file is found once.

use std::collections::HashSet;
use std::fs;
use std::path::{Component, Path, PathBuf};

use glob::{MatchOptions, Pattern};

use super::fingerprint::dev_ino;

pub use crate::internal_events::SkipReason;

/// How deep `**` descends at most (a safety bound; symbolic-link loops are cut anyway).
const MAX_DEPTH: usize = 64;

const MATCH: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

/// An input's compiled globs.
#[derive(Debug, Clone)]
pub struct Globs {
    /// Include patterns, `{a,b}` expanded.
    include: Vec<Pattern>,
    exclude: Vec<Pattern>,
}

/// Expands `{a,b}` alternatives (nested ones too) into separate patterns.
///
/// ```
/// use livetranslate_agent::logs::paths::expand_braces;
/// assert_eq!(expand_braces("/l/{a,b}/*.{log,txt}").len(), 4);
/// assert_eq!(expand_braces("/l/{a,{b,c}}.log"), ["/l/a.log", "/l/b.log", "/l/c.log"]);
/// assert_eq!(expand_braces("/l/x.log"), ["/l/x.log"]);
/// ```
pub fn expand_braces(pattern: &str) -> Vec<String> {
    let bytes = pattern.as_bytes();
    let Some(open) = pattern.find('{') else {
        return vec![pattern.to_owned()];
    };
    let mut depth = 0;
    let mut parts = Vec::new();
    let mut from = open + 1;
    for (i, b) in bytes.iter().enumerate().skip(open) {
        match b {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    parts.push(&pattern[from..i]);
                    let (head, tail) = (&pattern[..open], &pattern[i + 1..]);
                    return parts
                        .into_iter()
                        .flat_map(|p| expand_braces(&format!("{head}{p}{tail}")))
                        .collect();
                }
            }
            b',' if depth == 1 => {
                parts.push(&pattern[from..i]);
                from = i + 1;
            }
            _ => {}
        }
    }
    // An unbalanced brace is literal.
    vec![pattern.to_owned()]
}

/// A glob pattern that does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid glob {pattern:?}: {reason}")]
pub struct GlobError {
    /// `paths` or `exclude`.
    pub key: &'static str,
    /// The pattern.
    pub pattern: String,
    /// Why.
    pub reason: String,
}

fn compile(key: &'static str, p: &str) -> Result<Pattern, GlobError> {
    Pattern::new(p).map_err(|e| GlobError {
        key,
        pattern: p.to_owned(),
        reason: e.to_string(),
    })
}

fn has_magic(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// One path a glob named.
#[derive(Debug)]
pub enum Found {
    /// A regular file (or a link to one): its device, inode and length.
    File(PathBuf, FileMeta),
    /// Something that cannot be tailed.
    Skipped(PathBuf, SkipReason),
}

/// What discovery learnt of a file without opening it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMeta {
    /// Device.
    pub dev: u64,
    /// Inode.
    pub ino: u64,
    /// Length.
    pub len: u64,
}

fn classify(path: PathBuf) -> Option<Found> {
    // Follows a link to its target; a dangling link names nothing.
    let meta = fs::metadata(&path).ok()?;
    let ft = meta.file_type();
    if ft.is_file() {
        let (dev, ino) = dev_ino(&meta);
        return Some(Found::File(
            path,
            FileMeta {
                dev,
                ino,
                len: meta.len(),
            },
        ));
    }
    if ft.is_dir() {
        return Some(Found::Skipped(path, SkipReason::Directory));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return Some(Found::Skipped(path, SkipReason::Fifo));
        }
    }
    Some(Found::Skipped(path, SkipReason::Special))
}

impl Globs {
    /// Compiles `paths` (with `{a,b}` alternatives) and `exclude`.
    pub fn new(paths: &[String], exclude: &[String]) -> Result<Globs, GlobError> {
        let mut include = Vec::new();
        for p in paths {
            for e in expand_braces(p) {
                include.push(compile("paths", &e)?);
            }
        }
        let mut ex = Vec::new();
        for p in exclude {
            for e in expand_braces(p) {
                ex.push(compile("exclude", &e)?);
            }
        }
        Ok(Globs {
            include,
            exclude: ex,
        })
    }

    /// Whether the excludes leave `path` out (matched against the whole path and against
    /// the file name, so `*.gz` works without a directory).
    pub fn excluded(&self, path: &Path) -> bool {
        self.exclude
            .iter()
            .any(|p| p.matches_path_with(path, MATCH))
            || path.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                self.exclude.iter().any(|p| p.matches_with(&n, MATCH))
            })
    }

    /// Whether the globs name `path` (and the excludes do not leave it out).
    pub fn matches(&self, path: &Path) -> bool {
        !self.excluded(path)
            && self
                .include
                .iter()
                .any(|p| p.matches_path_with(path, MATCH))
    }

    /// Every path the globs name now.
    pub fn walk(&self, out: &mut Vec<Found>) {
        for pattern in &self.include {
            let text = pattern.as_str();
            let found: Vec<PathBuf> = if text.contains("**") {
                let mut v = Vec::new();
                walk_recursive(pattern, &mut v);
                v
            } else {
                match glob::glob_with(text, MATCH) {
                    Ok(paths) => paths.flatten().collect(),
                    Err(e) => {
                        tracing::warn!(pattern = %text, error = %e, "bad glob");
                        Vec::new()
                    }
                }
            };
            for path in found {
                if self.excluded(&path) {
                    continue;
                }
                if let Some(f) = classify(path) {
                    out.push(f);
                }
            }
        }
    }
}

/// The files under the literal head of a `**` pattern that match it, each real directory
/// walked once.
fn walk_recursive(pattern: &Pattern, out: &mut Vec<PathBuf>) {
    let text = Path::new(pattern.as_str());
    let mut base = PathBuf::new();
    for c in text.components() {
        match c {
            Component::Normal(s) if has_magic(&s.to_string_lossy()) || s == "**" => break,
            other => base.push(other.as_os_str()),
        }
    }
    if base.as_os_str().is_empty() {
        base.push(".");
    }
    let mut seen = HashSet::new();
    visit(&base, pattern, 0, &mut seen, out);
}

fn visit(
    dir: &Path,
    pattern: &Pattern,
    depth: usize,
    seen: &mut HashSet<(u64, u64)>,
    out: &mut Vec<PathBuf>,
) {
    let Ok(meta) = fs::metadata(dir) else { return };
    if !meta.is_dir() || depth > MAX_DEPTH || !seen.insert(dev_ino(&meta)) {
        return;
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_dir = match entry.file_type() {
            Ok(t) if t.is_dir() => true,
            // A link: followed if it leads to a directory not walked yet.
            Ok(t) if t.is_symlink() => fs::metadata(&path).is_ok_and(|m| m.is_dir()),
            _ => false,
        };
        if pattern.matches_path_with(&path, MATCH) {
            out.push(path.clone());
        }
        if is_dir {
            visit(&path, pattern, depth + 1, seen, out);
        }
    }
}

/// Every path the inputs' globs name, with the index of the first input naming it (a path
/// named by several inputs is read once, by the first).
pub fn discover<'a>(inputs: impl IntoIterator<Item = &'a Globs>) -> Vec<(usize, Found)> {
    let mut out = Vec::new();
    let mut named = HashSet::new();
    let mut found = Vec::new();
    for (i, globs) in inputs.into_iter().enumerate() {
        found.clear();
        globs.walk(&mut found);
        for f in found.drain(..) {
            let path = match &f {
                Found::File(p, _) | Found::Skipped(p, _) => p.clone(),
            };
            if named.insert(path) {
                out.push((i, f));
            }
        }
    }
    out
}

/// The input whose globs point into `dir` (for a file found there by other means, such as a
/// rotated file found at startup); the first input when none does.
pub fn input_for_dir<'a>(inputs: impl IntoIterator<Item = &'a Globs>, dir: &Path) -> usize {
    inputs
        .into_iter()
        .position(|g| {
            g.include
                .iter()
                .any(|p| Path::new(p.as_str()).parent() == Some(dir))
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dir(PathBuf);

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn dir(tag: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("paths-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).expect("dir");
        Dir(d)
    }

    fn files(globs: &Globs) -> Vec<PathBuf> {
        let mut out = Vec::new();
        globs.walk(&mut out);
        let mut v: Vec<PathBuf> = out
            .into_iter()
            .filter_map(|f| match f {
                Found::File(p, _) => Some(p),
                Found::Skipped(..) => None,
            })
            .collect();
        v.sort();
        v
    }

    #[cfg(unix)]
    #[test]
    fn double_star_does_not_follow_symlink_loops() {
        let d = dir("loop");
        let root = &d.0;
        fs::create_dir_all(root.join("a/b")).expect("dirs");
        fs::write(root.join("top.log"), "x\n").expect("w");
        fs::write(root.join("a/one.log"), "x\n").expect("w");
        fs::write(root.join("a/b/two.log"), "x\n").expect("w");
        // A link back up, and a link to a sibling: each real directory is walked once.
        std::os::unix::fs::symlink(root, root.join("a/b/up")).expect("link");
        std::os::unix::fs::symlink(root.join("a"), root.join("again")).expect("link");
        let g = Globs::new(&[format!("{}/**/*.log", root.display())], &[]).expect("globs");
        let found = files(&g);
        assert_eq!(found.len(), 3, "{found:?}");
    }

    #[cfg(unix)]
    #[test]
    fn directories_and_fifos_are_reported_not_tailed() {
        let d = dir("kinds");
        fs::create_dir_all(d.0.join("sub.log")).expect("dir");
        fs::write(d.0.join("ok.log"), "x\n").expect("w");
        let fifo = d.0.join("pipe.log");
        let c = std::ffi::CString::new(fifo.to_string_lossy().as_bytes()).expect("cstr");
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let g = Globs::new(&[format!("{}/*.log", d.0.display())], &[]).expect("globs");
        let mut out = Vec::new();
        g.walk(&mut out);
        let mut kinds: Vec<(String, Option<SkipReason>)> = out
            .into_iter()
            .map(|f| match f {
                Found::File(p, _) => (
                    p.file_name().unwrap_or_default().to_string_lossy().into(),
                    None,
                ),
                Found::Skipped(p, r) => (
                    p.file_name().unwrap_or_default().to_string_lossy().into(),
                    Some(r),
                ),
            })
            .collect();
        kinds.sort();
        assert_eq!(
            kinds,
            [
                ("ok.log".to_owned(), None),
                ("pipe.log".to_owned(), Some(SkipReason::Fifo)),
                ("sub.log".to_owned(), Some(SkipReason::Directory)),
            ]
        );
    }

    #[test]
    fn braces_and_excludes() {
        let d = dir("braces");
        for n in ["a.log", "b.txt", "c.gz", "a.log.1"] {
            fs::write(d.0.join(n), "x\n").expect("w");
        }
        let g = Globs::new(
            &[format!("{}/*.{{log,txt,gz}}", d.0.display())],
            &["*.gz".to_owned()],
        )
        .expect("globs");
        let names: Vec<String> = files(&g)
            .iter()
            .map(|p| p.file_name().unwrap_or_default().to_string_lossy().into())
            .collect();
        assert_eq!(names, ["a.log", "b.txt"]);
        assert!(g.matches(&d.0.join("a.log")));
        assert!(!g.matches(&d.0.join("c.gz")));
        assert!(
            !g.matches(&d.0.join("sub/a.log")),
            "* stays in one directory"
        );
    }
}
