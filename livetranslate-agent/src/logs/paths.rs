//! The paths provider: which files the inputs name right now (their globs, less their
//! excludes). Evaluated again every `discover_interval`, so new files are picked up.

use std::path::{Path, PathBuf};

use super::input::Input;

/// Whether an input's excludes leave `path` out (matched against the whole path and against
/// the file name, so `*.gz` works without a directory).
pub fn excluded(input: &Input, path: &Path) -> bool {
    input.exclude.iter().any(|p| p.matches_path(path))
        || path.file_name().is_some_and(|n| {
            let n = n.to_string_lossy();
            input.exclude.iter().any(|p| p.matches(&n))
        })
}

/// Every regular file the inputs name, with the index of the first input naming it.
///
/// ```
/// use livetranslate_agent::logs::input::{Input, LogInput};
/// let dir = std::env::temp_dir().join(format!("paths-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// std::fs::write(dir.join("a.log"), "x\n").unwrap();
/// std::fs::write(dir.join("a.log.gz"), "x\n").unwrap();
/// let mut spec = LogInput::json(vec![format!("{}/a.log*", dir.display())]);
/// spec.exclude = vec!["*.gz".into()];
/// let inputs = [Input::compile(&spec).unwrap()];
/// let found = livetranslate_agent::logs::paths::discover(&inputs);
/// assert_eq!(found, vec![(0, dir.join("a.log"))]);
/// std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn discover(inputs: &[Input]) -> Vec<(usize, PathBuf)> {
    let mut out = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        for pattern in &input.patterns {
            let paths = match glob::glob(pattern) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(%pattern, error = %e, "bad glob");
                    continue;
                }
            };
            for path in paths.flatten() {
                if excluded(input, &path) || !path.is_file() {
                    continue;
                }
                out.push((i, path));
            }
        }
    }
    out
}

/// The input whose globs point into `dir` (for a file found there by other means, such as a
/// rotated file found at startup); the first input when none does.
pub fn input_for_dir(inputs: &[Input], dir: &Path) -> usize {
    inputs
        .iter()
        .position(|i| {
            i.patterns
                .iter()
                .any(|p| Path::new(p).parent() == Some(dir))
        })
        .unwrap_or(0)
}
