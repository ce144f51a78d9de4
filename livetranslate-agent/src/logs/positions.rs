//! The positions file: for every file, its identity and the offset up to which Loki has
//! acknowledged every line. Written atomically (temp file, fsync, rename, fsync directory).
//!
//! Promtail's positions file (`positions: {<path>: "<offset>"}`) is read too: each path is
//! matched to the file there now, which resumes at Promtail's offset, so switching from
//! Promtail neither ships a line again nor skips one. The agent then writes its own format
//! (which keeps each file's identity) to the same path.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::fingerprint::Fingerprint;

/// One file's saved state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The path it was last seen at.
    pub path: String,
    /// Its identity.
    #[serde(flatten)]
    pub fingerprint: Fingerprint,
    /// Acknowledged offset: every line before it reached Loki.
    pub offset: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PositionsFile {
    version: u32,
    files: Vec<Position>,
}

/// A positions file that could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PositionsError {
    /// I/O.
    #[error("positions file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Not a positions file.
    #[error("positions file {path} is corrupt ({reason}); move it away to start over")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parse error.
        reason: String,
    },
}

/// Promtail's positions file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PromtailPositions {
    #[serde(default)]
    positions: Option<BTreeMap<String, serde_yaml_ng::Value>>,
}

/// Saved positions, keyed by device and inode.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Positions {
    by_inode: BTreeMap<(u64, u64), Position>,
}

impl Positions {
    /// Loads `path`; a missing file is an empty set.
    pub fn load(path: &Path) -> Result<Positions, PositionsError> {
        let text = match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Positions::default()),
            Err(source) => {
                return Err(PositionsError::Io {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        if text.trim().is_empty() {
            return Ok(Positions::default());
        }
        let corrupt = |e: serde_yaml_ng::Error| PositionsError::Corrupt {
            path: path.to_owned(),
            reason: e.to_string(),
        };
        let is_promtail = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(&text)
            .map_err(corrupt)?
            .get("positions")
            .is_some();
        if is_promtail {
            let file: PromtailPositions = serde_yaml_ng::from_str(&text).map_err(corrupt)?;
            return Ok(Self::from_promtail(file.positions.unwrap_or_default()));
        }
        let file: PositionsFile = serde_yaml_ng::from_str(&text).map_err(corrupt)?;
        Ok(Positions {
            by_inode: file
                .files
                .into_iter()
                .map(|p| ((p.fingerprint.dev, p.fingerprint.ino), p))
                .collect(),
        })
    }

    /// Promtail's positions: each path resolved to the file there now.
    fn from_promtail(map: BTreeMap<String, serde_yaml_ng::Value>) -> Positions {
        let mut out = Positions::default();
        for (key, value) in map {
            let offset = match &value {
                serde_yaml_ng::Value::String(s) => s.trim().parse::<u64>().ok(),
                serde_yaml_ng::Value::Number(n) => n.as_u64(),
                _ => None,
            };
            let Some(offset) = offset else {
                // Journal cursors and the like: not a file offset.
                tracing::info!(key = %key, "Promtail position is not a file offset; ignored");
                continue;
            };
            let Ok(file) = File::open(&key) else {
                tracing::info!(path = %key, "Promtail position of a file that is gone; ignored");
                continue;
            };
            let Ok(fingerprint) = Fingerprint::of(&file) else {
                continue;
            };
            let size = file.metadata().map(|m| m.len()).unwrap_or(0);
            let offset = if offset > size {
                tracing::warn!(path = %key, offset, size, "Promtail's offset is past the end of the file now there (rotated or truncated since); reading it from the start");
                0
            } else {
                offset
            };
            tracing::info!(path = %key, offset, "taking over Promtail's position");
            out.set(Position {
                path: key,
                fingerprint,
                offset,
            });
        }
        out
    }

    /// Writes `self` to `path` atomically.
    pub fn save(&self, path: &Path) -> Result<(), PositionsError> {
        let err = |source| PositionsError::Io {
            path: path.to_owned(),
            source,
        };
        let file = PositionsFile {
            version: 1,
            files: self.by_inode.values().cloned().collect(),
        };
        let text = serde_yaml_ng::to_string(&file).map_err(|e| PositionsError::Corrupt {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(err)?;
        let tmp = dir.join(format!(
            ".{}.tmp",
            path.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("positions")
        ));
        {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)
                .map_err(err)?;
            f.write_all(text.as_bytes()).map_err(err)?;
            f.sync_all().map_err(err)?;
        }
        fs::rename(&tmp, path).map_err(err)?;
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// The saved position of the file with this device and inode.
    pub fn get(&self, dev: u64, ino: u64) -> Option<&Position> {
        self.by_inode.get(&(dev, ino))
    }

    /// Records a position.
    pub fn set(&mut self, position: Position) {
        self.by_inode.insert(
            (position.fingerprint.dev, position.fingerprint.ino),
            position,
        );
    }

    /// Forgets a file.
    pub fn remove(&mut self, dev: u64, ino: u64) {
        self.by_inode.remove(&(dev, ino));
    }

    /// Every saved position.
    pub fn iter(&self) -> impl Iterator<Item = &Position> {
        self.by_inode.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_and_load_round_trip_and_corruption_is_an_error() {
        let dir = std::env::temp_dir().join(format!("pos-{}", std::process::id()));
        let path = dir.join("sub/positions.yml");
        assert_eq!(
            Positions::load(&path).expect("missing is empty"),
            Positions::default()
        );
        let mut p = Positions::default();
        p.set(Position {
            path: "/app/logs/a.log".into(),
            fingerprint: Fingerprint {
                dev: 1,
                ino: 2,
                head_len: 3,
                head_hash: 4,
            },
            offset: 1234,
        });
        p.save(&path).expect("save");
        let loaded = Positions::load(&path).expect("load");
        assert_eq!(loaded, p);
        assert_eq!(loaded.get(1, 2).map(|p| p.offset), Some(1234));
        fs::write(&path, "files: [[[").expect("corrupt");
        let err = Positions::load(&path).expect_err("corrupt");
        assert!(err.to_string().contains("corrupt"), "{err}");
        fs::write(&path, "version: 1\nfiles: []\nbogus: 1\n").expect("unknown key");
        assert!(Positions::load(&path).is_err());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn promtail_positions_are_taken_over_by_path() {
        let dir = std::env::temp_dir().join(format!("pos-promtail-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("dir");
        let log = dir.join("app.log");
        fs::write(&log, "one\ntwo\nthree\n").expect("log");
        let path = dir.join("positions.yaml");
        fs::write(
            &path,
            format!(
                "positions:\n  {}: \"4\"\n  {}/gone.log: \"9\"\n  journal-system: \"s=abc\"\n",
                log.display(),
                dir.display()
            ),
        )
        .expect("positions");
        let loaded = Positions::load(&path).expect("load");
        let all: Vec<&Position> = loaded.iter().collect();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].offset, 4);
        assert_eq!(all[0].path, log.display().to_string());
        fs::write(&path, "positions: {}\n").expect("empty");
        assert_eq!(Positions::load(&path).expect("empty"), Positions::default());
        fs::write(&path, format!("positions:\n  {}: \"999\"\n", log.display())).expect("w");
        assert_eq!(
            Positions::load(&path)
                .expect("past the end")
                .iter()
                .next()
                .map(|p| p.offset),
            Some(0)
        );
        let _ = fs::remove_dir_all(&dir);
    }
}
